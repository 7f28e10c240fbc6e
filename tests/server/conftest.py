"""Fixtures for the reference server: a real server on loopback over TLS, on SQLite and (when
PSO_TEST_POSTGRES_URL is set) on PostgreSQL, each test with its own empty database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pso_server.config import Limits, ServerConfig
from pso_server.testing import TEST_KDF, RunningServer, run_server
from pso_server.tls import TlsFiles, make_demo_tls
from tests.server.support import Api, FakeClock, ServerFactory

POSTGRES_ENV = "PSO_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def server_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "pso-server-home"
    monkeypatch.setenv("PSO_SERVER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """One throwaway CA and loopback certificate for the whole run (no trust store is touched)."""
    return make_demo_tls(tmp_path_factory.mktemp("tls"))


@contextmanager
def _postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards; the URL selects it via search_path."""
    import psycopg

    schema = f"pso_test_{secrets.token_hex(6)}"
    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL backend not tested: set {POSTGRES_ENV}=postgresql://user:pw@host/db to run it")
    with _postgres_schema(base) as url:
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
        config = ServerConfig(kdf=TEST_KDF, clock=clock, drain_seconds=0.5)
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
