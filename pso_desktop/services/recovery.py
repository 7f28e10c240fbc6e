"""``pso-desktop recover``: check a profile's database, set a damaged one aside for IT, restore it from backups.

Without the clinician's secret only what needs no key is done: the files are looked at (present, size, header,
whole pages, ``-wal``), the backups are listed, and on request the damaged files are moved aside. With the
secret, the newest backup that passes its check is merged with whatever the damaged file still holds (read
report by report) into a new database, which is checked and then put in place; the damaged files are moved
aside first and never overwritten or deleted. See docs/storage.md, "Backups and recovery".

Qt-free and synchronous; the messages name files and counts, never report content.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pso_desktop.errors import ExpectedError
from pso_desktop.files import publish_exclusive, sync_dir
from pso_desktop.security.errors import ProfileNotFoundError
from pso_desktop.services.workstation import Workstation
from pso_desktop.storage.backup import BackupFile, backups_dir, list_backups
from pso_desktop.storage.database import WAL_MARK_SUFFIX, check_integrity
from pso_desktop.storage.errors import DatabaseMissingError, StorageError, WrongKeyError
from pso_desktop.storage.recovery import (
    RESULT_INFIX,
    Contents,
    FileCheck,
    SetAside,
    in_use,
    inspect_files,
    mark_recovered,
    merge,
    read_contents,
    remove_stale_scratch,
    set_aside,
    set_aside_folders,
    unrecovered_set_aside,
    write_database,
)

_log = logging.getLogger(__name__)


class NothingToSetAside(ExpectedError):
    """``--set-aside`` found no database file (and no ``-wal``/``-shm``) to move."""


class ProfileInUse(ExpectedError):
    """Another process (the window, a command, the agent) has the profile's database open."""


class RecoveryFailed(ExpectedError):
    """Neither a usable backup nor anything readable in the damaged file: nothing could be restored."""


@dataclass(frozen=True)
class Inspection:
    profile: str
    database: Path
    files: FileCheck
    backups: list[BackupFile]
    set_aside: list[Path]
    in_use: bool


@dataclass(frozen=True)
class Restored:
    intact: bool  # the database passed every check: nothing was done
    reports: int = 0
    from_damaged: int = 0
    from_backup: int = 0
    backup: BackupFile | None = None
    aside: SetAside | None = None
    warnings: list[str] = field(default_factory=list)
    read_from: Path | None = None  # the set-aside folder whose database was read (the profile had none)


def inspect(workstation: Workstation, name: str) -> Inspection:
    """What can be told without the key: the database files, the backups, what was set aside before."""
    db = _database(workstation, name)
    return Inspection(name, db, inspect_files(db), list_backups(db), set_aside_folders(db), in_use(db))


def set_aside_damaged(workstation: Workstation, name: str) -> SetAside:
    """Moves the profile's database and its ``-wal``/``-shm`` into ``set-aside/<time>/`` for IT."""
    db = _database(workstation, name)
    _refuse_in_use(db, name)
    try:
        aside = set_aside(db)
    except OSError as exc:
        raise RecoveryFailed(
            f"The database of profile '{name}' could not be moved aside ({_reason(exc)}); nothing was deleted. "
            "Ask IT to check the profile folder's permissions and free space."
        ) from None
    if aside is None:
        raise NothingToSetAside(f"Profile '{name}' has no database file to set aside.")
    _log.info("database of profile %s set aside (%d files)", name, len(aside.moved))
    return aside


def restore(workstation: Workstation, name: str, secret: str) -> Restored:
    """Rebuilds the profile's database from its newest good backup and what the damaged file still holds.

    A database that passes every check is left alone (``intact``). Otherwise the result is written to a new
    file, checked (every page, structure, audit chain), the damaged files are moved aside, and the new file
    takes the database's name. Raises RecoveryFailed when there is nothing to restore from; a wrong secret
    raises as unlocking does (and counts as a failed unlock).
    """
    db = workstation.keys.database_path(name)
    _refuse_in_use(db, name)
    key = workstation.keys.unlock(name, secret)
    try:
        return _restore(db, key, name)
    except FileExistsError:
        raise RecoveryFailed(
            f"A new database for profile '{name}' appeared while it was being recovered (is PSO Desktop open?); "
            "it was not replaced, and the damaged files are in the set-aside folder. Close the app and run "
            "recover again."
        ) from None
    except OSError as exc:
        raise RecoveryFailed(
            f"Profile '{name}' could not be recovered ({_reason(exc)}); nothing was deleted. Ask IT to check the "
            "profile folder's permissions and free space."
        ) from None


