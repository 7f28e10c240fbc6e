"""For load balancers and monitoring: ``/healthz``."""

from __future__ import annotations

from fastapi import APIRouter

from pso_server import schemas
from pso_server.routers.deps import ADMISSION, Db

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=schemas.Health, responses=ADMISSION)
def healthz(db: Db) -> schemas.Health:
    """200 when the server takes requests and its database answers; 503 while draining."""
    with db.reader() as tx:
        tx.one("SELECT 1")
    return schemas.Health(status="ok", database=db.dialect.name)
