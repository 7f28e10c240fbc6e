"""``report add`` and ``import`` killed at chosen write calls on the database and its WAL.

After each kill the profile must open with the real CLI, every report acknowledged before (earlier commands)
or by the killed command itself ("N report(s) added." printed) must be there with its content, and a command
that did not acknowledge stored all of its reports or none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.services import csv_format
from tests.faults.checks import (
    PROFILE,
    SECRET,
    all_or_none,
    cli_argv,
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


def kill_scenario(
    template: Path,
    scratch: Path,
    args: list[str],
    stdin: bytes,
    new: list[dict[str, Any]],
    ack: str,
    points: int,
    *,
    queued: bool,
) -> None:
    """Runs ``pso-desktop ARGS`` once under a trace, then killed at ``points`` of its write calls, each time on
    a fresh copy of ``template``, and checks the profile after each kill."""
    before = open_profile(template, scratch)
    assert before.problem is None, before.problem
    argv = cli_argv(*args)
    dry = fresh_copy(template, scratch / "dry")
    run, calls = trace_writes(argv, env=kill_env(dry), stdin=stdin, files=database_files(dry, PROFILE))
    assert run.code == 0 and ack in run.out, reason(run.err)
    chosen = choose_points(calls, points)
    new_ids = [report["id"] for report in new]
    failures: list[str] = []
    killed = 0
    for point in chosen:
        home = fresh_copy(template, scratch / "run")
        result = kill_at(argv, point.call, env=kill_env(home), stdin=stdin, files=database_files(home, PROFILE))
        killed += result.killed
        acked = ack in result.out
        if not result.killed and not acked:
            failures.append(
                f"{point}: not killed, yet no acknowledgement (exit {result.code}: {reason(result.err)})"
            )
        opened = open_profile(home, scratch)
        if opened.problem is not None:
            failures.append(f"{point}{' after the ack' if acked else ''}: {opened.problem}")
            continue
        expected = before.reports | ({report["id"]: report for report in new} if acked else {})
        failures += [
            f"{point}{' after the ack' if acked else ''}: {problem}" for problem in lost(expected, opened.reports)
        ]
        if not acked and (half := all_or_none(new_ids, opened.reports)) is not None:
            failures.append(f"{point}: {half}")
        if queued and acked and opened.status.get("queued", 0) < before.status["queued"] + len(new):
            failures.append(
                f"{point} after the ack: {opened.status.get('queued')} queued, reports lost their outbox entry"
            )
    assert killed >= 0.8 * len(chosen), f"only {killed} of {len(chosen)} kill points were reached"
    if failures:
        pytest.fail(summary(failures, len(chosen), killed), pytrace=False)


@pytest.mark.parametrize(
    ("shape", "count", "submit", "points"),
    [
        ("one", 1, False, 6),
        ("one", 1, True, 6),
        ("array", 150, False, 6),
        ("array", 150, True, 10),
    ],
    ids=["one-draft", "one-submit", "array-draft", "array-submit"],
)
def test_report_add_killed_at_write_calls(
    template: Path, tmp_path: Path, shape: str, count: int, submit: bool, points: int
) -> None:
    new = sample_reports(seed=100 + count + submit, count=count)
    payload = json.dumps(new[0] if shape == "one" else new)
    args = ["report", "add", "-", "--password-stdin", *(["--submit"] if submit else [])]
    ack = f"{count} report(s) added"
    kill_scenario(template, tmp_path, args, f"{SECRET}\n{payload}\n".encode(), new, ack, points, queued=submit)


def test_csv_import_killed_at_write_calls(template: Path, tmp_path: Path) -> None:
    new = sample_reports(seed=300, count=60)
    data, count = csv_format.write_csv(new, "CONFIDENTIAL - test export")
    assert count == len(new)
    csv_file = tmp_path / "backlog.csv"
    csv_file.write_bytes(data)
    args = ["import", str(csv_file), "--submit", "--password-stdin"]
    ack = f"{count} report(s) imported"
    kill_scenario(template, tmp_path, args, f"{SECRET}\n".encode(), new, ack, 8, queued=True)
