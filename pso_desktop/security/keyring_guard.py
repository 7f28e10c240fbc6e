"""Deciding whether a keyring backend may hold a wrapped data key.

An allow-list: a backend is secure only if its class is exactly one of the platform keychains we know
(Windows Credential Manager, the macOS Keychain, the Secret Service, KWallet), or a class IT's policy names
(``allowed_keyring_backends``). Any other backend -- a custom class loaded through ``PYTHON_KEYRING_BACKEND``
or ``keyringrc.cfg``, a subclass of a known one, a class that only claims a known module and name -- is not
secure, whatever priority it reports. The named refusals (fail, null, ``keyrings.alt``, plaintext) come first
and hold even when a policy names such a class, so their reasons stay specific.

A class is matched by identity, not by the name it reports: the name is looked up among the modules already
imported and must resolve to the very class of the backend. Tests admit their in-memory keyring with
``admit_for_tests`` (called from the test suite's own conftest, never from a module a production process could
be made to import), so nothing in a production process admits it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import keyring
from keyring.backend import KeyringBackend

from pso_desktop.security.errors import KeyringConfigError

_FAIL_MODULE = "keyring.backends.fail"
_NULL_MODULE = "keyring.backends.null"
_CHAINER_MODULE = "keyring.backends.chainer"
# keyrings.alt's file backends (PlaintextKeyring, EncryptedKeyring, ...) keep secrets in a file in the home
# folder with, at best, their own password; its other backends are legacy. None of them is acceptable.
_ALT_PACKAGE = "keyrings.alt"
_PLAINTEXT_NAME = re.compile(r"plaintext|uncrypted|unencrypted", re.IGNORECASE)

WINDOWS_BACKEND = "keyring.backends.Windows.WinVaultKeyring"
# The platform keychains this application trusts with a wrapped data key, by exact class.
KNOWN_BACKENDS: dict[str, str] = {
    "keyring.backends.SecretService.Keyring": "the Secret Service (GNOME Keyring or KWallet)",
    "keyring.backends.libsecret.Keyring": "the Secret Service (through libsecret)",
    "keyring.backends.kwallet.DBusKeyring": "KWallet",
    "keyring.backends.kwallet.DBusKeyringKWallet4": "KWallet",
    WINDOWS_BACKEND: "Windows Credential Manager",
    "keyring.backends.macOS.Keyring": "the macOS Keychain",
}
_FRIENDLY_NAMES = KNOWN_BACKENDS | {
    "keyring.backends.fail.Keyring": "no keyring at all",
    "keyring.backends.null.Keyring": "a disabled keyring",
}
_BACKEND_ENV = "PYTHON_KEYRING_BACKEND"
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
# Classes the test suite admitted explicitly (admit_for_tests); empty in every production process.
_ADMITTED_FOR_TESTS: list[type[KeyringBackend]] = []


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


def is_valid_backend_name(name: str) -> bool:
    """True for a dotted ``module.Class`` path, the form policy and PYTHON_KEYRING_BACKEND use."""
    return _DOTTED_NAME.fullmatch(name) is not None


def admit_for_tests(cls: type[KeyringBackend]) -> None:
    """Tests only: counts ``cls`` (and its subclasses) as a known keychain in this process.

    The test suite calls this from its conftest for its in-memory keyring. No production code calls it (a test
    checks), and importing the keyring's own module does not call it, so a production process told to load the
    test keyring (``PYTHON_KEYRING_BACKEND``) still refuses it."""
    if cls not in _ADMITTED_FOR_TESTS:
        _ADMITTED_FOR_TESTS.append(cls)


def _resolves_to(name: str, cls: type) -> bool:
    """True when ``name`` names exactly ``cls`` among the modules already imported (no import happens)."""
    module_name, _, qualname = name.rpartition(".")
    target: object = sys.modules.get(module_name)
    if target is None:
        return False
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return target is cls


def _is_allowed(backend: KeyringBackend, name: str, allowed: frozenset[str]) -> bool:
    cls = type(backend)
    if name in KNOWN_BACKENDS or name in allowed:
        return _resolves_to(name, cls)
    return any(issubclass(cls, admitted) for admitted in _ADMITTED_FOR_TESTS)


def classify_backend(backend: KeyringBackend, allowed: Iterable[str] = ()) -> BackendVerdict:
    """Classifies ``backend``; ``allowed`` are the extra class paths IT policy names. Never raises: a backend
    that fails to report its priority is insecure."""
    name = backend_name(backend)
    extra = frozenset(allowed)
    if _is_chainer(backend):
        return _classify_chainer(backend, name, extra)
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
    if not _is_allowed(backend, name, extra):
        return BackendVerdict(
            False,
            f"the keyring backend {name} is not a known system keychain and IT policy does not name it",
            name,
        )
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


def _classify_chainer(backend: KeyringBackend, name: str, allowed: frozenset[str]) -> BackendVerdict:
    try:
        children = list(getattr(backend, "backends", []))
    except Exception as exc:
        return BackendVerdict(False, f"the keyring chainer cannot list its backends ({type(exc).__name__})", name)
    # The chainer sorts its children by priority, highest first; keep that order.
    for child in children:
        verdict = classify_backend(child, allowed)
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


def system_backend() -> KeyringBackend:
    """The backend the keyring library selects for this session (``PYTHON_KEYRING_BACKEND``,
    ``keyringrc.cfg``, or the best one installed).

    Raises KeyringConfigError, one sentence, when the configured backend cannot be loaded (an empty or misspelt
    class path, a backend that cannot run on this system) instead of the library's traceback."""
    try:
        return keyring.get_keyring()
    except Exception as exc:  # ImportError, ValueError, AttributeError, RuntimeError from a backend's priority
        raise KeyringConfigError(_load_failure(exc)) from exc


def _load_failure(exc: Exception) -> str:
    configured = os.environ.get(_BACKEND_ENV)
    if configured is not None:
        if not configured.strip():
            where = f"{_BACKEND_ENV} is set but empty"
        elif is_valid_backend_name(configured.strip()):
            where = f"The keyring backend {configured.strip()} named by {_BACKEND_ENV} cannot be loaded"
        else:
            where = f"{_BACKEND_ENV} does not name a keyring backend class (module.Class)"
        return f"{where} ({type(exc).__name__}); correct or unset it, or ask IT for help."
    return (
        f"The keyring backend named in keyringrc.cfg cannot be loaded ({type(exc).__name__}); "
        "correct the file or ask IT for help."
    )
