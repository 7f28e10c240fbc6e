"""The HTTP API of the reference PSO server (FastAPI application factory).

Endpoints are plain ``def`` functions: FastAPI runs them on its worker threads, which is where blocking work
belongs (argon2, SQLite, psycopg). The event loop only parses HTTP and runs the admission middleware.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from pso_desktop.domain import CURRENT_FORM_VERSION
from pso_desktop.domain.catalogue import available_versions
from pso_server import schemas, store
from pso_server.admission import AdmissionMiddleware, AdmissionState
from pso_server.auth import Authenticator, AuthFailed, Principal, TokenPair, TooManyAttempts
from pso_server.config import ServerConfig
from pso_server.errors import StorageUnavailable, UnknownReport
from pso_server.intake import ingest_batch, owner_key_hashes
from pso_server.proxies import TrustedProxies, parse_networks
from pso_server.store import Database, Uploader

API = "/api/v1"


class ApiError(Exception):
    """An expected refusal, answered as a ``Problem`` body with the given status and headers."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        limit: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.limit = limit
        self.headers = headers or {}


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": schemas.Problem, "description": description}
    if retry_after:
        doc["headers"] = {
            "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
        }
    return doc


# Every operation can meet the admission middleware, so every operation documents its answers.
_ADMISSION: dict[int | str, dict[str, Any]] = {
    400: _problem("The request could not be read (for example a body that is not UTF-8 JSON)."),
    408: _problem("The request body did not arrive in time; send the request again."),
    413: _problem("The request body is larger than the server accepts; 'limit' gives the byte limit."),
    429: _problem("Too many requests from this client (or too many failed sign-ins).", retry_after=True),
    503: _problem("The server is draining, overloaded or its database is unavailable.", retry_after=True),
}
_AUTHED: dict[int | str, dict[str, Any]] = {
    **_ADMISSION,
    401: _problem("Missing, expired or revoked access token: refresh it or sign in."),
}

_bearer = HTTPBearer(auto_error=False, description="The access token from /auth/login or /auth/refresh.")


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int:
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


def _safe_error(error: Any) -> dict[str, Any]:
    """One validation error without anything the client sent: no ``input``, and for an unknown field no
    field name either (a misplaced key can be a patient's name as easily as a typo)."""
    loc = list(error.get("loc", ()))
    if error.get("type") == "extra_forbidden" and loc:
        loc[-1] = "(unknown field)"
    return {"type": error.get("type"), "loc": loc, "msg": error.get("msg")}


def _change_out(change: store.StatusChange) -> schemas.StatusChangeOut:
    return schemas.StatusChangeOut(
        id=change.report_id,  # type: ignore[arg-type]  # pydantic parses the stored UUID text
        server_ref=change.server_ref,
        status=change.status,  # type: ignore[arg-type]
        note=change.note,
        changed_at=dt.datetime.fromtimestamp(change.changed_at, dt.UTC),
    )


def _user_info(user: store.User) -> schemas.UserInfo:
    return schemas.UserInfo(username=user.username, role=user.role, facility=user.facility)  # type: ignore[arg-type]


def _tokens(pair: TokenPair) -> schemas.TokenResponse:
    return schemas.TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        user=_user_info(pair.user),
        device_token=pair.device_token,
    )


