"""Keyring backends that stand for the weak, broken or different keyrings a workstation may offer.

They store entries in memory like tests/support/memory_keyring.py, so a test can see whether anything was
written where it must not be. keyring registers every backend class globally (it may auto-select one later
in the run), so each class defined here is taken out of that registry again.
"""

from __future__ import annotations

import keyring.backends.fail
import keyring.backends.null
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend
from keyring.compat import properties

from tests.support.memory_keyring import MemoryKeyring


class PlaintextKeyring(MemoryKeyring):
    """Named like keyrings.alt.file.PlaintextKeyring; a positive priority, yet it must never be used."""


class AltEncryptedKeyring(MemoryKeyring):
    """Poses as a class from the keyrings.alt package (which need not be installed)."""


AltEncryptedKeyring.__module__ = "keyrings.alt.file"
AltEncryptedKeyring.__qualname__ = AltEncryptedKeyring.__name__ = "EncryptedKeyring"


class ZeroPriorityKeyring(MemoryKeyring):
    priority = 0


class UnusableKeyring(MemoryKeyring):
    """A backend that cannot run here: like SecretService without a D-Bus session, priority raises."""

    @properties.classproperty
    def priority(cls) -> float:  # type: ignore[override]
        raise RuntimeError("no D-Bus session bus")


class OtherSecureKeyring(MemoryKeyring):
    """A second, different secure backend, as after moving from one desktop keyring to another."""


class FailingKeyring(MemoryKeyring):
    """A secure backend whose calls fail with a given exception (D-Bus errors, a crashed daemon, ...)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error


class ForgetfulKeyring(MemoryKeyring):
    """Accepts writes and keeps nothing, like a chainer whose children all decline."""

    def set_password(self, service: str, username: str, password: str) -> None:
        return None


def _unregister(*classes: type) -> None:
    registry: set[type] = getattr(KeyringBackend, "_classes", set())
    for cls in classes:
        registry.discard(cls)


# keyring's own backends have untyped constructors; these give tests typed ones.
def fail_keyring() -> KeyringBackend:
    return keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]


def null_keyring() -> KeyringBackend:
    return keyring.backends.null.Keyring()  # type: ignore[no-untyped-call]


def chainer_of(*children: KeyringBackend) -> KeyringBackend:
    """A keyring ChainerBackend over exactly ``children`` (highest priority first)."""
    cls = type("ChainerBackend", (ChainerBackend,), {"backends": list(children)})
    _unregister(cls)
    return cls()  # type: ignore[no-any-return]


_unregister(
    PlaintextKeyring,
    AltEncryptedKeyring,
    ZeroPriorityKeyring,
    UnusableKeyring,
    OtherSecureKeyring,
    FailingKeyring,
    ForgetfulKeyring,
)
