"""Opening the encrypted per-profile database: key, settings, verification, tamper check, migrations.

Order of operations when opening an existing file (the point is that a wrong key or a damaged file leaves
every byte of the database, its ``-wal`` and ``-shm`` as they were, and that a crash never locks anyone out):

1. refuse a missing or empty file unless ``create`` (never make a new database by accident), and an
   unencrypted SQLite file put in its place (:class:`DatabaseTamperedError`);
2. unless the caller already proved the key (``key_proven``: the keyring entry's AEAD unwrapped it), decrypt
   page 1 of the main file on a **read-only, immutable** connection (no locks, no ``-wal``/``-shm`` opened,
   created or recovered): "not a database" there is :class:`WrongKeyError`. From here on the key is right,
   so any read failure is damage (:class:`DatabaseTamperedError`), never "wrong key";
3. no hot ``-wal`` (a clean close removes it): the HMAC of every page and the schema version are checked on
   the immutable connection (nothing on it can change a byte);
   a hot ``-wal`` (a crash, a kill or a full disk, maybe in the middle of a checkpoint, so the main file can
   be a mix of old and new pages): first a read-only WAL-aware reader (it rebuilds the ``-shm`` index, the
   only file it writes) reads page 1 and the schema version; then the WAL is replayed into the main file
   (the one write allowed before verification: it copies committed pages only, and leaves every other page,
   damaged or not, as it was) and the main file is checked as above;
4. the read-write connection: key, settings, WAL, migrations, and a read-back of every setting.

Durability: every top-level :func:`transaction` ends with ``PRAGMA wal_checkpoint(TRUNCATE)``, so what a
caller acknowledges is in the main file, not only in the ``-wal`` (a damaged, cut or deleted ``-wal`` then
loses nothing); a checkpoint that cannot complete raises, so nothing is acknowledged that is not there.

Threading: a connection belongs to the one worker thread that opened it (``check_same_thread`` stays on).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlcipher3.dbapi2 as sqlcipher
from sqlcipher3.dbapi2 import Connection

from pso_desktop.files import sync_dir, write_private_file
from pso_desktop.storage.errors import (
    INTERRUPTED_WRITE_DETAIL,
    DatabaseMissingError,
    DatabaseTamperedError,
    DiskFullError,
    JournalLostError,
    StorageBusyError,
    StorageError,
    StorageIOError,
    WrongKeyError,
    classify,
)
from pso_desktop.storage.migrations import LATEST_VERSION, migrate, refuse_too_new

KEY_BYTES = 32
SUPPORTED_CIPHER_MAJOR = "4."
BUSY_TIMEOUT_SECONDS = 5.0
# Up to this size the HMAC of every page is checked at open (about 45 ms, some 2,000 reports); above it the
# full check runs in the background (check_integrity) so unlocking stays fast. See docs/storage.md.
FULL_CHECK_MAX_BYTES = 8 * 1024 * 1024

# SQLite result codes used to tell "cannot verify read-only" apart from real verification failures.
_SQLITE_CANTOPEN = 14
_SQLITE_READONLY = 8
_SQLITE_NOTADB = 26
_SQLITE_CORRUPT = 11

# How long a checkpoint after a commit waits for readers before leaving the commit in the -wal (with a mark).
CHECKPOINT_WAIT_MS = 200
WAL_MARK_SUFFIX = "-walmark"
_WAL_HEADER_BYTES = 32
_WAL_FRAME_HEADER_BYTES = 24

CACHE_KIB = 32 * 1024
# Settings read back after open; a mismatch means the engine silently ignored a PRAGMA.
_EXPECTED_SETTINGS: dict[str, object] = {
    "temp_store": 2,  # MEMORY: no plaintext temp files
    "synchronous": 2,  # FULL: an acknowledged save survives power loss
    "secure_delete": 1,  # freed pages are zeroed inside the file
    "foreign_keys": 1,
    "journal_mode": "wal",
}

_log = logging.getLogger(__name__)
_logging_lock = threading.Lock()
_logging_quieted = False


def open_database(
    path: Path,
    key: bytes,
    *,
    create: bool = False,
    full_check: bool | None = None,
    key_proven: bool = False,
) -> Connection:
    """Open (or with ``create=True`` create) the SQLCipher database at ``path`` with a raw 256-bit key.

    Promises: the key is verified before anything is written; a wrong key raises :class:`WrongKeyError`, a
    page failing its HMAC :class:`DatabaseTamperedError`, a newer schema :class:`DatabaseTooNewError`, and in
    each case the file, ``-wal`` and ``-shm`` are byte-identical afterwards, except that with a proven key a
    hot ``-wal`` left by a crash is replayed (see the module docstring). ``create=False`` on a missing or
    empty path raises :class:`DatabaseMissingError` and creates nothing.

    ``key_proven=True`` says the caller knows the key is this database's (it came out of the profile's
    AEAD-wrapped keyring entry): an unreadable page 1 is then damage (:class:`DatabaseTamperedError`), not a
    wrong key, and a hot ``-wal`` may be replayed. Without it, an unreadable page 1 of the main file can only
    be reported as :class:`WrongKeyError`. The returned connection's ``wal_replayed`` is True when a crash's
    committed transactions were replayed from the ``-wal`` (an interrupted write, not damage). The returned connection is in
    autocommit mode (use :func:`transaction`), has the settings in ``_EXPECTED_SETTINGS``, denies ATTACH and
    DETACH, and is migrated to the latest schema. New files are created with mode 0600.

    ``full_check`` decides whether every page's HMAC is checked before the connection is returned
    (``cipher_integrity_check``, about 4-11 ms per MB on the 2-core CI machine). ``None`` (the default) checks every page when the
    file is at most :data:`FULL_CHECK_MAX_BYTES` or a migration is about to run; larger files get the key
    check only, and the caller runs :func:`check_integrity` in the background after unlock. Either way
    SQLCipher checks the HMAC of every page it reads, so a damaged page is never used silently.
    """
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise ValueError("the database key must be exactly 32 raw bytes")
    return _open(Path(path), bytes(key), create=create, full_check=full_check, key_proven=key_proven)


def _open_unencrypted_for_benchmark(path: Path, *, create: bool = False) -> Connection:
    """Plain SQLite through the very same code path (same library, settings, schema), without a key.

    For ``benchmarks/bench_store.py`` only, to compare encrypted with unencrypted storage. Application code
    must never call this: it writes patient data in clear text. It is private and named so a review catches
    any other caller.
    """
    return _open(Path(path), None, create=create, full_check=False, key_proven=True)


def check_integrity(path: Path, key: bytes) -> list[str]:
    """Every problem found in the database at ``path``: HMAC failures and SQLite structural errors.

    Returns ``[]`` when clean. Uses a read-only connection and never modifies the file. A wrong key raises
    :class:`WrongKeyError`, a missing file :class:`DatabaseMissingError`. The messages name pages and
    tables, never content.
    """
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise ValueError("the database key must be exactly 32 raw bytes")
    path = Path(path)
    quiet_sqlcipher_logging()
    if not path.is_file() or path.stat().st_size == 0:
        raise DatabaseMissingError()
    if _is_plaintext_sqlite(path):
        return ["the file is an unencrypted SQLite database, not this profile's encrypted one"]
    try:
        _check_wal_mark(path)
    except JournalLostError:
        return ["saved changes are missing: the -wal beside the database was damaged or removed"]
    # A closed database (no -wal) is read as immutable so nothing is created beside it; when a -wal exists
    # (the app has it open, or a crash left it) a normal reader takes locks and sees committed WAL pages,
    # and may update the -shm read marks, but never the database or the -wal.
    has_wal = path.with_name(path.name + "-wal").exists()
    conn = _connect(path, readonly=True, immutable=not has_wal)
    try:
        _key(conn, bytes(key))
        _first_read(conn, key_proven=False)
        if not _has_hot_wal(path):
            with translate_errors():
                problems = [str(row[0]) for row in conn.execute("PRAGMA cipher_integrity_check")]
            if problems:
                return problems  # the structural check would only stumble over the same pages
        # With a hot -wal the main file alone can be a mix of old and new pages, or end in a torn page, that the
        # -wal supersedes (a checkpoint cut short); the structural check below reads every page in use through
        # the -wal, and SQLCipher checks the HMAC of each.
        try:
            structural = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        except sqlcipher.DatabaseError as exc:
            if not isinstance(classify(exc), DatabaseTamperedError):
                raise
            return ["the database structure could not be read (damaged page)"]
        return [] if structural == ["ok"] else structural
    finally:
        conn.close()


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn environmental SQLCipher errors (busy, disk full, I/O, damaged page) into :class:`StorageError`.

    Anything else (a bug: bad SQL, a constraint our own code violated) propagates unchanged.
    """
    try:
        yield
    except sqlcipher.Error as exc:
        classified = classify(exc)
        if classified is None:
            raise
        raise classified from exc


