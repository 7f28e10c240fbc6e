"""Small private files (profile records, wrapped keys, exports): written atomically, readable by the owner only;
and reading a file the user named, with a plain sentence when it cannot be read."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

from pso_desktop.errors import ExpectedError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


class UnreadableFile(ExpectedError):
    """A file the user named is missing, is a folder, or may not be read."""


def read_user_file(path: Path) -> bytes:
    """The bytes of a file the user named (for ``report add`` or an import); UnreadableFile says what is wrong."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFile(f"File not found: {path}") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{path} is a folder; give a report file.") from None
    except PermissionError:
        raise UnreadableFile(f"No permission to read {path}.") from None


def ensure_private_dir(path: Path) -> None:
    """Creates ``path`` (and parents) if needed and makes it owner-only, whatever the umask."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if os.name == "posix":
        os.chmod(path, PRIVATE_DIR_MODE)


def write_private_file(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Writes ``data`` to ``path`` with mode 0600 so that readers see either the old or the new content.

    With ``exclusive=True`` the file is only published if nothing exists at ``path`` yet, otherwise
    FileExistsError is raised and nothing is changed; this is how a profile is claimed without ever
    overwriting another one's key.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, PRIVATE_FILE_MODE)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            publish_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    sync_dir(path.parent)


def write_private_json(path: Path, value: Any, *, exclusive: bool = False) -> None:
    write_private_file(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode(), exclusive=exclusive)


def publish_exclusive(tmp: Path, path: Path) -> None:
    """Gives the complete file ``tmp`` the name ``path`` too, unless that name is taken (FileExistsError); the
    caller removes ``tmp``."""
    try:
        # link() fails with EEXIST if the name is taken, atomically; the complete file appears at once.
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links (some network shares): check, then rename. The window between
        # the two is tiny, and create/change_secret on one profile at once is already a user error.
        if path.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(path)) from exc
        os.replace(tmp, path)


def sync_dir(directory: Path) -> None:
    """Makes a rename durable on POSIX; a no-op where directories cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the data itself was synced
    finally:
        os.close(fd)
