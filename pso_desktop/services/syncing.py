"""Use cases of the PSO link: sign in (link the profile to its account), sync, sign out.

Qt-free and synchronous, like the rest of the services: the CLI calls them directly and the GUI on its worker.
Every one writes an audit entry (no PHI: counts and outcomes only).
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Callable

from pso_desktop.security.profiles import ServerPolicy
from pso_desktop.services import sealing
from pso_desktop.services.workstation import Session
from pso_desktop.storage.account import Account
from pso_desktop.storage.errors import StorageError
from pso_desktop.sync.engine import DEFAULT_BATCH_REPORTS, Progress, RetryPolicy, SyncEngine, SyncSummary
from pso_desktop.sync.errors import InvalidServerAddress, NotLinked, SignInRequired, SyncError
from pso_desktop.sync.transport import ApiClient, ServerSettings, Tokens

_log = logging.getLogger(__name__)


def default_device_name() -> str:
    """How this workstation appears in the account's session list (the computer's name; never a person's)."""
    return f"PSO Desktop on {platform.node() or 'a workstation'}"[:200]


def login(
    session: Session, settings: ServerSettings, username: str, password: str, *, device_name: str | None = None
) -> dict[str, str]:
    """Signs in to the PSO server and links the profile to that account; returns the account's user info.

    The refresh token is stored inside the encrypted database; the access token is not kept.
    """
    device = device_name or default_device_name()
    with ApiClient(settings) as api:
        tokens = api.login(username, password, device, session.account.device_token(settings.url))
        _link(session, settings, username, device, tokens)
        # The PSO's sealing key from this verified sign-in, and a device credential for the agent.
        sealing.enrol(session, api, lambda: tokens.access_token, settings, tokens.sealing_key, device)
    session.audit.append("sign_in", actor=session.profile, detail="linked to a PSO account")
    return {key: str(value) for key, value in tokens.user.items()}


def _link(session: Session, settings: ServerSettings, username: str, device: str, tokens: Tokens) -> None:
    if tokens.device_token:
        session.account.set_device_token(settings.url, tokens.device_token)
    session.account.link(
        Account(
            server_url=settings.url,
            username=username,
            device_name=device,
            # Absolute: a later sync may run from another folder (a scheduled task, the desktop app).
            ca_file=os.path.abspath(settings.ca_file) if settings.ca_file else None,
            proxy=settings.proxy,
            refresh_token=tokens.refresh_token,
        )
    )


class ServerFixedByPolicy(SyncError):
    """IT's policy names the PSO server; another one was asked for."""


def choose_server(
    server_policy: ServerPolicy | None,
    url: str | None,
    *,
    ca_file: str | None = None,
    proxy: str | None = None,
    proxy_from_environment: bool = False,
) -> ServerSettings:
    """Where to sign in: the server IT's policy names (its CA file and proxy win over those given), else ``url``.
    ``proxy_from_environment`` is IT policy's (see ``KeyPolicy``), never a person's choice."""
    if server_policy is None:
        if not url:
            raise InvalidServerAddress("Give the PSO server's address with --server (IT's policy names none).")
        return ServerSettings(url, ca_file=ca_file, proxy=proxy, proxy_from_environment=proxy_from_environment)
    if url and url.rstrip("/") != server_policy.url.rstrip("/"):
        raise ServerFixedByPolicy(
            f"IT policy fixes the PSO server at {server_policy.url}; sign in without choosing another server."
        )
    return ServerSettings(
        server_policy.url,
        ca_file=server_policy.ca_file or ca_file,
        proxy=server_policy.proxy or proxy,
        proxy_from_environment=proxy_from_environment,
    )


