"""Edges of the sync engine found in review, each against the real reference server over TLS (directly, or
through the fault-injecting proxy, or a loopback listener that drops connections as a failing firewall does)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pso_desktop.domain import validate_report
from pso_desktop.services import syncing
from pso_desktop.services.workstation import Session
from pso_desktop.sync.engine import Progress
from pso_desktop.sync.errors import CertificateNotTrusted, InvalidServerAddress, SignInRequired, SyncError
from pso_desktop.sync.transport import ServerSettings
from pso_server.practice import RunningServer
from tests.support.clock import FakeClock
from tests.support.fault_proxy import LOSE_RESPONSE, PASS, RESET, FaultProxy, status
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

CREDENTIAL = "s3cr3t-Pass-9"


@pytest.fixture
def dropping_listener() -> Iterator[str]:
    """An https:// address whose every connection is closed in the middle of the TLS handshake (after the
    client's hello), as a firewall or a failing proxy does: a network failure, not a certificate problem."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)  # the ClientHello, read whole so the close is a clean EOF, not a reset
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, name="dropping-listener", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopping.set()
        thread.join(timeout=5)
        listener.close()


def test_a_connection_dropped_during_the_tls_handshake_is_retried_not_called_untrusted(
    session: Session, server: RunningServer, dropping_listener: str
) -> None:
    session.add_reports(sample_reports(20, seed=20), submit=True)
    link(session, server)
    with make_client(dropping_listener, server.ca_path) as api:
        summary = make_engine(
            session, api, **FakeTime().engine_options()
        ).run()  # no exception: the network is down
    assert summary.problem is not None and "cannot be reached" in summary.problem
    assert "certificate" not in summary.problem
    counts = session.status_counts()
    assert (counts["queued"], counts["sending"]) == (20, 0)


def test_a_relative_ca_file_given_at_sign_in_works_from_any_folder(
    session: Session, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.add_reports(sample_reports(5, seed=21), submit=True)
    monkeypatch.chdir(server.ca_path.parent)
    syncing.login(session, ServerSettings(server.base_url, ca_file=server.ca_path.name), "nurse1", PASSWORD)
    monkeypatch.chdir(tmp_path)  # a scheduled task runs sync from another folder
    assert syncing.sync(session).submitted == 5


@pytest.mark.parametrize(
    "cursor",
    ["djI6NDI", "x" * 80],  # "v2:42" (from a server version since rolled back: 400), one too long to take (422)
    ids=["unknown", "too-long"],
)
def test_a_status_cursor_the_server_does_not_take_restarts_the_feed(
    session: Session, server: RunningServer, cursor: str
) -> None:
    reports = sample_reports(10, seed=22)
    session.add_reports(reports, submit=True)
    link(session, server)
    session.account.set_status_cursor(cursor)
    summary = syncing.sync(session)
    assert (summary.submitted, summary.status_changes, summary.problem) == (10, 10, None)
    stored = session.account.get().status_cursor  # type: ignore[union-attr]
    assert stored and stored != cursor
    server.set_status(reports[0]["id"], "closed")
    assert syncing.sync(session).status_changes == 1  # the new cursor works


def test_stop_cuts_a_long_retry_after_wait_short(session: Session, server: RunningServer) -> None:
    session.add_reports(sample_reports(30, seed=23), submit=True)
    link(session, server)
    seen: list[Progress] = []
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, status(503, retry_after=30))  # the refresh, then the PSO asks for half a minute
        with make_client(proxy.url, proxy.ca_path) as api:
            started = time.monotonic()
            engine = make_engine(
                session,
                api,
                policy=None,  # the real policy and the real sleep: the wait is what is tested
                on_progress=seen.append,
                should_stop=lambda: any(p.phase == "waiting" for p in seen),  # the user cancels once it waits
            )
            summary = engine.run()
            elapsed = time.monotonic() - started
    assert elapsed < 10
    assert summary.remaining == 30 and summary.problem is not None
    counts = session.status_counts()
    assert (counts["queued"], counts["sending"]) == (30, 0)
    assert server.stats()["reports"] == 0  # nothing was sent after the stop


def test_more_than_a_thousand_anonymous_reports_are_all_followed(session: Session, server: RunningServer) -> None:
    reports = [
        validate_report({**r, "reporter": {"anonymous": True, "first_reported_by": "A288"}}).export()
        for r in sample_reports(1010, seed=24)
    ]
    session.add_reports(reports, submit=True)
    link(session, server)
    assert syncing.sync(session).submitted == 1010
    last = reports[-1]["id"]
    server.set_status(last, "under_review")  # the server's lookup takes at most 1000 ids at once
    assert syncing.sync(session).status_changes == 1
    assert session.account.server_status(last).status == "under_review"  # type: ignore[union-attr]