@contextlib.contextmanager
def transaction(conn: Connection, *, durable: bool = True) -> Iterator[Connection]:
    """Run the block in one write transaction: all of it is committed, or none of it.

    At top level this is ``BEGIN IMMEDIATE`` ... ``COMMIT`` (taking the write lock up front, so a busy
    database fails at the start instead of halfway); inside another transaction it is a savepoint, so
    repositories and the audit log can be combined in one caller's transaction. Environmental failures are
    raised as :class:`StorageError` subclasses, after the rollback.

    A top-level commit is then checkpointed into the main file (:func:`checkpoint`) before the block's caller
    can report success. ``durable=False`` skips that for bookkeeping that is replayed harmlessly if a damaged
    ``-wal`` loses it (the sync engine's claims and results: the server dedupes a re-sent batch); such a commit
    still survives a crash, and the next durable commit checkpoints it too.
    """
    with translate_errors():
        if conn.in_transaction:
            conn.execute("SAVEPOINT pso_nested")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO pso_nested")
                conn.execute("RELEASE pso_nested")
                raise
            conn.execute("RELEASE pso_nested")
            return
        gate = getattr(conn, "write_gate", None)
        if gate is not None and not gate.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise StorageBusyError()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            # Before the caller says "saved": the commit moves into the main file, so a damaged, cut or deleted
            # -wal cannot take it away. Inside the gate, so this process's other connection is not writing.
            if durable:
                checkpoint(conn)
        finally:
            if gate is not None:
                gate.release()