def _restore(db: Path, key: bytes, name: str) -> Restored:
    state = _state(db, key)
    # A mark beside the database: commits were acknowledged while a reader kept them in the -wal; if the database
    # is damaged now, that -wal may be what was lost.
    wal_marked = db.with_name(db.name + WAL_MARK_SUFFIX).exists()
    if state == "intact":
        return Restored(intact=True)
    # No database, but one set aside (``recover --set-aside``) that no recovery has merged yet: it is read as a
    # damaged file in place would be, through a scratch copy in the profile folder, never changed.
    earlier = unrecovered_set_aside(db) if state == "missing" else None
    damaged: Contents | None = None
    if earlier is not None:
        wal_marked = (earlier / (db.name + WAL_MARK_SUFFIX)).exists()
        damaged = read_contents(earlier / db.name, key, damaged=True, scratch_in=db.parent)
    else:
        damaged = read_contents(db, key, damaged=True) if state == "damaged" else None
    read = state == "damaged" or earlier is not None  # a damaged database was read, here or set aside
    base, used = None, None
    for candidate in list_backups(db):
        try:
            if check_integrity(candidate.path, key):
                continue  # a damaged backup: the next older one may be good
            base, used = read_contents(candidate.path, key, damaged=False), candidate
            break
        except StorageError:
            continue
    if base is None and (damaged is None or damaged.empty):
        where = "could not be read at all" if read else "is missing"
        where += f" (set aside in {earlier})" if earlier is not None else ""
        raise RecoveryFailed(
            f"The database of profile '{name}' {where} and no usable backup exists in {backups_dir(db)}; "
            "nothing was changed. Keep the profile folder for IT."
        )
    merged = merge(base, damaged)
    stamp = used.taken_at.strftime("%Y-%m-%d %H:%M UTC") if used else "none"
    detail = (
        f"{len(merged.reports)} report(s): {merged.from_damaged} from the damaged file, {merged.from_backup} "
        f"from backup {stamp}; {merged.lost_reports} lost"
    )
    remove_stale_scratch(db)
    temp = db.with_name(f".{db.name}{RESULT_INFIX}{secrets.token_hex(4)}.tmp")
    try:
        write_database(temp, key, merged, actor=name, detail=detail)
        _fsync(temp)
        aside = set_aside(db)
        publish_exclusive(temp, db)  # never replaces a file: the damaged one was moved aside just before
        sync_dir(db.parent)
        for merged_folder in (aside.folder if aside is not None and state == "damaged" else None, earlier):
            if merged_folder is not None:
                mark_recovered(merged_folder)  # merged now: a later recovery does not read it again
    finally:
        for suffix in ("", "-wal", "-shm", WAL_MARK_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                temp.with_name(temp.name + suffix).unlink()
    _log.info("profile %s recovered: %s", name, detail)
    warnings = []
    if merged.lost_reports:
        warnings.append(
            f"{merged.lost_reports} report(s) known to the damaged database could not be read from it or from a "
            "backup; if they were sent, the PSO still holds them."
        )
    if read and damaged is not None and damaged.empty:
        warnings.append(
            "Nothing could be read from the damaged database; everything restored comes from the backup."
        )
    elif damaged is not None and damaged.unreadable and not merged.lost_reports:
        since = f" after the backup of {stamp}" if used else ""
        warnings.append(
            f"Parts of the damaged database could not be read; reports written or changed{since} may be missing."
        )
    if read and wal_marked:
        warnings.append(
            f"Changes saved while {db.name}-wal held them may be missing: that file was damaged or removed; what "
            "is left of it was set aside with the database."
        )
    if merged.lost_audit:
        warnings.append(
            f"{merged.lost_audit} audit log entr{'y' if merged.lost_audit == 1 else 'ies'} could not be carried "
            "over; the damaged file set aside still holds what was readable."
        )
    return Restored(
        False, len(merged.reports), merged.from_damaged, merged.from_backup, used, aside, warnings, earlier
    )


# --- sentences --------------------------------------------------------------------------------------------


def inspection_lines(inspection: Inspection) -> list[str]:
    files = inspection.files
    name = inspection.database.name
    if files.present:
        changed = files.changed_at.strftime("%Y-%m-%d %H:%M UTC") if files.changed_at else "unknown"
        lines = [f"Profile '{inspection.profile}': {name}, {files.size:,} bytes, last changed {changed}."]
    else:
        lines = [f"Profile '{inspection.profile}': no {name}."]
    lines += [f"  problem: {problem}" for problem in files.problems]
    lines += [f"  note: {note}" for note in files.notes]
    if inspection.in_use:
        lines.append(
            "  note: the profile is open now in PSO Desktop or another command; lock or close it there before "
            "--set-aside or a restore."
        )
    lines.append(
        "  Without the password only sizes and layout can be checked; with --password-stdin every page is checked."
    )
    lines.append(f"Backups, newest first, in {backups_dir(inspection.database)}:")
    lines += [
        f"  {b.taken_at.strftime('%Y-%m-%d %H:%M:%S UTC')}  {b.size:>14,} bytes  {b.path.name}"
        for b in inspection.backups
    ] or ["  none"]
    if inspection.set_aside:
        lines.append("Set aside earlier, for IT:")
        lines += [f"  {folder}" for folder in inspection.set_aside]
    return lines


def damaged_sentence(profile: str) -> str:
    return (
        f"The database of profile '{profile}' looks damaged; restore it with 'pso-desktop recover --profile "
        f"{profile} --password-stdin', or move it aside for IT with --set-aside."
    )


def set_aside_sentence(profile: str, aside: SetAside) -> str:
    return (
        f"Moved {', '.join(aside.moved)} of profile '{profile}' to {aside.folder}; nothing was deleted. Restore the "
        f"profile with 'pso-desktop recover --profile {profile} --password-stdin'."
    )


def restored_sentence(profile: str, restored: Restored) -> str:
    if restored.intact:
        return f"The database of profile '{profile}' passed every check; nothing needed recovering."
    source = (
        f"{restored.from_backup} only from the backup of {restored.backup.taken_at.strftime('%Y-%m-%d %H:%M UTC')}"
        if restored.backup is not None
        else "no backup was available"
    )
    kept = f" The damaged files were kept in {restored.aside.folder}." if restored.aside is not None else ""
    damaged = (
        f"the damaged database set aside in {restored.read_from} (left as it was)"
        if restored.read_from is not None
        else "the damaged database"
    )
    return (
        f"Recovered profile '{profile}': {restored.reports} report(s), {restored.from_damaged} read from "
        f"{damaged}, {source}.{kept}"
    )


# --- internals -------------------------------------------------------------------------------------------


def _database(workstation: Workstation, name: str) -> Path:
    if not workstation.keys.exists(name):
        raise ProfileNotFoundError(f"There is no profile named '{name}'; check the name.")
    return workstation.keys.database_path(name)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _refuse_in_use(db: Path, name: str) -> None:
    if in_use(db):
        raise ProfileInUse(
            f"Profile '{name}' is open in PSO Desktop or in another command; lock or close it there, then run "
            "recover again. Nothing was changed."
        )


def _state(db: Path, key: bytes) -> str:
    """``missing``, ``intact`` or ``damaged``. The key unwrapped correctly, so a first read that fails means
    damage to page 1, not a wrong key."""
    if not db.is_file() or db.stat().st_size == 0:
        return "missing"
    try:
        return "damaged" if check_integrity(db, key) else "intact"
    except DatabaseMissingError:
        return "missing"
    except (WrongKeyError, StorageError):
        return "damaged"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
