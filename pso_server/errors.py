"""Expected failures of the server and its commands.

Each ``str()`` is one plain sentence saying what to do; none ever carries report content or a secret.
"""

from __future__ import annotations


class ServerError(Exception):
    """Base class: an expected failure the CLI prints as one line (exit code 1)."""


class DatabaseURLInvalid(ServerError):
    """The ``--db`` value is neither an SQLite path/URL nor a ``postgresql://`` URL."""


class SchemaTooNew(ServerError):
    """The database was created by a newer version of the server; it is left untouched."""


class StorageUnavailable(ServerError):
    """The database cannot be reached or is busy; the request may be retried later."""


class UserExists(ServerError):
    """``add-user`` for a name that is already taken."""


class UnknownReport(ServerError):
    """No report with that id or case reference is held (or the caller may not see it)."""


class InvalidInput(ServerError):
    """A command-line value (password, role, status...) is not acceptable."""
