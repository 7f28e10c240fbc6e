"""Where a wrapped key is kept: one small interface, one implementation per kind of storage.

A ``KeyStore`` holds one wrapped key (its JSON text, see ``envelope``) for one owner: an entry in the OS
keyring (``KeyringEntry``) or the password-protected file fallback (``KeyFile``). Callers decide which store a
key lives in once, from their own record; after that they read, write and remove it without asking which kind
it is. The stores hold no secret themselves, only where the wrapped key is.

Every method does keyring or file I/O; call them from a worker, never the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from keyring.backend import KeyringBackend

from pso_desktop.files import write_private_file
from pso_desktop.security.errors import (
    BackendChangedError,
    InsecureKeyringError,
    KeyEntryMissingError,
    KeyringUnavailableError,
)
from pso_desktop.security.keyring_guard import BackendVerdict, describe_backend, names_reachable
from pso_desktop.security.winvault import ensure_local_persistence

_log = logging.getLogger(__name__)


class KeyStore(Protocol):
    """One wrapped key's storage. ``subject`` names its owner in messages (e.g. ``profile 'ward3'``)."""

    @property
    def subject(self) -> str: ...

    def read(self) -> str:
        """The stored text. Raises KeyEntryMissingError when it is gone, and KeyringUnavailableError,
        BackendChangedError or InsecureKeyringError when the storage cannot or may not be used now."""
        ...

    def create(self, text: str) -> None:
        """Stores ``text`` for a new owner, never over existing material (FileExistsError for a key file
        already there; OSError when it cannot be written; KeyringUnavailableError)."""
        ...

    def replace(self, text: str) -> None:
        """Replaces the stored text (OSError, KeyringUnavailableError)."""
        ...

    def discard(self) -> None:
        """Removes the stored text, if any; raises what the storage raised."""
        ...

    def settle(self) -> None:
        """Housekeeping after a successful use; never raises."""
        ...


class KeyFile:
    """The password-protected fallback: the wrapped key in a private file (0600) beside its owner's data."""

    def __init__(self, path: Path, subject: str, *, allowed: bool) -> None:
        """``allowed`` is False when IT policy forbids the fallback and no secure keyring exists: the file is
        then never read."""
        self.path = path
        self.subject = subject
        self._allowed = allowed

    def read(self) -> str:
        if not self._allowed:
            raise InsecureKeyringError(
                f"{_capitalised(self.subject)} keeps its key in a password-protected file, which IT policy forbids "
                "without a secure system keyring; ask IT to enable the system keyring."
            )
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyEntryMissingError(
                f"The key file of {self.subject} is missing; restore it from a backup or ask IT for help."
            ) from None
        except OSError as exc:
            raise KeyEntryMissingError(
                f"The key file of {self.subject} cannot be read; ask IT to check the profile folder."
            ) from exc

    def create(self, text: str) -> None:
        write_private_file(self.path, text.encode(), exclusive=True)

    def replace(self, text: str) -> None:
        write_private_file(self.path, text.encode())

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def settle(self) -> None:
        return None


class KeyringEntry:
    """The wrapped key as a password in the OS keyring, under ``service`` and ``username``."""

    def __init__(
        self,
        system: KeyringBackend,
        verdict: BackendVerdict,
        *,
        service: str,
        username: str,
        stored_in: str,
        subject: str,
    ) -> None:
        """``system`` is the keyring this process found and ``verdict`` what ``classify_backend`` made of it;
        ``stored_in`` is the backend (``module.Class``) the entry was written to."""
        self.subject = subject
        self.username = username
        self._system = system
        self._verdict = verdict
        self._service = service
        self._stored_in = stored_in

    def read(self) -> str:
        stored_in = describe_backend(self._stored_in)
        if not self._verdict.secure and self._stored_in in names_reachable(self._system):
            # The keyring that holds the key is here, but is not one we trust (e.g. a custom backend used before
            # the allow-list, or one IT no longer names): its entry is not read.
            raise BackendChangedError(
                f"The key of {self.subject} is kept in the keyring backend {self._stored_in}, which is not "
                "a known system keychain and is not named by IT policy; ask IT to name it in the policy "
                "(allowed_keyring_backends) or to move the profile to a system keychain."
            )
        if not self._verdict.secure:
            raise BackendChangedError(
                f"The key of {self.subject} is kept in {stored_in}, but {self._verdict.reason} now; "
                "sign in to the desktop session that holds your keyring or ask IT for help."
            )
        backend = self._secure_backend()
        value = self._call(lambda: backend.get_password(self._service, self.username))
        if value is not None:
            return value
        if self._stored_in not in names_reachable(self._system):
            raise BackendChangedError(
                f"The key of {self.subject} is kept in {stored_in}, which is not available now "
                f"({describe_backend(self._verdict.backend_name)} is); "
                "sign in to the desktop session that holds your keyring or ask IT for help."
            )
        raise KeyEntryMissingError(
            f"The key of {self.subject} is missing from {stored_in}; "
            "restore the keyring from a backup or ask IT for help."
        )

    def create(self, text: str) -> None:
        self.replace(text)  # the username carries a fresh random id: nothing of anyone else's is there

    def replace(self, text: str) -> None:
        """Writes and reads back: some backends accept a write and keep nothing (a chainer whose children all
        decline), which must not go unnoticed."""
        backend = self._secure_backend()

        def write_and_read() -> str | None:
            backend.set_password(self._service, self.username, text)
            return backend.get_password(self._service, self.username)

        if self._call(write_and_read) != text:
            raise KeyringUnavailableError(
                f"The system keyring did not keep the key of {self.subject}; "
                "unlock the keyring or ask IT to check it, then try again."
            )

    def discard(self) -> None:
        self._secure_backend().delete_password(self._service, self.username)

    def settle(self) -> None:
        """Windows: keeps the entry on this machine only, never roaming."""
        effective = self._verdict.effective
        if effective is None:
            return
        try:
            ensure_local_persistence(effective, self._service, self.username)
        except Exception as exc:  # a Windows credential error: the use stands, the move waits
            _log.warning("keeping the key of %s on this machine postponed: %s", self.subject, type(exc).__name__)

    def _secure_backend(self) -> KeyringBackend:
        effective = self._verdict.effective
        assert effective is not None, "only used when the verdict is secure"
        return effective

    def _call(self, call: Callable[[], str | None]) -> str | None:
        try:
            return call()
        except Exception as exc:
            # KeyringLocked, KeyringError, dbus/secretstorage errors, ...: all mean "the keyring did not
            # answer". The backend's own message may name entries, so only the class name is logged.
            _log.warning("keyring call for %s failed: %s", self.subject, type(exc).__name__)
            raise KeyringUnavailableError(
                f"The system keyring could not be used for {self.subject} ({type(exc).__name__}); "
                "unlock the keyring or sign in to your desktop, then try again."
            ) from exc


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
