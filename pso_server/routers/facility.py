"""The facility's reports and their review, for the facility's risk managers only (issue 12): the reports feed
(``/api/v1/facility/reports``), and the review records, sent (``POST /api/v1/facility/reviews``) and read back
as a feed (``GET /api/v1/facility/reviews``). A reporter is refused (403) and gets nobody else's report; a
client refused here purges its copies of the facility's reports (see docs/sync.md)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query

from pso_server import schemas, store
from pso_server.auth import Principal
from pso_server.routers.deps import API, AUTHED, ApiError, Authenticated, Config, Db, problem
from pso_server.routers.status import decode_cursor, encode_cursor

router = APIRouter(prefix=f"{API}/facility", tags=["facility"])

_RISK_MANAGERS_ONLY = {
    **AUTHED,
    400: problem("The cursor was not issued by this server."),
    403: problem("Only a risk manager gets the facility's reports and review records."),
}
_TEXT_LIMIT = 4000
_NAME_LIMIT = 150
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _risk_manager(who: Principal) -> store.User:
    if who.user.role != "risk_manager":
        raise ApiError(403, "forbidden", "Only a risk manager gets the facility's reports and review records.")
    return who.user


def _when(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@router.get("/reports", response_model=schemas.FacilityReportsPage, responses=_RISK_MANAGERS_ONLY)
def facility_reports(
    who: Authenticated,
    db: Db,
    config: Config,
    since: Annotated[str | None, Query(max_length=64, description="The cursor from the last answer.")] = None,
) -> schemas.FacilityReportsPage:
    """Reports of your facility sent or revised since the cursor, each at its newest revision (risk managers)."""
    viewer = _risk_manager(who)
    after = decode_cursor(since)
    size = config.status_page_size
    with db.reader() as tx:
        found = store.facility_reports_since(tx, viewer.facility, after, size + 1)
    more = len(found) > size
    found = found[:size]
    return schemas.FacilityReportsPage(
        reports=[
            schemas.FacilityReport(
                id=r.report_id,  # type: ignore[arg-type]  # pydantic parses the stored UUID text
                revision=r.revision,
                server_ref=r.server_ref,
                status=r.status,  # type: ignore[arg-type]
                status_note=r.status_note,
                received_at=_when(r.received_at),
                report=_without_identity(json.loads(r.body)) if r.is_anonymous else json.loads(r.body),
            )
            for r in found
        ],
        cursor=encode_cursor(found[-1].seq if found else after),
        has_more=more,
    )


_IDENTITY = ("name", "telephone", "email", "job")


def _without_identity(report: dict[str, Any]) -> dict[str, Any]:
    """An anonymous report as its risk managers get it: validation already refuses identity in one, and this
    makes sure no copy ever carries any."""
    reporter = report.get("reporter")
    if isinstance(reporter, dict):
        report["reporter"] = {k: v for k, v in reporter.items() if k not in _IDENTITY}
    return report


def _record_out(event: store.ReviewEvent) -> schemas.ReviewRecordOut:
    return schemas.ReviewRecordOut(
        seq=event.seq,
        event_id=event.event_id,  # type: ignore[arg-type]
        report_id=event.report_id,  # type: ignore[arg-type]
        kind=event.kind,  # type: ignore[arg-type]
        field=event.field,  # type: ignore[arg-type]
        value=None if event.value is None else json.loads(event.value),
        base_version=event.base_version,
        version=event.version,
        outcome=event.outcome,  # type: ignore[arg-type]
        author=event.author,
        created_at=_when(event.created_at),
    )


def _text(value: Any, limit: int, *, empty: bool = False) -> bool:
    return isinstance(value, str) and (empty or bool(value.strip())) and len(value) <= limit


def _problem_with(record: schemas.ReviewRecordIn) -> str | None:
    """Why a record cannot be stored, in one sentence; None when it can."""
    value = record.value
    if record.kind == "field":
        if record.field is None or record.base_version is None:
            return "A field change names its field and the version it was made on."
        if record.field == "state" and value not in store.REVIEW_STATES:
            return "A review state is one of: " + ", ".join(store.REVIEW_STATES) + "."
        if record.field in ("assignee", "harm") and value is not None and not _text(value, _NAME_LIMIT):
            return f"An assignee or a harm level is a text of at most {_NAME_LIMIT} characters, or empty."
        return None
    if record.field is not None or record.base_version is not None:
        return "Notes and actions are appended: they name no field and no version."
    if not isinstance(value, dict) or not _text(value.get("text"), _TEXT_LIMIT):
        return f"A note or an action has a text of at most {_TEXT_LIMIT} characters."
    if record.kind == "note":
        return None if set(value) == {"text"} else "A note holds only its text."
    owner, due = value.get("owner"), value.get("due")
    if set(value) - {"text", "owner", "due"}:
        return "An action holds its text, its owner and its due date."
    if owner is not None and not _text(owner, _NAME_LIMIT):
        return f"An action's owner is a text of at most {_NAME_LIMIT} characters."
    if due is not None and not (isinstance(due, str) and _DATE.fullmatch(due) and _valid_date(due)):
        return "An action's due date is a date written YYYY-MM-DD."
    return None


def _valid_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


@router.post("/reviews", response_model=schemas.ReviewBatchResponse, responses=_RISK_MANAGERS_ONLY)
def send_reviews(
    body: schemas.ReviewBatch, who: Authenticated, db: Db, config: Config
) -> schemas.ReviewBatchResponse:
    """Stores review records of your facility's reports (risk managers): one result per record, in order. A
    field change made on an older version than the field's is kept as a conflict, never dropped."""
    viewer = _risk_manager(who)
    results: list[schemas.ReviewBatchResult] = []
    with db.transaction() as tx:
        for record in body.records:
            refused = _problem_with(record)
            event = None
            if refused is None:
                change = store.ReviewChange(
                    str(record.event_id),
                    str(record.report_id),
                    record.kind,
                    record.field,
                    json.dumps(record.value, ensure_ascii=False, sort_keys=True),
                    record.base_version,
                )
                event = store.record_review(tx, change, viewer, config.clock())
                if event is None:
                    refused = "No report with that id is held for your facility."
            if event is None:
                results.append(
                    schemas.ReviewBatchResult(event_id=record.event_id, outcome="rejected", message=refused)
                )
            else:
                out = _record_out(event)
                results.append(
                    schemas.ReviewBatchResult(event_id=record.event_id, outcome=out.outcome, record=out)
                )
    return schemas.ReviewBatchResponse(results=results)


@router.get("/reviews", response_model=schemas.ReviewFeed, responses=_RISK_MANAGERS_ONLY)
def review_feed(
    who: Authenticated,
    db: Db,
    config: Config,
    since: Annotated[str | None, Query(max_length=64, description="The cursor from the last answer.")] = None,
) -> schemas.ReviewFeed:
    """Review records of your facility's reports since the cursor, oldest first (risk managers)."""
    viewer = _risk_manager(who)
    after = decode_cursor(since)
    size = config.status_page_size
    with db.reader() as tx:
        found = store.review_events_since(tx, viewer.facility, after, size + 1)
    more = len(found) > size
    found = found[:size]
    return schemas.ReviewFeed(
        records=[_record_out(e) for e in found],
        cursor=encode_cursor(found[-1].seq if found else after),
        has_more=more,
    )
