"""Recovering a damaged profile database: what can be seen without the key, setting files aside, and rebuilding.

Three parts, used by ``pso-desktop recover`` (see ``services/recovery.py`` and docs/storage.md):

* :func:`inspect_files` looks at the database without the key: present, size, encrypted header, whole pages,
  and the ``-wal`` beside it. It only reads.
* :func:`set_aside` moves the database and its ``-wal``/``-shm`` into ``set-aside/<UTC time>/`` in the profile
  folder for IT. Nothing is ever deleted.
* :func:`read_contents` reads a database with the key **report by report**: a damaged page (its HMAC fails)
  costs the rows on it, not the rest. :func:`merge` combines the newest good backup with what the damaged file
  still holds (the highest revision of each report wins; frozen revisions, outbox entries and report states are
  made consistent), and :func:`write_database` writes the result to a new file through ``open_database``.

A damaged file is never opened in place: it is copied into a scratch folder first, so even SQLite's WAL
recovery on the reading connection cannot change a byte of what IT will look at.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlcipher3.dbapi2 as sqlcipher
from sqlcipher3.dbapi2 import Connection

from pso_desktop.files import ensure_private_dir, sync_dir
from pso_desktop.storage.audit import AuditLog
from pso_desktop.storage.database import (
    WAL_MARK_SUFFIX,
    apply_cipher_settings,
    check_integrity,
    open_database,
    quiet_sqlcipher_logging,
    transaction,
)
from pso_desktop.storage.errors import StorageError
from pso_desktop.storage.reports import summary_columns

SET_ASIDE_FOLDER = "set-aside"
PAGE_SIZE = 4096  # SQLCipher 4's page size; the app never changes it
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_HEADER = 32
_WAL_FRAME_HEADER = 24
SCRATCH_PREFIX = ".recover-"  # a damaged file's copy, read there (see read_contents)
RESULT_INFIX = ".recovered-"
RECOVERED_MARK = "recovered"  # in a set-aside folder: a recovery merged its database (see mark_recovered)  # the rebuilt database before it takes the database's name
# The -shm byte every open connection holds a shared lock on (SQLite's os_unix.c: UNIX_SHM_DMS).
_SHM_DMS_BYTE = 128
# The -walmark (database.WAL_MARK_SUFFIX) goes with its -wal: left behind, it would say a restored file lost it.
_SIDE_FILES = ("-wal", "-shm", WAL_MARK_SUFFIX)
# Rowids probed past the highest one known, in case the pages that told the highest were the damaged ones.
_PROBE_MARGIN = 1000

_REPORT_COLUMNS = (
    "id, revision, state, event_type, unit, discovered_on, categories, server_ref, created_at, updated_at, "
    "sha256, wire"
)
_REVISION_COLUMNS = "report_id, revision, sha256, frozen_at, wire"
_OUTBOX_COLUMNS = (
    "seq, report_id, revision, state, size_bytes, attempts, server_ref, server_status, errors, queued_at, "
    "updated_at"
)
_AUDIT_COLUMNS = "seq, at, actor, action, report_id, detail, prev_hash, hash"
_ACCOUNT_COLUMNS = (
    "id, server_url, ca_file, proxy, username, device_name, refresh_token, status_cursor, reference, linked_at"
)
_STATUS_COLUMNS = "report_id, server_ref, status, note, changed_at"
_KEY_COLUMNS = "report_id, owner_key"
_DEVICE_COLUMNS = "server_url, token"
_REVIEW_COLUMNS = (
    "event_id, seq, report_id, kind, field, value, base_version, version, outcome, author, created_at"
)


# --- without the key ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCheck:
    """What can be told about a database without its key. ``problems`` are signs of damage; ``notes`` are not."""

    present: bool
    size: int
    changed_at: dt.datetime | None
    problems: list[str]
    notes: list[str]


def inspect_files(db_path: Path) -> FileCheck:
    """Size, header and page layout of the database and its ``-wal``; reads only."""
    name = db_path.name
    problems: list[str] = []
    notes: list[str] = []
    try:
        info = db_path.stat()
    except FileNotFoundError:
        problems.append(f"{name} is missing.")
        info = None
    if info is not None:
        if info.st_size == 0:
            problems.append(f"{name} is empty.")
        else:
            with db_path.open("rb") as handle:
                head = handle.read(16)
            if head == b"SQLite format 3\x00":
                problems.append(f"{name} is an unencrypted SQLite file, not this profile's encrypted database.")
            if info.st_size % PAGE_SIZE:
                problems.append(
                    f"{name} is {info.st_size:,} bytes, not a whole number of {PAGE_SIZE:,}-byte pages: it was cut "
                    "short or only partly written."
                )
    wal = db_path.with_name(name + "-wal")
    if wal.is_file():
        size = wal.stat().st_size
        notes.append(
            f"{wal.name} is present ({size:,} bytes): changes not yet copied into {name}, left by a crash or "
            "because the profile is open now; they are read at the next unlock."
        )
        if size:
            with wal.open("rb") as handle:
                header = handle.read(4)
            if len(header) < 4 or struct.unpack(">I", header)[0] not in _WAL_MAGIC:
                problems.append(f"{wal.name} does not start like a write-ahead log: it is damaged.")
            elif (size - _WAL_HEADER) % (_WAL_FRAME_HEADER + PAGE_SIZE):
                notes.append(
                    f"{wal.name} ends with an incomplete change (an interrupted write); that part was never "
                    "acknowledged and is ignored."
                )
    changed = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC) if info is not None else None
    return FileCheck(info is not None, info.st_size if info is not None else 0, changed, problems, notes)


def in_use(db_path: Path) -> bool:
    """True when another process has the database open: SQLite (unix VFS) holds a shared lock on one byte of the
    ``-shm`` for as long as a connection to a WAL database is open. False where that cannot be told (Windows,
    no ``-shm``). Setting aside or replacing a file that is open would send that process's next saves into the
    file set aside."""
    if sys.platform == "win32":
        return False
    import fcntl

    try:
        fd = os.open(db_path.with_name(db_path.name + "-shm"), os.O_RDWR)
    except OSError:
        return False
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS_BYTE)
        return False
    finally:
        os.close(fd)


def remove_stale_scratch(db_path: Path, *, older_than: float = 3600.0) -> None:
    """Scratch copies and unfinished results of a recovery that was killed (encrypted, but they take space).
    Only old ones: a younger one may belong to a recovery running now."""
    cutoff = time.time() - older_than
    for entry in db_path.parent.iterdir():
        if not entry.name.startswith((SCRATCH_PREFIX, f".{db_path.name}{RESULT_INFIX}")):
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


@dataclass(frozen=True)
class SetAside:
    folder: Path
    moved: list[str]


def set_aside(db_path: Path, *, now: dt.datetime | None = None) -> SetAside | None:
    """Moves the database, then its ``-wal`` and ``-shm``, into a new ``set-aside/<UTC time>/`` folder beside it;
    None when there was nothing to move. The database goes first: a ``-wal`` left alone cannot be opened (no
    database beside it), whereas a database without its ``-wal`` would open with the WAL's changes missing."""
    sources = [db_path.with_name(db_path.name + suffix) for suffix in ("", *_SIDE_FILES)]
    present = [path for path in sources if path.exists()]
    if not present:
        return None
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = db_path.parent / SET_ASIDE_FOLDER / stamp
    ensure_private_dir(folder.parent)
    folder.mkdir(mode=0o700)  # a new folder every time: nothing set aside earlier is ever replaced
    moved = []
    for path in present:
        os.rename(path, folder / path.name)
        moved.append(path.name)
    sync_dir(folder)
    sync_dir(db_path.parent)
    return SetAside(folder, moved)