def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The signed-in account, from the bearer access token; 401 otherwise."""
    if credentials is None:
        raise ApiError(
            401,
            "unauthorized",
            "Sign in first: this request needs an access token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    auth: Authenticator = request.app.state.auth
    try:
        return auth.authenticate(credentials.credentials)
    except AuthFailed as exc:
        raise ApiError(
            401, "unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


Authenticated = Annotated[Principal, Depends(_principal)]


def create_app(
    db: Database, config: ServerConfig | None = None, *, admission: AdmissionState | None = None
) -> FastAPI:
    """The ASGI application over ``db``. ``admission`` is shared with the runner so SIGTERM can start a drain."""
    config = config or ServerConfig()
    admission = admission or AdmissionState()
    auth = Authenticator(db, config)
    auth.warm_up()
    limits = config.limits
    app = FastAPI(
        title="PSO reference server",
        version="1",
        summary="Patient safety event intake for PSO Desktop: sign-in, idempotent batch upload, status feed.",
        description="Reports are patient safety work product (PSWP). HTTPS only. Every error answer is a Problem "
        "with a plain sentence; 429 and 503 carry Retry-After.",
    )
    app.state.db = db
    app.state.config = config
    app.state.admission = admission
    app.state.auth = auth
    proxies = TrustedProxies(parse_networks(config.trusted_proxies))
    app.add_middleware(
        AdmissionMiddleware,
        state=admission,
        limits=limits,
        retry_after=config.retry_after_seconds,
        proxies=proxies,
    )

    @app.exception_handler(ApiError)
    def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        body = schemas.Problem(error=exc.error, message=exc.message, limit=exc.limit)
        return JSONResponse(body.model_dump(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StorageUnavailable)
    def _storage(request: Request, exc: StorageUnavailable) -> JSONResponse:
        body = schemas.Problem(error="storage_unavailable", message=str(exc))
        headers = {"Retry-After": str(config.retry_after_seconds)}
        return JSONResponse(body.model_dump(), status_code=503, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = schemas.Problem(error="http_error", message=str(exc.detail))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own shape (documented as HTTPValidationError), minus the echoed input, which may hold PHI.
        return JSONResponse({"detail": [_safe_error(e) for e in exc.errors()]}, status_code=422)

    @app.post(
        f"{API}/auth/login",
        response_model=schemas.TokenResponse,
        tags=["auth"],
        responses={**_ADMISSION, 401: _problem("Wrong user name or password.")},
    )
    def login(body: schemas.LoginRequest, request: Request) -> schemas.TokenResponse:
        """Signs in with a password and opens a session for one device."""
        address = proxies.client_of_scope(request.scope)
        try:
            return _tokens(auth.login(body.username, body.password, body.device_name, address, body.device_token))
        except TooManyAttempts as exc:
            raise ApiError(
                429, "too_many_attempts", str(exc), headers={"Retry-After": str(exc.retry_after)}
            ) from None
        except AuthFailed as exc:
            raise ApiError(401, "wrong_credentials", str(exc)) from None

    @app.post(
        f"{API}/auth/refresh",
        response_model=schemas.TokenResponse,
        tags=["auth"],
        responses={**_ADMISSION, 401: _problem("The refresh token is unknown, expired, reused or revoked.")},
    )
    def refresh(body: schemas.RefreshRequest) -> schemas.TokenResponse:
        """Exchanges a refresh token for a new access token and a new refresh token (rotation)."""
        try:
            return _tokens(auth.refresh(body.refresh_token))
        except AuthFailed as exc:
            raise ApiError(401, "session_ended", str(exc)) from None

    @app.post(f"{API}/auth/logout", response_model=schemas.LogoutResponse, tags=["auth"], responses=_ADMISSION)
    def logout(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        body: schemas.LogoutRequest | None = None,
    ) -> schemas.LogoutResponse:
        """Ends the session named by the bearer access token or by the refresh token in the body."""
        access = credentials.credentials if credentials else None
        return schemas.LogoutResponse(signed_out=auth.logout(access, body.refresh_token if body else None))

    @app.post(
        f"{API}/reports/batch",
        response_model=schemas.BatchResponse,
        tags=["reports"],
        responses={
            **_AUTHED,
            413: _problem(
                "Too many reports or too many bytes in one request; 'limit' "
                "gives the limit named in the message. Split and re-send."
            ),
        },
    )
    def batch(body: schemas.BatchRequest, who: Authenticated) -> schemas.BatchResponse:
        """Stores a batch of reports idempotently: one result per report, all in one transaction."""
        if len(body.reports) > limits.max_reports_per_batch:
            raise ApiError(
                413,
                "too_many_reports",
                f"A batch may hold at most {limits.max_reports_per_batch} reports; split it and send "
                "the parts one after another.",
                limit=limits.max_reports_per_batch,
            )
        uploader = Uploader(who.user.id, who.user.role, who.user.facility)
        results = ingest_batch(db, body.reports, uploader, config.clock, body.owner_keys)
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

    @app.get(
        f"{API}/reports/status",
        response_model=schemas.StatusFeed,
        tags=["reports"],
        responses={**_AUTHED, 400: _problem("The cursor was not issued by this server.")},
    )
    def status_feed(
        who: Authenticated,
        since: Annotated[str | None, Query(max_length=64, description="The cursor from the last answer.")] = None,
    ) -> schemas.StatusFeed:
        """Status changes made at the PSO to reports you may see: your own named reports as a reporter, every
        report of your facility as a risk manager. Anonymous reports are not linked to you: look them up by id."""
        after = _decode_cursor(since)
        size = config.status_page_size
        with db.reader() as tx:
            changes = store.status_changes_since(tx, who.user, after, size + 1)
        more = len(changes) > size
        changes = changes[:size]
        last = changes[-1].seq if changes else after
        return schemas.StatusFeed(
            changes=[_change_out(c) for c in changes], cursor=_encode_cursor(last), has_more=more
        )

    @app.post(
        f"{API}/reports/status/lookup",
        response_model=schemas.StatusLookupResponse,
        tags=["reports"],
        responses=_AUTHED,
    )
    def status_lookup(body: schemas.StatusLookupRequest, who: Authenticated) -> schemas.StatusLookupResponse:
        """Current status of reports named by id, for anonymous reports (which the feed cannot attribute to
        you; send each one's owner key). Reports you may not see are left out."""
        ids = sorted({str(i) for i in body.ids})
        hashes = {k: v for k, v in owner_key_hashes(body.owner_keys).items() if v is not None}
        with db.reader() as tx:
            found = store.current_statuses(tx, who.user, ids, hashes)
        return schemas.StatusLookupResponse(statuses=[_change_out(c) for c in found])

    @app.post(
        f"{API}/reports/{{report_id}}/status",
        response_model=schemas.StatusChangeOut,
        tags=["reports"],
        responses={
            **_AUTHED,
            403: _problem("Only a risk manager can change a report's status."),
            404: _problem("No such report at your facility."),
        },
    )
    def set_status(
        report_id: Annotated[uuid.UUID, Path(description="The report's UUID.")],
        body: schemas.StatusUpdate,
        who: Authenticated,
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

    @app.get(f"{API}/reference", response_model=schemas.ReferenceData, tags=["reference"], responses=_AUTHED)
    def reference(who: Authenticated) -> schemas.ReferenceData:
        """Units/locations and form versions, for the client to cache for offline use."""
        with db.reader() as tx:
            units = store.list_units(tx)
        return schemas.ReferenceData(
            units=[schemas.Unit(code=c, name=n) for c, n in units],
            form_catalogue_version=CURRENT_FORM_VERSION,
            form_versions=list(available_versions()),
        )

    @app.get("/healthz", response_model=schemas.Health, tags=["operations"], responses=_ADMISSION)
    def healthz() -> schemas.Health:
        """200 when the server takes requests and its database answers; 503 while draining."""
        with db.reader() as tx:
            tx.one("SELECT 1")
        return schemas.Health(status="ok", database=db.dialect.name)

    return app
