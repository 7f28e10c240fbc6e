"""Reference data the client caches for offline use: units and form versions (``/api/v1/reference``)."""

from __future__ import annotations

from fastapi import APIRouter

from pso_desktop.domain import CURRENT_FORM_VERSION
from pso_desktop.domain.catalogue import available_versions
from pso_server import schemas, store
from pso_server.routers.deps import API, AUTHED, Authenticated, Db

router = APIRouter(prefix=API, tags=["reference"])


@router.get("/reference", response_model=schemas.ReferenceData, responses=AUTHED)
def reference(who: Authenticated, db: Db) -> schemas.ReferenceData:
    """Units/locations and form versions, for the client to cache for offline use."""
    with db.reader() as tx:
        units = store.list_units(tx)
    return schemas.ReferenceData(
        units=[schemas.Unit(code=c, name=n) for c, n in units],
        form_catalogue_version=CURRENT_FORM_VERSION,
        form_versions=list(available_versions()),
    )