class _Connection(Connection):  # type: ignore[misc]  # the binding ships no type information
    """A connection with its database file's in-process write gate (see :func:`_write_gate`), and whether
    opening it replayed a crash's ``-wal`` (an interrupted write, see :func:`open_database`)."""

    write_gate: threading.Lock | None = None
    wal_replayed: bool = False
    db_path: Path | None = None

    def close(self) -> None:
        path = self.db_path
        if path is not None and _wal_mark_path(path).exists():
            # A mark left by a commit that readers kept in the -wal: empty the -wal now if they are gone.
            with contextlib.suppress(sqlcipher.Error, StorageError):
                checkpoint(self)
        super().close()
        if path is not None and not path.with_name(path.name + "-wal").exists():
            # SQLite removes the -wal at the last close only after copying all of it into the main file.
            with contextlib.suppress(OSError):
                _clear_wal_mark(path)


def checkpoint(conn: Connection) -> None:
    """Copy every committed page from the ``-wal`` into the main file, sync it and empty the ``-wal``.

    ``TRUNCATE``, not ``FULL``: a ``-wal`` that keeps already-copied frames could, once damaged, let a reader
    prefer an older copy of a page over the main file's. A reader holding an older snapshot (a backup, a
    long export on another connection) keeps the commit in the ``-wal``; it is durable there (``synchronous=
    FULL``), and a mark beside the database records how much of which ``-wal`` must be found at the next open,
    so losing that ``-wal`` is said (:class:`JournalLostError`) instead of silently dropping the saves. The
    wait for readers is short: a lock or an autosave never waits for a backup. Disk full raises
    :class:`DiskFullError` (the caller then says the change was not saved).
    """
    row = _truncate_wal(conn)
    path = getattr(conn, "db_path", None)
    if path is None or row is None:
        return
    try:
        if row[0] == 0:
            _clear_wal_mark(path)
        else:
            _write_wal_mark(path, frames=int(row[1]))
    except OSError as exc:
        raise _os_error(exc) from exc


