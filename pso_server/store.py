"""All of the server's SQL, for SQLite and PostgreSQL, behind one small dialect shim.

(The few f-strings below interpolate only constants of this module — column lists, ``FOR UPDATE``, ``?``
marks — never a caller's value; hence their ``noqa: S608``.)

SQL is written once with ``?`` placeholders and portable types; :class:`Dialect` rewrites the few things that
differ (placeholders, auto-increment keys, float type, how a write transaction begins, row locks). There is no
ORM: each public function here is one storage operation with a plain-data result.

Concurrency model: a write goes through :meth:`Database.transaction`. On SQLite that is ``BEGIN IMMEDIATE``,
which serialises writers, so read-then-write inside it is safe. On PostgreSQL (READ COMMITTED) the report row
is locked with ``SELECT … FOR UPDATE`` and first inserts use ``INSERT … ON CONFLICT DO NOTHING``, so two
transactions racing on the same report id or (id, revision) resolve to one row.
"""

from __future__ import annotations

import hmac
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pso_server.errors import (
    DatabaseURLInvalid,
    SchemaTooNew,
    ServerError,
    StorageUnavailable,
    UnknownReport,
    UserExists,
)

_log = logging.getLogger("pso_server")

SCHEMA_VERSION = 7
ROLES = ("reporter", "risk_manager")
STATUSES = ("received", "under_review", "more_info_requested", "closed")
# A facility's own review of a report (issue 12, item 2), kept apart from the PSO's status above.
REVIEW_STATES = ("new", "in_review", "waiting_for_information", "closed")
REVIEW_FIELDS = ("state", "assignee", "harm")
OUTCOMES = ("created", "duplicate", "updated", "stale", "conflict", "rejected")

# Portable DDL; {pk}, {float} and {blob} are filled in by the dialect.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id {pk},
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('reporter', 'risk_manager')),
    facility TEXT NOT NULL,
    created_at {float} NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    device_name TEXT NOT NULL,
    created_at {float} NOT NULL,
    revoked_at {float}
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    expires_at {float} NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    expires_at {float} NOT NULL,
    rotated_at {float},
    successor {blob},
    grace_used INTEGER NOT NULL DEFAULT 0  -- unused since replays are allowed until the successor's first use
);
CREATE INDEX IF NOT EXISTS access_tokens_session ON access_tokens (session_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);
CREATE TABLE IF NOT EXISTS login_failures (
    id {pk},
    key TEXT NOT NULL,
    failed_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, failed_at);