def test_credentials_in_an_address_never_reach_a_message(session: Session) -> None:
    with pytest.raises(InvalidServerAddress) as refused:
        ServerSettings(f"https://nurse1:{CREDENTIAL}@127.0.0.1:9")  # the PSO takes tokens, never URL passwords
    assert CREDENTIAL not in str(refused.value)
    with pytest.raises(InvalidServerAddress) as wrong_scheme:
        ServerSettings(f"http://nurse1:{CREDENTIAL}@127.0.0.1:9")
    assert CREDENTIAL not in str(wrong_scheme.value)
    with pytest.raises(InvalidServerAddress) as bad_proxy:  # a proxy may need a password, but never echo it
        ServerSettings("https://127.0.0.1:9", proxy=f"socks5://it:{CREDENTIAL}@proxy.hospital:1080")
    assert CREDENTIAL not in str(bad_proxy.value)
    unreachable = ServerSettings("https://127.0.0.1:9", proxy=f"http://it:{CREDENTIAL}@127.0.0.1:9")
    with pytest.raises(SyncError) as failed:
        syncing.login(session, unreachable, "nurse1", PASSWORD)
    assert CREDENTIAL not in str(failed.value) and PASSWORD not in str(failed.value)


def test_a_reference_answer_of_the_wrong_shape_keeps_the_cached_reference(
    session: Session, server: RunningServer
) -> None:
    link(session, server)
    syncing.sync(session)
    cached = session.account.reference()
    assert cached is not None and cached["units"]
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, PASS, status(200))  # refresh, status feed, then a 200 that is not reference data
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(session, api).run()
    assert summary.problem is None  # the retry got the real answer
    assert session.account.reference() == cached


def test_a_batch_answer_of_the_wrong_shape_is_sent_again_and_lands_once(
    session: Session, server: RunningServer
) -> None:
    session.add_reports(sample_reports(40, seed=25), submit=True)
    link(session, server)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, status(200))  # the refresh; then a middlebox answers the batch 200 with something else
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(session, api).run()
    assert (summary.submitted, summary.remaining, summary.problem) == (40, 0, None)
    assert server.stats()["reports"] == 40 and session.status_counts()["submitted"] == 40


def test_a_lost_refresh_answer_is_retried_with_the_same_token(session: Session, server: RunningServer) -> None:
    session.add_reports(sample_reports(10, seed=26), submit=True)
    link(session, server)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(LOSE_RESPONSE)  # the server rotated the refresh token, the answer never arrived
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(session, api, policy=FAST_RETRIES).run()
    assert (summary.submitted, summary.problem) == (10, None)
    assert session.account.get().refresh_token  # type: ignore[union-attr]  # the successor, still usable
    assert syncing.sync(session).problem is None


def test_a_later_status_in_the_same_second_wins_over_one_on_the_whole_second(
    session: Session, tmp_path: Path
) -> None:
    clock = FakeClock(1_800_000_000.0)  # the server's clock: 'received' lands exactly on a whole second
    with practice_server(tmp_path / "clocked", clock=clock) as server:
        report = sample_reports(1, seed=27)[0]
        session.add_reports([report], submit=True)
        link(session, server)
        syncing.sync(session)
        clock.advance(0.5)  # half a second later the PSO starts its review ("...:00.500000Z" vs "...:00Z")
        server.set_status(report["id"], "under_review")
        assert syncing.sync(session).status_changes == 1
        assert session.account.server_status(report["id"]).status == "under_review"  # type: ignore[union-attr]


def test_a_session_revoked_in_the_middle_of_a_pipelined_upload_leaves_nothing_half_sent(
    session: Session, server: RunningServer
) -> None:
    session.add_reports(sample_reports(400, seed=28), submit=True)
    link(session, server)

    def revoke_after_first_batch(progress: Progress) -> None:
        if progress.phase == "sending" and progress.sent == 100:
            account = session.account.get()
            assert account is not None and account.refresh_token
            with make_client(server.base_url, server.ca_path) as it:
                it.logout(account.refresh_token, None)  # IT ends the session while batch 2 is on the wire

    with make_client(server.base_url, server.ca_path) as api, pytest.raises(SignInRequired):
        make_engine(session, api, batch_reports=100, on_progress=revoke_after_first_batch).run()
    counts = session.status_counts()
    assert counts["sending"] == 0 and counts["submitted"] + counts["queued"] == 400
    assert session.account.get().refresh_token is None  # type: ignore[union-attr]
    link(session, server)
    assert syncing.sync(session).remaining == 0
    stats = server.stats()
    assert stats["reports"] == 400 and stats["revisions"] == 400


