"""Report intake: the idempotent batch upload (``/api/v1/reports/batch``)."""

from __future__ import annotations

from fastapi import APIRouter

from pso_server import schemas
from pso_server.config import ServerConfig
from pso_server.intake import ItemResult, ingest_batch
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
    refuse_oversized(len(body.reports), config)
    uploader = Uploader(who.user.id, who.user.role, who.user.facility)
    results = ingest_batch(db, body.reports, uploader, config.clock, body.owner_keys, published)
    return schemas.BatchResponse(results=[batch_result(r) for r in results])


def refuse_oversized(count: int, config: ServerConfig) -> None:
    """413 when a batch holds more items than the server takes in one request (the byte limit is the admission
    middleware's)."""
    most = config.limits.max_reports_per_batch
    if count > most:
        raise ApiError(
            413,
            "too_many_reports",
            f"A batch may hold at most {most} reports; split it and send the parts one after another.",
            limit=most,
        )


def batch_result(result: ItemResult) -> schemas.BatchResult:
    return schemas.BatchResult(
        id=result.id,
        revision=result.revision,
        status=result.status,  # type: ignore[arg-type]
        server_ref=result.server_ref,
        errors=[schemas.FieldErrorOut(**e) for e in result.errors],
    )
