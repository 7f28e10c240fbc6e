"""kill -9 while autosaving: every acknowledged save survives and the database stays intact."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import keyring.backends.null
import pytest

from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.storage.audit import AuditLog
from pso_desktop.storage.database import check_integrity, open_database
from pso_desktop.storage.reports import ReportStore
from tests.support.cli import SECRET, cli_env, run_cli

RUNS = 20


@pytest.mark.slow
def test_kill_9_during_autosave_loses_no_acknowledged_save(pso_home: Path):
    assert run_cli(pso_home, "profile", "create", "nurse", "--password-stdin", stdin=SECRET + "\n").code == 0
    rng = random.Random(20261127)
    acked: dict[str, int] = {}
    for _ in range(RUNS):
        report_id = str(uuid.uuid4())
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.support.autosave_loop", "nurse", report_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=cli_env(pso_home),
        )
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write((SECRET + "\n").encode())
        child.stdin.close()
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
