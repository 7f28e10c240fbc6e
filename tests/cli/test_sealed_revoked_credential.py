"""Issue 7 (outside tests): after IT revokes a workstation's device credential, the profile's next sign-in (or
sync) gets a new one and the agent delivers again. Before, the revoked credential stayed in the profile's store,
so sign-in and sync kept it, and the agent refused every spool entry for good while saying "the next sign-in to
the profile gets a new one"; a second run said the credential's key file should be restored from a backup.
And a spool file that cannot be read is named as such, not blamed on another sender; lock files of entries
that are gone do not pile up in the spool.

Real CLI commands in subprocesses (the agent with no secret anywhere), the real server over TLS on loopback, and
the real ``pso-server device-credentials revoke`` command on its database.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_server.practice import RunningServer
from tests.support.cli import SECRET, Result, cli_env, login, run_cli
from tests.support.sync import ACCOUNT, PASSWORD


def _agent_once(home: Path) -> Result:
    """``pso-desktop agent --once`` as a service runs it: no secret in its environment or on its input."""
    env = cli_env(home)
    assert not any(SECRET in value or PASSWORD in value for value in env.values())
    proc = subprocess.run(
        [sys.executable, "-m", "pso_desktop", "agent", "--once"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def _revoke(server: RunningServer, credential_id: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pso_server",
            "device-credentials",
            "revoke",
            credential_id,
            "--db",
            f"sqlite:///{server.data_dir / 'server.db'}",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"revoked" in proc.stdout


def _credential_id(home: Path) -> str:
    agent: dict[str, Any] = json.loads((home / "profiles" / ACCOUNT / "agent.json").read_text())
    return str(agent["credential_id"])


def _submit(home: Path, rng: random.Random) -> None:
    report = validate_report(sample_report(rng)).export()
    result = run_cli(
        home, "report", "add", "-", "--submit", "--password-stdin", stdin=f"{SECRET}\n{json.dumps(report)}\n"
    )
    assert result.code == 0, result.err


def _last_line(result: Result) -> str:
    assert "Traceback" not in result.err
    return result.err.strip().splitlines()[-1]


def test_a_revoked_credential_is_replaced_at_the_next_sign_in_and_sync(
    pso_home: Path, server: RunningServer
) -> None:
    rng = random.Random(7)
    assert run_cli(pso_home, "profile", "create", ACCOUNT, "--password-stdin", stdin=SECRET + "\n").code == 0
    assert login(pso_home, server, ACCOUNT, PASSWORD).code == 0
    first = _credential_id(pso_home)

    _revoke(server, first)
    _submit(pso_home, rng)
    refused = _agent_once(pso_home)
    assert refused.code == 1
    assert "revoked this workstation's device credential" in _last_line(refused)
    again = _agent_once(pso_home)
    assert again.code == 1
    assert "no device credential" in _last_line(again)
    assert "backup" not in again.err
    assert server.stats()["reports"] == 0

    # The sign-in the sentence promised brings a new credential, and the agent delivers the waiting report.
    assert login(pso_home, server, ACCOUNT, PASSWORD).code == 0
    second = _credential_id(pso_home)
    assert second != first
    delivered = _agent_once(pso_home)
    assert delivered.code == 0, delivered.err
    assert "1 sealed report(s) delivered" in delivered.out
    assert server.stats()["reports"] == 1

    # Revoked again: a sync (no new sign-in) brings the next one.
    _revoke(server, second)
    _submit(pso_home, rng)
    assert _agent_once(pso_home).code == 1
    synced = run_cli(pso_home, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert synced.code == 0, synced.err
    third = _credential_id(pso_home)
    assert third not in (first, second)
    # The refused agent held the entry's lock, the sync sent the report and took the entry away: its lock file
    # goes too (such files stayed, one per report, for good).
    assert not list((pso_home / "spool" / ACCOUNT).glob("*.lock"))
    _submit(pso_home, rng)
    delivered = _agent_once(pso_home)
    assert delivered.code == 0, delivered.err
    assert "1 sealed report(s) delivered" in delivered.out
    assert server.stats()["reports"] == 3


def test_a_damaged_spool_file_is_named_not_blamed_on_another_sender(pso_home: Path, server: RunningServer) -> None:
    """A spool file that cannot be read (a disk fault, a stray file) made every ``agent --once`` say its reports
    were 'being sent by another sender; run the agent again', for good. Now the sentence names the folder and a
    file; the readable entries beside it are delivered."""
    rng = random.Random(11)
    assert run_cli(pso_home, "profile", "create", ACCOUNT, "--password-stdin", stdin=SECRET + "\n").code == 0
    assert login(pso_home, server, ACCOUNT, PASSWORD).code == 0
    for _ in range(3):
        _submit(pso_home, rng)
    spool = pso_home / "spool" / ACCOUNT
    entries = sorted(spool.glob("*.sealed"))
    assert len(entries) == 3
    entries[0].write_bytes(entries[0].read_bytes()[:40])  # cut short
    (spool / "copy of a report.sealed").write_text("{}")

    result = _agent_once(pso_home)
    assert result.code == 1
    said = _last_line(result)
    assert "another sender" not in said
    assert str(spool) in said and "2 file(s)" in said and "cannot be read" in said
    assert server.stats()["reports"] == 2

    (spool / "copy of a report.sealed").unlink()
    assert run_cli(pso_home, "sync", "--password-stdin", stdin=SECRET + "\n").code == 0
    done = _agent_once(pso_home)
    assert done.code == 0, done.err
    assert server.stats()["reports"] == 3


def test_a_spool_folder_that_cannot_be_read_does_not_stop_a_submit(
    pso_home: Path, server: RunningServer, tmp_path: Path
) -> None:
    """IT's policy names a machine-wide spool the nurse's user cannot read (here a file where the folder should
    be: as root, permissions would not stop the test). ``report add --submit`` was a traceback and the report was
    not stored; ``status --json`` and the unlock's reconcile were tracebacks too. Now the report is queued, the
    outbox sends it, and status says what is wrong with the spool."""
    blocked = tmp_path / "machine-spool"
    blocked.write_text("not a folder")
    (pso_home / "policy.json").write_text(json.dumps({"sealed_outbox": {"spool_dir": str(blocked)}}))
    assert run_cli(pso_home, "profile", "create", ACCOUNT, "--password-stdin", stdin=SECRET + "\n").code == 0
    assert login(pso_home, server, ACCOUNT, PASSWORD).code == 0

    _submit(pso_home, random.Random(5))
    shown = run_cli(pso_home, "status", "--json", "--password-stdin", stdin=SECRET + "\n")
    assert shown.code == 0, shown.err
    status = json.loads(shown.out)
    assert status["queued"] == 1
    assert str(blocked) in status["sealed"]["problem"]
    synced = run_cli(pso_home, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert synced.code == 0, synced.err
    assert server.stats()["reports"] == 1
