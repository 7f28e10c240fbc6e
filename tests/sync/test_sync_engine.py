"""The sync engine against the real reference server over TLS, directly and through the fault-injecting
proxy: every queued revision lands exactly once, whatever the network does, and the outbox says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Session
from pso_desktop.sync.engine import Progress, RetryPolicy, SyncSummary
from pso_desktop.sync.errors import CertificateNotTrusted, LoginRefused, NotLinked, SignInRequired
from pso_desktop.sync.transport import ServerSettings
from pso_server.config import Limits
from pso_server.practice import RunningServer
from tests.support.clock import FakeClock
from tests.support.fault_proxy import (
    LOSE_RESPONSE,
    PASS,
    RESET,
    STALL,
    FaultProxy,
    cut_response,
    stall_response,
    status,
)
from tests.support.reports import sample_reports
from tests.support.sync import (
    FAST_RETRIES,
    PASSWORD,
    FakeTime,
    link,
    make_client,
    make_engine,
    practice_server,
)


def test_login_links_the_profile_and_keeps_only_the_refresh_token(session: Session, server: RunningServer) -> None:
    link(session, server)
    account = session.account.get()
    assert account is not None and account.username == "nurse1" and account.refresh_token
    assert [e.action for e in session.audit.entries()][-1] == "sign_in"


def test_wrong_password_links_nothing(session: Session, server: RunningServer) -> None:
    with pytest.raises(LoginRefused, match="user name and password"):
        syncing.login(
            session, ServerSettings(server.base_url, ca_file=str(server.ca_path)), "nurse1", "wrong one!"
        )
    assert session.account.get() is None
    with pytest.raises(NotLinked):
        syncing.sync(session)


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(
    session: Session, server: RunningServer
) -> None:
    with pytest.raises(CertificateNotTrusted, match="not trusted"):
        syncing.login(session, ServerSettings(server.base_url), "nurse1", PASSWORD)  # OS trust store only
    assert session.account.get() is None


def test_sync_sends_everything_once_checkpoints_and_reports_progress(
    session: Session, server: RunningServer
) -> None:
    session.add_reports(sample_reports(1200, seed=1), submit=True)
    link(session, server)
    seen: list[Progress] = []
    summary = syncing.sync(session, on_progress=seen.append, batch_reports=500)
    assert summary == SyncSummary(1200, 0, 0, 1200, None)  # and each one's 'received' status came back
    assert server.stats()["reports"] == 1200
    assert session.status_counts()["submitted"] == 1200
    sending = [p for p in seen if p.phase == "sending"]
    assert [p.sent for p in sending] == [500, 1000, 1200] and {p.total for p in sending} == {1200}
    assert seen[-1].phase == "done"
    again = syncing.sync(session)  # nothing left: nothing sent
    assert (again.submitted, again.remaining) == (0, 0)
    assert server.stats()["reports"] == 1200
    assert next(e.detail for e in session.audit.entries() if e.action == "sync").startswith("1200 submitted")


@pytest.mark.parametrize("forward", [True, False], ids=["connect-proxy", "reverse-proxy"])
def test_every_kind_of_network_fault_still_lands_each_report_exactly_once(
    session: Session, server: RunningServer, forward: bool
) -> None:
    reports = sample_reports(600, seed=2)
    session.add_reports(reports, submit=True)
    link(session, server)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        # The refresh passes; then every batch meets trouble before it gets through.
        proxy.plan(
            *[
                PASS,  # the token refresh (its own retry rule is tested in the server suite)
                status(503, retry_after=0),
                RESET,
                LOSE_RESPONSE,  # batch 1 stored, answer lost: re-sent, comes back duplicate
                cut_response(10),
                STALL,
                stall_response(10),
                status(429, retry_after=0),
            ]
        )
        url, via = (server.base_url, proxy.proxy_url) if forward else (proxy.url, None)
        with make_client(url, proxy.ca_path, proxy=via, read_timeout=1.0) as api:
            summary = make_engine(session, api, batch_reports=100, policy=RetryPolicy(0.01, 0.05, 10)).run()
        assert proxy.pending() == 0
    assert (summary.submitted, summary.needs_attention, summary.remaining, summary.problem) == (600, 0, 0, None)
    stats = server.stats()
    assert stats["reports"] == 600 and stats["revisions"] == 600
    assert session.status_counts()["submitted"] == 600


def test_a_network_that_stays_down_leaves_the_rest_queued_and_nothing_half_sent(
    session: Session, server: RunningServer
) -> None:
    session.add_reports(sample_reports(300, seed=3), submit=True)
    link(session, server)
    time = FakeTime()
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, PASS, *[RESET] * 500)  # the token refresh and the first batch get through; then nothing
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(session, api, batch_reports=100, **time.engine_options()).run()
        assert proxy.pending() > 0  # it gave up while the network was still down
    assert (summary.submitted, summary.remaining) == (100, 200)
    assert summary.problem is not None and "cannot be reached" in summary.problem
    assert "Still failing after 0.2 s of retries" in summary.problem
    counts = session.status_counts()
    assert counts.get("sending", 0) == 0 and counts["queued"] == summary.remaining
    assert time.waits and all(w <= FAST_RETRIES.cap_seconds for w in time.waits)
    assert sum(time.waits) == pytest.approx(FAST_RETRIES.max_wait_seconds)  # the last wait ends at the budget


def test_an_expired_access_token_is_renewed_from_the_stored_refresh_token(
    session: Session, tmp_path: Path
) -> None:
    clock = FakeClock()
    with practice_server(tmp_path / "short", access_token_ttl_seconds=1, clock=clock) as server:
        session.add_reports(sample_reports(300, seed=4), submit=True)
        link(session, server)
        first_token = session.account.get().refresh_token  # type: ignore[union-attr]

        def slow_down(progress: Progress) -> None:
            if progress.phase == "sending" and progress.sent == 100:
                clock.advance(1.5)  # the access token expires before the next batch

        with make_client(server.base_url, server.ca_path) as api:
            summary = make_engine(session, api, batch_reports=100, on_progress=slow_down).run()
        assert (summary.submitted, summary.remaining) == (300, 0)
        assert server.stats()["reports"] == 300
        latest = session.account.get().refresh_token  # type: ignore[union-attr]
        assert latest and latest != first_token  # rotated, and the successor stored


def test_a_revoked_session_asks_for_a_new_sign_in_and_keeps_the_reports(
    session: Session, server: RunningServer
) -> None:
    session.add_reports(sample_reports(50, seed=5), submit=True)
    link(session, server)
    account = session.account.get()
    assert account is not None and account.refresh_token
    with make_client(server.base_url, server.ca_path) as api:
        api.logout(account.refresh_token, None)  # e.g. IT ended the session
    with pytest.raises(SignInRequired, match="sign in again"):
        syncing.sync(session)
    assert session.account.get().refresh_token is None  # type: ignore[union-attr]
    assert session.status_counts()["queued"] == 50
    link(session, server)
    assert syncing.sync(session).submitted == 50


def test_a_batch_too_large_for_the_server_is_split(session: Session, tmp_path: Path) -> None:
    with practice_server(tmp_path / "small", limits=Limits(max_reports_per_batch=40)) as server:
        session.add_reports(sample_reports(300, seed=6), submit=True)
        link(session, server)
        summary = syncing.sync(session, batch_reports=500)
        assert (summary.submitted, summary.remaining) == (300, 0)
        assert server.stats()["reports"] == 300


def test_server_rejections_and_statuses_come_back_to_the_outbox(session: Session, server: RunningServer) -> None:
    good = sample_reports(3, seed=7)
    bad = {**sample_reports(1, seed=8)[0]}
    bad.pop("event_type")  # stored without validation (as an old app version might have): the server refuses it
    session.add_reports([*good, bad], submit=True)
    link(session, server)
    summary = syncing.sync(session)
    assert (summary.submitted, summary.needs_attention, summary.remaining) == (3, 1, 0)
    errors = session.store.server_errors(bad["id"])
    assert errors and any(e["field"] == "event_type" for e in errors)
    server.set_status(good[0]["id"], "under_review")
    assert syncing.sync(session).status_changes == 1
    assert session.account.server_status(good[0]["id"]).status == "under_review"  # type: ignore[union-attr]


def test_sign_out_wipes_the_tokens_even_offline(session: Session, server: RunningServer) -> None:
    link(session, server)
    syncing.sign_out(session)
    assert session.account.get().refresh_token is None  # type: ignore[union-attr]
    assert [e.action for e in session.audit.entries()][-1] == "sign_out"


def test_anonymous_reports_are_followed_by_id_though_the_server_links_them_to_no_account(
    session: Session, server: RunningServer
) -> None:
    reports = sample_reports(60, seed=9)
    anonymous = [r for r in reports if r["reporter"].get("anonymous")]
    named = [r for r in reports if not r["reporter"].get("anonymous")]
    assert anonymous and named
    session.add_reports(reports, submit=True)
    link(session, server)
    syncing.sync(session)
    server.set_status(anonymous[0]["id"], "more_info_requested", note="Which pump model?")
    server.set_status(named[0]["id"], "closed")
    assert syncing.sync(session).status_changes == 2
    followed = session.account.server_status(anonymous[0]["id"])
    assert followed is not None and (followed.status, followed.note) == (
        "more_info_requested",
        "Which pump model?",
    )
    assert syncing.sync(session).status_changes == 0  # nothing new: nothing counted twice
    assert anonymous[0]["id"] in session.account.anonymous_to_follow()
