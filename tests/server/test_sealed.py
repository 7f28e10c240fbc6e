"""The sealed outbox, server half (issue 7; contract in docs/sealed-outbox.md), against the real server over TLS:
sealed envelopes open and go through the batch intake's validation, ownership and dedupe; replays and altered
envelopes are never stored twice; rotated keys still open old envelopes; the device credential opens one door
only and is revoked with the account's sessions; anonymous envelopes leave no link to who sent them."""

from __future__ import annotations

import base64
import copy
import json
import logging
import random
import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.routing import Route

from pso_desktop.domain.samples import sample_report
from pso_server import sealing, store
from pso_server.practice import RunningServer
from pso_server.sealing import SUITE, info_for, key_id_of
from tests.server.support import PASSWORD, Api, ServerFactory, envelope, run_cli

SEALED = "/api/v1/sealed/batch"


def _report(seed: int, *, anonymous: bool) -> dict[str, Any]:
    rng = random.Random(seed)
    while True:
        report = sample_report(rng, seed)
        if bool(report["reporter"].get("anonymous")) == anonymous:
            return report


def _owner_key() -> str:
    return secrets.token_urlsafe(32)


def _device(api: Api, username: str, **user: Any) -> tuple[str, dict[str, Any]]:
    """A new account signed in, and a device credential for it: (access token, credential)."""
    token = api.user(username, **user)
    return token, api.device_credential(token)


