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

_V4_LIST: tuple[str, ...] = (
    # The list at 100,000 reports (issue 12, item 3): every filter and sort of the list runs over one covering
    # index, never over the wide rows (a report's ``wire`` fills most of a page), so a query costs at most one
    # scan of about 5,000 small pages plus a top-N sort, whatever filters are combined.
    # Harm as the reporter gave it, for the harm filter and the list (a virtual column: nothing to keep in step).
    "ALTER TABLE reports ADD COLUMN harm TEXT GENERATED ALWAYS AS (json_extract(wire, '$.harm.level')) VIRTUAL",
    # The PSO's latest status, copied from the status feed's table by the triggers below, so it can be filtered
    # and sorted without a lookup per row.
    "ALTER TABLE reports ADD COLUMN pso_status TEXT",
    "UPDATE reports SET pso_status = (SELECT status FROM server_status WHERE server_status.report_id = reports.id)",
    """CREATE TRIGGER server_status_to_reports_insert AFTER INSERT ON server_status BEGIN
        UPDATE reports SET pso_status = new.status WHERE id = new.report_id;
    END""",
    """CREATE TRIGGER server_status_to_reports_update AFTER UPDATE OF status ON server_status BEGIN
        UPDATE reports SET pso_status = new.status WHERE id = new.report_id;
    END""",
    """CREATE TRIGGER reports_pso_status_insert AFTER INSERT ON reports
       WHEN EXISTS (SELECT 1 FROM server_status WHERE report_id = new.id) BEGIN
        UPDATE reports SET pso_status = (SELECT status FROM server_status WHERE report_id = new.id)
        WHERE pk = new.pk;
    END""",
    """CREATE INDEX reports_list ON reports (updated_at DESC, pk DESC, state, event_type, unit, discovered_on, harm,
        pso_status, server_ref, revision, id, categories)""",
    # One row per (category, report): the category filter is an index range, not JSON parsed per row.
    """CREATE TABLE report_categories (
        code TEXT NOT NULL,
        report_pk INTEGER NOT NULL,
        PRIMARY KEY (code, report_pk)
    ) STRICT, WITHOUT ROWID""",
    "INSERT OR IGNORE INTO report_categories (code, report_pk) "
    "SELECT CAST(c.value AS TEXT), r.pk FROM reports AS r, json_each(r.categories) AS c",
    """CREATE TRIGGER report_categories_insert AFTER INSERT ON reports BEGIN
        INSERT OR IGNORE INTO report_categories (code, report_pk)
        SELECT CAST(value AS TEXT), new.pk FROM json_each(new.categories);
    END""",
    """CREATE TRIGGER report_categories_update AFTER UPDATE OF categories ON reports BEGIN
        DELETE FROM report_categories WHERE report_pk = old.pk
            AND code IN (SELECT CAST(value AS TEXT) FROM json_each(old.categories));
        INSERT OR IGNORE INTO report_categories (code, report_pk)
        SELECT CAST(value AS TEXT), new.pk FROM json_each(new.categories);
    END""",
    """CREATE TRIGGER report_categories_delete AFTER DELETE ON reports BEGIN
        DELETE FROM report_categories WHERE report_pk = old.pk
            AND code IN (SELECT CAST(value AS TEXT) FROM json_each(old.categories));
    END""",
    # Search covers the narrative, the unit and the PSO's case number: the index is rebuilt with three columns.
    "DROP TRIGGER reports_search_insert",
    "DROP TRIGGER reports_search_update",
    "DROP TRIGGER reports_search_delete",
    "DROP TABLE report_search",
    """CREATE VIRTUAL TABLE report_search USING fts5(
        narrative, unit, case_ref, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2'
    )""",
    "INSERT INTO report_search (rowid, narrative, unit, case_ref) "
    "SELECT pk, json_extract(wire, '$.narrative'), unit, server_ref FROM reports",
    """CREATE TRIGGER reports_search_insert AFTER INSERT ON reports BEGIN
        INSERT INTO report_search (rowid, narrative, unit, case_ref)
        VALUES (new.pk, json_extract(new.wire, '$.narrative'), new.unit, new.server_ref);
    END""",
    """CREATE TRIGGER reports_search_update AFTER UPDATE OF wire, unit, server_ref ON reports BEGIN
        DELETE FROM report_search WHERE rowid = old.pk;
        INSERT INTO report_search (rowid, narrative, unit, case_ref)
        VALUES (new.pk, json_extract(new.wire, '$.narrative'), new.unit, new.server_ref);
    END""",
    """CREATE TRIGGER reports_search_delete AFTER DELETE ON reports BEGIN
        DELETE FROM report_search WHERE rowid = old.pk;
    END""",
    # The units offered by the filter, without a scan.
    "CREATE INDEX reports_by_unit ON reports (unit)",
    # Saved views of the list (filters, sort and search text). A search can be PHI, so views live here, in the
    # encrypted profile, never in settings.
    """CREATE TABLE saved_views (
        name TEXT PRIMARY KEY,
        query TEXT NOT NULL,
        saved_at TEXT NOT NULL
    ) STRICT""",
)

_V5_OWNER_KEYS: tuple[str, ...] = (
    # The per-report owner key (issue 9, item 2): a 256-bit random secret generated when the report is first
    # submitted and sent with every revision; the server keeps only its SHA-256 and accepts a new revision of
    # an anonymous report (linked to no account) only with it. A key never changes: losing or replacing it
    # would lose the report, so the table refuses both.
    """CREATE TABLE report_keys (
        report_id TEXT PRIMARY KEY REFERENCES reports (id),
        owner_key TEXT NOT NULL
    ) STRICT""",
    """CREATE TRIGGER report_keys_immutable_update BEFORE UPDATE ON report_keys
       BEGIN SELECT RAISE(ABORT, 'a report owner key cannot be changed'); END""",
    """CREATE TRIGGER report_keys_immutable_delete BEFORE DELETE ON report_keys
       BEGIN SELECT RAISE(ABORT, 'a report owner key cannot be deleted'); END""",
)

