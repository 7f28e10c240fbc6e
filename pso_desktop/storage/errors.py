"""Expected storage failures, classified once at the storage boundary.

Every ``str()`` is one plain sentence that says what to do. Messages never carry PHI (no report content, no
file contents) or key material: only what the user or IT can act on.
"""

from __future__ import annotations

import sqlcipher3.dbapi2 as sqlcipher

from pso_desktop.errors import ExpectedError

# SQLite primary result codes (the low byte of an extended code) that mean "the environment", not "a bug".
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_READONLY = 8
_SQLITE_NOTADB = 26


class StorageError(ExpectedError):
    """Base class of every expected storage failure; ``str()`` is one plain, PHI-free sentence."""

    default_message = "The local report database could not be used; restart the app and try again."


class WrongKeyError(StorageError):
    """The key does not open the database (SQLCipher reports "file is not a database" on the first read)."""

    default_message = (
        "The database could not be unlocked with this key; check the password, or ask IT if the problem stays."
    )


class DatabaseTamperedError(StorageError):
    """A page failed its HMAC check (with a key known to be right): the file is damaged or was changed."""

    default_message = (
        "The local report database is damaged and was left untouched; contact IT support, who can restore it "
        "with 'pso-desktop recover'."
    )


class JournalLostError(DatabaseTamperedError):
    """Saves acknowledged while a reader kept them in the ``-wal`` are gone: that file was damaged or removed."""

    default_message = (
        "Changes saved in an earlier session are missing because a file beside the local report database was "
        "damaged or removed; nothing was changed, contact IT support, who can restore them with "
        "'pso-desktop recover'."
    )


# Not an error: the last session was cut off (crash, kill, full disk) after committing; opening replayed its
# committed changes from the -wal and the profile opened normally. Said in the log and the unlock audit entry.
INTERRUPTED_WRITE_DETAIL = "the last session was interrupted while writing; its saved changes were recovered"


class DatabaseTooNewError(StorageError):
    """The file was written by a newer version of the app (its ``user_version`` is above ours)."""

    default_message = "The local report database was written by a newer version of PSO Desktop; update the app."


class DatabaseMissingError(StorageError):
    """Opening (not creating) a database whose file does not exist (or is empty)."""

    default_message = (
        "The local report database for this profile was not found; check the profile name, or restore it "
        "from a backup."
    )


class StorageBusyError(StorageError):
    """Another process or connection holds a lock on the database for too long."""

    default_message = "The local report database is busy in another window or process; close it and try again."


class DiskFullError(StorageError):
    """The disk (or the user's quota) is full: nothing was saved by the failed operation."""

    default_message = "The disk is full, so the last change was not saved; free some space and try again."


class StorageIOError(StorageError):
    """The operating system refused to read or write the database file."""

    default_message = (
        "The local report database could not be read or written; check the disk and file permissions."
    )


def classify(exc: sqlcipher.Error) -> StorageError | None:
    """Map an SQLCipher exception to the expected failure it stands for, or ``None`` when it is a bug.

    ``open_database`` handles the first read itself (there, "not a database" means a wrong key).
    Only environmental conditions are classified; a programming error (bad SQL, constraint violation caused
    by our own code) returns ``None`` so that it reaches the crash reporter instead of being dressed up.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StorageBusyError()
    if primary == _SQLITE_FULL:
        return DiskFullError()
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        # After the key was verified by the first read, an undecryptable page means the file changed under us.
        return DatabaseTamperedError()
    if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN, _SQLITE_READONLY):
        return StorageIOError()
    return None
