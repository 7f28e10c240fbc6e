"""Fixtures of the sync tests: the real reference server over TLS with one account, and an unlocked profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pso_desktop.security.kdf import KdfParams
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services.workstation import Session, Workstation
from pso_server.config import ServerConfig
from pso_server.testing import TEST_KDF, RunningServer, run_server
from tests.support.memory_keyring import MemoryKeyring

SECRET = "ward pc secret 123"
PASSWORD = "nurse1 password"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with run_server(data_dir=tmp_path / "server", config=ServerConfig(kdf=TEST_KDF)) as running:
        running.add_user("nurse1", PASSWORD)
        yield running


@pytest.fixture
def session(pso_home: Path, memory_keyring: MemoryKeyring) -> Iterator[Session]:
    workstation = Workstation(
        pso_home, keys=ProfileKeys(pso_home, backend=memory_keyring, kdf=KdfParams(1024, 1, 1))
    )
    workstation.create_profile("nurse1", SECRET)
    with workstation.session("nurse1", SECRET) as opened:
        yield opened
