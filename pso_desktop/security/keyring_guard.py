"""Deciding whether a keyring backend may hold a wrapped data key.

Checks go by module and class name (through the whole class hierarchy), so the plaintext backends of
``keyrings.alt`` are recognised without that package being installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from keyring.backend import KeyringBackend

_FAIL_MODULE = "keyring.backends.fail"
_NULL_MODULE = "keyring.backends.null"
_CHAINER_MODULE = "keyring.backends.chainer"
# keyrings.alt's file backends (PlaintextKeyring, EncryptedKeyring, ...) keep secrets in a file in the home
# folder with, at best, their own password; its other backends are legacy. None of them is acceptable.
_ALT_PACKAGE = "keyrings.alt"
_PLAINTEXT_NAME = re.compile(r"plaintext|uncrypted|unencrypted", re.IGNORECASE)

_FRIENDLY_NAMES = {
    "keyring.backends.SecretService.Keyring": "the Secret Service (GNOME Keyring or KWallet)",
    "keyring.backends.libsecret.Keyring": "the Secret Service (through libsecret)",
    "keyring.backends.kwallet.DBusKeyring": "KWallet",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Manager",
    "keyring.backends.macOS.Keyring": "the macOS Keychain",
    "keyring.backends.fail.Keyring": "no keyring at all",
    "keyring.backends.null.Keyring": "a disabled keyring",
}


@dataclass(frozen=True)
class BackendVerdict:
    """Whether a backend is secure, and why, in words that can be put in a message."""

    secure: bool
    reason: str
    backend_name: str
    # The backend to store keys in: the backend itself, or a chainer's best secure child (a chainer writes
    # to its first child that accepts, which could be an insecure one).
    effective: KeyringBackend | None = field(default=None, compare=False, repr=False)


def backend_name(backend: KeyringBackend) -> str:
    """``module.Class`` of a backend, as recorded in profile.json."""
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_backend(name: str) -> str:
    """A human name for a recorded backend class name."""
    return _FRIENDLY_NAMES.get(name, name)


def classify_backend(backend: KeyringBackend) -> BackendVerdict:
    """Classifies ``backend``. Never raises: a backend that fails to report its priority is insecure."""
    name = backend_name(backend)
    if _is_chainer(backend):
        return _classify_chainer(backend, name)
    for cls in type(backend).__mro__:
        module = cls.__module__
        if module == _FAIL_MODULE:
            return BackendVerdict(False, "no system keyring is available", name)
        if module == _NULL_MODULE:
            return BackendVerdict(False, "the keyring is disabled (null backend)", name)
        if module == _ALT_PACKAGE or module.startswith(_ALT_PACKAGE + "."):
            return BackendVerdict(False, f"the keyring backend {name} keeps secrets in a plain file", name)
        if _PLAINTEXT_NAME.search(cls.__name__):
            return BackendVerdict(False, f"the keyring backend {name} keeps secrets in plain text", name)
    try:
        priority = float(backend.priority)
    except Exception as exc:  # a backend signals "not usable here" by raising from priority
        return BackendVerdict(False, f"the keyring backend {name} is not usable ({type(exc).__name__})", name)
    if priority <= 0:
        return BackendVerdict(False, f"the keyring backend {name} reports itself as unsuitable", name)
    return BackendVerdict(True, f"keys are kept in {describe_backend(name)}", name, backend)


def _is_chainer(backend: KeyringBackend) -> bool:
    return any(
        cls.__module__ == _CHAINER_MODULE and cls.__name__ == "ChainerBackend" for cls in type(backend).__mro__
    )


def _classify_chainer(backend: KeyringBackend, name: str) -> BackendVerdict:
    try:
        children = list(getattr(backend, "backends", []))
    except Exception as exc:
        return BackendVerdict(False, f"the keyring chainer cannot list its backends ({type(exc).__name__})", name)
    # The chainer sorts its children by priority, highest first; keep that order.
    for child in children:
        verdict = classify_backend(child)
        if verdict.secure:
            return BackendVerdict(True, verdict.reason, name, verdict.effective)
    return BackendVerdict(False, "the keyring chainer holds no secure backend", name)


def names_reachable(backend: KeyringBackend) -> set[str]:
    """The backend's own class name and, for a chainer, the names of all its children."""
    names = {backend_name(backend)}
    if _is_chainer(backend):
        try:
            names.update(backend_name(child) for child in getattr(backend, "backends", []))
        except Exception:  # listing failed: the chainer reaches nothing beyond itself
            return names
    return names
