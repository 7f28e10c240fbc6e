"""Expected failures of the security layer.

Every class has a default message, and raise sites pass a more specific one. ``str()`` is always one plain
sentence that tells the clinician (or IT) what to do. Messages may name a profile (a clinician's chosen label)
or a keyring backend class, but never a secret, a key, or the text of an underlying backend error.
"""

from __future__ import annotations

from pso_desktop.errors import ExpectedError


class SecurityError(ExpectedError):
    """Base class: an expected failure whose message is safe to show to the user as is."""

    default_message = "The profile's key could not be used; try again or ask IT for help."


class WrongSecretError(SecurityError):
    default_message = "The password is wrong; check it and try again."


class WeakSecretError(SecurityError, ValueError):
    """The secret offered for a new profile (or a password change) is empty or too short."""

    default_message = "Choose a password of at least 8 characters."


class InvalidProfileNameError(SecurityError, ValueError):
    default_message = (
        "Use 1-64 letters, digits, '.', '-' or '_' for the profile name, starting with a letter or digit."
    )


class KeyEntryMissingError(SecurityError):
    """The profile exists, but its wrapped key (keyring entry or fallback key file) is gone or out of date."""

    default_message = (
        "This profile's key is missing from the keyring; restore it from a backup or ask IT for help."
    )


class CorruptKeyDataError(SecurityError):
    """A stored record (wrapped key, profile.json, policy data) cannot be parsed; nothing was changed."""

    default_message = "The profile's stored key data is damaged; restore it from a backup or ask IT for help."


class InsecureKeyringError(SecurityError):
    default_message = (
        "No secure system keyring is available and IT policy requires one; ask IT to enable the system keyring."
    )


class KeyringConfigError(SecurityError):
    """The keyring backend configured for this session (PYTHON_KEYRING_BACKEND, keyringrc.cfg) cannot be loaded."""

    default_message = "The configured keyring backend cannot be loaded; correct the setting or ask IT for help."


class KeyringUnavailableError(SecurityError):
    default_message = "The system keyring could not be used; unlock it or sign in to your desktop, then try again."


class BackendChangedError(SecurityError):
    default_message = (
        "The profile's key is kept in a different keyring than the one available now; "
        "sign in to the desktop session that holds it or ask IT for help."
    )


class TooManyAttemptsError(SecurityError):
    """Too many wrong passwords in a row; ``retry_after`` says how many seconds to wait."""

    default_message = "Too many wrong passwords; wait a moment, then try again."

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProfileExistsError(SecurityError):
    default_message = "A profile with this name already exists; choose another name or unlock that profile."


class ProfileNotFoundError(SecurityError):
    default_message = "There is no profile with this name; check the name or create the profile first."


class PolicyError(SecurityError):
    """The IT policy file exists (or is named by PSO_DESKTOP_POLICY) but cannot be used."""

    default_message = "The IT policy file cannot be read; ask IT to fix or remove it."


class ProfileFolderError(SecurityError):
    """The profile folder or one of its small files cannot be written (permissions, disk full, a file in the
    way)."""

    default_message = (
        "The profile folder cannot be written; ask IT to check the data folder's permissions and space."
    )