def _truncate_wal(conn: Connection) -> Any:
    """``wal_checkpoint(TRUNCATE)``, waiting for readers only briefly; its row is (busy, frames, copied)."""
    with translate_errors():
        conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
        try:
            return conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")


def _os_error(exc: OSError) -> StorageError:
    return DiskFullError() if exc.errno in (errno.ENOSPC, errno.EDQUOT) else StorageIOError()


def _wal_mark_path(path: Path) -> Path:
    return path.with_name(path.name + WAL_MARK_SUFFIX)


def _write_wal_mark(path: Path, *, frames: int) -> None:
    """Record (fsynced) the -wal's salt and how many of its frames hold acknowledged commits."""
    with path.with_name(path.name + "-wal").open("rb") as handle:
        header = handle.read(_WAL_HEADER_BYTES)
    if len(header) < _WAL_HEADER_BYTES:
        return
    mark = {"salt": header[16:24].hex(), "frames": frames}
    write_private_file(_wal_mark_path(path), json.dumps(mark).encode("ascii"))


def _clear_wal_mark(path: Path) -> None:
    mark = _wal_mark_path(path)
    if mark.exists():
        mark.unlink(missing_ok=True)
        sync_dir(path.parent)  # a mark that came back after a power cut would be a false alarm


def _check_wal_mark(path: Path) -> None:
    """Refuse to open (changing nothing) when the -wal lost acknowledged commits that a mark says it holds.

    The -wal must exist with a valid header; the same salt means the same -wal, which must still hold the
    marked number of valid frames (SQLite would silently stop at the first damaged or missing one). Another
    salt means SQLite restarted the -wal, which it does only after every frame was copied into the main file.
    """
    mark_path = _wal_mark_path(path)
    try:
        mark = json.loads(mark_path.read_text(encoding="ascii"))
        salt, frames = bytes.fromhex(str(mark["salt"])), int(mark["frames"])
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):
        raise JournalLostError() from None
    wal = path.with_name(path.name + "-wal")
    with contextlib.suppress(FileNotFoundError):
        if wal.stat().st_size == 0:
            # Emptied by a complete TRUNCATE checkpoint (everything is in the main file), and the process died
            # before it removed the mark: only SQLite empties a -wal to nothing; a deleted one is missing.
            return
    found = _valid_wal_frames(wal)
    if found is None:
        raise JournalLostError()
    found_salt, valid = found
    if found_salt == salt and valid < frames:
        raise JournalLostError()


def _valid_wal_frames(wal: Path) -> tuple[bytes, int] | None:
    """The -wal's salt and its number of frames up to the last valid commit, as SQLite's recovery counts them
    (salts and cumulative checksums); ``None`` when the -wal is missing or its header is invalid."""
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < _WAL_HEADER_BYTES:
        return None
    magic, _version, page_size = struct.unpack(">III", data[:12])
    if magic not in (0x377F0682, 0x377F0683) or page_size < 512 or page_size & (page_size - 1):
        return None
    order = ">" if magic & 1 else "<"
    s0, s1 = _wal_checksum(data[:24], order, 0, 0)
    if (s0, s1) != struct.unpack(">II", data[24:32]):
        return None
    salt = data[16:24]
    frame_bytes = _WAL_FRAME_HEADER_BYTES + page_size
    valid = frame = 0
    offset = _WAL_HEADER_BYTES
    while offset + frame_bytes <= len(data):
        header = data[offset : offset + _WAL_FRAME_HEADER_BYTES]
        if header[8:16] != salt:
            break
        s0, s1 = _wal_checksum(header[:8], order, s0, s1)
        s0, s1 = _wal_checksum(data[offset + _WAL_FRAME_HEADER_BYTES : offset + frame_bytes], order, s0, s1)
        if (s0, s1) != struct.unpack(">II", header[16:24]):
            break
        frame += 1
        if struct.unpack(">I", header[4:8])[0]:  # a commit frame
            valid = frame
        offset += frame_bytes
    return salt, valid


