"""Clinician profiles and their data keys: wrapped by a key derived from the clinician's secret and kept
in the OS keyring (or a documented password-protected file fallback). See docs/keys.md.

The errors, KDF settings and keyring check are re-exported here; the key store itself (``ProfileKeys``,
``KeyPolicy``) is imported from ``pso_desktop.security.profiles``, so that importing an error does not load it."""

from pso_desktop.security.errors import (
    BackendChangedError,
    CorruptKeyDataError,
    InsecureKeyringError,
    InvalidProfileNameError,
    KeyEntryMissingError,
    KeyringConfigError,
    KeyringUnavailableError,
    PolicyError,
    ProfileExistsError,
    ProfileFolderError,
    ProfileNotFoundError,
    SecurityError,
    TooManyAttemptsError,
    WeakSecretError,
    WrongSecretError,
)
from pso_desktop.security.kdf import PRODUCTION_KDF, KdfParams
from pso_desktop.security.keyring_guard import BackendVerdict, classify_backend

__all__ = [
    "PRODUCTION_KDF",
    "BackendChangedError",
    "BackendVerdict",
    "CorruptKeyDataError",
    "InsecureKeyringError",
    "InvalidProfileNameError",
    "KdfParams",
    "KeyEntryMissingError",
    "KeyringConfigError",
    "KeyringUnavailableError",
    "PolicyError",
    "ProfileExistsError",
    "ProfileFolderError",
    "ProfileNotFoundError",
    "SecurityError",
    "TooManyAttemptsError",
    "WeakSecretError",
    "WrongSecretError",
    "classify_backend",
]
