"""kill -9 while autosaving: every acknowledged save survives and the database stays intact."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import keyring.backends.null
import pytest

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.storage.audit import AuditLog
from pso_desktop.storage.database import check_integrity, open_database
from pso_desktop.storage.errors import INTERRUPTED_WRITE_DETAIL
from pso_desktop.storage.reports import ReportStore
from tests.support.cli import SECRET, cli_env, run_cli, start_cli
from tests.support.enospc import STRACE, run_with_wal_writes_failing
from tests.support.wal import cut_checkpoint_short, wal_path

RUNS = 20


@pytest.mark.slow
def test_kill_9_during_autosave_loses_no_acknowledged_save(pso_home: Path):
    assert run_cli(pso_home, "profile", "create", "nurse", "--password-stdin", stdin=SECRET + "\n").code == 0
    rng = random.Random(20261127)
    acked: dict[str, int] = {}
    for _ in range(RUNS):
        report_id = str(uuid.uuid4())
        child = start_cli(pso_home, "nurse", report_id, module="tests.support.autosave_loop")
        assert child.stdout is not None
        stop_after = rng.randrange(1, 150)
        last = 0
        for line in child.stdout:
            last = json.loads(line)["ack"]
            if last >= stop_after:
                break
        child.send_signal(signal.SIGKILL)  # mid-save: the next save is likely in flight
        child.wait(timeout=30)
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        assert last >= 1, "the child acknowledged no save before it was killed"
        acked[report_id] = last

    keys = ProfileKeys(pso_home, backend=keyring.backends.null.Keyring())
    key = keys.unlock("nurse", SECRET)
    path = keys.database_path("nurse")
    assert check_integrity(path, key) == []
    conn = open_database(path, key)
    try:
        store = ReportStore(conn)
        for report_id, last in acked.items():
            stored = store.get(report_id)
            assert stored is not None, "an acknowledged draft vanished"
            saved_n = int(stored["narrative"].split()[1])
            assert saved_n >= last, f"acknowledged save {last} lost (found {saved_n})"
        assert AuditLog(conn).verify()
    finally:
        conn.close()


# A child that commits reports through the app's own session and dies after COMMIT, before the checkpoint that
# follows it (the -wal then holds them, as a kill -9 at that instant leaves it).
_DIE_AFTER_COMMIT = """
import json, os, sys
from pso_desktop.services.workstation import Workstation
from pso_desktop.storage import database
secret = sys.stdin.readline().rstrip("\\n")
reports = json.loads(sys.stdin.readline())
session = Workstation().open("nurse", secret)
database.checkpoint = lambda conn: None
session.add_reports(reports)
os._exit(0)
"""


def _crash_with_reports_in_the_wal(pso_home: Path, count: int) -> Path:
    rng = random.Random(count)
    first = [sample_report(rng, i) for i in range(count)]
    added = run_cli(pso_home, "report", "add", "-", "--password-stdin", stdin=SECRET + "\n" + json.dumps(first))
    assert added.code == 0, added.err
    later = [validate_report(sample_report(rng, count + i)).export() for i in range(count)]
    child = subprocess.run(
        [sys.executable, "-c", _DIE_AFTER_COMMIT],
        input=(SECRET + "\n" + json.dumps(later) + "\n").encode(),
        env=cli_env(pso_home),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr.decode()[-2000:]
    path = ProfileKeys(pso_home, backend=keyring.backends.null.Keyring()).database_path("nurse")
    assert wal_path(path).stat().st_size > 0
    return path


def test_a_profile_opens_after_a_checkpoint_cut_short(pso_home: Path):
    """Issue 6 item 2: after a crash during a checkpoint the main file alone is a mix of old and new pages; the
    profile used to say 'failed its integrity check ... contact IT' on every open although nothing was lost."""
    assert run_cli(pso_home, "profile", "create", "nurse", "--password-stdin", stdin=SECRET + "\n").code == 0
    path = _crash_with_reports_in_the_wal(pso_home, 15)
    assert cut_checkpoint_short(path, 0.5) > 0
    result = run_cli(pso_home, "status", "--json", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    assert json.loads(result.out)["draft"] == 30
    assert not wal_path(path).exists() or wal_path(path).stat().st_size == 0  # replayed into the main file
    key = ProfileKeys(pso_home, backend=keyring.backends.null.Keyring()).unlock("nurse", SECRET)
    conn = open_database(path, key, key_proven=True)
    try:  # the interrupted write is said once, in the unlock entry that replayed it
        unlocks = [entry.detail for entry in AuditLog(conn).entries() if entry.action == "unlock"]
    finally:
        conn.close()
    assert unlocks.count(INTERRUPTED_WRITE_DETAIL) == 1, unlocks


@pytest.mark.parametrize("fault", ["deleted", "truncated", "flipped"])
def test_a_save_acknowledged_before_a_kill_survives_losing_the_wal(pso_home: Path, fault: str):
    """Issue 6 item 3: the autosave child acknowledges saves, is killed -9, and the -wal is then deleted, cut or
    damaged: the last acknowledged save is still there (it was checkpointed before it was acknowledged)."""
    assert run_cli(pso_home, "profile", "create", "nurse", "--password-stdin", stdin=SECRET + "\n").code == 0
    report_id = str(uuid.uuid4())
    child = start_cli(pso_home, "nurse", report_id, module="tests.support.autosave_loop")
    assert child.stdout is not None
    last = 0
    for line in child.stdout:
        last = json.loads(line)["ack"]
        if last >= 25:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    keys = ProfileKeys(pso_home, backend=keyring.backends.null.Keyring())
    path = keys.database_path("nurse")
    wal = wal_path(path)
    if wal.exists():
        data = wal.read_bytes()
        if fault == "deleted":
            wal.unlink()
            path.with_name(path.name + "-shm").unlink(missing_ok=True)
        elif fault == "truncated":
            wal.write_bytes(data[: len(data) // 2])
        elif data:  # the first frame's header, or the -wal header when the kill came before any frame
            at = min(40, len(data) - 1)
            wal.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    out = pso_home / "export.json"
    result = run_cli(
        pso_home, "export", "--format", "json", "--out", str(out), "--password-stdin", stdin=SECRET + "\n"
    )
    assert result.code == 0, result.err
    stored = {r["id"]: r for r in json.loads(out.read_text(encoding="utf-8"))["reports"]}
    assert report_id in stored, "an acknowledged draft vanished"
    assert int(stored[report_id]["narrative"].split()[1]) >= last


def test_damage_to_page_1_says_damage_not_wrong_password(pso_home: Path):
    assert run_cli(pso_home, "profile", "create", "nurse", "--password-stdin", stdin=SECRET + "\n").code == 0
    path = _crash_with_reports_in_the_wal(pso_home, 3)
    assert run_cli(pso_home, "status", "--password-stdin", stdin=SECRET + "\n").code == 0  # replays, closes
    data = bytearray(path.read_bytes())
    data[300] ^= 0x04
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    result = run_cli(pso_home, "status", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 1
    assert "damaged" in result.err and "recover" in result.err, result.err
    assert "could not be unlocked" not in result.err and "Traceback" not in result.err
    assert path.read_bytes() == before


@pytest.mark.skipif(STRACE is None, reason="needs strace (installed by scripts/setup.sh)")
def test_a_full_disk_during_the_checkpoint_never_loses_or_locks_out(pso_home: Path, tmp_path: Path):
    """ENOSPC on the main file's writes, which only checkpoints make, from each write of `report add` on: the
    command either succeeds or says the disk is full, and the profile then opens with every report it said
    was added (a full disk mid-checkpoint used to leave a profile reported as failing its integrity check)."""
    assert run_cli(pso_home, "profile", "create", "nurse", "--password-stdin", stdin=SECRET + "\n").code == 0
    rng = random.Random(13)
    reports = [sample_report(rng, i) for i in range(30)]
    stdin = (SECRET + "\n" + json.dumps(reports)).encode()
    command = [sys.executable, "-m", "pso_desktop", "report", "add", "-", "--password-stdin"]
    db_name = ProfileKeys(pso_home, backend=keyring.backends.null.Keyring()).database_path("nurse")
    relative = db_name.relative_to(pso_home)
    dry = tmp_path / "dry"
    shutil.copytree(pso_home, dry)
    result, writes = run_with_wal_writes_failing(command, dry / relative, env=cli_env(dry), stdin=stdin)
    assert result.code == 0 and writes >= 3, (result.err, writes)
    for fail_from in sorted({1, 2, writes // 2, writes - 1, writes}):
        home = tmp_path / f"full-{fail_from}"
        shutil.copytree(pso_home, home)
        result, _ = run_with_wal_writes_failing(
            command, home / relative, env=cli_env(home), stdin=stdin, fail_from=fail_from
        )
        assert result.code in (0, 1) and "Traceback" not in result.err, result.err
        if result.code == 1:
            assert "disk is full" in result.err, result.err
        status = run_cli(home, "status", "--json", "--password-stdin", stdin=SECRET + "\n")
        assert status.code == 0, f"write {fail_from}: {status.err}"
        if result.code == 0:
            assert json.loads(status.out)["draft"] == len(reports), f"write {fail_from}: acknowledged, then lost"
