"""Clinician profiles and their data keys: wrapped by a key derived from the clinician's secret and kept
in the OS keyring (or a documented password-protected file fallback). See docs/keys.md."""

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
from pso_desktop.security.profiles import KeyPolicy, ProfileKeys

__all__ = [
    "PRODUCTION_KDF",
    "BackendChangedError",
    "BackendVerdict",
    "CorruptKeyDataError",
    "InsecureKeyringError",
    "InvalidProfileNameError",
    "KdfParams",
    "KeyEntryMissingError",
    "KeyPolicy",
    "KeyringConfigError",
    "KeyringUnavailableError",
    "PolicyError",
    "ProfileExistsError",
    "ProfileFolderError",
    "ProfileKeys",
    "ProfileNotFoundError",
    "SecurityError",
    "TooManyAttemptsError",
    "WeakSecretError",
    "WrongSecretError",
    "classify_backend",
]
