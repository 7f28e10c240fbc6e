"""Fixtures of the whole suite that need more than the data root: a pytest plugin, named once in
tests/conftest.py. A conftest or test module nearer a test may still define a fixture of the same name; pytest
uses the nearest, and that one may ask for this one by its name to build on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pso_desktop.services.workstation import Session
from pso_server.practice import RunningServer
from tests.support.memory_keyring import MemoryKeyring
from tests.support.sync import open_session, practice_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The real reference server over TLS on loopback, with the account ACCOUNT (PASSWORD) of tests/support/sync."""
    with practice_server(tmp_path / "server") as running:
        yield running


@pytest.fixture
def session(pso_home: Path, memory_keyring: MemoryKeyring) -> Iterator[Session]:
    """The profile ACCOUNT (SECRET) of tests/support/sync, unlocked, its key in the in-memory keyring."""
    with open_session(pso_home, memory_keyring) as opened:
        yield opened
