"""Fixtures for the security tests: a clock the test controls, a ProfileKeys factory (cheap KDF, in-memory keyring)."""

from __future__ import annotations

from pathlib import Path

import pytest
from keyring.backend import KeyringBackend

from pso_desktop.security import KdfParams
from pso_desktop.security.profiles import KeyPolicy, ProfileKeys
from tests.support.clock import FakeClock
from tests.support.kdf import CHEAP_KDF
from tests.support.memory_keyring import MemoryKeyring
from tests.support.profile_keys import CLOCK_START, MakeKeys


@pytest.fixture(autouse=True)
def no_machine_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """An IT policy named in the environment running the tests must not change them."""
    monkeypatch.delenv("PSO_DESKTOP_POLICY", raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(CLOCK_START)


@pytest.fixture
def make_keys(pso_home: Path, memory_keyring: MemoryKeyring, clock: FakeClock) -> MakeKeys:
    """Builds a ProfileKeys on the test's data root; defaults: the memory keyring, fast KDF, fake clock,
    and an explicit default policy (so no policy file on the machine can leak in)."""

    def make(
        backend: KeyringBackend | None = None,
        policy: KeyPolicy | None = None,
        kdf: KdfParams | None = CHEAP_KDF,
    ) -> ProfileKeys:
        return ProfileKeys(
            pso_home,
            backend=backend if backend is not None else memory_keyring,
            policy=policy if policy is not None else KeyPolicy(),
            kdf=kdf,
            clock=clock,
        )

    return make


@pytest.fixture
def keys(make_keys: MakeKeys) -> ProfileKeys:
    return make_keys()
