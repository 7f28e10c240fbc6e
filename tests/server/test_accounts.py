"""Account commands (list-users, set-password, disable-user, enable-user, revoke-sessions) against the real
TLS server on both backends, and the upgrade of a database written before accounts could be disabled."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
import requests

from pso_desktop.domain.samples import sample_report
from pso_server import store
from pso_server.auth import hash_password
from pso_server.store import Database
from tests.server.support import PASSWORD, Api, ServerFactory, run_cli
from tests.support.kdf import SERVER_KDF

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
REFERENCE = "/api/v1/reference"
NEW_PASSWORD = "a brand new passphrase"


def _login(api: Api, username: str, password: str = PASSWORD) -> requests.Response:
    return api.post(LOGIN, json={"username": username, "password": password, "device_name": "ward-pc"})


def _refresh(api: Api, token: str) -> int:
    return api.post(REFRESH, json={"refresh_token": token}).status_code


def _accounts(db_url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    code, out, err = run_cli(["list-users", "--json", "--db", db_url], capsys)
    assert (code, err) == (0, "")
    return {row["username"]: row for row in json.loads(out)}


def _ok(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> str:
    code, out, err = run_cli(argv, capsys, stdin)
    assert (code, err) == (0, ""), err
    return out


def test_list_users_shows_accounts_and_live_sessions_but_no_secrets(
    make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_server() as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD, facility="St Mary")
        server.add_user("manager", PASSWORD, role="risk_manager")
        first, second = api.login("nurse1"), api.login("nurse1", device="laptop")
        api.post("/api/v1/auth/logout", first["access_token"])
        accounts = _accounts(db_url, capsys)
        assert {name: {k: v for k, v in row.items() if k != "created_at"} for name, row in accounts.items()} == {
            "manager": {
                "username": "manager",
                "role": "risk_manager",
                "facility": "General Hospital",
                "disabled": False,
                "live_sessions": 0,
            },
            "nurse1": {
                "username": "nurse1",
                "role": "reporter",
                "facility": "St Mary",
                "disabled": False,
                "live_sessions": 1,
            },
        }
        created = dt.datetime.fromisoformat(accounts["nurse1"]["created_at"])
        assert abs(created.timestamp() - server.config.clock()) < 120
        text = _ok(["list-users", "--db", db_url], capsys)
        lines = text.splitlines()
        assert lines[0].split()[:2] == ["USERNAME", "ROLE"]
        assert lines[2].split()[:2] == ["nurse1", "reporter"] and "enabled" in lines[2]
        with server.db.reader() as tx:
            password_hash = tx.one("SELECT password_hash FROM users WHERE username = 'nurse1'")
        assert password_hash is not None
        for output in (json.dumps(accounts), text):
            for secret in (PASSWORD, password_hash[0], "argon2", second["access_token"], second["refresh_token"]):
                assert secret not in output


def test_set_password_replaces_it_and_ends_every_session(
    make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_server() as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        tokens = api.login("nurse1")
        argv = ["set-password", "nurse1", "--db", db_url]
        code, _, err = run_cli(argv, capsys, stdin=NEW_PASSWORD + "\n")
        assert code == 2 and "--password-stdin" in err
        code, _, err = run_cli([*argv, "--password-stdin"], capsys, stdin="short\n")
        assert code == 1 and err.count("\n") == 1 and "at least 10 characters" in err
        assert api.get(REFERENCE, tokens["access_token"]).status_code == 200  # a refused change changes nothing

        out = _ok([*argv, "--password-stdin"], capsys, stdin=NEW_PASSWORD + "\n")
        assert "1 live session ended" in out and NEW_PASSWORD not in out
        assert api.get(REFERENCE, tokens["access_token"]).status_code == 401
        assert _refresh(api, tokens["refresh_token"]) == 401
        old = _login(api, "nurse1", PASSWORD)
        assert old.status_code == 401 and "password is wrong" in old.json()["message"]
        assert api.get(REFERENCE, api.login("nurse1", NEW_PASSWORD)["access_token"]).status_code == 200


def test_a_disabled_account_cannot_sign_in_or_use_its_tokens_and_its_reports_stay(
    make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_server(login_failures_per_account=2) as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        server.add_user("nurse2", PASSWORD)
        tokens = api.login("nurse1")
        report = sample_report(random.Random(5))
        assert api.batch(tokens["access_token"], [report])[0]["status"] == "created"

        out = _ok(["disable-user", "nurse1", "--db", db_url], capsys)
        assert "disabled" in out and "1 live session ended" in out
        assert api.get(REFERENCE, tokens["access_token"]).status_code == 401
        assert api.post("/api/v1/reports/batch", tokens["access_token"], json={"reports": []}).status_code == 401
        assert _refresh(api, tokens["refresh_token"]) == 401
        # The right password for a disabled account gets exactly the answer of a wrong one.
        disabled = _login(api, "nurse1", PASSWORD)
        wrong = _login(api, "nurse2", "not the password")
        assert disabled.status_code == wrong.status_code == 401
        assert disabled.json() == wrong.json()
        assert _accounts(db_url, capsys)["nurse1"]["disabled"] is True
        assert server.stats()["reports"] == 1
        with server.db.reader() as tx:
            assert store.get_report(tx, report["id"]).submitter_id is not None

        # Each refused sign-in still counts towards the account's limit (2 here): the next one is throttled.
        assert _login(api, "nurse1", PASSWORD).status_code == 401
        assert _login(api, "nurse1", PASSWORD).status_code == 429


def test_enable_user_lets_it_sign_in_again_but_old_sessions_stay_ended(
    make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_server() as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        tokens = api.login("nurse1")
        _ok(["disable-user", "nurse1", "--db", db_url], capsys)
        assert _login(api, "nurse1").status_code == 401
        out = _ok(["enable-user", "nurse1", "--db", db_url], capsys)
        assert "enabled" in out
        assert _accounts(db_url, capsys)["nurse1"]["disabled"] is False
        fresh = api.login("nurse1")
        assert api.get(REFERENCE, fresh["access_token"]).status_code == 200
        assert api.get(REFERENCE, tokens["access_token"]).status_code == 401
        assert _refresh(api, tokens["refresh_token"]) == 401


def test_tokens_of_a_disabled_account_are_refused_where_they_are_looked_up(make_server: ServerFactory) -> None:
    # A session opened in a race with disable-user is not revoked: the token lookups must refuse it anyway.
    with make_server() as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        tokens = api.login("nurse1")
        with server.db.transaction() as tx:
            store.set_user_disabled(tx, store.lock_account(tx, "nurse1"), True)
        assert api.get(REFERENCE, tokens["access_token"]).status_code == 401
        assert _refresh(api, tokens["refresh_token"]) == 401
        with server.db.transaction() as tx:
            store.set_user_disabled(tx, store.lock_account(tx, "nurse1"), False)
        assert api.get(REFERENCE, tokens["access_token"]).status_code == 200


def test_revoke_sessions_signs_out_every_device(
    make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_server() as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        server.add_user("nurse2", PASSWORD)
        ward, laptop = api.login("nurse1"), api.login("nurse1", device="laptop")
        other = api.login("nurse2")
        out = _ok(["revoke-sessions", "nurse1", "--db", db_url], capsys)
        assert "2 live sessions ended" in out
        for tokens in (ward, laptop):
            assert api.get(REFERENCE, tokens["access_token"]).status_code == 401
            assert _refresh(api, tokens["refresh_token"]) == 401
        assert api.get(REFERENCE, other["access_token"]).status_code == 200
        assert _accounts(db_url, capsys)["nurse1"]["live_sessions"] == 0
        assert api.get(REFERENCE, api.login("nurse1")["access_token"]).status_code == 200


def test_unknown_accounts_and_bad_usage(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, stdin in (
        (["set-password", "nobody", "--password-stdin"], NEW_PASSWORD + "\n"),
        (["disable-user", "nobody"], ""),
        (["enable-user", "nobody"], ""),
        (["revoke-sessions", "nobody"], ""),
    ):
        code, out, err = run_cli([*argv, "--db", db_url], capsys, stdin)
        assert (code, out) == (1, ""), argv
        assert err.count("\n") == 1 and "No account is named 'nobody'" in err and "Traceback" not in err
    for argv in (["disable-user"], ["revoke-sessions", "a", "b"], ["list-users", "--verbose"], ["set-password"]):
        assert run_cli([*argv, "--db", db_url], capsys)[0] == 2, argv


def test_a_database_from_before_disabled_accounts_is_upgraded(
    make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rebuild schema version 1 exactly: the same tables without users.disabled, and an account written the way
    # that version wrote it.
    db = Database.open(db_url)
    with db.transaction() as tx:
        tx.execute("ALTER TABLE users DROP COLUMN disabled")
        tx.execute("ALTER TABLE reports DROP COLUMN owner_key_hash")  # added by version 3
        tx.execute("UPDATE schema_meta SET value = '1' WHERE key = 'version'")
        tx.execute(
            "INSERT INTO users (username, password_hash, role, facility, created_at) VALUES (?, ?, ?, ?, ?)",
            ("nurse1", hash_password(PASSWORD, SERVER_KDF), "reporter", "St Mary", 1.7e9),
        )
    db.close()

    assert _accounts(db_url, capsys)["nurse1"]["disabled"] is False  # opening it upgrades it
    db = Database.open(db_url)  # and opening it again leaves it as it is
    with db.reader() as tx:
        assert tx.one("SELECT value FROM schema_meta WHERE key = 'version'") == (str(store.SCHEMA_VERSION),)
        assert tx.one("SELECT disabled FROM users WHERE username = 'nurse1'") == (0,)
    db.close()
    with make_server() as server, Api(server) as api:
        tokens = api.login("nurse1")
        _ok(["disable-user", "nurse1", "--db", db_url], capsys)
        assert _login(api, "nurse1").status_code == 401
        assert api.get(REFERENCE, tokens["access_token"]).status_code == 401