_V6_KNOWN_DEVICE: tuple[str, ...] = (
    # The device token each PSO server gave this profile at its last sign-in (issue 9, item 7): presented at the
    # next sign-in, it shows a known device, which another person's failed sign-ins from the same address (a
    # hospital's NAT) do not hold back. Kept per server URL, so signing out or re-linking does not lose it.
    """CREATE TABLE known_device (
        server_url TEXT PRIMARY KEY,
        token TEXT NOT NULL
    ) STRICT""",
)

_V7_REMEMBERED: tuple[str, ...] = (
    # What a new report starts with (issue 8, item 3): the unit and the reporter of the last report submitted
    # from this profile. A unit with a date can identify a patient, so it lives here, encrypted, never in the
    # settings file. One JSON value per key.
    """CREATE TABLE remembered (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT""",
)

_V8_CATALOGUES: tuple[str, ...] = (
    # The form catalogues the PSO published (issue 11, item 3), fetched at sync and used offline from then on:
    # the catalogue's canonical JSON, exactly as the server hashed it, and that SHA-256. A version never changes.
    """CREATE TABLE catalogues (
        version TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        content_hash TEXT NOT NULL
    ) STRICT""",
)

_V9_FACILITY: tuple[str, ...] = (
    # A risk manager's copies of the facility's reports (issue 12, item 1), fetched at sync: rows of ``reports``
    # like any other (the list, filters, charts and exports see them) but marked 'facility', read-only here (no
    # draft, no outbox entry), and purged when the account stops being a risk manager. The profile's own reports
    # are 'mine'.
    "ALTER TABLE reports ADD COLUMN origin TEXT NOT NULL DEFAULT 'mine' CHECK (origin IN ('mine', 'facility'))",
    # The review state the facility's risk managers gave the report (new, in_review, waiting_for_information,
    # closed), kept in step with the review records below by the review repository (storage/review.py).
    "ALTER TABLE reports ADD COLUMN review_state TEXT",
    "ALTER TABLE account ADD COLUMN facility_cursor TEXT",
    "ALTER TABLE account ADD COLUMN review_cursor TEXT",
    # Review records (issue 12, item 2), the facility's and this profile's own: ``seq`` is the server's (NULL
    # while a record made here waits to be sent). ``value`` is JSON. See storage/review.py.
    """CREATE TABLE review_records (
        event_id TEXT PRIMARY KEY,
        seq INTEGER UNIQUE,
        report_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('field', 'note', 'action')),
        field TEXT,
        value TEXT,
        base_version INTEGER,
        version INTEGER,
        outcome TEXT CHECK (outcome IN ('accepted', 'conflict', 'appended')),
        author TEXT NOT NULL,
        created_at TEXT NOT NULL
    ) STRICT""",
    "CREATE INDEX review_records_by_report ON review_records (report_id, seq)",
    # When the facility's review closed the report (the policy's retention counts from there).
    """CREATE TABLE review_closed (
        report_id TEXT PRIMARY KEY,
        closed_at TEXT NOT NULL
    ) STRICT""",
)

_V10_REVIEW_LIST: tuple[str, ...] = (
    # ``origin`` and ``review_state`` (migration 9) were added after ``wire``, so a query that reads them from the
    # table follows each report's overflow pages: the profile's outbox counts (origin = 'mine') took 1.2 s instead
    # of 13 ms at 100,000 reports. They join the list's covering index (the review filter, the list's Facility
    # mark) and get an index of their own with the state (the counts). Any other index the list reads (one per sort
    # key, say) must hold them too, or the review filter and the Facility mark read the wide rows again.
    "DROP INDEX reports_list",
    """CREATE INDEX reports_list ON reports (updated_at DESC, pk DESC, state, event_type, unit, discovered_on, harm,
        pso_status, server_ref, revision, id, categories, review_state, origin)""",
    "CREATE INDEX reports_by_origin ON reports (origin, state)",
)

_V11_SORTS: tuple[str, ...] = (
    # Sorting and counting 100,000 reports by unit and by discovery date (issue 12, item 3): a covering index for
    # each, so a page sorted by either is read in index order and stops after the page, and the counts under a
    # unit or date filter read only that range; with every column the list filters on or shows (those of
    # ``reports_list``, migration 10), so the wide rows are never read. The key in the direction it is first
    # offered (``report_query.FIRST_DESCENDING``), then the newest edit first; the other direction walks the
    # index backwards. About 13 MB each at 100,000 reports. The other sorts use ``reports_list`` and a top-N
    # sort: an index for every sort key made adding reports to a 100,000-report profile 12 times slower.
    """CREATE INDEX reports_sort_unit ON reports (unit ASC,
        updated_at DESC, pk DESC, state, event_type, discovered_on, harm, pso_status, server_ref, revision, id,
        categories, review_state, origin)""",
    """CREATE INDEX reports_sort_discovered_on ON reports (discovered_on DESC,
        updated_at DESC, pk DESC, state, event_type, unit, harm, pso_status, server_ref, revision, id, categories,
        review_state, origin)""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1_REPORTS,
    _V2_AUDIT,
    _V3_SYNC,
    _V4_LIST,
    _V5_OWNER_KEYS,
    _V6_KNOWN_DEVICE,
    _V7_REMEMBERED,
    _V8_CATALOGUES,
    _V9_FACILITY,
    _V10_REVIEW_LIST,
    _V11_SORTS,
)
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
