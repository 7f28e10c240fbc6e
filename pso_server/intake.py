"""Batch intake: validate each report with the shared domain rules, then store the batch in one transaction.

Validation (CPU only) happens before the transaction opens, so the write lock is held only for the inserts.
One bad report never fails its batch: it gets its own ``rejected`` result and the rest are stored. Nothing
the client typed comes back: a rejected report's ``id`` is echoed only when it is a report ID (a UUID), and
the errors are the shared rules' wording, which locates unknown names by position (a lone surrogate in an id
once made the answer unencodable: a 500 after the rest of the batch was committed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pso_desktop.domain import ReportInvalid, canonical_json, validate_report
from pso_server import store
from pso_server.config import Clock
from pso_server.store import Database, IncomingRevision, Uploader

log = logging.getLogger("pso_server")

UNREADABLE = (
    "This report could not be read by the server; check it in the app and send it again, or contact the PSO "
    "if it keeps happening."
)
NOT_YOURS = (
    "This report was first sent from another account; only that account or a risk manager of its "
    "facility can send new versions of it."
)


@dataclass(frozen=True)
class ItemResult:
    """The answer for one report of a batch (the ``BatchResult`` schema)."""

    id: str | None
    revision: int | None
    status: str
    server_ref: str | None
    errors: list[dict[str, str]] = field(default_factory=list)


def _echo_id(raw: Any) -> str | None:
    """The report's id in canonical form when it is a UUID; anything else may be typed text (a name)."""
    value = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _echo_revision(raw: Any) -> int | None:
    value = raw.get("revision") if isinstance(raw, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def prepare(raw: Any, today: dt.date) -> IncomingRevision | ItemResult:
    """A storable revision, or the ``rejected`` result carrying the client's own wording of each problem."""
    try:
        report = validate_report(raw, today=today)
        body = canonical_json(report.export())
    except ReportInvalid as exc:
        return _rejected(raw, exc.as_json())
    except Exception as exc:  # one bad report must never fail its batch
        # The shared rules raised something other than ReportInvalid for a malformed value (e.g. an object
        # where a code belongs). Only the exception type is logged: its text may quote the report's content.
        log.warning(
            "Report validation failed unexpectedly (%s); the report is answered 'rejected'.", type(exc).__name__
        )
        return ItemResult(
            _echo_id(raw), _echo_revision(raw), "rejected", None, [{"field": "", "message": UNREADABLE}]
        )
    return IncomingRevision(
        report_id=str(report.id),
        revision=report.revision,
        # content_hash() is defined as the SHA-256 of these very bytes; hashing them here saves a second
        # serialisation per report (the tests compare the two).
        content_hash=hashlib.sha256(body).hexdigest(),
        body=body.decode("utf-8"),
        form_version=report.form_version,
        event_type=report.event_type,
        is_anonymous=report.is_anonymous,
    )


def _rejected(raw: Any, errors: list[dict[str, str]]) -> ItemResult:
    """The ``rejected`` result; errors that could not be sent as UTF-8 (a rule that let a lone surrogate
    through) are replaced by the plain sentence, so the answer can always be encoded."""
    try:
        for error in errors:
            error["field"].encode("utf-8")
            error["message"].encode("utf-8")
    except (UnicodeEncodeError, KeyError, AttributeError):
        log.warning("A rejection message could not be encoded; the report is answered with a plain sentence.")
        errors = [{"field": "", "message": UNREADABLE}]
    return ItemResult(_echo_id(raw), _echo_revision(raw), "rejected", None, errors)


def ingest_batch(db: Database, reports: Sequence[Any], uploader: Uploader, clock: Clock) -> list[ItemResult]:
    """Validates and stores a batch; returns one result per report, in the order received.

    All accepted revisions and the outcome tally are committed in one transaction; if it fails nothing is
    stored and the error propagates (the client re-sends the batch, and dedupe makes that safe).
    """
    now = clock()
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    results: list[ItemResult | None] = [None] * len(reports)
    ready: list[tuple[int, IncomingRevision]] = []
    for index, raw in enumerate(reports):
        prepared = prepare(raw, moment.date())
        if isinstance(prepared, ItemResult):
            results[index] = prepared
        else:
            ready.append((index, prepared))
    # A fixed lock order (by id, then revision) keeps concurrent PostgreSQL batches from deadlocking.
    ready.sort(key=lambda pair: (pair[1].report_id, pair[1].revision))
    with db.transaction() as tx:
        received: list[tuple[str, float]] = []
        for index, item in ready:
            outcome = store.ingest_revision(tx, item, uploader, now, moment.year)
            errors = [{"field": "id", "message": NOT_YOURS}] if outcome.denied else []
            results[index] = ItemResult(item.report_id, item.revision, outcome.status, outcome.server_ref, errors)
            if outcome.received_at is not None:
                received.append((item.report_id, outcome.received_at))
        final = [r for r in results if r is not None]
        store.record_tally(tx, Counter(r.status for r in final), now)
        store.record_received(tx, received)  # last: it serialises with every other status writer until commit
    assert len(final) == len(reports)
    return final
