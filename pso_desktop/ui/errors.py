"""The one place where a failure becomes the text a clinician sees.

Expected failures (``ExpectedError``: the security and storage layers' errors, rejected input, an invalid
report) carry a plain sentence that says what to do, free of PHI and secrets: it is shown as it is. Anything else is a bug: only its
type and where it happened are logged (never its message or arguments, which may hold report content) and the
user gets a generic sentence.
"""

from __future__ import annotations

import logging

from pso_desktop.errors import ExpectedError, where

UNEXPECTED_MESSAGE = (
    "An unexpected problem stopped this action; nothing more was changed. Try again, and contact IT support "
    "if it happens again."
)

_log = logging.getLogger(__name__)


def is_expected(exc: BaseException) -> bool:
    """True for a failure whose message is meant for the user (environment or input, not a bug)."""
    return isinstance(exc, ExpectedError)


def user_message(exc: BaseException) -> str:
    """The plain sentence to show for ``exc``; logs a bug's type and location, never its message."""
    if is_expected(exc):
        return str(exc)
    _log.error("unexpected %s at %s", type(exc).__name__, where(exc))
    return UNEXPECTED_MESSAGE