def test_tokens_stay_out_of_reprs(session: Session, server: RunningServer) -> None:
    # A repr lands in assertion output, log lines and crash reports; a refresh token there is a live session.
    link(session, server)
    account = session.account.get()
    assert account is not None and account.refresh_token
    assert account.refresh_token not in repr(account)
    with make_client(server.base_url, server.ca_path) as api:
        tokens = api.refresh(account.refresh_token)
    assert tokens.refresh_token not in repr(tokens) and tokens.access_token not in repr(tokens)


def test_a_token_renewal_answered_with_something_else_is_tried_again(
    session: Session, server: RunningServer
) -> None:
    # Tried again: had the server rotated the token, the same token presented again gets the same successor.
    session.add_reports(sample_reports(10, seed=29), submit=True)
    link(session, server)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(status(200))  # a middlebox answers the renewal 200 with something that is not tokens
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(session, api).run()
    assert (summary.submitted, summary.problem) == (10, None)


def test_the_proxy_variables_are_the_system_proxy_with_their_bypass_list_only_where_it_policy_says_so(
    session: Session, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.add_reports(sample_reports(10, seed=30), submit=True)
    link(session, server)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        monkeypatch.setenv("https_proxy", proxy.proxy_url)  # on Linux, IT policy may make these the OS setting
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        with make_client(server.base_url, server.ca_path, proxy="system") as api:  # policy silent: direct
            assert make_engine(session, api).run().problem is None
        assert proxy.seen == []
        session.add_reports(sample_reports(10, seed=32), submit=True)
        with make_client(server.base_url, proxy.ca_path, proxy="system", proxy_from_environment=True) as api:
            assert make_engine(session, api).run().submitted == 10
        assert [s.path for s in proxy.seen][:2] == ["/api/v1/auth/refresh", "/api/v1/reports/batch"]
        seen = len(proxy.seen)
        monkeypatch.setenv("no_proxy", "127.0.0.1")  # bypassed: straight to the server, its own CA
        with make_client(server.base_url, server.ca_path, proxy="system", proxy_from_environment=True) as api:
            assert make_engine(session, api).run().problem is None
        assert len(proxy.seen) == seen


def test_a_ca_file_that_does_not_exist_is_named_and_links_nothing(
    session: Session, server: RunningServer, tmp_path: Path
) -> None:
    missing = tmp_path / "hospital-ca.pem"
    with pytest.raises(CertificateNotTrusted, match="does not exist"):
        syncing.login(session, ServerSettings(server.base_url, ca_file=str(missing)), "nurse1", PASSWORD)
    assert session.account.get() is None


def test_when_the_first_batch_fails_for_good_the_second_in_flight_is_put_back_and_lands_once(
    session: Session, server: RunningServer
) -> None:
    session.add_reports(sample_reports(300, seed=31), submit=True)
    link(session, server)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        # refresh; batch 1 reset; batch 2 (already queued behind it) stored; batch 1's retries all reset
        proxy.plan(PASS, RESET, PASS, *[RESET] * 500)
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(session, api, batch_reports=100, **FakeTime().engine_options()).run()
        assert proxy.pending() > 0
    assert summary.problem is not None and summary.submitted == 0
    counts = session.status_counts()
    assert (counts["sending"], counts["queued"]) == (0, 300)
    assert server.stats()["reports"] == 100  # batch 2, whose answer the failed run did not keep
    again = syncing.sync(session)
    assert (again.submitted, again.remaining) == (300, 0)  # batch 2 comes back 'duplicate'
    stats = server.stats()
    assert stats["reports"] == 300 and stats["revisions"] == 300


def test_stop_also_ends_the_status_pull_between_pages(session: Session, tmp_path: Path) -> None:
    with practice_server(tmp_path / "paged", status_page_size=10) as server:
        session.add_reports(sample_reports(50, seed=32), submit=True)
        link(session, server)
        seen: list[Progress] = []
        with make_client(server.base_url, server.ca_path) as api:
            summary = make_engine(
                session, api, on_progress=seen.append, should_stop=lambda: any(p.phase == "statuses" for p in seen)
            ).run()
        assert (summary.submitted, summary.status_changes) == (50, 10)  # one page of the feed, then stopped
        assert syncing.sync(session).status_changes == 40  # the next run goes on from the stored cursor


def test_a_status_feed_refused_after_a_full_upload_still_reports_what_was_sent(
    session: Session, server: RunningServer
) -> None:
    session.add_reports(sample_reports(20, seed=33), submit=True)
    link(session, server)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        proxy.plan(PASS, PASS, status(403))  # refresh, batch, then a proxy forbids the status feed
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(session, api).run()
    assert (summary.submitted, summary.remaining) == (20, 0)
    assert summary.problem is not None and "statuses could not be updated" in summary.problem
