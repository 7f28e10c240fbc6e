"""ENOSPC injected by strace at chosen writes of ``report add --submit``: on the WAL (the commit) and on the
database file (a checkpoint). Runs everywhere strace does (test_full_disk.py needs root to mount a tmpfs); it can
hit a checkpoint's writes exactly, which filling a real disk rarely does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.checks import (
    PROFILE,
    SECRET,
    clean_failure,
    cli_argv,
    fresh_copy,
    kill_env,
    lost,
    open_profile,
    sample_reports,
)
from tests.support.cli import run_cli
from tests.support.faults import database_files, fail_from

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.mark.parametrize(
    ("file", "nth"),
    [("wal", 1), ("wal", 12), ("wal", 40), ("db", 1), ("db", 30)],
    ids=["wal-1", "wal-12", "wal-40", "checkpoint-1", "checkpoint-30"],
)
def test_full_disk_injected(template: Path, tmp_path: Path, file: str, nth: int) -> None:
    """ENOSPC from the Nth write on the WAL or the database file (a checkpoint) onwards, during
    ``report add --submit`` of 100 reports: the command says it failed or it said the reports were added, and
    the profile opens afterwards (the disk has room again) with every acknowledged report."""
    home = fresh_copy(template, tmp_path / "home")
    before = open_profile(home, tmp_path)
    assert before.problem is None, before.problem
    new = sample_reports(seed=2000 + nth, count=100)
    payload = json.dumps(new)
    result = fail_from(
        cli_argv("report", "add", "-", "--submit", "--password-stdin"),
        "pwrite64",
        nth,
        database_files(home, PROFILE)[file],
        env=kill_env(home),
        stdin=f"{SECRET}\n{payload}\n".encode(),
    )
    acked = "100 report(s) added" in result.out
    problems = [] if acked else clean_failure(result, "report add with ENOSPC")
    opened = open_profile(home, tmp_path)
    assert opened.problem is None, f"after ENOSPC from pwrite64 #{nth} on {file}: {opened.problem}"
    expected = before.reports | ({report["id"]: report for report in new} if acked else {})
    problems += lost(expected, opened.reports)
    assert not problems, "\n".join(problems)
    assert run_cli(home, "status", "--password-stdin", stdin=SECRET + "\n").code == 0