def _wal_checksum(chunk: bytes, order: str, s0: int, s1: int) -> tuple[int, int]:
    words = struct.unpack(f"{order}{len(chunk) // 4}I", chunk)
    for index in range(0, len(words), 2):
        s0 = (s0 + words[index] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[index + 1] + s0) & 0xFFFFFFFF
    return s0, s1


_write_gates: dict[str, threading.Lock] = {}
_write_gates_lock = threading.Lock()


def _write_gate(path: Path) -> threading.Lock:
    """One lock per database file for the write transactions of this process's connections to it.

    SQLite's own busy handler polls, sleeping longer after each miss, so a connection that writes often (a sync
    checkpointing batch after batch) can keep another (the form's autosave) waiting for seconds. Threads
    waiting on a lock are woken as soon as it is released. Other processes still meet SQLite's busy timeout.
    """
    with _write_gates_lock:
        return _write_gates.setdefault(str(path.resolve()), threading.Lock())


def current_settings(conn: Connection) -> dict[str, object]:
    """The connection's security-relevant settings, as the engine reports them (for tests and diagnostics)."""
    settings: dict[str, object] = {}
    for name in (*_EXPECTED_SETTINGS, "cipher_version", "cipher_memory_security"):
        row = conn.execute(f"PRAGMA {name}").fetchone()  # names come from the constant above only
        settings[name] = row[0] if row is not None else None
    return settings


# --- internals -------------------------------------------------------------------------------------------


def _open(path: Path, key: bytes | None, *, create: bool, full_check: bool | None, key_proven: bool) -> Connection:
    quiet_sqlcipher_logging()
    is_new = not path.is_file() or path.stat().st_size == 0
    verified = False
    hot_wal = False
    if is_new:
        if not create:
            raise DatabaseMissingError()
        _create_private_file(path)
    else:
        if key is not None and _is_plaintext_sqlite(path):
            # Someone put an unencrypted database where ours was: not a wrong password, a replaced file.
            raise DatabaseTamperedError()
        if full_check is None:
            full_check = path.stat().st_size <= FULL_CHECK_MAX_BYTES
        if not key_proven and key is not None:
            key_proven = _prove_key(path, key)
        _check_wal_mark(path)  # before anything reads the -wal: SQLite would stop at a damaged frame silently
        hot_wal = _has_hot_wal(path)
        if hot_wal and key_proven:
            # The main file alone may be a mix of old and new pages (a checkpoint cut short): read through the
            # -wal instead, without writing anything but the -shm index, before the replay below.
            _read_through_wal(path, key, full_check=full_check)
        else:
            verified = _verify_without_writing(path, key, full_check=full_check, key_proven=key_proven)

    conn = _connect(path, readonly=False)
    try:
        _key(conn, key)
        with translate_errors():  # a disk full to the byte fails here (no room to size the -shm)
            _apply_settings(conn)
        # Again, on this connection: the file may have been swapped since the checks above.
        _first_read(conn, key_proven=key_proven)
        if hot_wal and key_proven:
            completed, conn.wal_replayed = _replay_wal(conn, path)
            # Not completed: the main file may be mid-checkpoint (another connection's); every page in use was
            # already checked through the -wal when the full check applies.
            verified = not completed and bool(full_check)
        with translate_errors():
            version = refuse_too_new(conn)
        if not is_new and not verified and key is not None and (full_check or version < LATEST_VERSION):
            _tamper_check(conn)
        with translate_errors():
            _enable_wal(conn)
            migrate(conn)
        _assert_settings(conn, encrypted=key is not None)
    except BaseException:
        conn.close()
        raise
    conn.db_path = path  # only now: closing a connection that failed its checks must not checkpoint
    _restrict_permissions(path)
    return conn


