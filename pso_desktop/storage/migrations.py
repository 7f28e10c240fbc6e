"""Numbered schema migrations, keyed on ``PRAGMA user_version``.

Migration N brings a database from version N-1 to N. Each one runs in its own ``BEGIN IMMEDIATE`` transaction
together with the ``user_version`` bump, so a crash leaves the database at N-1 or N, never in between. Never
edit a released migration: append a new one. A database whose version is above :data:`LATEST_VERSION` was
written by a newer app and is refused before anything is written.
"""

from __future__ import annotations

from sqlcipher3.dbapi2 import Connection

from pso_desktop.storage.errors import DatabaseTooNewError

# Outbox states, shared with the repository: a draft has no outbox entry yet.
_STATES = "'draft', 'queued', 'sending', 'submitted', 'needs_attention'"
_OUTBOX_STATES = "'queued', 'sending', 'submitted', 'needs_attention'"

_V1_REPORTS: tuple[str, ...] = (
    # Current content of every report (the draft being edited, or the last frozen revision). ``pk`` is an
    # explicit INTEGER PRIMARY KEY so VACUUM cannot renumber the rowids the search index points at. The
    # summary columns are derived from ``wire`` at write time; ``wire`` is last so listing never reads it.
    f"""CREATE TABLE reports (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        revision INTEGER NOT NULL CHECK (revision >= 1),
        state TEXT NOT NULL CHECK (state IN ({_STATES})),
        event_type TEXT,
        unit TEXT,
        discovered_on TEXT,
        categories TEXT NOT NULL DEFAULT '[]',
        server_ref TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        wire TEXT NOT NULL
    ) STRICT""",
    "CREATE INDEX reports_by_updated ON reports (updated_at DESC, pk DESC)",
    "CREATE INDEX reports_by_state ON reports (state, updated_at DESC, pk DESC)",
    # Frozen content of every submitted revision: written once, never changed (the server dedupes on
    # (id, revision) and compares content, so what was queued must be exactly what is sent).
    """CREATE TABLE report_revisions (
        report_id TEXT NOT NULL REFERENCES reports (id),
        revision INTEGER NOT NULL CHECK (revision >= 1),
        sha256 TEXT NOT NULL,
        frozen_at TEXT NOT NULL,
        wire TEXT NOT NULL,
        PRIMARY KEY (report_id, revision)
    ) STRICT""",
    """CREATE TRIGGER report_revisions_immutable_update BEFORE UPDATE ON report_revisions
       BEGIN SELECT RAISE(ABORT, 'submitted revisions cannot be changed'); END""",
    """CREATE TRIGGER report_revisions_immutable_delete BEFORE DELETE ON report_revisions
       BEGIN SELECT RAISE(ABORT, 'submitted revisions cannot be deleted'); END""",
    # One entry per submitted revision; ``seq`` gives the sending order.
    f"""CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        report_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ({_OUTBOX_STATES})),
        size_bytes INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        server_ref TEXT,
        server_status TEXT,
        errors TEXT,
        queued_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (report_id, revision),
        FOREIGN KEY (report_id, revision) REFERENCES report_revisions (report_id, revision)
    ) STRICT""",
    "CREATE INDEX outbox_by_state ON outbox (state, seq)",
    # Full-text search over narratives, inside the encrypted file. Contentless (the text already lives in
    # ``reports.wire``) with contentless_delete so rows can be removed by rowid; kept in step by triggers so
    # no code path can forget it.
    """CREATE VIRTUAL TABLE report_search USING fts5(
        narrative, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER reports_search_insert AFTER INSERT ON reports BEGIN
        INSERT INTO report_search (rowid, narrative) VALUES (new.pk, json_extract(new.wire, '$.narrative'));
    END""",
    """CREATE TRIGGER reports_search_update AFTER UPDATE OF wire ON reports BEGIN
        DELETE FROM report_search WHERE rowid = old.pk;
        INSERT INTO report_search (rowid, narrative) VALUES (new.pk, json_extract(new.wire, '$.narrative'));
    END""",
    """CREATE TRIGGER reports_search_delete AFTER DELETE ON reports BEGIN
        DELETE FROM report_search WHERE rowid = old.pk;
    END""",
)

_V2_AUDIT: tuple[str, ...] = (
    # Append-only, hash-chained audit trail (see audit.py). AUTOINCREMENT keeps ``sqlite_sequence`` as a
    # high-water mark, so removing the newest rows is detectable too.
    """CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        report_id TEXT,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    ) STRICT""",
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
)

_V3_SYNC: tuple[str, ...] = (
    # The PSO account this profile is linked to (one per profile). The refresh token lives here, inside the
    # encrypted file; access tokens only ever live in memory.
    """CREATE TABLE account (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        server_url TEXT NOT NULL,
        ca_file TEXT,
        proxy TEXT,
        username TEXT NOT NULL,
        device_name TEXT NOT NULL,
        refresh_token TEXT,
        status_cursor TEXT,
        reference TEXT,
        linked_at TEXT NOT NULL
    ) STRICT""",
    # The PSO's latest status of each report (received, under review, ...), from the status feed.
    """CREATE TABLE server_status (
        report_id TEXT PRIMARY KEY,
        server_ref TEXT NOT NULL,
        status TEXT NOT NULL,
        note TEXT,
        changed_at TEXT NOT NULL
    ) STRICT""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1_REPORTS, _V2_AUDIT, _V3_SYNC)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    """The database's ``user_version`` (0 for a new, empty database)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def refuse_too_new(conn: Connection) -> int:
    """Return the schema version, raising :class:`DatabaseTooNewError` when this app cannot read it."""
    version = schema_version(conn)
    if version > LATEST_VERSION:
        raise DatabaseTooNewError()
    return version


def migrate(conn: Connection, *, target: int = LATEST_VERSION) -> int:
    """Apply the pending migrations up to ``target``, one transaction each; returns the final version.

    The version is re-read inside each write transaction, so two processes opening the same database at
    once do not apply a migration twice. The connection must be in autocommit mode (``isolation_level=None``).
    """
    if not 0 <= target <= LATEST_VERSION:
        raise ValueError(f"migration target {target} is outside 0..{LATEST_VERSION}")
    version = refuse_too_new(conn)
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = refuse_too_new(conn)
            if version < target:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
                # ``version`` is an int we computed, never outside input.
                conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version
