"""Report intake: the idempotent batch upload (``/api/v1/reports/batch``)."""

from __future__ import annotations

from fastapi import APIRouter

from pso_server import schemas
from pso_server.intake import ingest_batch
from pso_server.routers.deps import API, AUTHED, ApiError, Authenticated, Config, Db, Published, problem
from pso_server.store import Uploader

router = APIRouter(prefix=f"{API}/reports", tags=["reports"])


@router.post(
    "/batch",
    response_model=schemas.BatchResponse,
    responses={
        **AUTHED,
        413: problem(
            "Too many reports or too many bytes in one request; 'limit' "
            "gives the limit named in the message. Split and re-send."
        ),
    },
)
def batch(
    body: schemas.BatchRequest, who: Authenticated, db: Db, config: Config, published: Published
) -> schemas.BatchResponse:
    """Stores a batch of reports idempotently: one result per report, all in one transaction."""
    most = config.limits.max_reports_per_batch
    if len(body.reports) > most:
        raise ApiError(
            413,
            "too_many_reports",
            f"A batch may hold at most {most} reports; split it and send the parts one after another.",
            limit=most,
        )
    uploader = Uploader(who.user.id, who.user.role, who.user.facility)
    results = ingest_batch(db, body.reports, uploader, config.clock, body.owner_keys, published)
    return schemas.BatchResponse(
        results=[
            schemas.BatchResult(
                id=r.id,
                revision=r.revision,
                status=r.status,  # type: ignore[arg-type]
                server_ref=r.server_ref,
                errors=[schemas.FieldErrorOut(**e) for e in r.errors],
            )
            for r in results
        ]
    )