def _has_hot_wal(path: Path) -> bool:
    """A non-empty ``-wal``: committed transactions may sit there and not (or only partly) in the main file."""
    wal = path.with_name(path.name + "-wal")
    try:
        return wal.stat().st_size > 0
    except FileNotFoundError:
        return False


def _prove_key(path: Path, key: bytes) -> bool:
    """Decrypt page 1 of the main file on an immutable connection; "not a database" is a wrong key.

    Page 1 is always in the main file (creating a database writes it before WAL mode starts), and nothing on
    this connection can change a byte. Returns ``False`` when the read-only open itself is impossible; the
    caller then runs the same check on the read-write connection.
    """
    with _immutable_reader(path, key) as conn:
        if conn is None:
            return False
        try:
            # Reads the header on page 1 and nothing else: other pages are judged below, through the -wal when
            # there is one, since a checkpoint cut short leaves a mix of old and new pages in the main file.
            conn.execute("PRAGMA user_version").fetchone()
        except sqlcipher.Error as exc:
            code = _result_code(exc)
            if code in (_SQLITE_CANTOPEN, _SQLITE_READONLY):
                return False
            if code == _SQLITE_NOTADB:
                raise WrongKeyError() from exc
            if code == _SQLITE_CORRUPT:
                # Page 1 decrypted and passed its HMAC (so the key is right) but describes pages the main file
                # lacks: a checkpoint cut short. The -wal, read below, holds the rest.
                return True
            raise _classified(exc) from exc
        return True


@contextlib.contextmanager
def _immutable_reader(path: Path, key: bytes | None) -> Iterator[Connection | None]:
    """The main file alone, keyed, on a read-only immutable connection (nothing on it can change a byte or
    create a file); ``None`` when SQLite cannot open it so, and the caller then checks on the read-write one."""
    try:
        conn = _connect(path, readonly=True, immutable=True)
    except StorageError:
        yield None
        return
    try:
        _key(conn, key)
        yield conn
    finally:
        conn.close()


def _result_code(exc: sqlcipher.Error) -> int:
    """SQLite's primary result code of an error (extended codes carry it in their low byte)."""
    return int(getattr(exc, "sqlite_errorcode", 0)) & 0xFF


def _read_through_wal(path: Path, key: bytes | None, *, full_check: bool) -> None:
    """First read, schema version and (``full_check``) every page in use, read through the ``-wal``, on a
    read-only (not immutable) connection, before the replay copies anything.

    Such a reader rebuilds the ``-shm`` index from the ``-wal`` (the only file it may write) and never writes
    the database or the ``-wal``; closing it does not checkpoint. The key is proven, so an unreadable page
    here is damage (SQLCipher checks the HMAC of every page it reads, from the ``-wal`` or the main file).
    """
    try:
        conn = _connect(path, readonly=True)
    except StorageError:
        return  # the read-write connection runs the same checks
    try:
        _key(conn, key)
        _first_read(conn, key_proven=True)
        with translate_errors():
            refuse_too_new(conn)
        if full_check and key is not None:
            # cipher_integrity_check reads the main file only; quick_check walks every b-tree page through
            # the -wal, so a damaged committed page is found before it is copied into the main file.
            try:
                result = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
            except sqlcipher.Error as exc:
                raise _damage_or_classified(exc) from exc
            if result != ["ok"]:
                raise DatabaseTamperedError()
    finally:
        conn.close()