def set_aside_folders(db_path: Path) -> list[Path]:
    folder = db_path.parent / SET_ASIDE_FOLDER
    return sorted((entry for entry in folder.iterdir() if entry.is_dir()), reverse=True) if folder.is_dir() else []


def unrecovered_set_aside(db_path: Path) -> Path | None:
    """The newest set-aside folder holding a database, unless a recovery already merged it (its mark is
    there): what ``recover --set-aside`` moved away, still to be read when the profile is restored."""
    for folder in set_aside_folders(db_path):
        if (folder / db_path.name).is_file():
            return None if (folder / RECOVERED_MARK).exists() else folder
    return None


def mark_recovered(folder: Path) -> None:
    """Marks a set-aside folder as merged into a recovered database (an empty file beside the files; they are
    left as they are), so a later recovery does not merge it again. A mark that cannot be written only means
    it may be merged again, which is harmless: the highest revision wins."""
    with contextlib.suppress(OSError):
        os.close(os.open(folder / RECOVERED_MARK, os.O_WRONLY | os.O_CREAT, 0o600))
        sync_dir(folder)


# --- with the key: reading report by report -----------------------------------------------------------------


@dataclass
class Contents:
    """Everything readable in one database file. Row tuples keep the column order of the ``*_COLUMNS`` above."""

    reports: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    revisions: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)
    outbox: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    audit_high: int = 0  # the highest audit seq the file knows of (rows up to it should exist)
    account: tuple[Any, ...] | None = None
    statuses: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    owner_keys: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # lost, a sent report cannot be revised
    devices: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # the servers' device tokens (known device)
    # Review records made here and not sent yet; the sent ones, and the facility's copies, which a recovery leaves
    # out, come back from the server at the next sync (their cursors are not carried over).
    unsent_reviews: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    known_ids: set[str] = field(default_factory=set)  # report ids seen anywhere, even where the row is lost
    deleted: set[str] = field(default_factory=set)  # drafts the audit log says were deleted
    unreadable: int = 0  # places (rows or ranges) that could not be read

    @property
    def empty(self) -> bool:
        return not (self.reports or self.revisions or self.audit)