def _rows(server: RunningServer, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with server.db.reader() as tx:
        return tx.all(sql, params)


# ----------------------------------------------------------------------------------------------- the key


def test_the_sealing_key_is_served_at_login_and_in_reference(api: Api, server: RunningServer) -> None:
    key = api.sealing_key()
    assert set(key) == {"key_id", "suite", "public_key", "created_at"}
    assert key["suite"] == "X25519-HKDF-SHA256-AES-256-GCM"
    raw = base64.b64decode(key["public_key"])
    assert len(raw) == 32 and key["key_id"] == key_id_of(raw) and key["key_id"].startswith("sk-")
    server.add_user("nurse1", PASSWORD)
    signed_in = api.login("nurse1")
    assert signed_in["sealing_key"] == key
    reference = api.get("/api/v1/reference", signed_in["access_token"]).json()
    assert reference["sealing_key"] == key


def test_private_keys_are_stored_wrapped_never_in_the_clear(server: RunningServer) -> None:
    ((key_id, public, wrapped),) = _rows(
        server, "SELECT key_id, public_key, wrapped_private_key FROM sealing_keys"
    )
    private = server.sealing._private_key(key_id)
    assert private is not None
    raw = private.private_bytes_raw()
    assert raw not in bytes(wrapped) and len(bytes(wrapped)) == 12 + 32 + 16  # nonce, key, tag
    # The wrapping key lives in the server's data folder, owner-only, not in the database.
    key_file = server.data_dir / sealing.WRAPPING_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert base64.b64decode(key_file.read_bytes().strip()) not in _dump(server)
    assert bytes(public) == private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _dump(server: RunningServer) -> bytes:
    """Every value in the sealing_keys table, as bytes."""
    out = b""
    for row in _rows(server, "SELECT * FROM sealing_keys"):
        for value in row:
            out += bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
    return out


# ------------------------------------------------------------------------------------------ the round trip


def test_a_sealed_report_is_stored_as_the_batch_would_store_it(api: Api, server: RunningServer) -> None:
    _, credential = _device(api, "nurse1")
    assert credential["account"] == "nurse1" and credential["credential_id"].startswith("dc-")
    key = api.sealing_key()
    report = _report(1, anonymous=False)
    sent = envelope(key, report, "nurse1")
    (result,) = api.sealed(credential["token"], [sent])
    assert result["envelope_id"] == sent["envelope_id"]
    assert (result["id"], result["revision"], result["status"], result["errors"]) == (
        report["id"],
        1,
        "created",
        [],
    )
    assert result["server_ref"].startswith("PSO-")
    held = server.report(report["id"])
    user_id = _rows(server, "SELECT id FROM users WHERE username = 'nurse1'")[0][0]
    assert held.submitter_id == user_id and not held.is_anonymous
    # The same report sent plain afterwards is the same report: a duplicate with the same case number.
    token = api.login("nurse1")["access_token"]
    (plain,) = api.batch(token, [report])
    assert (plain["status"], plain["server_ref"]) == ("duplicate", result["server_ref"])


def test_a_replayed_envelope_is_a_duplicate_and_never_stored_twice(api: Api, server: RunningServer) -> None:
    _, credential = _device(api, "nurse1")
    key = api.sealing_key()
    report = _report(2, anonymous=False)
    sent = envelope(key, report, "nurse1")
    (first,) = api.sealed(credential["token"], [sent])
    replays = api.sealed(credential["token"], [sent, sent])
    again = api.sealed(credential["token"], [envelope(key, report, "nurse1")])  # sealed afresh: same report
    assert first["status"] == "created"
    assert [r["status"] for r in replays + again] == ["duplicate"] * 3
    assert {r["server_ref"] for r in [first, *replays, *again]} == {first["server_ref"]}
    assert _rows(server, "SELECT COUNT(*) FROM reports") == [(1,)]
    assert _rows(server, "SELECT COUNT(*) FROM report_revisions") == [(1,)]
    # A new revision through the sealed path is 'updated', as in the batch.
    revised = copy.deepcopy(report) | {"revision": 2, "narrative": report["narrative"] + " More."}
    (updated,) = api.sealed(credential["token"], [envelope(key, revised, "nurse1")])
    assert (updated["status"], updated["server_ref"]) == ("updated", first["server_ref"])


def test_altered_or_foreign_envelopes_are_unsealable_and_the_rest_goes_in(api: Api, server: RunningServer) -> None:
    _, credential = _device(api, "nurse1")
    key = api.sealing_key()
    good = envelope(key, _report(3, anonymous=False), "nurse1")
    flipped = envelope(key, _report(4, anonymous=False), "nurse1")
    raw = bytearray(base64.b64decode(flipped["sealed"]))
    raw[-20] ^= 0x01  # one bit of the ciphertext
    flipped["sealed"] = base64.b64encode(bytes(raw)).decode()
    truncated = envelope(key, _report(5, anonymous=False), "nurse1")
    truncated["sealed"] = truncated["sealed"][:40]
    unknown_key = envelope(key, _report(6, anonymous=False), "nurse1") | {"key_id": "sk-0000000000000000"}
    not_base64 = envelope(key, _report(7, anonymous=False), "nurse1") | {"sealed": "not base64!"}
    # Sealed for a key the server does not hold, under the server's key id.
    stranger = X25519PrivateKey.generate().public_key()
    foreign_raw = SUITE.encrypt(
        json.dumps({"v": 1, "account": "nurse1", "report": _report(8, anonymous=False)}).encode(),
        stranger,
        info=info_for(key["key_id"]),
    )
    foreign = good | {"envelope_id": "f" * 8 + "-0000-4000-8000-" + "0" * 12}
    foreign["sealed"] = base64.b64encode(foreign_raw).decode()
    # Opened, but not an envelope of this contract.
    not_envelope = envelope(key, _report(9, anonymous=False), "nurse1")
    not_envelope["sealed"] = base64.b64encode(
        sealing.seal(b'{"v": 2, "report": {}}', base64.b64decode(key["public_key"]))
    ).decode()
    batch = [flipped, truncated, unknown_key, not_base64, foreign, not_envelope, good]
    results = api.sealed(credential["token"], batch)
    assert [r["envelope_id"] for r in results] == [e["envelope_id"] for e in batch]
    for result in results[:-1]:
        assert (result["status"], result["id"], result["revision"], result["server_ref"]) == (
            "rejected",
            None,
            None,
            None,
        )
        assert [e["field"] for e in result["errors"]] == ["unsealable"]
    assert results[-1]["status"] == "created"
    assert _rows(server, "SELECT COUNT(*) FROM reports") == [(1,)]
    assert server.stats()["rejected"] == 6


def test_an_envelope_sealed_for_a_rotated_key_still_opens(api: Api, server: RunningServer) -> None:
    _, credential = _device(api, "nurse1")
    old = api.sealing_key()
    old_report = _report(10, anonymous=False)
    pending = envelope(old, old_report, "nurse1")  # sealed before the rotation, sent after it
    server.sealing.rotate()
    new = api.sealing_key()
    assert new["key_id"] != old["key_id"]
    new_report = _report(11, anonymous=False)
    results = api.sealed(credential["token"], [pending, envelope(new, new_report, "nurse1")])
    assert [r["status"] for r in results] == ["created", "created"]
    # A server restarted on the same database and wrapping key opens both as well.
    keys = _rows(server, "SELECT key_id, is_current FROM sealing_keys ORDER BY created_at")
    assert keys == [(old["key_id"], 0), (new["key_id"], 1)]


def test_a_key_sealed_for_one_key_id_does_not_open_under_another(api: Api, server: RunningServer) -> None:
    _, credential = _device(api, "nurse1")
    old = api.sealing_key()
    server.sealing.rotate()
    new = api.sealing_key()
    # Sealed with the new public key but announced under the old key id: info differs, the key differs.
    sent = envelope(new, _report(12, anonymous=False), "nurse1") | {"key_id": old["key_id"]}
    (result,) = api.sealed(credential["token"], [sent])
    assert [e["field"] for e in result["errors"]] == ["unsealable"]


# ---------------------------------------------------------------------------------------- account binding


def test_a_named_report_must_be_the_credential_accounts(api: Api, server: RunningServer) -> None:
    _, credential = _device(api, "nurse1")
    api.user("nurse2")
    key = api.sealing_key()
    other_account = envelope(key, _report(13, anonymous=False), "nurse2")
    no_account = envelope(key, _report(14, anonymous=False), None)
    anonymous_named = envelope(key, _report(15, anonymous=True), "nurse1", _owner_key())
    results = api.sealed(credential["token"], [other_account, no_account, anonymous_named])
    assert [r["status"] for r in results] == ["rejected"] * 3
    assert [[e["field"] for e in r["errors"]] for r in results] == [["account_mismatch"]] * 3
    assert _rows(server, "SELECT COUNT(*) FROM reports") == [(0,)]


def test_revisions_keep_their_owner_through_the_sealed_path(api: Api, server: RunningServer) -> None:
    first_token = api.user("nurse1")
    _, intruder = _device(api, "nurse2")
    report = _report(16, anonymous=False)
    (created,) = api.batch(first_token, [report])
    assert created["status"] == "created"
    key = api.sealing_key()
    revised = copy.deepcopy(report) | {"revision": 2, "narrative": "Changed by someone else."}
    (refused,) = api.sealed(intruder["token"], [envelope(key, revised, "nurse2")])
    assert (refused["status"], refused["server_ref"]) == ("rejected", None)
    assert server.report(report["id"]).latest_revision == 1


# ------------------------------------------------------------------------------------- anonymous envelopes


def test_an_anonymous_envelope_leaves_no_link_to_who_sent_it(
    api: Api, server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, credential = _device(api, "nurse1")
    key = api.sealing_key()
    report = _report(17, anonymous=True)
    owner = _owner_key()
    sent = envelope(key, report, None, owner)
    (result,) = api.sealed(credential["token"], [sent])
    assert result["status"] == "created"
    user_id = _rows(server, "SELECT id FROM users WHERE username = 'nurse1'")[0][0]
    # The report: no account, arrival day only, as through /reports/batch.
    ((submitter, anonymous, created, updated),) = _rows(
        server,
        "SELECT submitter_id, is_anonymous, created_at, updated_at FROM reports WHERE id = ?",
        (report["id"],),
    )
    assert submitter is None and anonymous == 1
    assert created % 86400 == 0 and updated % 86400 == 0
    ((received,),) = _rows(server, "SELECT received_at FROM report_revisions WHERE report_id = ?", (report["id"],))
    assert received % 86400 == 0
    # Nothing anywhere in the database names the report together with the account, the credential or the device.
    for table, columns in _text_columns(server).items():
        for row in _rows(server, f"SELECT {', '.join(columns)} FROM {table}"):
            text = " ".join(str(v) for v in row)
            if report["id"] in text:
                assert str(credential["credential_id"]) not in text
                assert "ward-pc" not in text and "nurse1" not in text
    held = server.report(report["id"])
    assert held.submitter_id != user_id
    # The credential's last use is kept by the day only, so it cannot date the envelope either.
    ((last_used,),) = _rows(server, "SELECT last_used_at FROM device_credentials")
    assert last_used % 86400 == 0
    # And no line of the server's logs (its own and uvicorn's, the access log included) names the report, the
    # envelope, the account or the credential, and the sealed upload's access line has no address.
    server_lines = [r.getMessage() for r in caplog.records if r.name.startswith(("pso_server", "uvicorn"))]
    for secret in (report["id"], sent["envelope_id"], "nurse1", credential["credential_id"]):
        assert not [line for line in server_lines if secret in line]
    uploads = [line for line in server_lines if SEALED in line]
    assert uploads and not [line for line in uploads if "127.0.0.1" in line]
    # Its owner can revise it through the sealed path too (the owner key is the proof, as in the batch).
    revised = copy.deepcopy(report) | {"revision": 2, "narrative": report["narrative"] + " Follow-up."}
    (update,) = api.sealed(credential["token"], [envelope(key, revised, None, owner)])
    assert update["status"] == "updated"
    (no_key,) = api.sealed(credential["token"], [envelope(key, revised | {"revision": 3}, None)])
    assert no_key["status"] == "rejected"


def _text_columns(server: RunningServer) -> dict[str, list[str]]:
    """Every table with its columns (SQLite's or PostgreSQL's catalogue)."""
    if server.db.dialect.name == "sqlite":
        tables = [r[0] for r in _rows(server, "SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: [r[1] for r in _rows(server, f"PRAGMA table_info({t})")]
            for t in tables
            if not t.startswith("sqlite_")
        }
    found: dict[str, list[str]] = {}
    for table, column in _rows(
        server,
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "ORDER BY table_name, ordinal_position",
    ):
        found.setdefault(table, []).append(column)
    return found


# ------------------------------------------------------------------------------------ the device credential


def _sample_path(path: str) -> str:
    return path.replace("{report_id}", "7c4b7a51-3b7e-4f4e-9a43-2d7e51a0b0a1").replace("{version}", "hospital-2.0")


def _every_operation(server: RunningServer) -> list[tuple[str, str]]:
    """(method, path) of every operation the application serves: the API from its own OpenAPI document, plus
    the routes outside it (the document itself, the interactive docs)."""
    found = [
        (method.upper(), path)
        for path, operations in server.app.openapi()["paths"].items()
        for method in operations
    ]
    for route in server.app.routes:
        if isinstance(route, Route) and not route.include_in_schema:
            found += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


def test_the_device_credential_is_refused_everywhere_else(api: Api, server: RunningServer) -> None:
    _, credential = _device(api, "nurse1", role="risk_manager")
    device = {"Authorization": f"Device {credential['token']}"}
    operations = _every_operation(server)
    assert ("POST", SEALED) in operations and ("GET", "/openapi.json") in operations
    assert len(operations) >= 16
    for method, path in operations:
        if (method, path) == ("POST", SEALED):
            continue
        response = api.session.request(method, api.url(_sample_path(path)), headers=device, json={}, timeout=30)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "unauthorized"
    # An unknown path too, and a scheme name in any case: the credential opens no door but one.
    assert api.session.get(api.url("/api/v1/nothing-here"), headers=device, timeout=30).status_code == 401
    shouting = {"Authorization": f"DEVICE {credential['token']}"}
    assert api.session.get(api.url("/healthz"), headers=shouting, timeout=30).status_code == 401


def test_the_sealed_endpoint_refuses_sign_in_tokens_and_strangers(api: Api, server: RunningServer) -> None:
    token, credential = _device(api, "nurse1")
    key = api.sealing_key()
    sent = [envelope(key, _report(18, anonymous=False), "nurse1")]
    as_bearer = api.session.post(
        api.url(SEALED), json={"envelopes": sent}, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    as_device = api.sealed_post(token, sent)  # the access token presented as a device credential
    unknown = api.sealed_post("psodc_" + secrets.token_urlsafe(32), sent)
    nothing = api.sealed_post(None, sent)
    credential_as_bearer = api.session.post(
        api.url("/api/v1/reports/batch"),
        json={"reports": [_report(19, anonymous=False)]},
        headers={"Authorization": f"Bearer {credential['token']}"},
        timeout=30,
    )
    for response in (as_bearer, as_device, unknown, nothing, credential_as_bearer):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"
    assert _rows(server, "SELECT COUNT(*) FROM reports") == [(0,)]


def test_device_credentials_are_stored_hashed(api: Api, server: RunningServer) -> None:
    _, credential = _device(api, "nurse1")
    stored = _rows(server, "SELECT * FROM device_credentials")
    assert len(stored) == 1 and credential["token"] not in " ".join(str(v) for v in stored[0])


@pytest.mark.parametrize("how", ["logout", "revoke-sessions", "disable-user", "set-password", "cli-revoke"])
def test_a_revoked_credential_is_refused(
    api: Api, server: RunningServer, db_url: str, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    token, credential = _device(api, "nurse1")
    _, bystander = _device(api, "nurse2")
    key = api.sealing_key()
    (ok,) = api.sealed(credential["token"], [envelope(key, _report(20, anonymous=False), "nurse1")])
    assert ok["status"] == "created"
    if how == "logout":  # the session that asked for the credential signs out
        assert api.post("/api/v1/auth/logout", token).json() == {"signed_out": True}
    elif how == "cli-revoke":
        code, out, _ = run_cli(
            ["device-credentials", "revoke", credential["credential_id"], "--db", db_url], capsys
        )
        assert code == 0 and "revoked" in out
    elif how == "set-password":
        code, _, _ = run_cli(
            ["set-password", "nurse1", "--password-stdin", "--db", db_url], capsys, "a new password!\n"
        )
        assert code == 0
    else:
        code, _, _ = run_cli([how, "nurse1", "--db", db_url], capsys)
        assert code == 0
    refused = api.sealed_post(credential["token"], [envelope(key, _report(21, anonymous=False), "nurse1")])
    assert refused.status_code == 401
    assert refused.json()["error"] == "credential_revoked"
    # Another account's credential is untouched.
    (other,) = api.sealed(bystander["token"], [envelope(key, _report(22, anonymous=False), "nurse2")])
    assert other["status"] == "created"


def test_device_credentials_cli_lists_and_revokes(
    api: Api, server: RunningServer, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, first = _device(api, "nurse1")
    _, second = _device(api, "nurse2")
    code, out, _ = run_cli(["device-credentials", "list", "--json", "--db", db_url], capsys)
    assert code == 0
    listed = json.loads(out)
    assert sorted((c["id"], c["username"], c["device_name"]) for c in listed) == sorted(
        [(first["credential_id"], "nurse1", "ward-pc agent"), (second["credential_id"], "nurse2", "ward-pc agent")]
    )
    assert all(c["revoked_at"] is None and c["last_used_on"] is None for c in listed)
    assert first["token"] not in out and second["token"] not in out
    code, out, _ = run_cli(["device-credentials", "list", "--user", "nurse2", "--db", db_url], capsys)
    assert code == 0 and second["credential_id"] in out and first["credential_id"] not in out
    assert "active" in out
    code, _, err = run_cli(["device-credentials", "list", "--user", "nobody", "--db", db_url], capsys)
    assert code == 1 and "nobody" in err
    code, out, _ = run_cli(["device-credentials", "revoke", second["credential_id"], "--db", db_url], capsys)
    assert code == 0
    code, out, _ = run_cli(["device-credentials", "revoke", second["credential_id"], "--db", db_url], capsys)
    assert code == 0 and "already" in out
    code, _, err = run_cli(["device-credentials", "revoke", "dc-0000000000000000", "--db", db_url], capsys)
    assert code == 1 and err.count("\n") == 1
    code, out, _ = run_cli(["device-credentials", "list", "--db", db_url], capsys)
    assert "revoked" in out


# ------------------------------------------------------------------------------------------------ limits


def test_limits_and_back_pressure_are_the_batch_intakes(make_server: ServerFactory) -> None:
    with make_server(max_reports_per_batch=3, max_body_bytes=200_000) as server, Api(server) as api:
        _, credential = _device(api, "nurse1")
        key = api.sealing_key()
        many = [envelope(key, _report(30 + i, anonymous=False), "nurse1") for i in range(4)]
        too_many = api.sealed_post(credential["token"], many)
        assert too_many.status_code == 413 and too_many.json()["limit"] == 3
        big = envelope(key, _report(40, anonymous=False) | {"narrative": "x" * 250_000}, "nurse1")
        too_big = api.sealed_post(credential["token"], [big])
        assert too_big.status_code == 413 and too_big.json()["limit"] == 200_000
        server.start_draining()
        try:
            draining = api.sealed_post(credential["token"], many[:1])
        finally:
            server.stop_draining()
        assert draining.status_code == 503 and int(draining.headers["Retry-After"]) >= 1
        assert _rows(server, "SELECT COUNT(*) FROM reports") == [(0,)]
    with make_server(requests_per_second=0.01, request_burst=1) as server, Api(server) as api:
        # (The same database: the account is there.) The sign-in spends the only token.
        api.login("nurse1")
        limited = api.sealed_post("psodc_x", [])
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


# ------------------------------------------------------------------------------------ keys and configuration


def test_sealing_key_cli_rotates_and_lists(
    api: Api, server: RunningServer, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, credential = _device(api, "nurse1")
    before = api.sealing_key()
    wrapping = ["--wrapping-key", str(server.data_dir / sealing.WRAPPING_KEY_FILE)]
    code, out, _ = run_cli(["sealing-key", "rotate", "--db", db_url, *wrapping], capsys)
    assert code == 0
    after = api.sealing_key()  # a rotation by the command shows at the running server's next request
    assert after["key_id"] != before["key_id"] and after["key_id"] in out
    code, out, _ = run_cli(["sealing-key", "list", "--json", "--db", db_url], capsys)
    listed = json.loads(out)
    assert [(k["key_id"], k["current"]) for k in listed] == [(before["key_id"], False), (after["key_id"], True)]
    code, out, _ = run_cli(["sealing-key", "list", "--db", db_url], capsys)
    assert before["key_id"] in out and "current" in out
    results = api.sealed(
        credential["token"],
        [
            envelope(before, _report(50, anonymous=False), "nurse1"),
            envelope(after, _report(51, anonymous=False), "nurse1"),
        ],
    )
    assert [r["status"] for r in results] == ["created", "created"]


def test_a_server_without_the_right_wrapping_key_refuses_to_start(
    server: RunningServer, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "elsewhere" / "wrapping.key"
    code, _, err = run_cli(["sealing-key", "rotate", "--db", db_url, "--wrapping-key", str(missing)], capsys)
    assert code == 1 and str(missing) in err and err.count("\n") == 1
    assert not missing.exists()  # never created once the database holds keys
    other = tmp_path / "other.key"
    other.write_bytes(base64.b64encode(secrets.token_bytes(32)) + b"\n")
    other.chmod(0o600)
    code, _, err = run_cli(["sealing-key", "rotate", "--db", db_url, "--wrapping-key", str(other)], capsys)
    assert code == 1 and "wrapping key" in err and err.count("\n") == 1
    other.chmod(0o644)
    code, _, err = run_cli(["sealing-key", "rotate", "--db", db_url, "--wrapping-key", str(other)], capsys)
    assert code == 1 and "chmod 600" in err
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    garbage.chmod(0o600)
    code, _, err = run_cli(["sealing-key", "rotate", "--db", db_url, "--wrapping-key", str(garbage)], capsys)
    assert code == 1 and "32 bytes" in err
    assert len(_rows(server, "SELECT key_id FROM sealing_keys")) == 1


def test_serve_refuses_to_start_without_the_wrapping_key_of_the_database(
    server: RunningServer, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "new-machine" / "sealing-wrapping.key"
    serve = ["serve", "--insecure-loopback", "--port", "0", "--db", db_url, "--wrapping-key", str(missing)]
    code, out, err = run_cli(serve, capsys)
    assert code == 1 and "copy the wrapping key file" in err and err.count("\n") == 1
    assert "listening" not in out and not missing.exists()


def test_concurrent_rotations_leave_one_current_key(server: RunningServer) -> None:
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: server.sealing.rotate().key_id, range(8)))
    keys = _rows(server, "SELECT key_id, is_current FROM sealing_keys")
    assert len(keys) == 9 and {k for k, _ in keys} >= set(made)
    assert [k for k, current in keys if current] == [server.sealing.current().key_id]


def test_a_first_start_creates_the_wrapping_key_owner_only(
    db_url: str, server_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["sealing-key", "rotate", "--db", db_url], capsys)
    assert code == 0
    key_file = server_home / sealing.WRAPPING_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(key_file.read_bytes().strip())) == 32
    assert [p.name for p in server_home.iterdir() if p.name.endswith(".tmp")] == []
    code, out, _ = run_cli(["sealing-key", "list", "--json", "--db", db_url], capsys)
    assert [k["current"] for k in json.loads(out)] == [False, True]  # created at first use, then rotated


def test_a_version_6_database_gains_the_new_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store.Database.open(str(path)).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TABLE sealing_keys")
        conn.execute("DROP TABLE device_credentials")
        conn.execute("UPDATE schema_meta SET value = '6' WHERE key = 'version'")
        conn.commit()
    db = store.Database.open(str(path))
    try:
        with db.reader() as tx:
            assert tx.one("SELECT value FROM schema_meta WHERE key = 'version'") == (str(store.SCHEMA_VERSION),)
            assert store.sealing_keys(tx) == [] and store.list_device_credentials(tx) == []
    finally:
        db.close()