def _replay_wal(conn: Connection, path: Path) -> tuple[bool, bool]:
    """Copy a crash's committed ``-wal`` pages into the main file (the interrupted write, finished).

    Returns whether the replay completed and whether it copied anything. Another connection may hold the
    ``-wal`` (a second connection opening beside the first): then the replay is theirs to finish, not an error.
    """
    with translate_errors():
        # PASSIVE first, for the number of frames found (TRUNCATE reports the emptied log's size, 0).
        passive = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    row = _truncate_wal(conn)
    if row is None or row[0] != 0:
        return False, False
    try:
        _clear_wal_mark(path)
    except OSError as exc:
        raise _os_error(exc) from exc
    replayed = passive is not None and int(passive[1]) > 0
    if replayed:
        _log.info("%s", INTERRUPTED_WRITE_DETAIL)
    return True, replayed


def _verify_without_writing(path: Path, key: bytes | None, *, full_check: bool, key_proven: bool) -> bool:
    """Key, tamper and version checks on a read-only connection (see the module docstring).

    The connection is immutable: it reads the main file only, so a hot WAL is neither recovered nor touched,
    and nothing is created. It is used when there is no hot WAL, or when the key could not be proven (then
    the WAL must stay untouched). Page 1 is always in the main file (creating a database writes it before WAL
    mode starts), so decrypting it proves the key; the schema version is checked again on the read-write
    connection (a newer version may sit in the WAL) before anything is written. Caveat: another process
    checkpointing at this very moment could make a page read torn; one app instance per profile makes that
    moot. Returns ``False`` when the read-only open itself is impossible; the caller then runs the same
    checks on the read-write connection.
    """
    with _immutable_reader(path, key) as conn:
        if conn is None:
            return False
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher.Error as exc:
            code = _result_code(exc)
            if code in (_SQLITE_CANTOPEN, _SQLITE_READONLY):
                return False
            if code == _SQLITE_NOTADB and not key_proven:
                raise WrongKeyError() from exc
            raise _damage_or_classified(exc) from exc
        with translate_errors():
            version = refuse_too_new(conn)
        # Before a migration rewrites the schema, every page is checked whatever the file size.
        if key is not None and (full_check or version < LATEST_VERSION):
            _tamper_check(conn)
        return True


def _tamper_check(conn: Connection) -> None:
    """HMAC-check every page of the main file (SQLCipher checks pages it reads anyway; this checks all)."""
    with translate_errors():
        problems = conn.execute("PRAGMA cipher_integrity_check").fetchall()
    if problems:
        raise DatabaseTamperedError()


def _connect(path: Path, *, readonly: bool, immutable: bool = False) -> Connection:
    # mode=rw / mode=ro: SQLite itself refuses to create a missing file, whatever happens above.
    uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}"
    if immutable:
        # Reads the main file alone: no locks, no -wal/-shm opened or created, no WAL recovery. Even a
        # read-only reader of a WAL database would create -wal/-shm it cannot remove, or update -shm.
        uri += "&immutable=1"
    try:
        conn = sqlcipher.connect(
            uri,
            uri=True,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_SECONDS,
            cached_statements=256,
            factory=_Connection,
        )
    except sqlcipher.Error as exc:
        raise _classified(exc) from exc
    if not readonly:
        conn.write_gate = _write_gate(path)
    return conn


def _key(conn: Connection, key: bytes | None) -> None:
    """Give SQLCipher the raw key through its key API: the key never appears in SQL text."""
    conn.set_authorizer(_deny_attach)
    if key is None:
        return
    version = conn.execute("PRAGMA cipher_version").fetchone()
    if version is None or not str(version[0]).startswith(SUPPORTED_CIPHER_MAJOR):
        raise StorageError("This build's database engine is not SQLCipher 4; reinstall PSO Desktop.")
    # ``x'<64 hex digits>'`` tells SQLCipher this is a raw key (no KDF). A bytearray so it can be wiped.
    literal = bytearray(b"x'")
    literal += key.hex().encode("ascii")
    literal += b"'"
    try:
        conn.set_key(literal)
    finally:
        literal[:] = bytes(len(literal))
    apply_cipher_settings(conn)


