"""The sealed outbox end to end, as a ward workstation lives it: the real CLI in subprocesses, the real reference
server over TLS on loopback (behind a relay, so it can go away and come back at the same address), real SQLCipher.

A profile signs in; the server goes down; 200 reports are submitted and the app is closed; ``pso-desktop agent
--once`` cannot reach the server (exit 1, one sentence); the server comes back; the agent, with no clinician
secret in its environment or input, delivers every report exactly once; the next unlock's sync finds each one
already there (the server's dedupe), shows its case number, and the spool is empty. Nothing readable was written
to the data folder or the temp folder, and the workstation's own keys cannot open the spool.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring.backends.null
import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.sync.sealed import INFO_PREFIX
from pso_server.practice import RunningServer
from tests.support.cli import SECRET, Result, cli_env, run_cli
from tests.support.relay import ComingBack, coming_back

ACCOUNT = "alice"
PASSWORD = "alice account password"
CANARY = "CANARY-7f3a9c"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@pytest.fixture
def pso(tmp_path: Path) -> Iterator[ComingBack]:
    with coming_back(tmp_path / "server", {ACCOUNT: PASSWORD}) as running:
        yield running


def _reports(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        report = validate_report(sample_report(rng, i)).export()
        report["narrative"] = f"{report.get('narrative') or ''} {CANARY}-{i:04d}".strip()
        out.append(report)
    return out


def _submit(home: Path, reports: list[dict[str, Any]]) -> None:
    lines = "\n".join(json.dumps(r) for r in reports)
    result = run_cli(home, "report", "add", "-", "--submit", "--password-stdin", stdin=f"{SECRET}\n{lines}\n")
    assert result.code == 0, result.err


def _signed_in(home: Path, pso: ComingBack) -> None:
    assert run_cli(home, "profile", "create", ACCOUNT, "--password-stdin", stdin=SECRET + "\n").code == 0
    result = run_cli(
        home,
        "login",
        "--server",
        pso.relay.url,
        "--user",
        ACCOUNT,
        "--ca-file",
        str(pso.ca_path),
        "--password-stdin",
        stdin=f"{SECRET}\n{PASSWORD}\n",
    )
    assert result.code == 0, result.err


def _agent(home: Path, *args: str) -> Result:
    """The agent as a service runs it: no secret in its environment, nothing on its standard input."""
    env = cli_env(home)
    assert not any(SECRET in value or PASSWORD in value for value in env.values())
    proc = subprocess.run(
        [sys.executable, "-m", "pso_desktop", "agent", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def _status(home: Path) -> dict[str, Any]:
    result = run_cli(home, "status", "--json", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    value: dict[str, Any] = json.loads(result.out)
    return value


def _cli_keys(home: Path) -> ProfileKeys:
    """The profile keys as the CLI subprocesses have them (no OS keyring: the password-protected key file)."""
    return ProfileKeys(home, backend=keyring.backends.null.Keyring())  # type: ignore[no-untyped-call]


def _spool(home: Path) -> Path:
    return home / "spool" / ACCOUNT


def test_locked_out_reports_reach_the_pso_through_the_agent_exactly_once(pso_home: Path, pso: ComingBack) -> None:
    home = pso_home
    _signed_in(home, pso)
    agent_file = json.loads((home / "profiles" / ACCOUNT / "agent.json").read_text())
    assert agent_file["credential_store"] == "file" and agent_file["credential_id"].startswith("dc-")
    assert agent_file["sealing_key"]["key_id"].startswith("sk-")
    assert oct((home / "profiles" / ACCOUNT / "device-credential").stat().st_mode & 0o777) == "0o600"
    pso.down()

    reports = _reports(200, seed=11)
    _submit(home, reports)  # the app closes after each command: nothing of the profile stays unlocked
    assert len(list(_spool(home).glob("*.sealed"))) == 200

    refused = _agent(home, "--once")
    assert refused.code == 1
    assert refused.err.count("\n") == 1 and "cannot be reached" in refused.err and "Traceback" not in refused.err
    assert len(list(_spool(home).glob("*.sealed"))) == 200

    server = pso.up()
    delivered = _agent(home, "--once")
    assert delivered.code == 0, delivered.err
    assert "200 sealed report(s) delivered" in delivered.out
    assert list(_spool(home).glob("*.sealed")) == []
    stats = server.stats()
    assert stats["reports"] == 200 and stats["revisions"] == 200
    for report in reports[:20]:
        held = server.report(report["id"])
        assert held is not None
    again = _agent(home, "--once")  # nothing left: exit 0 at once
    assert again.code == 0 and "0 sealed report(s) delivered" in again.out

    # The next unlock: the outbox sends what the agent already delivered; the server's dedupe answers.
    status_before = _status(home)
    assert status_before["queued"] == 200 and status_before["sealed"]["spooled"] == 0
    assert status_before["sealed"]["agent_last_success"] is not None
    synced = run_cli(home, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert synced.code == 0, synced.err
    assert server.stats()["reports"] == 200 and server.stats()["revisions"] == 200
    after = _status(home)
    assert after["submitted"] == 200 and after["queued"] == 0
    out = home.parent / "export.json"
    result = run_cli(
        home, "export", "--format", "json", "--out", str(out), "--password-stdin", stdin=SECRET + "\n"
    )
    assert result.code == 0, result.err
    out.unlink()
    _assert_case_numbers(home, server, [r["id"] for r in reports])

    # Nothing readable on disk: the data folder and the temp folder hold no narrative text.
    scanned = _canary_scan([home, Path(os.environ["TMPDIR"])])
    assert scanned > 0


def _assert_case_numbers(home: Path, server: RunningServer, ids: list[str]) -> None:
    """Every report shows the case number the server gave it (read from the profile, as the list shows it)."""
    from pso_desktop.services.workstation import Workstation

    workstation = Workstation(home, keys=_cli_keys(home))
    with workstation.session(ACCOUNT, SECRET) as session:
        for report_id in ids:
            summary = session.store.summary(report_id)
            assert summary is not None and summary.state == "submitted"
            assert summary.server_ref == server.report(report_id).server_ref


def _canary_scan(folders: list[Path]) -> int:
    scanned = 0
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                scanned += 1
                assert CANARY.encode() not in data, f"plaintext in {path.relative_to(folder)}"
                assert CANARY.encode("utf-16-le") not in data, f"plaintext in {path.relative_to(folder)}"
    return scanned


def test_the_spool_holds_nothing_readable_and_the_workstation_cannot_open_it(
    pso_home: Path, pso: ComingBack
) -> None:
    home = pso_home
    _signed_in(home, pso)
    pso.down()
    _submit(home, _reports(12, seed=12))
    entries = sorted(_spool(home).glob("*.sealed"))
    assert len(entries) == 12
    assert _canary_scan([home, Path(os.environ["TMPDIR"])]) > 0
    # What the workstation holds: the profile's data key (after unlock) and the device credential. Neither, nor
    # anything derived from them as an X25519 key, opens an envelope.
    data_key = _cli_keys(home).unlock(ACCOUNT, SECRET)
    credential = (home / "profiles" / ACCOUNT / "device-credential").read_bytes()
    import hashlib

    candidates = [data_key, hashlib.sha256(credential).digest(), hashlib.sha256(data_key).digest()]
    for path in entries:
        entry = json.loads(path.read_bytes())
        sealed = base64.b64decode(entry["sealed"])
        for raw in candidates:
            with pytest.raises(Exception):  # noqa: B017 - cryptography's own decryption failure
                SUITE.decrypt(
                    sealed, X25519PrivateKey.from_private_bytes(raw), info=INFO_PREFIX + entry["key_id"].encode()
                )


def test_a_revoked_credential_is_said_in_one_sentence(pso_home: Path, pso: ComingBack) -> None:
    home = pso_home
    _signed_in(home, pso)
    _submit(home, _reports(3, seed=13))
    assert pso.server is not None
    from pso_server.auth import Authenticator

    Authenticator(pso.server.db, pso.server.config).revoke_sessions(ACCOUNT)
    refused = _agent(home, "--once")
    assert refused.code == 1 and "Traceback" not in refused.err
    assert refused.err.count("\n") == 1 and "revoked" in refused.err
    assert len(list(_spool(home).glob("*.sealed"))) == 3  # kept for the outbox
    # The next unlock sends them the normal way (after signing in again) and the spool is emptied.
    result = run_cli(
        home,
        "login",
        "--server",
        pso.relay.url,
        "--user",
        ACCOUNT,
        "--ca-file",
        str(pso.ca_path),
        "--password-stdin",
        stdin=f"{SECRET}\n{PASSWORD}\n",
    )
    assert result.code == 0, result.err
    assert run_cli(home, "sync", "--password-stdin", stdin=SECRET + "\n").code == 0
    assert list(_spool(home).glob("*.sealed")) == []


@pytest.mark.slow
def test_agent_killed_at_random_points_still_delivers_each_report_once(pso_home: Path, pso: ComingBack) -> None:
    home = pso_home
    _signed_in(home, pso)
    reports = _reports(400, seed=14)
    _submit(home, reports)
    rng = random.Random(2026)
    env = cli_env(home)
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, "-m", "pso_desktop", "agent", "--once"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(rng.uniform(0.2, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Some runs finish the whole spool before the kill: queue more so the later kills still hit work.
        if not list(_spool(home).glob("*.sealed")):
            more = _reports(100, seed=rng.randrange(10**6))
            reports += more
            _submit(home, more)
    finished = _agent(home, "--once")
    assert finished.code == 0, finished.err
    assert pso.server is not None
    stats = pso.server.stats()
    assert stats["reports"] == len(reports) and stats["revisions"] == len(reports)
    assert list(_spool(home).glob("*.sealed")) == []
    synced = run_cli(home, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert synced.code == 0, synced.err
    assert pso.server.stats()["reports"] == len(reports)
    _assert_case_numbers(home, pso.server, [r["id"] for r in reports])


def test_a_rotated_key_is_picked_up_at_sync_and_old_envelopes_still_open(pso_home: Path, pso: ComingBack) -> None:
    home = pso_home
    _signed_in(home, pso)
    agent_path = home / "profiles" / ACCOUNT / "agent.json"
    first_key = json.loads(agent_path.read_text())["sealing_key"]["key_id"]
    before = _reports(4, seed=15)
    _submit(home, before)  # sealed for the first key
    assert pso.server is not None
    rotated = pso.server.sealing.rotate()
    assert rotated.key_id != first_key
    assert run_cli(home, "sync", "--password-stdin", stdin=SECRET + "\n").code == 0
    assert json.loads(agent_path.read_text())["sealing_key"]["key_id"] == rotated.key_id
    after = _reports(3, seed=16)
    pso.down()
    _submit(home, after)
    keys = {json.loads(p.read_bytes())["key_id"] for p in _spool(home).glob("*.sealed")}
    assert keys == {rotated.key_id}  # the four sent by the sync left the spool; the new three use the new key
    server = pso.up()
    assert _agent(home, "--once").code == 0
    assert server.stats()["reports"] == 7


def test_an_envelope_the_pso_refuses_is_shown_to_its_author_at_unlock(
    pso_home: Path, pso: ComingBack, tmp_path: Path
) -> None:
    """Another workstation of the same account already sent revision 1 of the report with other content: the
    sealed copy is a conflict, moves to rejected/, and the author sees why at the next unlock."""
    home = pso_home
    _signed_in(home, pso)
    other = tmp_path / "other-workstation"
    other.mkdir()
    _signed_in(other, pso)
    report = _reports(1, seed=17)[0]
    changed = {**report, "narrative": report["narrative"] + " (typed on the other workstation)"}
    _submit(other, [changed])
    assert run_cli(other, "sync", "--password-stdin", stdin=SECRET + "\n").code == 0
    _submit(home, [report])
    result = _agent(home, "--once")
    assert result.code == 0, result.err
    assert "1 rejected" in result.out
    assert list(_spool(home).glob("*.sealed")) == []
    assert len(list((_spool(home) / "rejected").glob("*.json"))) == 1
    status = _status(home)  # the unlock reconciles: the report needs attention, with the PSO's reason
    assert status["needs_attention"] == 1 and status["queued"] == 0
    assert status["sealed"]["rejected"] == 0


def test_the_agent_keeps_going_and_sends_within_the_probe_interval(pso_home: Path, pso: ComingBack) -> None:
    home = pso_home
    (home / "policy.json").write_text(json.dumps({"sealed_outbox": {"probe_seconds": 2}}))
    _signed_in(home, pso)
    pso.down()
    _submit(home, _reports(50, seed=18))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pso_desktop", "agent"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(home),
    )
    try:
        time.sleep(3)  # the server is down: the agent waits and tries again
        assert proc.poll() is None
        server = pso.up()
        came_up = time.monotonic()
        while list(_spool(home).glob("*.sealed")) and time.monotonic() - came_up < 30:
            time.sleep(0.1)
        took = time.monotonic() - came_up
        assert not list(_spool(home).glob("*.sealed"))
        assert took < 2 + 5, took  # the probe interval, and the upload itself on a busy machine
        assert server.stats()["reports"] == 50
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err.decode()
    assert "50 sealed report(s) delivered" in out.decode()
