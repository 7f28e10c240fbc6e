"""What every router shares: the ``Problem`` refusal, the answers each operation documents, and the
dependencies that hand a route the server's database, settings, authenticator and signed-in account.

The application's objects live on ``app.state`` (set by :func:`pso_server.app.create_app`); the small getters
below are ``async`` so FastAPI calls them on the event loop instead of a worker thread (they do no I/O).
:func:`principal` checks a token in the database, so it is a plain ``def`` and runs on a worker thread.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from pso_server import schemas
from pso_server.auth import Authenticator, AuthFailed, CredentialRevoked, Principal
from pso_server.catalogues import Catalogues
from pso_server.config import ServerConfig
from pso_server.proxies import TrustedProxies
from pso_server.sealing import SealingKeys
from pso_server.store import Database, DeviceHolder

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


def problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    """The OpenAPI ``responses`` entry of a ``Problem`` answer."""
    doc: dict[str, Any] = {"model": schemas.Problem, "description": description}
    if retry_after:
        doc["headers"] = {
            "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
        }
    return doc


# Every operation can meet the admission middleware, so every operation documents its answers.
ADMISSION: dict[int | str, dict[str, Any]] = {
    400: problem("The request could not be read (for example a body that is not UTF-8 JSON)."),
    401: problem("A device credential was presented: it is accepted only by POST /api/v1/sealed/batch."),
    408: problem("The request body did not arrive in time; send the request again."),
    413: problem("The request body is larger than the server accepts; 'limit' gives the byte limit."),
    429: problem("Too many requests from this client (or too many failed sign-ins).", retry_after=True),
    503: problem("The server is draining, overloaded or its database is unavailable.", retry_after=True),
}
AUTHED: dict[int | str, dict[str, Any]] = {
    **ADMISSION,
    401: problem(
        "Missing, expired or revoked access token (refresh it or sign in), or a device credential, which only "
        "POST /api/v1/sealed/batch accepts."
    ),
}

bearer = HTTPBearer(auto_error=False, description="The access token from /auth/login or /auth/refresh.")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _config(request: Request) -> ServerConfig:
    config: ServerConfig = request.app.state.config
    return config


async def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def _catalogues(request: Request) -> Catalogues:
    published: Catalogues = request.app.state.catalogues
    return published


async def _sealing(request: Request) -> SealingKeys:
    keys: SealingKeys = request.app.state.sealing
    return keys


async def _proxies(request: Request) -> TrustedProxies:
    proxies: TrustedProxies = request.app.state.proxies
    return proxies


Db = Annotated[Database, Depends(_db)]
Config = Annotated[ServerConfig, Depends(_config)]
Auth = Annotated[Authenticator, Depends(_auth)]
Proxies = Annotated[TrustedProxies, Depends(_proxies)]
Published = Annotated[Catalogues, Depends(_catalogues)]
Sealing = Annotated[SealingKeys, Depends(_sealing)]


def principal(credentials: BearerCredentials, auth: Auth) -> Principal:
    """The signed-in account, from the bearer access token; 401 otherwise."""
    if credentials is None:
        raise ApiError(
            401,
            "unauthorized",
            "Sign in first: this request needs an access token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return auth.authenticate(credentials.credentials)
    except AuthFailed as exc:
        raise ApiError(
            401, "unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


Authenticated = Annotated[Principal, Depends(principal)]


device_header = APIKeyHeader(
    name="Authorization",
    scheme_name="DeviceCredential",
    auto_error=False,
    description="'Device <token>': the device credential from /auth/device-credential (sealed uploads only).",
)


def device_holder(header: Annotated[str | None, Depends(device_header)], auth: Auth) -> DeviceHolder:
    """The account behind the ``Authorization: Device <token>`` header; 401 for anything else (a sign-in
    token included), ``credential_revoked`` for a revoked credential."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "device" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "This endpoint takes a device credential ('Authorization: Device <token>'), not a sign-in token.",
            headers={"WWW-Authenticate": "Device"},
        )
    try:
        return auth.authenticate_device(token.strip())
    except CredentialRevoked as exc:
        raise ApiError(401, "credential_revoked", str(exc), headers={"WWW-Authenticate": "Device"}) from None
    except AuthFailed as exc:
        raise ApiError(401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Device"}) from None


Device = Annotated[DeviceHolder, Depends(device_holder)]
"""The account behind a device credential (only the sealed upload takes one)."""