def apply_cipher_settings(conn: Connection) -> None:
    """The page format every connection to our files must use, right after the key (raw test connections too).

    Page HMAC with SHA-256 rather than SQLCipher 4's default SHA-512: equally sound as a MAC, and with the
    CPU's SHA extensions it brought autosave from ~1.31x to ~1.22x of plain SQLite (benchmarks/bench_store.py).
    """
    conn.execute("PRAGMA cipher_hmac_algorithm = HMAC_SHA256")


def _first_read(conn: Connection, *, key_proven: bool) -> None:
    """The first read decrypts page 1: "file is not a database" means a wrong key, or damage once the key is
    proven (a key that decrypted page 1 before, or came out of its AEAD-wrapped keyring entry, is right)."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher.Error as exc:
        if _result_code(exc) == _SQLITE_NOTADB and not key_proven:
            raise WrongKeyError() from exc
        raise _damage_or_classified(exc) from exc


def _apply_settings(conn: Connection) -> None:
    # Per-connection settings only: none of these writes to the file.
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("PRAGMA foreign_keys = ON")
    # Decrypted pages stay cached in this process's memory (where the open profile's data is anyway), so a
    # busy profile is not decrypted and HMAC-checked again page by page; SQLite's default is 2 MiB.
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")


def _enable_wal(conn: Connection) -> None:
    # Reading first: an existing database is already in WAL mode, so nothing is written for it.
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: written once, when the file is created


def _assert_settings(conn: Connection, *, encrypted: bool) -> None:
    settings = current_settings(conn)
    for name, expected in _EXPECTED_SETTINGS.items():
        actual = settings[name]
        if (str(actual).lower() if isinstance(expected, str) else actual) != expected:
            raise StorageError("The database engine refused a required safety setting; reinstall PSO Desktop.")
    if encrypted and not str(settings["cipher_version"]).startswith(SUPPORTED_CIPHER_MAJOR):
        raise StorageError("This build's database engine is not SQLCipher 4; reinstall PSO Desktop.")


def _deny_attach(action: int, arg1: Any, arg2: Any, db_name: Any, source: Any) -> int:
    """Authorizer: no ATTACH/DETACH, so no statement can copy data into an unencrypted file."""
    if action in (sqlcipher.SQLITE_ATTACH, sqlcipher.SQLITE_DETACH):
        return int(sqlcipher.SQLITE_DENY)
    return int(sqlcipher.SQLITE_OK)


def _create_private_file(path: Path) -> None:
    """Create the (empty) database file with mode 0600 before SQLite sees it; -wal/-shm inherit the mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # an empty file left by an interrupted create: reuse it
    else:
        os.close(fd)
    _restrict_permissions(path)


def _restrict_permissions(path: Path) -> None:
    if os.name != "posix":
        return  # Windows: the per-user profile folder's ACL protects the file
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)


def _is_plaintext_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def _classified(exc: sqlcipher.Error) -> StorageError:
    return classify(exc) or StorageError()


def _damage_or_classified(exc: sqlcipher.Error) -> StorageError:
    """A failed read with a proven key: "not a database" or "malformed" is damage; busy, I/O, full as usual."""
    if _result_code(exc) == _SQLITE_NOTADB:
        return DatabaseTamperedError()
    return _classified(exc)


def quiet_sqlcipher_logging() -> None:
    """SQLCipher logs HMAC failures to stderr by default; our exceptions already say what matters.

    The setting is process-wide, so it is applied once. Without this, a wrong password would print engine
    diagnostics on the CLI's stderr next to the one-line reason the contract promises.
    """
    global _logging_quieted
    with _logging_lock:
        if _logging_quieted:
            return
        conn = sqlcipher.connect(":memory:")
        try:
            conn.execute("PRAGMA cipher_log_level = NONE")
        finally:
            conn.close()
        _logging_quieted = True
