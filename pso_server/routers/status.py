"""Report statuses set at the PSO: the feed since a cursor, the lookup by id (anonymous reports) and the risk
manager's status change (``/api/v1/reports/status``, ``/api/v1/reports/{id}/status``)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from pso_server import schemas, store
from pso_server.errors import UnknownReport
from pso_server.intake import owner_key_hashes
from pso_server.routers.deps import API, AUTHED, ApiError, Authenticated, Config, Db, problem

router = APIRouter(prefix=f"{API}/reports", tags=["reports"])


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, number = text.partition(":")
        if version == "v1" and number.isdigit() and len(number) < 19:
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ApiError(
        400,
        "invalid_cursor",
        "The status cursor is not one this server issued; omit 'since' to start again from the beginning.",
    )


def _change_out(change: store.StatusChange) -> schemas.StatusChangeOut:
    return schemas.StatusChangeOut(
        id=change.report_id,  # type: ignore[arg-type]  # pydantic parses the stored UUID text
        server_ref=change.server_ref,
        status=change.status,  # type: ignore[arg-type]
        note=change.note,
        changed_at=dt.datetime.fromtimestamp(change.changed_at, dt.UTC),
    )


@router.get(
    "/status",
    response_model=schemas.StatusFeed,
    responses={**AUTHED, 400: problem("The cursor was not issued by this server.")},
)
def status_feed(
    who: Authenticated,
    db: Db,
    config: Config,
    since: Annotated[str | None, Query(max_length=64, description="The cursor from the last answer.")] = None,
) -> schemas.StatusFeed:
    """Status changes made at the PSO to reports you may see: your own named reports as a reporter, every
    report of your facility as a risk manager. Anonymous reports are not linked to you: look them up by id."""
    after = decode_cursor(since)
    size = config.status_page_size
    with db.reader() as tx:
        changes = store.status_changes_since(tx, who.user, after, size + 1)
    more = len(changes) > size
    changes = changes[:size]
    last = changes[-1].seq if changes else after
    return schemas.StatusFeed(changes=[_change_out(c) for c in changes], cursor=encode_cursor(last), has_more=more)


@router.post("/status/lookup", response_model=schemas.StatusLookupResponse, responses=AUTHED)
def status_lookup(body: schemas.StatusLookupRequest, who: Authenticated, db: Db) -> schemas.StatusLookupResponse:
    """Current status of reports named by id, for anonymous reports (which the feed cannot attribute to
    you; send each one's owner key). Reports you may not see are left out."""
    ids = sorted({str(i) for i in body.ids})
    hashes = {k: v for k, v in owner_key_hashes(body.owner_keys).items() if v is not None}
    with db.reader() as tx:
        found = store.current_statuses(tx, who.user, ids, hashes)
    return schemas.StatusLookupResponse(statuses=[_change_out(c) for c in found])


@router.post(
    "/{report_id}/status",
    response_model=schemas.StatusChangeOut,
    responses={
        **AUTHED,
        403: problem("Only a risk manager can change a report's status."),
        404: problem("No such report at your facility."),
    },
)
def set_status(
    report_id: Annotated[uuid.UUID, Path(description="The report's UUID.")],
    body: schemas.StatusUpdate,
    who: Authenticated,
    db: Db,
    config: Config,
) -> schemas.StatusChangeOut:
    """Records a status change (risk managers of the report's facility only)."""
    if who.user.role != "risk_manager":
        raise ApiError(403, "forbidden", "Only a risk manager can change a report's status.")
    unknown = ApiError(404, "not_found", "No report with that id is held for your facility.")
    with db.transaction() as tx:
        try:
            report = store.get_report(tx, str(report_id))
        except UnknownReport:
            raise unknown from None
        if report.facility != who.user.facility:
            raise unknown
        change = store.set_status(tx, report.id, body.status, body.note, who.user.id, config.clock())
    return _change_out(change)
