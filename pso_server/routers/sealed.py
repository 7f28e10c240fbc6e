"""The sealed outbox (docs/sealed-outbox.md): the PSO's public sealing key (``/api/v1/sealing-key``) and the
upload of sealed envelopes with a device credential (``/api/v1/sealed/batch``)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from fastapi import APIRouter

from pso_server import schemas
from pso_server.intake import SealedItem, ingest_sealed
from pso_server.routers.deps import ADMISSION, API, Config, Db, Device, Published, Sealing, problem
from pso_server.routers.reports import batch_result, refuse_oversized
from pso_server.sealing import SEALED_UPLOAD_PATH, SUITE_NAME, SealingKey
from pso_server.store import Uploader

router = APIRouter(prefix=API, tags=["sealed"])


def sealing_key_out(key: SealingKey) -> schemas.SealingKeyOut:
    return schemas.SealingKeyOut(
        key_id=key.key_id,
        suite=SUITE_NAME,
        public_key=base64.b64encode(key.public_key).decode("ascii"),
        created_at=dt.datetime.fromtimestamp(key.created_at, dt.UTC),
    )


@router.get("/sealing-key", response_model=schemas.SealingKeyOut, responses=ADMISSION)
def sealing_key(keys: Sealing) -> schemas.SealingKeyOut:
    """The PSO's current public sealing key (no sign-in needed: it is public). Clients pin it at sign-in and
    pick up a rotation from /reference at sync."""
    return sealing_key_out(keys.current())


@router.post(
    SEALED_UPLOAD_PATH.removeprefix(API),  # /sealed/batch: the one path the device credential gate lets through
    response_model=schemas.SealedBatchResponse,
    responses={
        **ADMISSION,
        401: problem(
            "Not a device credential ('unauthorized'; a sign-in token included), or a revoked one "
            "('credential_revoked')."
        ),
        413: problem(
            "Too many envelopes or too many bytes in one request; 'limit' gives the limit named in the message. "
            "Split and re-send."
        ),
    },
)
def sealed_batch(
    body: schemas.SealedBatchRequest, who: Device, db: Db, config: Config, keys: Sealing, published: Published
) -> schemas.SealedBatchResponse:
    """Opens each sealed envelope and stores its report exactly as /reports/batch would (same validation,
    ownership and dedupe): one result per envelope, all in one transaction."""
    refuse_oversized(len(body.envelopes), config)
    items = [SealedItem(e.key_id, _base64(e.sealed)) for e in body.envelopes]
    user = who.user
    results = ingest_sealed(
        db, items, Uploader(user.id, user.role, user.facility), user.username, keys.open, config.clock, published
    )
    return schemas.SealedBatchResponse(
        results=[
            schemas.SealedBatchResult(envelope_id=e.envelope_id, **batch_result(r).model_dump())
            for e, r in zip(body.envelopes, results, strict=True)
        ]
    )


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
