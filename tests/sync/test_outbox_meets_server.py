"""The foundation's two halves agree: frozen revisions claimed from the encrypted outbox are accepted by the
real reference server over TLS, and its answers checkpoint the outbox. (The sync engine proper - retries,
back-off, progress, token refresh - builds on exactly these calls.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from pso_desktop.services.workstation import Session
from pso_server.practice import RunningServer
from tests.support.reports import sample_reports
from tests.support.sync import ACCOUNT, PASSWORD

REPORTS = 300


@pytest.fixture
def http(server: RunningServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # no environment CA bundle or proxy may replace our pinned test CA
        session.verify = str(server.ca_path)
        answer = session.post(
            f"{server.base_url}/api/v1/auth/login",
            json={"username": ACCOUNT, "password": PASSWORD, "device_name": "ward-pc"},
            timeout=10,
        )
        answer.raise_for_status()
        session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield session


@pytest.fixture
def session(session: Session) -> Session:
    """The shared unlocked profile, with REPORTS submitted reports in its outbox."""
    session.add_reports(sample_reports(REPORTS, seed=11), submit=True)
    return session


def upload(session: Session, http: requests.Session, base_url: str) -> int:
    """Claim, send, checkpoint - batch by batch - until the outbox is empty; returns the batches sent."""
    batches = 0
    while items := session.store.claim_batch(100, 2_000_000):
        answer = http.post(
            f"{base_url}/api/v1/reports/batch", json={"reports": [i.wire for i in items]}, timeout=30
        )
        answer.raise_for_status()
        session.store.record_results(answer.json()["results"])
        batches += 1
    return batches


def test_outbox_uploads_exactly_once_and_a_resend_after_a_crash_is_harmless(session, http, server):
    assert session.status_counts()["queued"] == REPORTS
    assert upload(session, http, server.base_url) == REPORTS // 100
    counts = session.status_counts()
    assert counts["submitted"] == REPORTS and counts["queued"] == counts["needs_attention"] == 0
    assert all(s.server_ref for s in session.store.list_summaries(limit=REPORTS))
    assert server.stats()["reports"] == REPORTS

    # A crash between the server's answer and the checkpoint: the same frozen revisions go again.
    first = session.store.list_summaries(limit=1)[0]
    session.store.save_draft(session.store.get(first.id) | {"narrative": "Edited after sending."})
    session.submit([first.id])
    claimed = session.store.claim_batch(100, 2_000_000)
    assert [(c.report_id, c.revision) for c in claimed] == [(first.id, 2)]
    http.post(f"{server.base_url}/api/v1/reports/batch", json={"reports": [c.wire for c in claimed]}, timeout=30)
    assert session.store.requeue_sending() == 1  # ...the app restarts and finds it still 'sending'
    upload(session, http, server.base_url)
    stats = server.stats()
    assert stats["reports"] == REPORTS and stats["revisions"] == REPORTS + 1 and stats["duplicates_refused"] >= 1
    assert session.status_counts()["submitted"] == REPORTS


def test_a_report_the_server_rejects_needs_attention_with_its_reasons(session, http, server):
    report = sample_reports(1, seed=12)[0]
    session.add_reports([report], submit=True)
    # The server holds a different content under the same (id, revision): a conflict the nurse must see.
    tampered = report | {"narrative": "Different text under the same revision."}
    assert http.post(f"{server.base_url}/api/v1/reports/batch", json={"reports": [tampered]}, timeout=30).ok
    upload(session, http, server.base_url)
    counts = session.status_counts()
    assert counts["needs_attention"] == 1 and counts["submitted"] == REPORTS
    assert session.store.server_errors(report["id"]) is not None
