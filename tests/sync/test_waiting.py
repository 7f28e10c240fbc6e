"""How long a sync waits for a PSO server that does not answer: a time budget (not a count of tries) that
outlasts a restart or a short outage, the server's Retry-After as seconds or as an HTTP date (capped), a stop
that ends any wait at once, and the two server-side outages a client must wait out: a lost renewal answer
(the session survives) and a full disk. Real server over TLS, real fault-injecting proxy."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Session
from pso_desktop.sync.engine import DEFAULT_MAX_WAIT, Progress, RetryPolicy
from pso_server.practice import RunningServer
from tests.support.clock import FakeClock
from tests.support.fault_proxy import LOSE_RESPONSE, PASS, RESET, FaultProxy, status
from tests.support.reports import sample_reports
from tests.support.small_disk import fill, small_tmpfs
from tests.support.sync import FakeTime, link, make_client, make_engine, practice_server


def _waits(seen: list[Progress]) -> list[float]:
    return [p.wait_seconds for p in seen if p.phase == "waiting" and p.wait_seconds is not None]


def test_a_server_down_for_longer_than_six_tries_is_waited_out_within_the_budget(
    session: Session, server: RunningServer
) -> None:
    session.add_reports(sample_reports(50, seed=40), submit=True)
    link(session, server)
    fake = FakeTime()
    seen: list[Progress] = []
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, *[RESET] * 12)  # the renewal, then a server restarting for twelve tries
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(
                session, api, policy=RetryPolicy(), on_progress=seen.append, **fake.engine_options()
            ).run()
        assert proxy.pending() == 0
    assert (summary.submitted, summary.remaining, summary.problem) == (50, 0, None)
    assert len(_waits(seen)) == 12 and sum(fake.waits) < DEFAULT_MAX_WAIT
    assert server.stats()["reports"] == 50


def test_past_its_budget_a_run_stops_and_says_how_long_it_tried(session: Session, server: RunningServer) -> None:
    session.add_reports(sample_reports(20, seed=41), submit=True)
    link(session, server)
    fake = FakeTime()
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, *[RESET] * 1000)
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(
                session, api, policy=RetryPolicy(max_wait_seconds=90), **fake.engine_options()
            ).run()
        assert proxy.pending() > 0
    assert (summary.submitted, summary.remaining) == (0, 20)
    assert summary.problem is not None and "cannot be reached" in summary.problem
    assert summary.problem.endswith("Still failing after 90 s of retries.")
    assert sum(fake.waits) == pytest.approx(90)  # the last wait was shortened to end at the budget
    assert session.status_counts()["sending"] == 0


def test_stop_ends_a_long_retry_after_wait_at_once(session: Session, server: RunningServer) -> None:
    session.add_reports(sample_reports(20, seed=42), submit=True)
    link(session, server)
    stop = threading.Event()
    seen: list[Progress] = []

    def note(progress: Progress) -> None:
        seen.append(progress)
        if progress.phase == "waiting":
            threading.Timer(0.3, stop.set).start()  # the user presses Stop while the run waits 5 minutes

    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, status(503, retry_after=300))
        with make_client(proxy.url, proxy.ca_path) as api:
            started = time.monotonic()
            summary = make_engine(
                session, api, policy=RetryPolicy(), on_progress=note, should_stop=stop.is_set
            ).run()
            took = time.monotonic() - started
    assert _waits(seen) == [300]
    assert took < 3, took
    assert (summary.remaining, summary.problem) == (20, "Stopped; the remaining reports stay queued.")
    assert session.status_counts()["sending"] == 0


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "server_date", "expected"),
    [
        # In 40 s by the server's own clock, whatever this workstation's says (here: 10 minutes ahead).
        (timedelta(seconds=40), timedelta(minutes=-10), 40.0),
        (timedelta(days=2), None, 300.0),  # capped at 5 minutes (a server clock can be far off)
        (timedelta(minutes=-3), None, 0.0),  # already past: at once
    ],
    ids=["relative-to-the-answer's-date", "capped", "in-the-past"],
)
def test_a_retry_after_given_as_an_http_date_is_honoured(
    session: Session,
    server: RunningServer,
    retry_after: timedelta,
    server_date: timedelta | None,
    expected: float,
) -> None:
    session.add_reports(sample_reports(10, seed=43), submit=True)
    link(session, server)
    fake = FakeTime()
    seen: list[Progress] = []
    now = datetime.now(UTC).replace(microsecond=0)
    server_now = now if server_date is None else now + server_date
    answer = status(
        503,
        retry_after=_http_date(server_now + retry_after),
        date=None if server_date is None else _http_date(server_now),
    )
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, answer)
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(
                session, api, policy=RetryPolicy(), on_progress=seen.append, **fake.engine_options()
            ).run()
    assert (summary.submitted, summary.problem) == (10, None)
    (wait,) = _waits(seen)
    assert wait == pytest.approx(expected, abs=2)  # abs: the seconds that pass while the test runs


def test_an_unreadable_retry_after_falls_back_to_back_off(session: Session, server: RunningServer) -> None:
    session.add_reports(sample_reports(10, seed=44), submit=True)
    link(session, server)
    fake = FakeTime()
    seen: list[Progress] = []
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, status(503, retry_after="soon, promise"))
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(
                session, api, policy=RetryPolicy(), on_progress=seen.append, **fake.engine_options()
            ).run()
    assert summary.problem is None
    (wait,) = _waits(seen)
    assert 0 <= wait <= RetryPolicy().base_seconds  # first back-off step, with jitter


def test_a_run_killed_before_storing_its_renewed_token_keeps_the_session_an_hour_later(
    session: Session, tmp_path: Path
) -> None:
    clock = FakeClock()
    with practice_server(tmp_path / "server", clock=clock) as server:
        session.add_reports(sample_reports(30, seed=45), submit=True)
        link(session, server)
        held = session.account.get()
        assert held is not None and held.refresh_token
        with FaultProxy(server.base_url, server.ca_path) as proxy:
            # The server rotates the refresh token, but its answer never arrives: as if the client were killed
            # between the server's rotation and storing the successor.
            proxy.plan(LOSE_RESPONSE, *[RESET] * 100)
            with make_client(proxy.url, proxy.ca_path) as api:
                summary = make_engine(session, api, policy=RetryPolicy(max_wait_seconds=0)).run()
        assert summary.remaining == 30 and summary.problem is not None
        assert session.account.get().refresh_token == held.refresh_token  # type: ignore[union-attr]
        clock.advance(3600)  # far past the old 60 s grace window
        again = syncing.sync(session)
        assert (again.submitted, again.remaining, again.problem) == (30, 0, None)
        assert server.stats()["reports"] == 30


def test_a_full_server_disk_is_waited_out_and_nothing_is_lost(
    session: Session, tmp_path: Path, memory_keyring: object
) -> None:
    with (
        small_tmpfs(tmp_path / "small") as disk,
        practice_server(
            tmp_path / "server", db_url=f"sqlite:///{disk / 'server.db'}", retry_after_seconds=1
        ) as server,
    ):
        link(session, server)
        session.add_reports(sample_reports(300, seed=46), submit=True)
        filler = fill(disk)
        seen: list[Progress] = []

        def note(progress: Progress) -> None:
            seen.append(progress)
            if progress.phase == "waiting" and filler.exists():
                filler.unlink()  # IT frees space while the client waits

        with make_client(server.base_url, server.ca_path) as api:
            summary = make_engine(session, api, policy=RetryPolicy(max_wait_seconds=60), on_progress=note).run()
        assert (summary.submitted, summary.remaining, summary.problem) == (300, 0, None)
        waiting = [p for p in seen if p.phase == "waiting"]
        assert waiting and "busy or unavailable (HTTP 503)" in (waiting[0].reason or "")
        assert waiting[0].wait_seconds == 1
        stats = server.stats()
        assert stats["reports"] == 300 and stats["revisions"] == 300
