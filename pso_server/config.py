"""Server settings: limits, token lifetimes and where the server keeps its files.

Every value has a production default; tests and the benchmark pass their own :class:`ServerConfig`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "PSO Server"

Clock = Callable[[], float]
"""Seconds since the epoch; injectable so tests can move time forward (token expiry, sign-in limits)."""


@dataclass(frozen=True)
class Limits:
    """Back-pressure and abuse limits. The defaults are generous so a normal sync is never throttled."""

    max_reports_per_batch: int = 500
    max_body_bytes: int = 8 * 1024 * 1024
    requests_per_second: float = 100.0  # sustained rate per client address
    request_burst: int = 400  # requests a client may send at once before the sustained rate applies
    max_in_flight: int = 128  # requests handled at once before new ones get 503
    body_timeout_seconds: float = 60.0  # a request body must arrive whole within this time, else 408
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_failure_window_seconds: float = 15 * 60


@dataclass(frozen=True)
class KdfParams:
    """argon2id cost for account passwords. The default is RFC 9106's second recommended option (64 MiB,
    3 passes, 4 lanes: about half a second on a small server); tests pass a lighter one to stay fast."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4


@dataclass(frozen=True)
class ServerConfig:
    """Everything the application needs besides its database."""

    limits: Limits = field(default_factory=Limits)
    kdf: KdfParams = field(default_factory=KdfParams)
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    drain_seconds: float = 5.0  # after SIGTERM: answer 503 this long, then stop
    retry_after_seconds: int = 5  # what 503 answers tell clients to wait
    status_page_size: int = 500
    # Addresses or networks of the load balancers / reverse proxies whose X-Forwarded-For is believed (see
    # proxies.py); empty (the default): the TCP peer is the client, whatever the headers say.
    trusted_proxies: tuple[str, ...] = ()
    known_device_ttl_seconds: int = 180 * 24 * 3600  # a device unused this long is unknown again
    clock: Clock = time.time


def server_home() -> Path:
    """The server's data folder: ``PSO_SERVER_HOME`` when set, otherwise the platform's data folder.

    Created on first use with owner-only permissions (it holds the database and private keys).
    """
    configured = os.environ.get("PSO_SERVER_HOME")
    root = Path(configured) if configured else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def default_db_url() -> str:
    """The SQLite database inside :func:`server_home`."""
    return f"sqlite:///{server_home() / 'pso-server.db'}"
