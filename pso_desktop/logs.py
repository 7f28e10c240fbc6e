"""Application logging: to a rotating file under the data root, never to the terminal, never with PHI.

Only our own code logs, and it logs events and identifiers (profile names, report UUIDs, counts, exception
types), never report contents, secrets or keys.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from pso_desktop import paths

LOG_FILE = "pso-desktop.log"


def configure_logging(root: Path | None = None, *, level: int = logging.INFO) -> Path:
    """Send log records to ``<root>/logs/pso-desktop.log`` (0600, 1 MB x 3); returns the file's path.

    Raises :class:`~pso_desktop.paths.DataFolderError` when the folder or the file cannot be written."""
    folder = (root or paths.home()) / "logs"
    path = folder / LOG_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        raise paths.DataFolderError(
            f"The log file {path} cannot be written ({exc.strerror or type(exc).__name__}); "
            "ask IT to check the permissions of the data folder."
        ) from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger()
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.setLevel(level)
    return path
