"""The base of every expected failure: wrong password, bad input, missing file, damaged database.

An ``ExpectedError``'s ``str()`` is one plain sentence that tells the clinician (or IT) what to do, and never
holds PHI, a secret or a key, so the CLI and the GUI show it as it is. Anything that is not an ExpectedError
is a bug. Pure Python: every layer may import it.
"""

from __future__ import annotations

import os
import traceback


class ExpectedError(Exception):
    """An expected failure whose message is safe to show to the user as it is."""

    default_message = "The action could not be completed; try again, and contact IT support if it happens again."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    def __str__(self) -> str:
        return str(self.args[0])


def where(exc: BaseException) -> str:
    """File, line and function of the innermost frame of ``exc``: enough to find a bug, with no values (no
    message, no arguments), so it may be logged whatever the exception carried."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    last = frames[-1]
    return f"{os.path.basename(last.filename)}:{last.lineno} in {last.name}"