def read_contents(path: Path, key: bytes, *, damaged: bool, scratch_in: Path | None = None) -> Contents:
    """Everything that can still be read from the database at ``path``.

    ``damaged=True``: the file (and its ``-wal``) is copied into a scratch folder beside it and read there, so
    the original stays byte-identical; a page failing its HMAC costs only the rows on it. ``damaged=False`` (a
    checked backup): read in place through a read-only, immutable connection. Page 1 unreadable gives empty
    contents. ``scratch_in``: where the scratch folder goes (default: beside the file); a set-aside folder's file
    is read through a scratch folder in the profile folder, so nothing is added to what was set aside.
    """
    if not damaged:
        return _read_all(_Reader(path, key, immutable=True))
    scratch = (scratch_in or path.parent) / f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
    ensure_private_dir(scratch)
    try:
        copy = scratch / path.name
        for suffix in ("", "-wal"):  # not -shm: SQLite rebuilds it from the WAL
            source = path.with_name(path.name + suffix)
            if source.is_file():
                target = copy.with_name(copy.name + suffix)
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner-only from the start
                shutil.copyfile(source, target)
        if not copy.is_file():
            return Contents()
        return _read_all(_Reader(copy, key, immutable=False))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Reader:
    """A keyed, query-only connection that is replaced after every read error.

    After one page fails its HMAC, SQLCipher keeps an error on the connection and fails every later read on it,
    even of sound pages; a fresh connection reads them again. A backup is read in place (read-only, immutable);
    a damaged file's scratch copy read-write, so SQLite may replay its WAL.
    """

    def __init__(self, path: Path, key: bytes, *, immutable: bool) -> None:
        self._uri = f"{path.resolve().as_uri()}?mode={'ro&immutable=1' if immutable else 'rw'}"
        self._key = key
        self.conn: Connection | None = None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlcipher.Cursor:
        if self.conn is None:
            self.conn = self._connect()
        return self.conn.execute(sql, params)

    def reset(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlcipher.Error):
                self.conn.close()
            self.conn = None

    def _connect(self) -> Connection:
        quiet_sqlcipher_logging()  # every damaged page read would otherwise print an engine line on stderr
        conn = sqlcipher.connect(self._uri, uri=True, isolation_level=None)
        literal = bytearray(b"x'")
        literal += self._key.hex().encode("ascii")
        literal += b"'"
        try:
            conn.set_key(literal)  # the key never appears in SQL text
        finally:
            literal[:] = bytes(len(literal))
        apply_cipher_settings(conn)
        # A file cut short is otherwise refused as a whole ("malformed": its header counts more pages than it
        # has); with this, SQLite reads the pages that are there. Nothing is written: the connection is query-only.
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("PRAGMA query_only = ON")
        return conn


