"""The form's autosave killed at chosen write calls, inside SQLite's automatic checkpoints too.

The child (tests/faults/autosave_child.py) saves one report through the window's backend 100 times, printing
an acknowledgement after each save (the form's "Draft saved"), then locks. After each kill the profile must
open with the real CLI, hold every report acknowledged before, and hold the draft as of the last acknowledged
save or the one in flight (never older).
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest

from tests.faults.autosave_child import narrative
from tests.faults.checks import (
    PROFILE,
    SECRET,
    acknowledged,
    fresh_copy,
    kill_env,
    lost,
    open_profile,
    reason,
    sample_reports,
    summary,
)
from tests.support.faults import choose_points, database_files, kill_at, trace_writes

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SAVES = 100  # about 43 saves fill the WAL past SQLite's 1,000-page automatic checkpoint
POINTS = 14


def test_autosave_killed_at_write_calls(template: Path, tmp_path: Path) -> None:
    before = open_profile(template, tmp_path)
    assert before.problem is None, before.problem
    report = sample_reports(seed=500, count=1)[0]
    report_file = tmp_path / "draft.json"
    report_file.write_text(json.dumps(report), "utf-8")
    argv = [sys.executable, "-m", "tests.faults.autosave_child", PROFILE, str(report_file), str(SAVES)]
    stdin = f"{SECRET}\n".encode()
    dry = fresh_copy(template, tmp_path / "dry")
    run, calls = trace_writes(argv, env=kill_env(dry), stdin=stdin, files=database_files(dry, PROFILE))
    assert run.code == 0 and '"locked"' in run.out, reason(run.err)
    checkpoints = sum(1 for a, b in itertools.pairwise(calls) if a.file == "wal" and b.file == "db")
    assert checkpoints >= 2, "the autosave run no longer reaches SQLite's automatic checkpoint"
    chosen = choose_points(calls, POINTS, checkpoint_share=0.6)
    failures: list[str] = []
    killed = 0
    for point in chosen:
        home = fresh_copy(template, tmp_path / "run")
        result = kill_at(argv, point.call, env=kill_env(home), stdin=stdin, files=database_files(home, PROFILE))
        killed += result.killed
        last = acknowledged(result.out)
        where = f"{point} after save {last} was acknowledged"
        opened = open_profile(home, tmp_path)
        if opened.problem is not None:
            failures.append(f"{where}: {opened.problem}")
            continue
        failures += [f"{where}: {problem}" for problem in lost(before.reports, opened.reports)]
        stored = opened.reports.get(report["id"])
        if stored is None:
            if last:
                failures.append(f"{where}: the draft is missing")
            continue
        saved = int(str(stored["narrative"]).split()[1])
        if saved < last or saved > last + 1:
            failures.append(f"{where}: the draft holds save {saved}")
        elif stored != report | {"narrative": narrative(saved)}:
            failures.append(f"{where}: the draft's content changed")
    assert killed >= 0.8 * len(chosen), f"only {killed} of {len(chosen)} kill points were reached"
    if failures:
        pytest.fail(summary(failures, len(chosen), killed), pytrace=False)
