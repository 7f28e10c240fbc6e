"""The two ends of a sync in the client's tests: the real reference server over TLS on loopback with one account,
an unlocked profile, and the sync engine set up for tests.

The ``server`` and ``session`` fixtures (tests/support/fixtures.py) are built from these; a test that needs a
second server, other accounts or another configuration calls :func:`practice_server` itself.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend

from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services import syncing
from pso_desktop.services.workstation import Session, Workstation
from pso_desktop.sync.engine import RetryPolicy, SyncEngine
from pso_desktop.sync.transport import ApiClient, ServerSettings
from pso_server.config import ServerConfig
from pso_server.practice import RunningServer, run_server
from pso_server.tls import TlsFiles
from tests.support.kdf import CHEAP_KDF, SERVER_KDF

ACCOUNT = "nurse1"  # the account on the server, and the name of the profile that signs in with it
PASSWORD = "nurse1 password"  # the account's password on the server
SECRET = "ward pc secret 123"  # the profile's secret on the workstation

FAST_RETRIES = RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_wait_seconds=0.2)


@dataclass(frozen=True)
class Account:
    """An account on the server beyond its password: its role and facility (the server's defaults otherwise)."""

    password: str
    role: str = "reporter"
    facility: str = "General Hospital"


@contextmanager
def practice_server(
    data_dir: Path,
    accounts: Mapping[str, str | Account] | None = None,
    *,
    db_url: str | None = None,
    tls: TlsFiles | None = None,
    **config: Any,
) -> Iterator[RunningServer]:
    """The reference server in-process over TLS, with cheap password hashing and ``config`` overriding fields of
    ServerConfig; ``accounts`` (user name to password or Account, by default ACCOUNT with PASSWORD) are created
    first. ``data_dir`` holds its throwaway CA and, unless ``db_url`` names another, its SQLite database; ``tls``
    reuses the certificate of an earlier run (a server that comes back)."""
    server_config = ServerConfig(**{"kdf": SERVER_KDF, **config})
    with run_server(db_url=db_url, data_dir=data_dir, config=server_config, tls=tls) as running:
        for username, account in ({ACCOUNT: PASSWORD} if accounts is None else accounts).items():
            held = Account(account) if isinstance(account, str) else account
            running.add_user(username, held.password, role=held.role, facility=held.facility)
        yield running


def make_workstation(home: Path, backend: KeyringBackend) -> Workstation:
    """The workstation services on ``home``, keys in ``backend`` wrapped with the cheap KDF."""
    return Workstation(home, keys=ProfileKeys(home, backend=backend, kdf=CHEAP_KDF))


@contextmanager
def open_session(
    home: Path, backend: KeyringBackend, name: str = ACCOUNT, secret: str = SECRET
) -> Iterator[Session]:
    """A new profile ``name`` on ``home``, unlocked for the ``with`` block."""
    services = make_workstation(home, backend)
    services.create_profile(name, secret)
    with services.session(name, secret) as opened:
        yield opened


def settings(server: RunningServer) -> ServerSettings:
    """How a profile reaches ``server``: its URL and the throwaway CA that signed its certificate."""
    return ServerSettings(server.base_url, ca_file=str(server.ca_path))


def link(session: Session, server: RunningServer, username: str = ACCOUNT, password: str = PASSWORD) -> None:
    """Signs the profile in to ``server``, as the sign-in dialog or ``pso-desktop login`` does."""
    syncing.login(session, settings(server), username, password)


def make_engine(session: Session, api: ApiClient, **options: Any) -> SyncEngine:
    """The sync engine of ``session`` over ``api``; retries fast unless ``policy`` says otherwise."""
    options.setdefault("policy", FAST_RETRIES)
    return SyncEngine(session.store, session.account, api, **options)


def make_client(
    url: str,
    ca: Path,
    *,
    proxy: str | None = None,
    read_timeout: float = 30.0,
    proxy_from_environment: bool = False,
) -> ApiClient:
    return ApiClient(
        ServerSettings(
            url,
            ca_file=str(ca),
            proxy=proxy,
            read_timeout=read_timeout,
            proxy_from_environment=proxy_from_environment,
        )
    )


class FakeTime:
    """The engine's sleep and clock for a test that must not wait: each sleep only moves the clock, so the
    retry budget is spent (and every wait recorded) in no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def engine_options(self) -> dict[str, Any]:
        return {"sleep": self.sleep, "clock": self.clock, "rng": random.Random(7)}
