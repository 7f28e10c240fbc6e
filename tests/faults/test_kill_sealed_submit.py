"""A Submit killed between its spool write and its database commit (issue 7's orphan), as it arrives: the real
``pso-desktop report add --submit`` of a draft, SIGKILLed by strace as it enters a write call on the WAL after the
sealed copy was renamed into the spool; then the real agent against the real server over TLS (or no agent at
all); then the clinician unlocks and submits the draft with other content. The PSO must never answer
``conflict`` for it, must hold what was sent, and a clinician whose report had gone is told so, with its case
number.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pso_server import store
from tests.cli.test_sealed_agent import ACCOUNT, _agent, _reports, _signed_in, _spool, _status
from tests.faults.checks import cli_argv, kill_env
from tests.support.cli import SECRET, run_cli
from tests.support.faults import database_files, kill_at, strace_unavailable, trace_writes
from tests.support.relay import ComingBack, coming_back

pytestmark = [pytest.mark.faults, pytest.mark.slow]
PASSWORD = "alice account password"


@pytest.fixture
def pso(tmp_path: Path) -> Iterator[ComingBack]:
    with coming_back(tmp_path / "server", {ACCOUNT: PASSWORD}) as running:
        yield running


def _killed_between_spool_and_commit(home: Path, scratch: Path, report: dict[str, Any]) -> None:
    """Leaves ``home`` as a ``report add --submit`` of the draft ``report`` killed after its sealed copy was
    renamed into the spool and before its commit: the spool holds the entry, the profile still the draft."""
    if (why := strace_unavailable()) is not None:
        pytest.skip(why)
    name = f"{report['id']}.{report['revision']}.sealed"
    template = scratch / "template"
    shutil.copytree(home, template)
    argv = cli_argv("report", "add", "-", "--submit", "--password-stdin")
    stdin = f"{SECRET}\n{json.dumps(report)}\n".encode()
    files = database_files(home, ACCOUNT)
    run, calls = trace_writes(argv, env=kill_env(home), stdin=stdin, files=files)
    assert run.code == 0, run.err
    for call in [c for c in calls if c.file == "wal"]:  # the first WAL write after the rename is the commit's
        shutil.rmtree(home)
        shutil.copytree(template, home)
        killed = kill_at(argv, call, env=kill_env(home), stdin=stdin, files=files)
        if killed.killed and (_spool(home) / name).exists():
            break
    else:
        pytest.fail("no write call of the Submit fell between its spool write and its commit")
    # The kill left exactly that state: the entry in the spool, the report still a draft (seen without unlocking).
    assert [p.name for p in _spool(home).glob("*.sealed")] == [name]


def _draft(home: Path, report: dict[str, Any]) -> None:
    result = run_cli(home, "report", "add", "-", "--password-stdin", stdin=f"{SECRET}\n{json.dumps(report)}\n")
    assert result.code == 0, result.err


def _submit_changed(home: Path, report: dict[str, Any]) -> str:
    changed = {**report, "narrative": report["narrative"] + " Amended after the restart."}
    result = run_cli(
        home, "report", "add", "-", "--submit", "--password-stdin", stdin=f"{SECRET}\n{json.dumps(changed)}\n"
    )
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return result.err


@pytest.mark.parametrize("seed", [71, 70], ids=["anonymous", "named"])
def test_an_orphan_the_agent_delivered_numbers_the_draft_above_it_and_the_nurse_is_told(
    pso_home: Path, pso: ComingBack, tmp_path: Path, seed: int
) -> None:
    home = pso_home
    _signed_in(home, pso)
    report = _reports(1, seed=seed)[0]
    _draft(home, report)
    _killed_between_spool_and_commit(home, tmp_path / "kill", report)

    server = pso.server
    assert server is not None
    delivered = _agent(home, "--once")  # the agent runs before anyone unlocks: it sends the orphan
    assert delivered.code == 0, delivered.err
    assert "1 sealed report(s) delivered" in delivered.out
    held = server.report(report["id"])
    assert held.revisions == 1 and held.latest_revision == report["revision"]

    told = _submit_changed(home, report)  # unlock, change the draft, submit
    assert f"already sent to the PSO as case {held.server_ref}" in told
    assert told.count("already sent") == 1
    synced = run_cli(home, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert synced.code == 0, synced.err

    after = server.report(report["id"])
    assert after.revisions == 2 and after.latest_revision == report["revision"] + 1
    assert after.server_ref == held.server_ref
    assert server.stats()["conflicts"] == 0
    with server.db.reader() as tx:
        newest = store.report_body(tx, report["id"], report["revision"] + 1)
    assert newest is not None and "Amended after the restart." in newest
    status = _status(home)
    assert status["needs_attention"] == 0 and status["queued"] == 0 and status["submitted"] == 1
    assert status["sealed"]["spooled"] == 0


@pytest.mark.parametrize("seed", [72, 75], ids=["anonymous", "named"])
def test_an_orphan_no_agent_sent_is_reconciled_at_open_and_the_report_goes_normally(
    pso_home: Path, pso: ComingBack, tmp_path: Path, seed: int
) -> None:
    home = pso_home
    _signed_in(home, pso)
    report = _reports(1, seed=seed)[0]
    _draft(home, report)
    _killed_between_spool_and_commit(home, tmp_path / "kill", report)

    opened = _status(home)  # the next unlock reconciles the orphan: its entry leaves the spool
    assert opened["sealed"]["spooled"] == 0 and opened["queued"] == 0
    assert list(_spool(home).glob("*.sealed")) == []

    told = _submit_changed(home, report)
    assert "already sent" not in told
    assert _agent(home, "--once").code == 0
    synced = run_cli(home, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert synced.code == 0, synced.err
    server = pso.server
    assert server is not None
    held = server.report(report["id"])
    assert held.revisions == 1
    assert server.stats()["conflicts"] == 0
    with server.db.reader() as tx:
        body = store.report_body(tx, report["id"], held.latest_revision)
    assert body is not None and "Amended after the restart." in body
    status = _status(home)
    assert status["needs_attention"] == 0 and status["submitted"] == 1 and status["sealed"]["spooled"] == 0
