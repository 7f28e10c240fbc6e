"""``sync`` killed at chosen write calls while it uploads to the real reference server over TLS.

Each kill point runs on a fresh copy of a profile with 720 queued reports (two batches of up to 500), signed
in anew (a copy must not replay another copy's refresh token). After each kill the profile must open with
every report and its content, a second ``sync`` must finish (exit 0, nothing left queued or sending), and the
server must hold each report exactly once: one server shared by every point, so a report sent twice by any
run would show as a second revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pso_server.practice import RunningServer
from tests.faults.checks import (
    PROFILE,
    SECRET,
    add_reports,
    cli_argv,
    fresh_copy,
    kill_env,
    lost,
    open_profile,
    reason,
    sample_reports,
    summary,
)
from tests.support.cli import login, run_cli
from tests.support.faults import choose_points, database_files, kill_at, trace_writes
from tests.support.sync import practice_server

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PASSWORD = "nurse account password"
QUEUED = 700
POINTS = 12


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with practice_server(tmp_path / "server", {PROFILE: PASSWORD}) as running:
        yield running


def _login(home: Path, server: RunningServer) -> None:
    result = login(home, server, PROFILE, PASSWORD)
    assert result.code == 0, reason(result.err)


def test_sync_killed_at_write_calls(template: Path, server: RunningServer, tmp_path: Path) -> None:
    queued_home = fresh_copy(template, tmp_path / "queued")
    add_reports(queued_home, sample_reports(seed=700, count=QUEUED), submit=True)
    before = open_profile(queued_home, tmp_path)
    assert before.problem is None, before.problem
    to_send = before.status["queued"]
    argv = cli_argv("sync", "--password-stdin")
    stdin = f"{SECRET}\n".encode()

    dry = fresh_copy(queued_home, tmp_path / "dry")
    _login(dry, server)
    run, calls = trace_writes(argv, env=kill_env(dry), stdin=stdin, files=database_files(dry, PROFILE))
    assert run.code == 0, reason(run.err)
    assert server.stats()["reports"] == to_send
    chosen = choose_points(calls, POINTS)
    failures: list[str] = []
    killed = 0
    for point in chosen:
        home = fresh_copy(queued_home, tmp_path / "run")
        _login(home, server)
        result = kill_at(argv, point.call, env=kill_env(home), stdin=stdin, files=database_files(home, PROFILE))
        killed += result.killed
        opened = open_profile(home, tmp_path)
        if opened.problem is not None:
            failures.append(f"{point}: {opened.problem}")
            continue
        failures += [f"{point}: {problem}" for problem in lost(before.reports, opened.reports)]
        again = run_cli(home, "sync", "--password-stdin", stdin=f"{SECRET}\n", timeout=300)
        if again.code != 0:
            failures.append(f"{point}: the next sync failed (exit {again.code}: {reason(again.err)})")
            continue
        after = open_profile(home, tmp_path)
        if after.problem is not None:
            failures.append(f"{point}, after the next sync: {after.problem}")
            continue
        left = {state: after.status.get(state, 0) for state in ("queued", "sending", "needs_attention")}
        if any(left.values()) or after.status.get("submitted") != to_send:
            failures.append(f"{point}: after the next sync the outbox holds {after.status}")
        stats = server.stats()
        if stats["reports"] != to_send or stats["revisions"] != to_send:
            failures.append(
                f"{point}: the server holds {stats['reports']} reports, {stats['revisions']} revisions"
            )
    assert killed >= 0.8 * len(chosen), f"only {killed} of {len(chosen)} kill points were reached"
    if failures:
        pytest.fail(summary(failures, len(chosen), killed), pytrace=False)