def settings_of(
    account: Account, server_policy: ServerPolicy | None = None, *, proxy_from_environment: bool = False
) -> ServerSettings:
    """How to reach the linked account's server; IT's policy, when it names a server, must name this one,
    and its CA file and proxy apply (IT may change them after people signed in)."""
    if server_policy is None:
        return ServerSettings(
            account.server_url,
            ca_file=account.ca_file,
            proxy=account.proxy,
            proxy_from_environment=proxy_from_environment,
        )
    if account.server_url.rstrip("/") != server_policy.url.rstrip("/"):
        raise SignInRequired(
            "IT policy now names a different PSO server; sign in again with 'pso-desktop login'. "
            "Your reports stay queued."
        )
    return ServerSettings(
        account.server_url,
        ca_file=server_policy.ca_file or account.ca_file,
        proxy=server_policy.proxy or account.proxy,
        proxy_from_environment=proxy_from_environment,
    )


def sync(
    session: Session,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    policy: RetryPolicy | None = None,
    batch_reports: int = DEFAULT_BATCH_REPORTS,
    server_policy: ServerPolicy | None = None,
    proxy_from_environment: bool = False,
    keep_closed_days: float | None = None,
    statuses: bool = True,
) -> SyncSummary:
    """Sends every queued report and, with ``statuses``, pulls the PSO's statuses; for a risk manager, also the
    facility's reports and review records (see :class:`SyncEngine`). ``keep_closed_days`` is IT's retention of
    closed facility reports."""
    account = session.account.get()
    if account is None:
        raise NotLinked()
    engine: SyncEngine | None = None
    try:
        settings = settings_of(account, server_policy, proxy_from_environment=proxy_from_environment)
        with ApiClient(settings) as api:
            engine = SyncEngine(
                session.store,
                session.account,
                api,
                policy=policy,
                on_progress=on_progress,
                should_stop=should_stop,
                batch_reports=batch_reports,
                facility=session.facility,
                keep_closed_days=keep_closed_days,
                statuses=statuses,
            )
            summary = engine.run()
            _sealed_after_sync(session, api, engine, settings, account.device_name, summary)
    except SyncError as exc:
        session.audit.append("sync", actor=session.profile, detail=f"failed: {type(exc).__name__}")
        raise
    finally:
        if engine is not None and engine.purged:
            # The backups still hold what was just purged (a disabled account's purge raises SignInRequired).
            session.replace_backups_after_purge()
    session.audit.append(
        "sync",
        actor=session.profile,
        detail=f"{summary.submitted} submitted, {summary.needs_attention} need attention, "
        f"{summary.remaining} still queued; facility: {summary.facility_reports} reports fetched, "
        f"{summary.review_records} review records, {summary.facility_purged} purged",
    )
    return summary


def _sealed_after_sync(
    session: Session,
    api: ApiClient,
    engine: SyncEngine,
    settings: ServerSettings,
    device: str,
    summary: SyncSummary,
) -> None:
    """A rotated sealing key from /reference, a device credential for a profile signed in before the sealed
    outbox, and the spool entries the outbox has now sent removed. Never fails the sync."""
    try:
        if summary.problem is None:
            reference = session.account.reference() or {}
            sealing.enrol(session, api, engine.access_token, settings, reference.get("sealing_key"), device)
        sealing.reconcile(session)
    except (SyncError, OSError, StorageError) as exc:
        _log.warning("the sealed outbox was not brought up to date: %s", type(exc).__name__)


def sign_out(
    session: Session, *, server_policy: ServerPolicy | None = None, proxy_from_environment: bool = False
) -> None:
    """Ends the PSO session on the server when reachable, and always forgets the tokens locally. IT's policy
    (CA file, proxy) applies as it does to sync, so the server can be reached to revoke the token."""
    account = session.account.get()
    if account is None:
        return
    try:
        if account.refresh_token:
            settings = settings_of(account, server_policy, proxy_from_environment=proxy_from_environment)
            with ApiClient(settings) as api:
                api.logout(account.refresh_token, None)
    except SyncError:
        pass  # offline: the refresh token is wiped below and expires on the server by itself
    finally:
        session.account.set_refresh_token(None)
        session.audit.append("sign_out", actor=session.profile, detail="PSO tokens wiped")
