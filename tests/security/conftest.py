"""Fixtures for the security tests: cheap KDF parameters, a clock the test controls, a ProfileKeys factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend

from pso_desktop.security import KdfParams
from pso_desktop.security.profiles import KeyPolicy, ProfileKeys
from tests.support.memory_keyring import MemoryKeyring

# Real argon2id, just cheap: the production cost is exercised by its own test.
FAST_KDF = KdfParams(memory_kib=256, time_cost=1, parallelism=1)
SECRET_A = "correct horse battery"
SECRET_B = "Tr0ub4dor&3-nurse-b"


class FakeClock:
    """A wall clock that only moves when the test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def no_machine_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """An IT policy named in the environment running the tests must not change them."""
    monkeypatch.delenv("PSO_DESKTOP_POLICY", raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeKeys = Callable[..., ProfileKeys]


@pytest.fixture
def make_keys(pso_home: Path, memory_keyring: MemoryKeyring, clock: FakeClock) -> MakeKeys:
    """Builds a ProfileKeys on the test's data root; defaults: the memory keyring, fast KDF, fake clock,
    and an explicit default policy (so no policy file on the machine can leak in)."""

    def make(
        backend: KeyringBackend | None = None,
        policy: KeyPolicy | None = None,
        kdf: KdfParams | None = FAST_KDF,
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