def _read_all(reader: _Reader) -> Contents:
    try:
        return _read(reader)
    except sqlcipher.OperationalError:
        return Contents(unreadable=1)  # the file cannot be opened at all
    finally:
        reader.reset()


def _read(reader: _Reader) -> Contents:
    contents = Contents()
    try:
        tables = {str(row[0]) for row in reader.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlcipher.DatabaseError:
        contents.unreadable += 1  # page 1 or the schema is damaged: nothing in this file can be found
        return contents
    for row in _rows(reader, "reports", _REPORT_COLUMNS, tables, contents, sequence=None):
        if _intact(row[11], row[10]):
            contents.reports[row[0]] = row
        else:
            contents.unreadable += 1
    facility = _facility_ids(reader, tables)
    for row in _rows(reader, "report_revisions", _REVISION_COLUMNS, tables, contents, sequence=None):
        if _intact(row[4], row[2]):
            contents.revisions[(row[0], int(row[1]))] = row
        else:
            contents.unreadable += 1
    for row in _rows(reader, "outbox", _OUTBOX_COLUMNS, tables, contents, sequence="outbox"):
        contents.outbox[(row[1], int(row[2]))] = row
    contents.audit = sorted(_rows(reader, "audit_log", _AUDIT_COLUMNS, tables, contents, sequence="audit_log"))
    contents.audit_high = max([_sequence(reader, "audit_log"), *(int(row[0]) for row in contents.audit)])
    accounts = _rows(reader, "account", _ACCOUNT_COLUMNS, tables, contents, sequence=None)
    contents.account = accounts[0] if accounts else None
    for row in _rows(reader, "server_status", _STATUS_COLUMNS, tables, contents, sequence=None):
        contents.statuses[row[0]] = row
    for row in _rows(reader, "report_keys", _KEY_COLUMNS, tables, contents, sequence=None):
        contents.owner_keys[row[0]] = row
    for row in _rows(reader, "known_device", _DEVICE_COLUMNS, tables, contents, sequence=None):
        contents.devices[row[0]] = row
    for row in _rows(reader, "review_records", _REVIEW_COLUMNS, tables, contents, sequence=None):
        if row[1] is None:
            contents.unsent_reviews[row[0]] = row
    contents.known_ids = (
        set(contents.reports)
        | _index_ids(reader, tables, contents)
        | {report_id for report_id, _ in contents.revisions}
        | {report_id for report_id, _ in contents.outbox}
    )
    contents.deleted = {str(row[4]) for row in contents.audit if row[3] == "delete" and row[4]}
    # Copies of the facility's reports (a risk manager's) are not this profile's: carried over they would look
    # like its own reports whose frozen revision was lost, and be queued to be sent as its own.
    for report_id in facility:
        contents.reports.pop(report_id, None)
        contents.statuses.pop(report_id, None)
    contents.known_ids -= facility
    return contents


def _facility_ids(reader: _Reader, tables: set[str]) -> set[str]:
    """Ids of the facility's copies (schema version 9 on), read apart so that the reports' columns stay those
    every version has. Rows it cannot read were counted as unreadable by the reports' own scan."""
    if "review_records" not in tables:
        return set()
    rows = _rows(reader, "reports", "id, origin", tables, Contents(), sequence=None)
    return {str(row[0]) for row in rows if row[1] == "facility"}


def _rows(
    reader: _Reader, table: str, columns: str, tables: set[str], contents: Contents, *, sequence: str | None
) -> list[tuple[Any, ...]]:
    """Every readable row of ``table`` in rowid order. A scan stops at a damaged page; it resumes past it by
    seeking to the next rowid, one at a time, up to the highest rowid known plus a margin."""
    if table not in tables:
        return []  # an older schema: the table did not exist yet
    # Table and column names come from the constants above, never from outside.
    sql = f"SELECT rowid, {columns} FROM {table} WHERE rowid > ? ORDER BY rowid"  # noqa: S608
    found: list[tuple[Any, ...]] = []
    after = 0
    upper: int | None = None
    while True:
        try:
            for row in _fetch(reader.execute(sql, (after,))):
                found.append(tuple(row[1:]))
                after = int(row[0])
            return found
        except sqlcipher.DatabaseError:
            reader.reset()
            contents.unreadable += 1
            if upper is None:
                upper = _highest_rowid(reader, table, sequence) + _PROBE_MARGIN
            after += 1
            if after > upper:
                return found


def _fetch(cursor: sqlcipher.Cursor) -> Iterator[tuple[Any, ...]]:
    while (row := cursor.fetchone()) is not None:  # one row at a time: a damaged page fails only its rows
        yield tuple(row)


def _scalar(reader: _Reader, sql: str, params: tuple[Any, ...] = ()) -> int:
    """An integer query's answer, 0 when it is NULL, absent or unreadable."""
    try:
        row = reader.execute(sql, params).fetchone()
    except sqlcipher.DatabaseError:
        reader.reset()
        return 0
    return int(row[0] or 0) if row is not None else 0


def _highest_rowid(reader: _Reader, table: str, sequence: str | None) -> int:
    highest = _scalar(reader, f"SELECT max(rowid) FROM {table}")  # noqa: S608 -- a constant name
    if sequence is not None:
        highest = max(highest, _sequence(reader, sequence))
    if table == "reports":  # the list index holds every pk, on pages of its own
        highest = max(highest, _scalar(reader, "SELECT max(pk) FROM reports INDEXED BY reports_by_updated"))
    return highest or _scalar(reader, "PRAGMA page_count") * 64


def _sequence(reader: _Reader, table: str) -> int:
    return _scalar(reader, "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))


def _index_ids(reader: _Reader, tables: set[str], contents: Contents) -> set[str]:
    """Report ids from the unique index on ``reports.id`` (its own pages): tells which reports were lost."""
    if "reports" not in tables:
        return set()
    ids: set[str] = set()
    try:
        cursor = reader.execute("SELECT id FROM reports INDEXED BY sqlite_autoindex_reports_1 ORDER BY id")
        for row in _fetch(cursor):
            ids.add(str(row[0]))
    except sqlcipher.DatabaseError:
        reader.reset()
        contents.unreadable += 1
    return ids


def _intact(wire: Any, sha256: Any) -> bool:
    return isinstance(wire, str) and hashlib.sha256(wire.encode("utf-8")).hexdigest() == sha256


# --- merging ----------------------------------------------------------------------------------------------


@dataclass
class Merged:
    reports: list[tuple[Any, ...]]
    revisions: list[tuple[Any, ...]]
    outbox: list[tuple[Any, ...]]
    audit: list[tuple[Any, ...]]
    account: tuple[Any, ...] | None
    statuses: list[tuple[Any, ...]]
    owner_keys: list[tuple[Any, ...]]
    devices: list[tuple[Any, ...]]
    unsent_reviews: list[tuple[Any, ...]]
    from_backup: int  # reports whose winning content came from the backup
    from_damaged: int  # reports whose winning content came from the damaged file
    lost_reports: int  # report ids the damaged file knew of that neither source could give back
    lost_audit: int  # audit entries known to exist that could not be carried over


def merge(backup: Contents | None, damaged: Contents | None) -> Merged:
    """The backup (older) and what the damaged file still holds (newer), as one consistent database.

    For each report the highest revision wins; at the same revision the damaged file's row (it is newer) wins,
    and a frozen revision wins over a backup's draft of it. Frozen revisions and outbox entries are the union
    of both; an outbox entry whose frozen revision is lost is dropped, a frozen revision without an entry (or
    caught mid-upload, ``sending``) is queued again: sending it twice is harmless, the PSO dedupes on (id,
    revision). A draft the damaged file's audit log says was deleted stays deleted.
    """
    older = backup or Contents()
    newer = damaged or Contents()
    revisions = {**older.revisions, **newer.revisions}
    outbox: dict[tuple[str, int], list[Any]] = {}
    for source in (older.outbox, newer.outbox):
        for entry_key, stored in source.items():
            if entry_key in revisions:
                outbox[entry_key] = list(stored)
    for pending in outbox.values():
        if pending[3] == "sending":
            pending[3] = "queued"

    def ensure_entry(report_id: str, revision: int, frozen: tuple[Any, ...]) -> list[Any]:
        if (report_id, revision) not in outbox:
            size = len(str(frozen[4]).encode("utf-8"))
            outbox[(report_id, revision)] = [
                None,
                report_id,
                revision,
                "queued",
                size,
                0,
                None,
                None,
                None,
                frozen[3],
                frozen[3],
            ]
        return outbox[(report_id, revision)]

    for (report_id, revision), frozen in revisions.items():
        ensure_entry(report_id, revision, frozen)

    top_frozen: dict[str, int] = {}
    for report_id, revision in revisions:
        top_frozen[report_id] = max(revision, top_frozen.get(report_id, 0))
    rows: list[tuple[Any, ...]] = []
    from_backup = from_damaged = 0
    ids = set(older.reports) | set(newer.reports) | {report_id for report_id, _ in revisions}
    for report_id in sorted(ids):
        if report_id not in newer.reports and report_id in newer.deleted:
            continue
        candidates: list[tuple[int, int, str, tuple[Any, ...]]] = []
        if report_id in newer.reports:
            candidates.append((int(newer.reports[report_id][1]), 2, "damaged", newer.reports[report_id]))
        if report_id in top_frozen:
            top = top_frozen[report_id]
            candidates.append((top, 1, "frozen", revisions[(report_id, top)]))
        if report_id in older.reports:
            candidates.append((int(older.reports[report_id][1]), 0, "backup", older.reports[report_id]))
        revision, _, origin, chosen = max(candidates, key=lambda c: (c[0], c[1]))
        created = min(
            (str(source.reports[report_id][8]) for source in (older, newer) if report_id in source.reports),
            default=None,
        )
        if origin == "frozen":
            wire = str(chosen[4])
            content = json.loads(wire)
            entry = ensure_entry(report_id, revision, chosen)
            row = (
                report_id,
                revision,
                entry[3],
                *summary_columns(content),
                entry[6],
                created or chosen[3],
                chosen[3],
                chosen[2],
                wire,
            )
            origin = "damaged" if (report_id, revision) in newer.revisions else "backup"
        else:
            row = chosen
            if row[2] != "draft":
                if (report_id, revision) not in revisions:  # its frozen copy is lost: freeze the row again
                    revisions[(report_id, revision)] = (report_id, revision, row[10], row[9], row[11])
                entry = ensure_entry(report_id, revision, revisions[(report_id, revision)])
                row = (*row[:2], entry[3], *row[3:])
        if origin == "damaged":
            from_damaged += 1
        else:
            from_backup += 1
        rows.append(row)

    kept_ids = {row[0] for row in rows}
    entries = sorted(outbox.values(), key=lambda e: (e[0] is None, e[0] or 0))
    next_seq = max([0, *(int(e[0]) for e in entries if e[0] is not None)]) + 1
    seen_seqs: set[int] = set()
    for queued in entries:
        if queued[0] is None or queued[0] in seen_seqs:
            queued[0] = next_seq
            next_seq += 1
        seen_seqs.add(int(queued[0]))

    audit = _audit_chain(newer.audit)
    older_chain = _audit_chain(older.audit)
    if len(older_chain) > len(audit):
        audit = older_chain
    known_audit = max(newer.audit_high, older.audit_high)
    return Merged(
        reports=sorted(rows, key=lambda row: (str(row[8]), row[0])),
        revisions=[revisions[k] for k in sorted(revisions)],
        outbox=[tuple(entry) for entry in entries],
        audit=audit,
        account=newer.account or older.account,
        statuses=[s for _, s in sorted({**older.statuses, **newer.statuses}.items())],
        # A key never changes once generated, so either file's copy is the key; only kept reports take one.
        owner_keys=[k for i, k in sorted({**older.owner_keys, **newer.owner_keys}.items()) if i in kept_ids],
        devices=[d for _, d in sorted({**older.devices, **newer.devices}.items())],
        unsent_reviews=[r for _, r in sorted({**older.unsent_reviews, **newer.unsent_reviews}.items())],
        from_backup=from_backup,
        from_damaged=from_damaged,
        lost_reports=len(newer.known_ids - kept_ids - newer.deleted),
        lost_audit=max(0, known_audit - len(audit)),
    )


def _audit_chain(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The unbroken start of the hash chain (seq 1, 2, ... each naming its predecessor's hash)."""
    chain: list[tuple[Any, ...]] = []
    previous = "0" * 64
    for row in rows:
        if int(row[0]) != len(chain) + 1 or row[6] != previous:
            break
        chain.append(row)
        previous = str(row[7])
    return chain


# --- writing ----------------------------------------------------------------------------------------------


def write_database(path: Path, key: bytes, merged: Merged, *, actor: str, detail: str) -> None:
    """Creates a new database at ``path`` (which must not exist) holding ``merged`` plus a ``recover`` audit
    entry, in one transaction; then checks every page and the audit chain. Raises StorageError when the result
    does not pass."""
    conn = open_database(path, key, create=True)
    try:
        with transaction(conn):
            _insert(conn, "audit_log", _AUDIT_COLUMNS, merged.audit)
            _insert(conn, "reports", _REPORT_COLUMNS, merged.reports)
            _insert(conn, "report_revisions", _REVISION_COLUMNS, merged.revisions)
            _insert(conn, "outbox", _OUTBOX_COLUMNS, merged.outbox)
            _insert(conn, "account", _ACCOUNT_COLUMNS, [merged.account] if merged.account is not None else [])
            _insert(conn, "server_status", _STATUS_COLUMNS, merged.statuses)
            _insert(conn, "report_keys", _KEY_COLUMNS, merged.owner_keys)
            _insert(conn, "known_device", _DEVICE_COLUMNS, merged.devices)
            _insert(conn, "review_records", _REVIEW_COLUMNS, merged.unsent_reviews)
            AuditLog(conn).append("recover", actor=actor, detail=detail)
    finally:
        conn.close()
    if check_integrity(path, key):
        raise StorageError(
            "The recovered database did not pass its check; nothing was replaced. Contact IT support."
        )
    conn = open_database(path, key, full_check=True)
    try:
        if not AuditLog(conn).verify():
            raise StorageError(
                "The recovered audit log did not pass its check; nothing was replaced. Contact IT support."
            )
    finally:
        conn.close()


def _insert(conn: Connection, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    placeholders = ", ".join("?" * len(columns.split(",")))
    # Table and column names are the constants above; every value is a bound parameter.
    conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)  # noqa: S608
