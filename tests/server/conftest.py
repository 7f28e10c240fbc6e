"""Fixtures for the reference server: a real server on loopback over TLS, on SQLite and (when
PSO_TEST_POSTGRES_URL is set) on PostgreSQL, each test with its own empty database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pso_server.config import Limits, ServerConfig
from pso_server.practice import RunningServer, run_server
from pso_server.tls import TlsFiles, make_demo_tls
from tests.server.support import Api, ServerFactory
from tests.support.clock import FakeClock
from tests.support.kdf import SERVER_KDF
from tests.support.postgres import POSTGRES_ENV, postgres_schema


@pytest.fixture(autouse=True)
def server_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "pso-server-home"
    monkeypatch.setenv("PSO_SERVER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """One throwaway CA and loopback certificate for the whole run (no trust store is touched)."""
    return make_demo_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL backend not tested: set {POSTGRES_ENV}=postgresql://user:pw@host/db to run it")
    with postgres_schema(base) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_server(db_url: str, tls_files: TlsFiles, tmp_path: Path, clock: FakeClock) -> ServerFactory:
    """Starts a server on this test's database; keyword arguments override Limits or ServerConfig fields."""

    @contextmanager
    def factory(**overrides: Any) -> Iterator[RunningServer]:
        limit_fields = {k: v for k, v in overrides.items() if k in Limits.__dataclass_fields__}
        config_fields = {k: v for k, v in overrides.items() if k not in limit_fields}
        config = ServerConfig(kdf=SERVER_KDF, clock=clock, drain_seconds=0.5)
        config = replace(config, limits=replace(config.limits, **limit_fields), **config_fields)
        with run_server(db_url=db_url, data_dir=tmp_path / "server", config=config, tls=tls_files) as server:
            yield server

    return factory


@pytest.fixture
def server(make_server: ServerFactory) -> Iterator[RunningServer]:
    with make_server() as running:
        yield running


@pytest.fixture
def api(server: RunningServer) -> Iterator[Api]:
    with Api(server) as client:
        yield client
