"""Automatic encrypted backups of a profile's database, kept rotating in ``<profile>/backups/``.

A backup is SQLCipher's online backup of the open database into a new file opened through
:func:`~pso_desktop.storage.database.open_database` (same key, same cipher settings, mode 0600), so a backup
is exactly as protected as the database and opens with the same key. Each one is written under a temporary
name, reopened and checked (key read, HMAC of every page, SQLite's structural check), fsynced, and only then
renamed to ``reports-<UTC time>.db``; the newest :data:`KEEP` are kept. File names carry a time, nothing else.

The copy reads one snapshot of the database (a read transaction on the source connection; in WAL mode that
never blocks a writer), step by step, and asks ``should_stop`` between steps so a lock can abandon it at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlcipher3.dbapi2 import Connection

from pso_desktop.files import ensure_private_dir, publish_exclusive, sync_dir
from pso_desktop.storage.database import WAL_MARK_SUFFIX, check_integrity, open_database, translate_errors
from pso_desktop.storage.errors import DatabaseTamperedError, DiskFullError, StorageError

BACKUP_FOLDER = "backups"
KEEP = 5
# A backup is taken when the newest is older than this at unlock (and after a sync that changed nothing).
DUE_AFTER = dt.timedelta(hours=4)
# After a sync that sent reports or brought statuses, a shorter interval: what the PSO now holds is worth keeping.
DUE_AFTER_SYNC = dt.timedelta(hours=1)
# Pages copied per backup step (1 MiB of 4 KiB pages): between steps a stop request is honoured.
STEP_PAGES = 256
# A temporary file this old belongs to a backup that was killed; younger ones may be another process's.
_STALE_TEMP_SECONDS = 3600

# Backups stamped further ahead than this were taken with a wrong clock (see list_backups).
_CLOCK_SLACK = dt.timedelta(minutes=5)
_NAME = re.compile(r"^reports-(\d{8}T\d{6}\.\d{6})Z\.db$")
_STAMP = "%Y%m%dT%H%M%S.%f"
_TEMP_PREFIX = ".reports-"
_log = logging.getLogger(__name__)


class BackupError(StorageError):
    """A backup could not be written or did not pass its check; the database itself is unchanged."""

    default_message = (
        "The automatic backup of this profile could not be written; your reports are unchanged. "
        "Free some disk space, or ask IT to check the profile folder."
    )


class BackupAbandoned(StorageError):
    """The backup was stopped on request (the profile is being locked); nothing was kept."""

    default_message = "The backup was stopped because the profile was locked; it is taken again later."


@dataclass(frozen=True)
class BackupFile:
    path: Path
    taken_at: dt.datetime  # UTC, from the file name
    size: int


def backups_dir(db_path: Path) -> Path:
    return Path(db_path).parent / BACKUP_FOLDER


def list_backups(db_path: Path, *, now: dt.datetime | None = None) -> list[BackupFile]:
    """The published backups of the database at ``db_path``, newest first (temporary files are not listed).

    A backup stamped in the future was taken while the clock was wrong, so its time says nothing: it is listed
    last (taken as the oldest), so it is neither restored first nor kept forever by the rotation.
    """
    return _published(backups_dir(db_path), now or dt.datetime.now(dt.UTC))


def _published(folder: Path, now: dt.datetime) -> list[BackupFile]:
    if not folder.is_dir():
        return []
    found: list[BackupFile] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        try:
            taken = dt.datetime.strptime(match.group(1), _STAMP).replace(tzinfo=dt.UTC)
        except ValueError:
            continue  # not a time (e.g. month 13): not one of ours
        found.append(BackupFile(entry, taken, entry.stat().st_size))
    horizon = now + _CLOCK_SLACK

    def order(backup: BackupFile) -> dt.datetime:
        return backup.taken_at if backup.taken_at <= horizon else dt.datetime.min.replace(tzinfo=dt.UTC)

    return sorted(found, key=order, reverse=True)


def is_due(db_path: Path, max_age: dt.timedelta, *, now: dt.datetime | None = None) -> bool:
    """True when no backup was taken within ``max_age`` before ``now`` (one stamped in the future does not count)."""
    now = now or dt.datetime.now(dt.UTC)
    recent = [b for b in list_backups(db_path, now=now) if b.taken_at <= now + _CLOCK_SLACK]
    return not recent or now - recent[0].taken_at >= max_age


def take_backup(
    conn: Connection,
    db_path: Path,
    key: bytes,
    *,
    should_stop: Callable[[], bool] | None = None,
    keep: int = KEEP,
    now: dt.datetime | None = None,
) -> BackupFile:
    """Back up the database open on ``conn`` (at ``db_path``, keyed with ``key``) and rotate the old backups.

    ``conn`` must not be inside a transaction; the backup reads one snapshot of it. Raises
    :class:`BackupAbandoned` when ``should_stop()`` turns true (nothing is kept), :class:`BackupError` when
    the backup cannot be written or fails its check; in every case the database is unchanged and no
    temporary file is left behind.
    """
    if keep < 1:
        raise ValueError("keep at least one backup")
    if conn.in_transaction:
        raise RuntimeError("a backup reads its own snapshot; call it outside a transaction")
    folder = backups_dir(db_path)
    taken_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stamp = taken_at.strftime(_STAMP)
    try:
        ensure_private_dir(folder)
    except OSError as exc:
        raise BackupError() from exc
    _remove_stale_temps(folder)
    temp = folder / f"{_TEMP_PREFIX}{stamp}.{secrets.token_hex(4)}.tmp"
    final = folder / f"reports-{stamp}Z.db"
    try:
        _copy(conn, temp, key, should_stop)
        if should_stop is not None and should_stop():
            raise BackupAbandoned()
        if check_integrity(temp, key):
            # SQLCipher copies pages between two databases with the same key as they are, so damage in the
            # database itself shows up here, in the copy's check: tell the two apart.
            if check_integrity(db_path, key):
                raise _damaged_source()
            raise BackupError(
                "The automatic backup of this profile did not pass its check and was not kept; your reports "
                "are unchanged. Ask IT to check the disk."
            )
        _fsync(temp)
        publish_exclusive(temp, final)  # never replaces another backup, even one of the same microsecond
        sync_dir(folder)
    except StorageError:
        raise
    except OSError as exc:
        raise BackupError() from exc
    finally:
        _remove_temp(temp)
    _rotate(folder, keep, taken_at)
    _log.info("backup written (%d bytes)", final.stat().st_size)
    return BackupFile(final, taken_at, final.stat().st_size)


def back_up_if_due(
    conn: Connection,
    *,
    db_path: Path,
    key: bytes,
    max_age: dt.timedelta = DUE_AFTER,
    should_stop: Callable[[], bool] | None = None,
    after_purge: bool = False,
) -> BackupFile | None:
    """:func:`take_backup` when :func:`is_due` says so and the profile holds at least one report; else None.
    With ``after_purge``, :func:`replace_after_purge` instead (always, whatever is due)."""
    if after_purge:
        return replace_after_purge(conn, db_path=db_path, key=key)
    if not is_due(db_path, max_age):
        return None
    with translate_errors():
        has_reports = conn.execute("SELECT EXISTS (SELECT 1 FROM reports)").fetchone()[0]
    if not has_reports:
        return None  # an empty profile has nothing a backup could give back
    return take_backup(conn, db_path, key, should_stop=should_stop)


def replace_after_purge(conn: Connection, *, db_path: Path, key: bytes) -> BackupFile | None:
    """After the facility's copies were purged from the database: a fresh backup becomes the only one, so no
    older backup still holds them. Should that backup fail (full disk), the older ones are removed anyway: the
    database itself is intact and the next due backup is taken as usual, whereas a kept copy of reports the
    account may no longer see is not allowed. Returns the fresh backup, or None when it failed."""
    folder = backups_dir(db_path)
    try:
        return take_backup(conn, db_path, key, keep=1)
    except StorageError:
        _log.warning("the backup after a purge failed; the older backups are removed anyway")
        _rotate(folder, 0, dt.datetime.now(dt.UTC))
        return None


# --- internals -------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised from the backup's progress callback: the binding then aborts the backup."""


