"""Sign-in, token refresh and sign-out (``/api/v1/auth/…``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from pso_server import schemas, store
from pso_server.auth import AuthFailed, TokenPair, TooManyAttempts
from pso_server.routers.deps import (
    ADMISSION,
    API,
    AUTHED,
    ApiError,
    Auth,
    Authenticated,
    BearerCredentials,
    Proxies,
    Sealing,
    problem,
)
from pso_server.routers.sealed import sealing_key_out

router = APIRouter(prefix=f"{API}/auth", tags=["auth"])


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


@router.post(
    "/login",
    response_model=schemas.TokenResponse,
    responses={**ADMISSION, 401: problem("Wrong user name or password.")},
)
def login(
    body: schemas.LoginRequest, request: Request, auth: Auth, proxies: Proxies, keys: Sealing
) -> schemas.TokenResponse:
    """Signs in with a password and opens a session for one device; the answer carries the PSO's current
    sealing key for the sealed outbox."""
    address = proxies.client_of_scope(request.scope)
    key = sealing_key_out(keys.current())  # read first: a session is never opened for an answer that fails
    try:
        pair = auth.login(body.username, body.password, body.device_name, address, body.device_token)
        return _tokens(pair).model_copy(update={"sealing_key": key})
    except TooManyAttempts as exc:
        raise ApiError(429, "too_many_attempts", str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except AuthFailed as exc:
        raise ApiError(401, "wrong_credentials", str(exc)) from None


@router.post(
    "/refresh",
    response_model=schemas.TokenResponse,
    responses={**ADMISSION, 401: problem("The refresh token is unknown, expired, reused or revoked.")},
)
def refresh(body: schemas.RefreshRequest, auth: Auth) -> schemas.TokenResponse:
    """Exchanges a refresh token for a new access token and a new refresh token (rotation)."""
    try:
        return _tokens(auth.refresh(body.refresh_token))
    except AuthFailed as exc:
        raise ApiError(401, "session_ended", str(exc)) from None


@router.post("/logout", response_model=schemas.LogoutResponse, responses=ADMISSION)
def logout(
    credentials: BearerCredentials, auth: Auth, body: schemas.LogoutRequest | None = None
) -> schemas.LogoutResponse:
    """Ends the session named by the bearer access token or by the refresh token in the body."""
    access = credentials.credentials if credentials else None
    return schemas.LogoutResponse(signed_out=auth.logout(access, body.refresh_token if body else None))


@router.post("/device-credential", response_model=schemas.DeviceCredentialResponse, responses=AUTHED)
def device_credential(
    who: Authenticated, auth: Auth, body: schemas.DeviceCredentialRequest | None = None
) -> schemas.DeviceCredentialResponse:
    """A credential that can only upload sealed envelopes for this account (POST /sealed/batch), for the
    workstation's agent while the profile is locked or the app closed. It is revoked with this session, with
    every session of the account and with the account (and by 'pso-server device-credentials revoke')."""
    issued = auth.issue_device_credential(who, body.device_name if body else "")
    return schemas.DeviceCredentialResponse(
        credential_id=issued.credential_id, token=issued.token, account=issued.account
    )