CREATE TABLE IF NOT EXISTS known_devices (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    created_at {float} NOT NULL,
    last_used_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS known_devices_user ON known_devices (user_id);
CREATE TABLE IF NOT EXISTS device_credentials (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    session_id TEXT REFERENCES sessions (id),
    device_name TEXT NOT NULL,
    created_at {float} NOT NULL,
    last_used_at {float},
    revoked_at {float}
);
CREATE INDEX IF NOT EXISTS device_credentials_user ON device_credentials (user_id);
CREATE INDEX IF NOT EXISTS device_credentials_session ON device_credentials (session_id);
CREATE TABLE IF NOT EXISTS sealing_keys (
    key_id TEXT PRIMARY KEY,
    public_key {blob} NOT NULL,
    wrapped_private_key {blob} NOT NULL,
    created_at {float} NOT NULL,
    is_current INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS sealing_keys_one_current ON sealing_keys (is_current) WHERE is_current = 1;
CREATE TABLE IF NOT EXISTS units (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    seq {pk},
    id TEXT NOT NULL UNIQUE,
    received_year INTEGER NOT NULL,
    latest_revision INTEGER NOT NULL,
    facility TEXT NOT NULL,
    submitter_id BIGINT REFERENCES users (id),
    is_anonymous INTEGER NOT NULL,
    owner_key_hash TEXT,
    status TEXT NOT NULL,
    status_note TEXT,
    status_changed_at {float} NOT NULL,
    created_at {float} NOT NULL,
    updated_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_submitter ON reports (submitter_id);
CREATE INDEX IF NOT EXISTS reports_facility ON reports (facility);
CREATE TABLE IF NOT EXISTS report_revisions (
    report_id TEXT NOT NULL REFERENCES reports (id),
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    form_version TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at {float} NOT NULL,
    PRIMARY KEY (report_id, revision)
);
CREATE TABLE IF NOT EXISTS status_changes (
    seq {pk},
    report_id TEXT NOT NULL REFERENCES reports (id),
    status TEXT NOT NULL,
    note TEXT,
    changed_at {float} NOT NULL,
    changed_by BIGINT REFERENCES users (id)
);
CREATE INDEX IF NOT EXISTS status_changes_report ON status_changes (report_id);
CREATE TABLE IF NOT EXISTS catalogues (
    seq {pk},
    version TEXT NOT NULL UNIQUE,
    body TEXT,
    content_hash TEXT,
    published_at {float} NOT NULL,
    withdrawn_at {float}
);
CREATE TABLE IF NOT EXISTS revision_feed (
    seq {pk},
    report_id TEXT NOT NULL REFERENCES reports (id),
    revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS revision_feed_report ON revision_feed (report_id);
CREATE TABLE IF NOT EXISTS review_events (
    seq {pk},
    event_id TEXT NOT NULL UNIQUE,
    report_id TEXT NOT NULL REFERENCES reports (id),
    facility TEXT NOT NULL,
    kind TEXT NOT NULL,
    field TEXT,
    value TEXT,
    base_version INTEGER,
    version INTEGER,
    outcome TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS review_events_facility ON review_events (facility, seq);
CREATE TABLE IF NOT EXISTS review_fields (
    report_id TEXT NOT NULL REFERENCES reports (id),
    field TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (report_id, field)
);
CREATE TABLE IF NOT EXISTS intake_tally (
    id {pk},
    outcome TEXT NOT NULL,
    n INTEGER NOT NULL,
    recorded_at {float} NOT NULL
);
"""

# What turns a database of version N-1 into version N. _SCHEMA above always describes the newest version (a new
# database gets it whole); these steps bring a file written by an older pso-server up to it. Portable SQL only.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",),
    # The SHA-256 of the per-report owner key the sending client generated (see ingest_revision). Reports held
    # before it keep NULL: an anonymous one of those can no longer be revised by anyone.
    3: ("ALTER TABLE reports ADD COLUMN owner_key_hash TEXT",),
    # known_devices (device tokens, see auth.py) is a new table: _SCHEMA's CREATE TABLE IF NOT EXISTS makes it.
    4: (),
    # catalogues (the form versions the PSO published, see publish_catalogue) is a new table, made by _SCHEMA.
    5: (),
    # revision_feed (what a risk manager's facility feed pages through) and the review tables are new, made by
    # _SCHEMA; the revisions already held enter the feed in the order they arrived.
    6: (
        "INSERT INTO revision_feed (report_id, revision) "
        "SELECT v.report_id, v.revision FROM report_revisions v WHERE NOT EXISTS (SELECT 1 FROM revision_feed f "
        "WHERE f.report_id = v.report_id AND f.revision = v.revision) ORDER BY v.received_at, v.report_id, v.revision",
    ),
    # device_credentials (upload-only credentials of the sealed outbox, see auth.py) and sealing_keys (the
    # PSO's HPKE key pairs, see sealing.py) are new tables, made by _SCHEMA.
    7: (),
}

# Units offered to the client until a PSO loads its own list (codes are the hospital's, names are shown).
DEFAULT_UNITS = (
    ("4W-MEDSURG", "4 West Medical-Surgical"),
    ("5E-ONC", "5 East Oncology"),
    ("ED", "Emergency Department"),
    ("ICU-2", "Intensive Care Unit 2"),
    ("L&D", "Labor and Delivery"),
    ("OR-MAIN", "Main Operating Rooms"),
    ("PACU", "Post-Anesthesia Care Unit"),
    ("PEDS-3", "Pediatrics 3"),
    ("PHARM", "Pharmacy"),
    ("REHAB", "Rehabilitation"),
    ("TELE-6", "Telemetry 6"),
    ("OTHER", "Other location"),
)


@dataclass(frozen=True)
class Dialect:
    """The differences between SQLite and PostgreSQL that this module relies on."""

    name: str
    pk: str
    float_type: str
    blob: str
    begin_write: str
    for_update: str

    def sql(self, statement: str) -> str:
        """Rewrites ``?`` placeholders for the driver (no statement here has a literal ``?`` or ``%``)."""
        return statement.replace("?", "%s") if self.name == "postgresql" else statement

    def schema(self) -> list[str]:
        ddl = _SCHEMA.format(pk=self.pk, float=self.float_type, blob=self.blob)
        return [part.strip() for part in ddl.split(";") if part.strip()]


SQLITE = Dialect(
    name="sqlite",
    pk="INTEGER PRIMARY KEY AUTOINCREMENT",
    float_type="REAL",
    blob="BLOB",
    begin_write="BEGIN IMMEDIATE",  # take the write lock up front: no upgrade deadlocks, no lost updates
    for_update="",
)
POSTGRESQL = Dialect(
    name="postgresql",
    pk="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    float_type="DOUBLE PRECISION",
    blob="BYTEA",
    begin_write="BEGIN",
    for_update=" FOR UPDATE",
)


class Tx:
    """One connection inside a transaction (or in autocommit for reads), speaking the portable SQL."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self.dialect.sql(statement), tuple(params))

    def one(self, statement: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.execute(statement, params).fetchone()
        return tuple(row) if row is not None else None

    def all(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(statement, params).fetchall()]

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        cursor = self._conn.cursor()
        cursor.executemany(self.dialect.sql(statement), [tuple(r) for r in rows])


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Driver errors that mean 'try again later' (busy, unreachable, deadlock), not a bug."""
    errors: list[type[BaseException]] = [sqlite3.OperationalError]
    with suppress(ImportError):
        import psycopg

        errors.append(psycopg.OperationalError)
        errors.append(psycopg.errors.DeadlockDetected)
        errors.append(psycopg.errors.SerializationFailure)
    return tuple(errors)


# SQLite primary result codes that say the storage failed, not the SQL: BUSY, LOCKED, READONLY, IOERR, FULL
# (a full disk: 'database or disk is full'), CANTOPEN, PROTOCOL. Extended codes carry these in their low byte.
_SQLITE_STORAGE_CODES = frozenset({5, 6, 8, 10, 13, 14, 15})


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        # sqlite3 also reports SQL mistakes as OperationalError: only storage failures are transient.
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _SQLITE_STORAGE_CODES
        text = str(exc).lower()
        return any(word in text for word in ("locked", "busy", "unable to open", "disk i/o", "readonly", "full"))
    return True  # psycopg's OperationalError covers class 53 (DiskFull 53100, out of memory) and lost connections


def _storage_code(exc: BaseException) -> str:
    """The driver's error name or SQLSTATE, for the log (never the message, which may quote data)."""
    name = getattr(exc, "sqlite_errorname", None) or getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__} {name}" if name else type(exc).__name__


# Advisory lock keys (PostgreSQL) for the few places where transactions must take turns.
_LOCK_KEYS = {
    "login_failures": 0x50534F01,
    "status_changes": 0x50534F02,
    "review_events": 0x50534F03,
    "sealing_keys": 0x50534F04,
}


def serialise(tx: Tx, name: str) -> None:
    """Until ``tx`` ends, other transactions that serialise on the same ``name`` wait here.

    PostgreSQL: a transaction-level advisory lock. SQLite: nothing to do, write transactions
    (``BEGIN IMMEDIATE``) already run one at a time.
    """
    if tx.dialect.name == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEYS[name],))


class Database:
    """A small connection pool over one SQLite file or one PostgreSQL database.

    Thread-safe: each caller borrows its own connection for the duration of a ``with`` block.
    """

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.dialect, self._connect = _connector(url)
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._pool_size = pool_size
        self._closed = False
        self._lock = threading.Lock()
        self._transient = _transient_errors()

    @classmethod
    def open(cls, url: str, *, pool_size: int = 8) -> Database:
        """Connects, creates the schema if missing and seeds the default units. Raises StorageUnavailable."""
        db = cls(url, pool_size=pool_size)
        try:
            db.create_schema()
        except BaseException:
            db.close()
            raise
        return db

    def _acquire(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        try:
            return self._connect()
        except self._transient as exc:
            raise StorageUnavailable(
                f"The {self.dialect.name} database cannot be opened ({type(exc).__name__}); "
                "check the --db URL and that the database is running."
            ) from None

    def _release(self, conn: Any, *, broken: bool) -> None:
        with self._lock:
            keep = not broken and not self._closed and self._idle.qsize() < self._pool_size
        if keep:
            self._idle.put(conn)
        else:
            with suppress(Exception):
                conn.close()

    @contextmanager
    def _borrow(self, begin: str | None) -> Iterator[Tx]:
        conn = self._acquire()
        broken = False
        try:
            if begin:
                conn.execute(begin)
            try:
                yield Tx(conn, self.dialect)
                if begin:
                    conn.execute("COMMIT")
            except BaseException:
                if begin:
                    try:
                        conn.execute("ROLLBACK")
                    except Exception:
                        broken = True
                raise
        except self._transient as exc:
            if not _is_transient(exc):
                raise
            broken = True  # a fresh connection is cheap; a half-dead one is not
            # IT needs to see a full disk or a lost database in the log; the client only gets 503 + Retry-After.
            _log.warning("The database failed (%s); answering 503 storage_unavailable.", _storage_code(exc))
            raise StorageUnavailable(
                f"The report store is busy or unreachable ({type(exc).__name__}); try again shortly."
            ) from exc
        finally:
            self._release(conn, broken=broken)

    def transaction(self) -> Any:
        """A write transaction: committed when the block ends normally, rolled back on any exception."""
        return self._borrow(self.dialect.begin_write)

    def reader(self) -> Any:
        """A connection in autocommit mode for reads that need no transaction."""
        return self._borrow(None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                break
            with suppress(Exception):
                conn.close()

    def create_schema(self) -> None:
        with self.transaction() as tx:
            for statement in self.dialect.schema():
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_meta (key, value) VALUES ('version', ?) ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            # Locked so that two servers opening an old PostgreSQL database at once upgrade it once.
            found = tx.one(
                f"SELECT value FROM schema_meta WHERE key = 'version'{self.dialect.for_update}"  # noqa: S608
            )
            if found is None or int(found[0]) > SCHEMA_VERSION:
                raise SchemaTooNew(
                    "This database was written by a newer pso-server; upgrade pso-server before using it."
                )
            for version in range(int(found[0]) + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    tx.execute(statement)
            if int(found[0]) < SCHEMA_VERSION:
                tx.execute("UPDATE schema_meta SET value = ? WHERE key = 'version'", (str(SCHEMA_VERSION),))
            if tx.one("SELECT COUNT(*) FROM units") == (0,):
                tx.executemany("INSERT INTO units (code, name) VALUES (?, ?)", DEFAULT_UNITS)


def _connector(url: str) -> tuple[Dialect, Any]:
    """Parses a ``--db`` value into a dialect and a function that opens one connection."""
    if url.startswith(("postgresql://", "postgres://")):
        return POSTGRESQL, lambda: _connect_postgres(url)
    if url.startswith("sqlite://"):
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc or not path or path == "/":
            raise DatabaseURLInvalid(
                "An SQLite URL needs an absolute path, e.g. sqlite:////var/lib/pso/server.db."
            )
    elif "://" in url:
        raise DatabaseURLInvalid("Use an SQLite path (or sqlite:///path) or a postgresql:// URL for --db.")
    else:
        path = url
    file = Path(path).expanduser()
    if not file.parent.is_dir():
        raise DatabaseURLInvalid(f"The folder for the SQLite database does not exist: {file.parent}.")
    return SQLITE, lambda: _connect_sqlite(file)


def _connect_sqlite(file: Path) -> sqlite3.Connection:
    # The file holds patient safety work product and password hashes: a new one is owner-only, whatever the
    # umask (SQLite gives its -wal and -shm files the same permissions as the database file).
    with suppress(FileExistsError):
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(file, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # A 'created' answer promises the report is stored: FULL makes the commit durable before we answer.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _connect_postgres(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=10)


# --------------------------------------------------------------------------------------------------- users


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    facility: str


def add_user(tx: Tx, username: str, password_hash: str, role: str, facility: str, now: float) -> User:
    """Creates an account. Raises UserExists when the name is taken."""
    row = tx.one(
        "INSERT INTO users (username, password_hash, role, facility, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (username) DO NOTHING RETURNING id",
        (username, password_hash, role, facility, now),
    )
    if row is None:
        raise UserExists(f"An account named {username!r} already exists; choose another name.")
    return User(int(row[0]), username, role, facility)


def find_user(tx: Tx, username: str, *, lock: bool = False) -> tuple[User, str] | None:
    """The enabled account and its password hash, or None: a disabled account signs in like no account.
    ``lock`` holds its row until the transaction ends (see :func:`lock_account`)."""
    row = tx.one(
        "SELECT id, username, role, facility, password_hash FROM users "  # noqa: S608
        f"WHERE username = ? AND disabled = 0{tx.dialect.for_update if lock else ''}",
        (username,),
    )
    if row is None:
        return None
    return User(int(row[0]), row[1], row[2], row[3]), row[4]


def set_password_hash(tx: Tx, user_id: int, password_hash: str) -> None:
    tx.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


class UnknownVersion(ServerError):
    """A form version this server never published."""


class UnknownUser(ServerError):
    """No account has that name (the account commands of ``pso-server``)."""


def lock_account(tx: Tx, username: str) -> int:
    """The id of the account, enabled or not, with its row locked until the transaction ends. Raises UnknownUser.

    Account changes take this lock before revoking sessions, and a sign-in takes it before opening one, so on
    PostgreSQL a sign-in racing a password change or disable either sees the change or has its session revoked.
    """
    row = tx.one(f"SELECT id FROM users WHERE username = ?{tx.dialect.for_update}", (username,))  # noqa: S608
    if row is None:
        raise UnknownUser(f"No account is named {username!r}; see 'pso-server list-users'.")
    return int(row[0])


def set_user_role(tx: Tx, user_id: int, role: str) -> None:
    tx.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))


def set_user_disabled(tx: Tx, user_id: int, disabled: bool) -> None:
    tx.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))


@dataclass(frozen=True)
class Account:
    """One account as ``pso-server list-users`` shows it (no password hash)."""

    username: str
    role: str
    facility: str
    disabled: bool
    created_at: float
    live_sessions: int


# A session is live while it is not revoked and still holds an unexpired access or refresh token.
_LIVE_SESSION = (
    "s.revoked_at IS NULL AND ("
    "EXISTS (SELECT 1 FROM access_tokens a WHERE a.session_id = s.id AND a.expires_at > ?) OR "
    "EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id AND r.rotated_at IS NULL "
    "AND r.expires_at > ?))"
)


def list_accounts(tx: Tx, now: float) -> list[Account]:
    """Every account by name, with how many live sessions (signed-in devices) it has."""
    rows = tx.all(
        "SELECT u.username, u.role, u.facility, u.disabled, u.created_at, "  # noqa: S608
        f"(SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id AND {_LIVE_SESSION}) "
        "FROM users u ORDER BY u.username",
        (now, now),
    )
    return [Account(row[0], row[1], row[2], bool(row[3]), float(row[4]), int(row[5])) for row in rows]


def revoke_user_sessions(tx: Tx, user_id: int, now: float) -> int:
    """Ends every session of the account (all its access and refresh tokens stop working at once); returns how
    many of them were live."""
    live = tx.one(
        f"SELECT COUNT(*) FROM sessions s WHERE s.user_id = ? AND {_LIVE_SESSION}",  # noqa: S608
        (user_id, now, now),
    )
    tx.execute("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (now, user_id))
    tx.execute(
        "DELETE FROM access_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?)", (user_id,)
    )
    tx.execute(
        "UPDATE device_credentials SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (now, user_id)
    )
    return int(live[0]) if live else 0


# ------------------------------------------------------------------------------------- sessions and tokens


def create_session(tx: Tx, session_id: str, user_id: int, device_name: str, now: float) -> None:
    tx.execute(
        "INSERT INTO sessions (id, user_id, device_name, created_at) VALUES (?, ?, ?, ?)",
        (session_id, user_id, device_name, now),
    )


def add_access_token(tx: Tx, token_hash: str, session_id: str, expires_at: float) -> None:
    tx.execute(
        "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
        (token_hash, session_id, expires_at),
    )


def add_refresh_token(tx: Tx, token_hash: str, session_id: str, expires_at: float) -> None:
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
        (token_hash, session_id, expires_at),
    )


_USER_COLUMNS = "u.id, u.username, u.role, u.facility"


def find_access_token(tx: Tx, token_hash: str, now: float) -> tuple[User, str] | None:
    """The account and session behind a live access token of a live session of an enabled account, or None."""
    row = tx.one(
        f"SELECT {_USER_COLUMNS}, s.id FROM access_tokens a JOIN sessions s ON s.id = a.session_id "  # noqa: S608
        "JOIN users u ON u.id = s.user_id "
        "WHERE a.token_hash = ? AND a.expires_at > ? AND s.revoked_at IS NULL AND u.disabled = 0",
        (token_hash, now),
    )
    if row is None:
        return None
    return User(int(row[0]), row[1], row[2], row[3]), row[4]


@dataclass(frozen=True)
class RefreshRecord:
    user: User
    session_id: str
    expires_at: float
    rotated_at: float | None
    successor: bytes | None
    session_revoked: bool
    user_disabled: bool


def find_refresh_token(tx: Tx, token_hash: str) -> RefreshRecord | None:
    row = tx.one(
        f"SELECT {_USER_COLUMNS}, s.id, r.expires_at, r.rotated_at, r.successor, "  # noqa: S608
        "s.revoked_at, u.disabled "
        "FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id "
        "WHERE r.token_hash = ?",
        (token_hash,),
    )
    if row is None:
        return None
    return RefreshRecord(
        user=User(int(row[0]), row[1], row[2], row[3]),
        session_id=row[4],
        expires_at=float(row[5]),
        rotated_at=None if row[6] is None else float(row[6]),
        successor=None if row[7] is None else bytes(row[7]),
        session_revoked=row[8] is not None,
        user_disabled=bool(row[9]),
    )


def mark_refresh_rotated(tx: Tx, token_hash: str, now: float, successor: bytes) -> bool:
    """Marks a token as rotated; False when another request rotated it first (the caller re-reads)."""
    cursor = tx.execute(
        "UPDATE refresh_tokens SET rotated_at = ?, successor = ? WHERE token_hash = ? AND rotated_at IS NULL",
        (now, successor, token_hash),
    )
    return bool(cursor.rowcount == 1)


def refresh_token_live(tx: Tx, token_hash: str, now: float, *, lock: bool = False) -> bool:
    """True when the token exists, has not been rotated and has not expired. ``lock`` holds its row until the
    transaction ends (PostgreSQL re-checks the condition after waiting for a concurrent rotation)."""
    row = tx.one(
        "SELECT 1 FROM refresh_tokens "  # noqa: S608
        f"WHERE token_hash = ? AND rotated_at IS NULL AND expires_at > ?{tx.dialect.for_update if lock else ''}",
        (token_hash, now),
    )
    return row is not None


def revoke_session(tx: Tx, session_id: str, now: float) -> None:
    """Ends a session: its access and refresh tokens, and the device credentials it asked for, stop working at
    once."""
    tx.execute("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, session_id))
    tx.execute("DELETE FROM access_tokens WHERE session_id = ?", (session_id,))
    tx.execute(
        "UPDATE device_credentials SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL",
        (now, session_id),
    )


def purge_expired_tokens(tx: Tx, now: float) -> None:
    tx.execute("DELETE FROM access_tokens WHERE expires_at <= ?", (now,))
    tx.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?", (now,))


# ------------------------------------------------------------------------------------------ login failures


def count_login_failures(tx: Tx, key: str, since: float) -> tuple[int, float | None]:
    """How many failures ``key`` has had since ``since``, and when the oldest of them happened."""
    row = tx.one(
        "SELECT COUNT(*), MIN(failed_at) FROM login_failures WHERE key = ? AND failed_at > ?", (key, since)
    )
    assert row is not None
    return int(row[0]), None if row[1] is None else float(row[1])


def record_login_failure(tx: Tx, keys: Sequence[str], now: float) -> list[int]:
    """Counts one failed (or not yet verified) sign-in against each key; returns the new rows' ids."""
    ids = []
    for key in keys:
        row = tx.one("INSERT INTO login_failures (key, failed_at) VALUES (?, ?) RETURNING id", (key, now))
        assert row is not None
        ids.append(int(row[0]))
    return ids


def forget_login_failures(tx: Tx, ids: Sequence[int]) -> None:
    """Removes the rows :func:`record_login_failure` returned (the sign-in turned out to be right)."""
    tx.executemany("DELETE FROM login_failures WHERE id = ?", [(i,) for i in ids])


def known_device_user(tx: Tx, token_hash: str, used_since: float) -> int | None:
    """The account a device token was issued to, if it was used since ``used_since``; else None."""
    row = tx.one(
        "SELECT user_id FROM known_devices WHERE token_hash = ? AND last_used_at > ?", (token_hash, used_since)
    )
    return None if row is None else int(row[0])


def remember_device(tx: Tx, token_hash: str, user_id: int, now: float) -> None:
    """Records (or refreshes) a device token of ``user_id`` after a successful sign-in from it."""
    tx.execute(
        "INSERT INTO known_devices (token_hash, user_id, created_at, last_used_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (token_hash) DO UPDATE SET last_used_at = excluded.last_used_at",
        (token_hash, user_id, now, now),
    )


def forget_devices(tx: Tx, user_id: int) -> None:
    """Every device of the account becomes unknown (a password change: a stolen laptop keeps no privilege)."""
    tx.execute("DELETE FROM known_devices WHERE user_id = ?", (user_id,))


def purge_known_devices(tx: Tx, before: float) -> None:
    tx.execute("DELETE FROM known_devices WHERE last_used_at <= ?", (before,))


def clear_login_failures(tx: Tx, key: str) -> None:
    tx.execute("DELETE FROM login_failures WHERE key = ?", (key,))


def purge_login_failures(tx: Tx, before: float) -> None:
    tx.execute("DELETE FROM login_failures WHERE failed_at <= ?", (before,))


# ---------------------------------------------------------------------------------------- device credentials
# Upload-only credentials of the sealed outbox (docs/sealed-outbox.md): stored as SHA-256 only, linked to the
# account and to the session that asked for one, revoked with either.


@dataclass(frozen=True)
class DeviceCredential:
    """One device credential as ``pso-server device-credentials list`` shows it (never its token)."""

    id: str
    username: str
    device_name: str
    created_at: float
    last_used_at: float | None  # the day (UTC midnight) it last uploaded, not the moment
    revoked_at: float | None


def add_device_credential(
    tx: Tx, credential_id: str, token_hash: str, user_id: int, session_id: str, device_name: str, now: float
) -> None:
    tx.execute(
        "INSERT INTO device_credentials (id, token_hash, user_id, session_id, device_name, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (credential_id, token_hash, user_id, session_id, device_name, now),
    )


@dataclass(frozen=True)
class DeviceHolder:
    """The account behind a device credential, and whether the credential still works."""

    credential_id: str
    user: User
    revoked: bool
    last_used_at: float | None


def find_device_credential(tx: Tx, token_hash: str) -> DeviceHolder | None:
    """The credential with that token hash and its account (revoked when the credential or the account is),
    or None."""
    row = tx.one(
        f"SELECT c.id, {_USER_COLUMNS}, c.revoked_at, u.disabled, c.last_used_at "  # noqa: S608
        "FROM device_credentials c JOIN users u ON u.id = c.user_id WHERE c.token_hash = ?",
        (token_hash,),
    )
    if row is None:
        return None
    return DeviceHolder(
        credential_id=row[0],
        user=User(int(row[1]), row[2], row[3], row[4]),
        revoked=row[5] is not None or bool(row[6]),
        last_used_at=None if row[7] is None else float(row[7]),
    )


def mark_device_credential_used(tx: Tx, credential_id: str, day: float) -> None:
    tx.execute(
        "UPDATE device_credentials SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        (day, credential_id, day),
    )


def list_device_credentials(tx: Tx, username: str | None = None) -> list[DeviceCredential]:
    """Every device credential (or those of one account), oldest first."""
    where, params = ("WHERE u.username = ? ", (username,)) if username is not None else ("", ())
    rows = tx.all(
        "SELECT c.id, u.username, c.device_name, c.created_at, c.last_used_at, c.revoked_at "  # noqa: S608
        f"FROM device_credentials c JOIN users u ON u.id = c.user_id {where}ORDER BY c.created_at, c.id",
        params,
    )
    return [
        DeviceCredential(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            float(r[3]),
            None if r[4] is None else float(r[4]),
            None if r[5] is None else float(r[5]),
        )
        for r in rows
    ]


class UnknownCredential(ServerError):
    """No device credential has that id (``pso-server device-credentials revoke``)."""


def revoke_device_credential(tx: Tx, credential_id: str, now: float) -> bool:
    """Revokes one credential; False when it was revoked already. Raises UnknownCredential."""
    if tx.one("SELECT 1 FROM device_credentials WHERE id = ?", (credential_id,)) is None:
        raise UnknownCredential(
            f"No device credential has the id {credential_id!r}; see 'pso-server device-credentials list'."
        )
    cursor = tx.execute(
        "UPDATE device_credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, credential_id)
    )
    return bool(cursor.rowcount == 1)


# -------------------------------------------------------------------------------------------- sealing keys
# The PSO's HPKE key pairs (see sealing.py): the private key is stored wrapped (AES-256-GCM) by a key from the
# server's configuration, never in the clear. Exactly one is current (a partial unique index says so).


@dataclass(frozen=True)
class SealingKeyRow:
    key_id: str
    public_key: bytes
    wrapped_private_key: bytes
    created_at: float
    current: bool


_SEALING_COLUMNS = "key_id, public_key, wrapped_private_key, created_at, is_current"


def _sealing_row(row: tuple[Any, ...]) -> SealingKeyRow:
    return SealingKeyRow(str(row[0]), bytes(row[1]), bytes(row[2]), float(row[3]), bool(row[4]))


def sealing_keys(tx: Tx) -> list[SealingKeyRow]:
    """Every sealing key pair, oldest first."""
    rows = tx.all(f"SELECT {_SEALING_COLUMNS} FROM sealing_keys ORDER BY created_at, key_id")  # noqa: S608
    return [_sealing_row(r) for r in rows]


def current_sealing_key(tx: Tx) -> SealingKeyRow | None:
    row = tx.one(f"SELECT {_SEALING_COLUMNS} FROM sealing_keys WHERE is_current = 1")  # noqa: S608
    return None if row is None else _sealing_row(row)


def sealing_key(tx: Tx, key_id: str) -> SealingKeyRow | None:
    row = tx.one(f"SELECT {_SEALING_COLUMNS} FROM sealing_keys WHERE key_id = ?", (key_id,))  # noqa: S608
    return None if row is None else _sealing_row(row)


def add_current_sealing_key(tx: Tx, key_id: str, public_key: bytes, wrapped: bytes, now: float) -> None:
    """Stores a new key pair as the current one (the previous current key stays, to open older envelopes).
    Call after ``serialise(tx, "sealing_keys")``."""
    tx.execute("UPDATE sealing_keys SET is_current = 0 WHERE is_current = 1")
    tx.execute(
        "INSERT INTO sealing_keys (key_id, public_key, wrapped_private_key, created_at, is_current) "
        "VALUES (?, ?, ?, ?, 1)",
        (key_id, public_key, wrapped, now),
    )


# ------------------------------------------------------------------------------------------------- reports


def format_ref(year: int, seq: int) -> str:
    """The PSO case reference shown to people, stable across a report's revisions."""
    return f"PSO-{year}-{seq:06d}"


def parse_ref(ref: str) -> int | None:
    """The sequence number inside a case reference, or None when ``ref`` is not one."""
    parts = ref.strip().upper().split("-")
    if len(parts) == 3 and parts[0] == "PSO" and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[2])
    return None


@dataclass(frozen=True)
class Uploader:
    """Who sends a batch: the account (for permission checks) and the facility it belongs to."""

    user_id: int
    role: str
    facility: str


@dataclass(frozen=True)
class IncomingRevision:
    """One validated report revision, ready to store. ``owner_key_hash`` is the SHA-256 (hex) of the owner key
    the client sent with it, or None when it sent none (the key itself never reaches this module)."""

    report_id: str
    revision: int
    content_hash: str
    body: str
    form_version: str
    event_type: str
    is_anonymous: bool
    owner_key_hash: str | None = None


# Why a revision of a held report was refused (answered 'rejected'): NOT_OWNER says nothing about the report (the
# same for a report held elsewhere, held by another account, or anonymous with another key), so a sender who is
# not its owner learns no more than that the id is taken; ANONYMITY is said only to its proven owner.
NOT_OWNER = "not_owner"
ANONYMITY = "anonymity"


@dataclass(frozen=True)
class IngestOutcome:
    status: str
    server_ref: str | None
    refused: str | None = None  # NOT_OWNER or ANONYMITY when answered 'rejected'
    received_at: float | None = None  # for 'created': the arrival time its 'received' status carries


def day_start(now: float) -> float:
    # Anonymous reports keep only the day they arrived, so arrival times cannot be matched to one account's
    # activity (logins, its named reports sent in the same second).
    return now - (now % 86400)


def ingest_revision(tx: Tx, item: IncomingRevision, uploader: Uploader, now: float, year: int) -> IngestOutcome:
    """Stores one revision under the protocol's dedupe and ownership rules; call inside
    :meth:`Database.transaction`.

    created: first revision of an unknown report (the caller then records its ``received`` status with
    :func:`record_received`, last in the transaction); its owner key's hash is kept. For a held report, only its
    owner gets any other answer (see :func:`_owns`); anyone else gets ``rejected`` (NOT_OWNER). Then:
    rejected (ANONYMITY) when the revision would make an anonymous report named or a named one anonymous;
    duplicate: (id, revision) held with the same content hash; conflict: held with a different hash (nothing
    changes); updated: newer than the newest held; stale: older than the newest held and not held itself.
    """
    when = day_start(now) if item.is_anonymous else now
    report = _lock_report(tx, item.report_id)
    if report is None:
        submitter = None if item.is_anonymous else uploader.user_id
        row = tx.one(
            "INSERT INTO reports (id, received_year, latest_revision, facility, submitter_id, is_anonymous, "
            "owner_key_hash, status, status_changed_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING RETURNING seq",
            (
                item.report_id,
                year,
                item.revision,
                uploader.facility,
                submitter,
                int(item.is_anonymous),
                item.owner_key_hash,
                when,
                when,
                when,
            ),
        )
        if row is not None:
            _insert_revision(tx, item, when)
            return IngestOutcome("created", format_ref(year, int(row[0])), received_at=when)
        # Another transaction created it between our read and our insert (PostgreSQL): lock and go on.
        report = _lock_report(tx, item.report_id)
        assert report is not None
    seq, ref_year, latest, facility, submitter_id, anonymous, key_hash = report
    ref = format_ref(int(ref_year), int(seq))
    held = tx.one(
        "SELECT content_hash FROM report_revisions WHERE report_id = ? AND revision = ?",
        (item.report_id, item.revision),
    )
    if not _owns(uploader, item, facility, submitter_id, bool(anonymous), key_hash):
        if (
            held is not None
            and held[0] == item.content_hash
            and _keyless_anonymous(uploader, facility, anonymous, key_hash)
        ):
            # An identical re-send of a revision held before owner keys existed (a client upgraded with it in
            # flight): nothing changes and the sender holds the very content, so it learns nothing new.
            return IngestOutcome("duplicate", ref)
        return IngestOutcome("rejected", None, refused=NOT_OWNER)
    if bool(anonymous) != item.is_anonymous:
        return IngestOutcome("rejected", None, refused=ANONYMITY)
    if held is not None:
        return IngestOutcome("duplicate" if held[0] == item.content_hash else "conflict", ref)
    if item.revision < int(latest):
        return IngestOutcome("stale", ref)
    _insert_revision(tx, item, when)
    tx.execute(
        "UPDATE reports SET latest_revision = ?, updated_at = ? WHERE id = ?",
        (item.revision, when, item.report_id),
    )
    return IngestOutcome("updated", ref)


def _lock_report(tx: Tx, report_id: str) -> tuple[Any, ...] | None:
    return tx.one(
        "SELECT seq, received_year, latest_revision, facility, submitter_id, is_anonymous, "  # noqa: S608
        "owner_key_hash FROM reports "
        f"WHERE id = ?{tx.dialect.for_update}",
        (report_id,),
    )


def _owns(
    uploader: Uploader,
    item: IncomingRevision,
    facility: str,
    submitter_id: int | None,
    anonymous: bool,
    key_hash: str | None,
) -> bool:
    """Whether the sender is the report's original sender: for a named report the account that first sent it;
    for an anonymous one (linked to no account) whoever presents the owner key it was first sent with. Nobody
    else, not even the facility's risk managers (they review through review records, not new versions)."""
    if facility != uploader.facility:
        return False
    if not anonymous:
        return submitter_id is not None and int(submitter_id) == uploader.user_id
    if key_hash is None or item.owner_key_hash is None:
        return False  # an anonymous report held without a key (sent before keys existed) cannot be revised
    return hmac.compare_digest(str(key_hash), item.owner_key_hash)


def _keyless_anonymous(uploader: Uploader, facility: str, anonymous: Any, key_hash: str | None) -> bool:
    return bool(anonymous) and key_hash is None and facility == uploader.facility


def _insert_revision(tx: Tx, item: IncomingRevision, when: float) -> None:
    tx.execute(
        "INSERT INTO report_revisions (report_id, revision, content_hash, form_version, event_type, body, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (report_id, revision) DO NOTHING",
        (
            item.report_id,
            item.revision,
            item.content_hash,
            item.form_version,
            item.event_type,
            item.body,
            when,
        ),
    )


def record_tally(tx: Tx, counts: dict[str, int], now: float) -> None:
    """Adds a batch's outcome counts to the running totals behind ``pso-server stats``. Only the day is kept:
    a batch's exact arrival time would pin when an anonymous report in it arrived."""
    rows = [(outcome, n, day_start(now)) for outcome, n in counts.items() if n]
    if rows:
        tx.executemany("INSERT INTO intake_tally (outcome, n, recorded_at) VALUES (?, ?, ?)", rows)


def stats(tx: Tx) -> dict[str, int]:
    """Reports held, revisions held, and the running totals of each intake outcome."""
    reports = tx.one("SELECT COUNT(*) FROM reports")
    revisions = tx.one("SELECT COUNT(*) FROM report_revisions")
    tally = dict(tx.all("SELECT outcome, SUM(n) FROM intake_tally GROUP BY outcome"))
    return {
        "reports": int(reports[0]) if reports else 0,
        "revisions": int(revisions[0]) if revisions else 0,
        "duplicates_refused": int(tally.get("duplicate") or 0),
        "rejected": int(tally.get("rejected") or 0),
        "conflicts": int(tally.get("conflict") or 0),
        "stale": int(tally.get("stale") or 0),
    }


def report_body(tx: Tx, report_id: str, revision: int) -> str | None:
    """The stored canonical JSON of one revision (for tests and exports), or None."""
    row = tx.one("SELECT body FROM report_revisions WHERE report_id = ? AND revision = ?", (report_id, revision))
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class StoredReport:
    id: str
    server_ref: str
    latest_revision: int
    facility: str
    submitter_id: int | None
    is_anonymous: bool
    status: str
    status_note: str | None
    status_changed_at: float
    revisions: int


def get_report(tx: Tx, report_id_or_ref: str) -> StoredReport:
    """One report by UUID or case reference. Raises UnknownReport."""
    seq = parse_ref(report_id_or_ref)
    where, key = ("r.seq = ?", seq) if seq is not None else ("r.id = ?", report_id_or_ref.strip().lower())
    row = tx.one(
        "SELECT r.id, r.received_year, r.seq, r.latest_revision, r.facility, r.submitter_id, "  # noqa: S608
        "r.is_anonymous, "
        "r.status, r.status_note, r.status_changed_at, "
        "(SELECT COUNT(*) FROM report_revisions v WHERE v.report_id = r.id) "
        f"FROM reports r WHERE {where}",
        (key,),
    )
    if row is None:
        raise UnknownReport("No report with that id or case reference is held; check the reference.")
    return StoredReport(
        id=row[0],
        server_ref=format_ref(int(row[1]), int(row[2])),
        latest_revision=int(row[3]),
        facility=row[4],
        submitter_id=None if row[5] is None else int(row[5]),
        is_anonymous=bool(row[6]),
        status=row[7],
        status_note=row[8],
        status_changed_at=float(row[9]),
        revisions=int(row[10]),
    )


# -------------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusChange:
    seq: int
    report_id: str
    server_ref: str
    status: str
    note: str | None
    changed_at: float


# The status feed's cursor is the last status_changes.seq a client has seen, so a change must never commit
# after a change with a higher seq: on PostgreSQL two transactions could otherwise commit out of seq order and
# a client polling in between would skip the lower one for good. Status rows are therefore written last in
# their transaction, under serialise(tx, "status_changes"), which is held only until the commit just after.


def record_received(tx: Tx, received: Sequence[tuple[str, float]]) -> None:
    """Records the ``received`` status of newly created reports, as (report id, arrival time) pairs. Call it
    last in the transaction (see above)."""
    if received:
        serialise(tx, "status_changes")
        tx.executemany(
            "INSERT INTO status_changes (report_id, status, changed_at) VALUES (?, 'received', ?)", received
        )


def set_status(
    tx: Tx, report_id: str, status: str, note: str | None, by_user: int | None, now: float
) -> StatusChange:
    """Records a status change made at the PSO. The report must exist (see :func:`get_report`)."""
    report = get_report(tx, report_id)
    tx.execute(
        "UPDATE reports SET status = ?, status_note = ?, status_changed_at = ? WHERE id = ?",
        (status, note, now, report.id),
    )
    serialise(tx, "status_changes")  # after the row lock above, so no lock is ever awaited while holding this one
    row = tx.one(
        "INSERT INTO status_changes (report_id, status, note, changed_at, changed_by) VALUES (?, ?, ?, ?, ?) "
        "RETURNING seq",
        (report.id, status, note, now, by_user),
    )
    assert row is not None
    return StatusChange(int(row[0]), report.id, report.server_ref, status, note, now)


_CHANGE_COLUMNS = "c.seq, c.report_id, r.received_year, r.seq, c.status, c.note, c.changed_at"


def _change(row: tuple[Any, ...]) -> StatusChange:
    return StatusChange(int(row[0]), row[1], format_ref(int(row[2]), int(row[3])), row[4], row[5], float(row[6]))


def status_changes_since(tx: Tx, viewer: User, after_seq: int, limit: int) -> list[StatusChange]:
    """Status changes after ``after_seq`` that ``viewer`` may see, oldest first: a reporter's own named
    reports, or every report of a risk manager's facility."""
    where, key = (
        ("r.facility = ?", viewer.facility) if viewer.role == "risk_manager" else ("r.submitter_id = ?", viewer.id)
    )
    rows = tx.all(
        f"SELECT {_CHANGE_COLUMNS} FROM status_changes c JOIN reports r ON r.id = c.report_id "  # noqa: S608
        f"WHERE c.seq > ? AND {where} ORDER BY c.seq LIMIT ?",
        (after_seq, key, limit),
    )
    return [_change(row) for row in rows]


def current_statuses(
    tx: Tx, viewer: User, report_ids: Sequence[str], key_hashes: Mapping[str, str] | None = None
) -> list[StatusChange]:
    """The current status of each listed report the viewer may see: their own named reports, any report of a
    risk manager's facility, and anonymous reports of their facility whose owner key the caller presented
    (``key_hashes``: report id → SHA-256 of the key). An anonymous report held without a key (sent before
    keys existed) is shown to any account of its facility that names it, as before."""
    if not report_ids:
        return []
    keys = key_hashes or {}
    marks = ", ".join("?" for _ in report_ids)
    rows = tx.all(
        "SELECT (SELECT MAX(c.seq) FROM status_changes c WHERE c.report_id = r.id), "  # noqa: S608
        "r.id, r.received_year, "
        "r.seq, r.status, r.status_note, r.status_changed_at, r.facility, r.submitter_id, r.is_anonymous, "
        "r.owner_key_hash "
        f"FROM reports r WHERE r.id IN ({marks})",
        list(report_ids),
    )
    visible = []
    for row in rows:
        facility, submitter_id, anonymous, key_hash = row[7], row[8], bool(row[9]), row[10]
        if facility != viewer.facility:
            continue
        if viewer.role == "risk_manager":
            shown = True
        elif not anonymous:
            shown = submitter_id is not None and int(submitter_id) == viewer.id
        elif key_hash is None:
            shown = True
        else:
            presented = keys.get(str(row[1]))
            shown = presented is not None and hmac.compare_digest(str(key_hash), presented)
        if shown:
            visible.append(_change(row[:7]))
    return visible


def list_units(tx: Tx) -> list[tuple[str, str]]:
    return [(str(code), str(name)) for code, name in tx.all("SELECT code, name FROM units ORDER BY code")]


def replace_units(tx: Tx, units: Sequence[tuple[str, str]]) -> None:
    """Replaces the whole unit list (what clients offer as event locations)."""
    tx.execute("DELETE FROM units")
    tx.executemany("INSERT INTO units (code, name) VALUES (?, ?)", units)


# --- form catalogues the PSO publishes ------------------------------------------------------------------------
# One row per published version: its canonical JSON and hash (NULL for the bundled version, which counts as
# published everywhere and gets a row only when withdrawn). The current version is the newest one not withdrawn.


@dataclass(frozen=True)
class PublishedVersion:
    version: str
    content_hash: str | None
    published_at: float
    withdrawn_at: float | None


def list_catalogues(tx: Tx) -> list[PublishedVersion]:
    rows = tx.all("SELECT version, content_hash, published_at, withdrawn_at FROM catalogues ORDER BY seq")
    return [PublishedVersion(str(v), h, float(p), None if w is None else float(w)) for v, h, p, w in rows]


def catalogue_body(tx: Tx, version: str) -> str | None:
    row = tx.one("SELECT body FROM catalogues WHERE version = ?", (version,))
    return None if row is None or row[0] is None else str(row[0])


def publish_catalogue(tx: Tx, version: str, body: str, content_hash: str, now: float) -> None:
    """Stores a new version (the caller checked with held_hash that it is not held: a version never changes
    once published)."""
    tx.execute(
        "INSERT INTO catalogues (version, body, content_hash, published_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (version) DO NOTHING",
        (version, body, content_hash, now),
    )


def held_hash(tx: Tx, version: str) -> tuple[bool, str | None]:
    """(held, content_hash) of a version's row."""
    row = tx.one("SELECT content_hash FROM catalogues WHERE version = ?", (version,))
    return (row is not None, None if row is None else row[0])


def withdraw_catalogue(tx: Tx, version: str, now: float, *, bundled: bool) -> None:
    """Marks a version withdrawn (a bundled version gets a row saying so)."""
    if tx.one("SELECT 1 FROM catalogues WHERE version = ?", (version,)) is None:
        if not bundled:
            raise UnknownVersion("That form version was never published on this server; nothing was changed.")
        tx.execute(
            "INSERT INTO catalogues (version, body, content_hash, published_at, withdrawn_at) "
            "VALUES (?, NULL, NULL, 0, ?)",
            (version, now),
        )
    else:
        tx.execute(
            "UPDATE catalogues SET withdrawn_at = ? WHERE version = ? AND withdrawn_at IS NULL", (now, version)
        )


# --- the facility's reports and their review (issue 12) -------------------------------------------------------
# A risk manager's client copies the reports of its facility and the facility's review records, each through a
# feed with a cursor (a seq), like the status feed: so rows are written last in their transaction, under a lock
# held until the commit just after, and no feed row ever commits after one with a higher seq.


def record_in_feed(tx: Tx, stored: Sequence[tuple[str, int]]) -> None:
    """Adds newly stored revisions, as (report id, revision), to the facility feed. Call it near the end of the
    transaction (see above)."""
    if stored:
        serialise(tx, "status_changes")
        tx.executemany("INSERT INTO revision_feed (report_id, revision) VALUES (?, ?)", stored)


@dataclass(frozen=True)
class FacilityReport:
    """The newest revision of one report of a facility, for its risk managers: no submitter is ever named
    here (an anonymous report is linked to no one; a named one names its reporter in its own content)."""

    seq: int
    report_id: str
    server_ref: str
    revision: int
    body: str
    status: str
    status_note: str | None
    received_at: float
    is_anonymous: bool


def facility_reports_since(tx: Tx, facility: str, after_seq: int, limit: int) -> list[FacilityReport]:
    """The facility's reports whose newest revision entered the feed after ``after_seq``, oldest first (an
    older revision's entry is skipped: the newer one comes later in the same feed)."""
    rows = tx.all(
        "SELECT f.seq, r.id, r.received_year, r.seq, r.latest_revision, v.body, r.status, r.status_note, "
        "v.received_at, r.is_anonymous FROM revision_feed f JOIN reports r ON r.id = f.report_id "
        "JOIN report_revisions v ON v.report_id = r.id AND v.revision = r.latest_revision "
        "WHERE f.seq > ? AND r.facility = ? AND f.revision = r.latest_revision ORDER BY f.seq LIMIT ?",
        (after_seq, facility, limit),
    )
    return [
        FacilityReport(
            int(row[0]),
            str(row[1]),
            format_ref(int(row[2]), int(row[3])),
            int(row[4]),
            str(row[5]),
            str(row[6]),
            row[7],
            float(row[8]),
            bool(row[9]),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ReviewEvent:
    """One review record. ``kind``: ``field`` (a change of ``state``, ``assignee`` or ``harm``, made on the
    ``base_version`` of that field its author saw), ``note`` or ``action`` (appended, never in conflict).
    ``outcome``: ``accepted`` (the field's value now), ``conflict`` (made on an older version than the field's:
    kept beside it for a person to resolve) or ``appended``. ``value`` is JSON text."""

    seq: int
    event_id: str
    report_id: str
    kind: str
    field: str | None
    value: str | None
    base_version: int | None
    version: int | None
    outcome: str
    author: str
    created_at: float


@dataclass(frozen=True)
class ReviewChange:
    event_id: str
    report_id: str
    kind: str
    field: str | None
    value: str | None
    base_version: int | None


_REVIEW_COLUMNS = (
    "seq, event_id, report_id, kind, field, value, base_version, version, outcome, author, created_at"
)


def _review_event(row: tuple[Any, ...]) -> ReviewEvent:
    return ReviewEvent(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        row[4],
        row[5],
        None if row[6] is None else int(row[6]),
        None if row[7] is None else int(row[7]),
        str(row[8]),
        str(row[9]),
        float(row[10]),
    )


def record_review(tx: Tx, change: ReviewChange, viewer: User, now: float) -> ReviewEvent | None:
    """Stores one review record of a report of ``viewer``'s facility; None when the report is not one (nothing
    is stored). A record already held (the same event id, re-sent after a lost answer) is answered as held.

    A field change whose ``base_version`` is the field's current version is ``accepted`` and becomes its value;
    one made on an older version is kept as a ``conflict`` beside it. Either way the field's version grows, so a
    later change resolves a conflict only when its author had seen it. All review writes take turns (one lock
    until the commit), which also keeps the feed's seq in commit order."""
    serialise(tx, "review_events")
    held = tx.one(
        f"SELECT {_REVIEW_COLUMNS} FROM review_events WHERE event_id = ? AND facility = ?",  # noqa: S608
        (change.event_id, viewer.facility),
    )
    if held is not None:
        return _review_event(held)
    if tx.one("SELECT 1 FROM review_events WHERE event_id = ?", (change.event_id,)) is not None:
        return None  # another facility's id: say nothing about it
    report = tx.one("SELECT facility FROM reports WHERE id = ?", (change.report_id,))
    if report is None or report[0] != viewer.facility:
        return None
    version: int | None = None
    if change.kind == "field":
        found = tx.one(
            f"SELECT version FROM review_fields WHERE report_id = ? AND field = ?{tx.dialect.for_update}",  # noqa: S608
            (change.report_id, change.field),
        )
        current = 0 if found is None else int(found[0])
        outcome = "accepted" if change.base_version == current else "conflict"
        version = current + 1
        if found is None:
            tx.execute(
                "INSERT INTO review_fields (report_id, field, version) VALUES (?, ?, ?)",
                (change.report_id, change.field, version),
            )
        else:
            tx.execute(
                "UPDATE review_fields SET version = ? WHERE report_id = ? AND field = ?",
                (version, change.report_id, change.field),
            )
    else:
        outcome = "appended"
    row = tx.one(
        "INSERT INTO review_events (event_id, report_id, facility, kind, field, value, base_version, version, "
        "outcome, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        (
            change.event_id,
            change.report_id,
            viewer.facility,
            change.kind,
            change.field,
            change.value,
            change.base_version,
            version,
            outcome,
            viewer.username,
            now,
        ),
    )
    assert row is not None
    return ReviewEvent(
        int(row[0]),
        change.event_id,
        change.report_id,
        change.kind,
        change.field,
        change.value,
        change.base_version,
        version,
        outcome,
        viewer.username,
        now,
    )


def review_events_since(tx: Tx, facility: str, after_seq: int, limit: int) -> list[ReviewEvent]:
    """The facility's review records after ``after_seq``, oldest first."""
    rows = tx.all(
        f"SELECT {_REVIEW_COLUMNS} FROM review_events WHERE facility = ? AND seq > ? "  # noqa: S608
        "ORDER BY seq LIMIT ?",
        (facility, after_seq, limit),
    )
    return [_review_event(row) for row in rows]