def _copy(conn: Connection, temp: Path, key: bytes, should_stop: Callable[[], bool] | None) -> None:
    def progress(_status: int, _remaining: int, _total: int) -> None:
        if should_stop is not None and should_stop():
            raise _Stop()

    dest = open_database(temp, key, create=True, full_check=False)
    try:
        with translate_errors():
            # One snapshot for every step: without it, each write by another connection (the form's autosave)
            # would restart the copy from the first page.
            conn.execute("BEGIN")
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                conn.backup(dest, pages=STEP_PAGES, progress=progress)
            finally:
                conn.execute("ROLLBACK")
            # Checkpointed here, by a statement (the binding lets other threads run meanwhile), not by the close
            # below: sqlcipher3 holds the GIL through close, and checkpointing 100,000 reports' pages there froze
            # the window for 1-2.4 s after each automatic backup (bench_ui.py; 1,068 -> 167 ms worst gap).
            dest.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except _Stop:
        raise BackupAbandoned() from None
    except DatabaseTamperedError:
        raise _damaged_source() from None
    except DiskFullError:
        raise BackupError(
            "The disk is full, so the automatic backup of this profile was not written; your reports are "
            "unchanged. Free some disk space."
        ) from None
    except StorageError as exc:
        raise BackupError() from exc
    finally:
        dest.close()  # the last connection: SQLite checkpoints the WAL into the file and removes it


def _damaged_source() -> BackupError:
    return BackupError(
        "The automatic backup found a damaged page in this profile's database and was not kept; contact IT "
        "(they can use 'pso-desktop recover')."
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_temp(temp: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", WAL_MARK_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            temp.with_name(temp.name + suffix).unlink()


def _remove_stale_temps(folder: Path) -> None:
    """Temporary files of a backup that was killed midway (they are encrypted, but take space)."""
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for entry in folder.iterdir():
        if entry.name.startswith(_TEMP_PREFIX):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()


def _rotate(folder: Path, keep: int, now: dt.datetime) -> None:
    for old in _published(folder, now)[keep:]:
        with contextlib.suppress(OSError):  # a backup that cannot be removed now goes at the next rotation
            old.path.unlink()
