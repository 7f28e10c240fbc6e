"""The HTTP API of the reference PSO server (FastAPI application factory).

The routes are in :mod:`pso_server.routers`, one ``APIRouter`` per concern (auth, reports, status, reference,
operations), with their shared dependencies in :mod:`pso_server.routers.deps`; this module builds the
application: its state, the admission middleware and the error handlers.

Endpoints are plain ``def`` functions: FastAPI runs them on its worker threads, which is where blocking work
belongs (argon2, SQLite, psycopg). The event loop only parses HTTP and runs the admission middleware.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pso_server import catalogues, schemas
from pso_server.admission import AdmissionMiddleware, AdmissionState, DeviceCredentialGate
from pso_server.auth import Authenticator
from pso_server.config import ServerConfig
from pso_server.errors import StorageUnavailable
from pso_server.proxies import TrustedProxies, parse_networks
from pso_server.routers import ROUTERS
from pso_server.routers.deps import API, ApiError
from pso_server.sealing import SEALED_UPLOAD_PATH, SealingKeys, SealingKeyUnavailable
from pso_server.store import Database

__all__ = ["API", "ApiError", "create_app"]

log = logging.getLogger("pso_server")


def _safe_error(error: Any) -> dict[str, Any]:
    """One validation error without anything the client sent: no ``input``, and for an unknown field no
    field name either (a misplaced key can be a patient's name as easily as a typo)."""
    loc = list(error.get("loc", ()))
    if error.get("type") == "extra_forbidden" and loc:
        loc[-1] = "(unknown field)"
    return {"type": error.get("type"), "loc": loc, "msg": error.get("msg")}


def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    body = schemas.Problem(error=exc.error, message=exc.message, limit=exc.limit)
    return JSONResponse(body.model_dump(), status_code=exc.status, headers=exc.headers)


def _storage(request: Request, exc: Exception) -> JSONResponse:
    body = schemas.Problem(error="storage_unavailable", message=str(exc))
    headers = {"Retry-After": str(request.app.state.config.retry_after_seconds)}
    return JSONResponse(body.model_dump(), status_code=503, headers=headers)


def _sealing_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A configuration problem of this server (another server rotated with another wrapping key): the envelope
    # is fine, so the client keeps it and tries again, and IT sees why in the log.
    log.warning("Sealed upload answered 503: %s", exc)
    body = schemas.Problem(
        error="sealing_key_unavailable", message="The PSO cannot open sealed reports right now."
    )
    headers = {"Retry-After": str(request.app.state.config.retry_after_seconds)}
    return JSONResponse(body.model_dump(), status_code=503, headers=headers)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    body = schemas.Problem(error="http_error", message=str(exc.detail))
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's own shape (documented as HTTPValidationError), minus the echoed input, which may hold PHI.
    return JSONResponse({"detail": [_safe_error(e) for e in exc.errors()]}, status_code=422)


def create_app(
    db: Database,
    config: ServerConfig | None = None,
    *,
    sealing: SealingKeys,
    admission: AdmissionState | None = None,
) -> FastAPI:
    """The ASGI application over ``db``, opening sealed envelopes with ``sealing`` (see
    :func:`pso_server.sealing.open_sealing_keys`). ``admission`` is shared with the runner so SIGTERM can start
    a drain."""
    config = config or ServerConfig()
    admission = admission or AdmissionState()
    auth = Authenticator(db, config)
    auth.warm_up()
    app = FastAPI(
        title="PSO reference server",
        version="1",
        summary="Patient safety event intake for PSO Desktop: sign-in, idempotent batch upload, status feed.",
        description="Reports are patient safety work product (PSWP). HTTPS only. Every error answer is a Problem "
        "with a plain sentence; 429 and 503 carry Retry-After.",
    )
    # What the routers' dependencies (routers/deps.py) hand to each route.
    proxies = TrustedProxies(parse_networks(config.trusted_proxies))
    app.state.db = db
    app.state.config = config
    app.state.admission = admission
    app.state.auth = auth
    app.state.proxies = proxies
    app.state.catalogues = catalogues.Catalogues(db)
    app.state.sealing = sealing
    app.add_middleware(DeviceCredentialGate, only_path=SEALED_UPLOAD_PATH)  # inside admission: limits apply first
    app.add_middleware(
        AdmissionMiddleware,
        state=admission,
        limits=config.limits,
        retry_after=config.retry_after_seconds,
        proxies=proxies,
    )
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StorageUnavailable, _storage)
    app.add_exception_handler(SealingKeyUnavailable, _sealing_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _invalid)
    for router in ROUTERS:
        app.include_router(router)
    return app
