"""Reference data the client caches for offline use: units and form versions (``/api/v1/reference``), and the
catalogues the PSO published (``/api/v1/reference/catalogues/{version}``, see pso_server/catalogues.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from pso_server import catalogues, schemas, store
from pso_server.routers.deps import API, AUTHED, ApiError, Authenticated, Db, Published, Sealing, problem
from pso_server.routers.sealed import sealing_key_out

router = APIRouter(prefix=API, tags=["reference"])


@router.get("/reference", response_model=schemas.ReferenceData, responses=AUTHED)
def reference(who: Authenticated, db: Db, keys: Sealing) -> schemas.ReferenceData:
    """Units/locations and form versions, for the client to cache for offline use, and the PSO's current
    sealing key (a rotation reaches clients here, at their next sync)."""
    with db.reader() as tx:
        units = store.list_units(tx)
        forms = catalogues.offer(tx)
    return schemas.ReferenceData(
        units=[schemas.Unit(code=c, name=n) for c, n in units],
        form_catalogue_version=forms.current,
        form_versions=forms.accepted,
        withdrawn_versions=forms.withdrawn,
        catalogues=forms.hashes,
        sealing_key=sealing_key_out(keys.current()),
    )


@router.get(
    "/reference/catalogues/{version}",
    responses={
        **AUTHED,
        200: {"content": {"application/json": {"schema": {"type": "object"}}}, "description": "The catalogue."},
        404: problem("No catalogue of that version is published on this server."),
    },
    response_class=Response,
)
def catalogue(
    version: Annotated[str, Path(description="A published form version.", max_length=40)],
    who: Authenticated,
    published: Published,
) -> Response:
    """The JSON of a catalogue version the PSO published (its SHA-256 is in /reference)."""
    body = published.body(version)
    if body is None:
        raise ApiError(404, "not_found", "No catalogue of that version is published on this server.")
    return Response(body.encode("utf-8"), media_type="application/json")
