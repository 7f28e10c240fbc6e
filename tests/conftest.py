"""Test isolation: every test gets its own PSO_DESKTOP_HOME, temp folder and in-memory keyring."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from pso_desktop.security.keyring_guard import admit_for_tests
from tests.support.memory_keyring import MemoryKeyring

# The suite's shared fixtures (the reference server, an unlocked profile) live in tests/support, registered here once.
pytest_plugins = ["tests.support.fixtures"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The in-memory keyring is not a keychain production trusts: the test suite admits it here, explicitly, for the
# processes pytest runs (CLI subprocesses do not load this file, and tests/cli/test_keyring_allow_list.py shows
# a production process refusing it).
admit_for_tests(MemoryKeyring)


@pytest.fixture(autouse=True)
def pso_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data root per test; the temp folder is redirected too so stray temp files can be scanned."""
    home = tmp_path / "pso-home"
    home.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("PSO_DESKTOP_HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.delenv("PSO_DESKTOP_PROFILE", raising=False)
    monkeypatch.delenv("PSO_DESKTOP_POLICY", raising=False)
    return home


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Installs an in-memory keyring as the process-wide backend for the test's duration."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
