"""The report repository: drafts, frozen revisions, the outbox, search and export.

A report is stored as its wire form (a JSON dict with at least ``id`` and ``revision``). ``reports`` holds the
current content of each report; submitting copies that content, as it is, into ``report_revisions`` (which
triggers make immutable) and adds an ``outbox`` entry, in one transaction. Editing a report whose current
revision was submitted starts a new draft revision (revision + 1): what was queued is never changed.

Report states: ``draft`` (current content not submitted yet) → ``queued`` → ``sending`` → ``submitted`` or
``needs_attention`` (the server's reasons are kept). Every public method runs in one transaction (a savepoint
when the caller already opened one) and raises :class:`StorageError` subclasses for environmental failures.
All methods run on the thread that owns the connection (the storage worker).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlcipher3.dbapi2 import Connection

from pso_desktop.domain.wire import canonical_json
from pso_desktop.storage.database import transaction, translate_errors
from pso_desktop.storage.errors import StorageError
from pso_desktop.storage.report_query import (
    CHIP_STATES,
    LIST_SOURCE,
    SEARCH_HITS,
    ReportQuery,
    count_source,
    list_source,
    match_expression,
    order_clause,
    where_clause,
)

STATES: tuple[str, ...] = ("draft", "queued", "sending", "submitted", "needs_attention")
# Server result statuses (see DESIGN.md, sync protocol) and the outbox state each one leads to.
SUCCESS_STATUSES = frozenset({"created", "duplicate", "updated", "stale"})
ATTENTION_STATUSES = frozenset({"conflict", "rejected"})

_EXPORT_PAGE = 500
# A report's chip (report_query.CHIP_STATES): the facility's copies apart from the profile's own states.
_CHIP_STATE = "CASE WHEN origin = 'facility' THEN 'facility' ELSE state END"
_COUNTS_KEPT = 32  # count_by_state answers remembered while nothing is written
# The PSO's latest status of the report comes from the status feed's table (a primary-key lookup per row).
# (kept in ``reports.pso_status`` by triggers; see migration 4).
_SUMMARY = (
    "id, revision, state, event_type, categories, unit, discovered_on, updated_at, server_ref, pso_status, origin, "
    "review_state"
)


@dataclass(frozen=True)
class ReportSummary:
    """One row of the report list. Deliberately holds no narrative and no patient data."""

    id: str
    revision: int
    state: str
    event_type: str | None
    categories: tuple[str, ...]
    unit: str | None
    discovered_on: str | None
    updated_at: str
    server_ref: str | None
    pso_status: str | None = None  # received, under_review, more_info_requested, closed (from the status feed)
    origin: str = "mine"  # or 'facility': a risk manager's read-only copy of the facility's report
    review_state: str | None = None  # the facility's review (new, in_review, waiting_for_information, closed)


@dataclass(frozen=True)
class ExportedReport:
    """A report's content with what the list shows beside it: its state, case number and the PSO's status."""

    report: dict[str, Any]
    state: str
    server_ref: str | None
    pso_status: str | None


@dataclass(frozen=True)
class TrendCounts:
    """What the charts count (see :meth:`ReportStore.trend_counts`): codes and counts only, no PHI."""

    by_month: list[tuple[str, str, int]]  # (YYYY-MM, event type code, count)
    by_harm: list[tuple[str, int]]  # incidents per harm level code
    by_unit: list[tuple[str, int]]
    by_category: list[tuple[str, int]]


@dataclass(frozen=True)
class OutboxItem:
    """A frozen revision claimed for sending: ``wire_text`` is exactly the canonical JSON that was queued (the
    sync engine sends these bytes as they are), ``sha256`` its hash, ``wire`` the same content decoded."""

    seq: int
    report_id: str
    revision: int
    wire_text: str
    sha256: str
    size_bytes: int
    attempts: int
    # The report's owner key (sent beside the report, never inside it); kept out of reprs, which reach logs.
    owner_key: str | None = field(default=None, repr=False)

    @property
    def wire(self) -> dict[str, Any]:
        return _decode(self.wire_text)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReportStore:
    """Repository over an open database connection (see :func:`~pso_desktop.storage.database.open_database`)."""

    def __init__(self, conn: Connection, *, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock
        # What SEARCH_HITS holds: the FTS expression and the data key (_data_key) it was filled for.
        self._hits_key: tuple[str, int, int] | None = None
        self._own_changes = 0  # rows this store changed in its temporary tables (not the data)
        self._counts: dict[ReportQuery, dict[str, int]] = {}  # count_by_state's answers for ...
        self._counts_data: tuple[int, int] | None = None  # ... the data as it was then

    # --- drafts ------------------------------------------------------------------------------------------

    def save_draft(self, report: Mapping[str, Any]) -> int:
        """Insert or update one report's draft in its own transaction (the autosave path).

        A new report keeps the revision it carries. For an existing report the stored revision is
        authoritative: a draft is overwritten in place, and a report whose current revision was submitted
        gets a new draft revision (stored revision + 1) unless the content is unchanged. Returns the
        revision now stored; ``get()`` returns the content with that revision.
        """
        with transaction(self._conn):
            return self._upsert_draft(report)

    def add_reports(self, reports: Sequence[Mapping[str, Any]], *, submit: bool = False) -> None:
        """Store many reports in ONE transaction (import, ``report add``): all of them, or none.

        Each is stored as by :meth:`save_draft`; with ``submit=True`` each is also frozen and queued.
        """
        checked = [_checked(report) for report in reports]  # refuse bad input before touching the file
        with transaction(self._conn):
            for report in checked:
                self._upsert_draft(report)
                if submit:
                    self._freeze(report["id"])

    def get(self, report_id: str) -> dict[str, Any] | None:
        """The current content of a report (its draft, or its last submitted revision), or ``None``."""
        with translate_errors():
            row = self._conn.execute("SELECT wire FROM reports WHERE id = ?", (report_id,)).fetchone()
        return None if row is None else _decode(row[0])

    def get_revision(self, report_id: str, revision: int) -> dict[str, Any] | None:
        """The frozen content of one submitted revision, or ``None`` when that revision was never submitted."""
        with translate_errors():
            row = self._conn.execute(
                "SELECT wire FROM report_revisions WHERE report_id = ? AND revision = ?", (report_id, revision)
            ).fetchone()
        return None if row is None else _decode(row[0])

    def delete(self, report_id: str) -> None:
        """Delete a report that was never submitted (``secure_delete`` zeroes the freed pages of the file;
        older encrypted page images may linger in the WAL and search segments until overwritten or merged).

        Deleting an unknown id does nothing. A report with any submitted revision is part of the record and
        raises :class:`StorageError`.
        """
        with transaction(self._conn):
            row = self._conn.execute("SELECT pk, origin FROM reports WHERE id = ?", (report_id,)).fetchone()
            if row is None:
                return
            if row[1] == "facility":
                raise StorageError(FACILITY_READ_ONLY)
            submitted = self._conn.execute(
                "SELECT 1 FROM report_revisions WHERE report_id = ? LIMIT 1", (report_id,)
            ).fetchone()
            if submitted is not None:
                raise StorageError("Only drafts that were never submitted can be deleted; this one was submitted.")
            if self._conn.execute("SELECT 1 FROM report_keys WHERE report_id = ?", (report_id,)).fetchone():
                raise StorageError(SUBMIT_INTERRUPTED)
            self._conn.execute("DELETE FROM reports WHERE pk = ?", (row[0],))

    # --- listing and search ------------------------------------------------------------------------------

    def list_summaries(
        self,
        *,
        state: str | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
        query: ReportQuery | None = None,
    ) -> list[ReportSummary]:
        """One page of the list: the reports ``query`` selects, in its order (default: newest edit first).

        ``state`` and ``text`` are shorthands for a query with that one state and that search. ``text`` is plain
        user input, not query syntax: every word must occur in the narrative, the unit or the case number
        (prefix match on each word, case- and accent-insensitive). Text with no words matches nothing.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        query = _combined(query, state, text)
        where = where_clause(query, search_hits=self._search(query))
        if where is None:
            return []
        clause, params = where
        # Only fixed fragments are joined in (report_query.py); every value is a bound parameter. The sort's own
        # covering index is read in order, so the page is its first rows that pass the filters (no sort step).
        source = list_source(query)
        sql = f"SELECT {_SUMMARY} FROM {source} {clause} {order_clause(query)} LIMIT ? OFFSET ?"  # noqa: S608
        with translate_errors():
            rows = self._conn.execute(sql, (*params, limit, offset)).fetchall()
        return [_summary(row) for row in rows]

    def iter_summaries(self, query: ReportQuery, *, limit: int | None = None) -> Iterator[ReportSummary]:
        """Every row of the list for ``query`` (at most ``limit``), in its order, read through one statement a
        thousand rows at a time (a printed summary of the whole list; paging by OFFSET would walk the index again
        for every page). The caller must not write to the database until it has finished iterating."""
        where = where_clause(query, search_hits=self._search(query))
        if where is None:
            return
        clause, params = where
        source = list_source(query)
        sql = f"SELECT {_SUMMARY} FROM {source} {clause} {order_clause(query)} LIMIT ?"  # noqa: S608
        with translate_errors():
            cursor = self._conn.execute(sql, (*params, -1 if limit is None else limit))
            while rows := cursor.fetchmany(1_000):
                yield from (_summary(row) for row in rows)

    def count_by_state(self, query: ReportQuery) -> dict[str, int]:
        """How many reports pass every filter of ``query`` except its states, per state (each report counted
        once, by the state the list shows): the counts beside the list, following its filters. Remembered until
        anything is written to the database (here or by another connection): a list often goes back to a view it
        showed a moment ago."""
        key = query.with_changes(states=(), sort="updated_at", descending=True)
        data = self._data_key()
        if self._counts_data != data:
            self._counts_data, self._counts = data, {}
        found = self._counts.get(key)
        if found is None:
            found = self._count_by_state(key)
            if len(self._counts) >= _COUNTS_KEPT:
                self._counts.pop(next(iter(self._counts)))
            self._counts[key] = found
        return dict(found)

    def _count_by_state(self, query: ReportQuery) -> dict[str, int]:
        counts = dict.fromkeys(CHIP_STATES, 0)
        if not query.narrowed_except_state:
            # Nothing narrows the list: the small (origin, state) index alone answers (about 10x less to read).
            with translate_errors():
                rows = self._conn.execute(
                    f"SELECT {_CHIP_STATE} AS chip, count(*) FROM reports INDEXED BY reports_by_origin GROUP BY chip"  # noqa: S608
                ).fetchall()
            counts.update((str(state), int(count)) for state, count in rows)
            return counts
        hits = self._search(query)
        where = where_clause(query, with_states=False, search_hits=hits)
        if where is None:
            return counts
        clause, params = where
        if hits and not query.with_changes(text=None).narrowed_except_state:
            # A search alone: its matches looked up in the small state index, already grouped by state.
            with translate_errors():
                rows = self._conn.execute(
                    f"SELECT {_CHIP_STATE} AS chip, count(*) FROM reports INDEXED BY reports_by_origin {clause} "  # noqa: S608
                    "GROUP BY chip",
                    params,
                ).fetchall()
            counts.update((str(state), int(count)) for state, count in rows)
            return counts
        # One pass with a count per state: no temporary b-tree for a GROUP BY (half the time at 100,000 reports),
        # through the narrowest index range the filters allow (count_source).
        sums = ", ".join(f"count(*) FILTER (WHERE {_CHIP_STATE} = '{state}')" for state in CHIP_STATES)
        sql = f"SELECT {sums} FROM {count_source(query)} {clause}"  # noqa: S608 -- fixed fragments, bound values
        with translate_errors():
            row = self._conn.execute(sql, params).fetchone()
        counts.update(zip(CHIP_STATES, (int(value) for value in row), strict=True))
        return counts

    def count_matching(self, query: ReportQuery) -> int:
        """How many reports the list shows for ``query``."""
        where = where_clause(query, search_hits=self._search(query))
        if where is None:
            return 0
        clause, params = where
        with translate_errors():
            row = self._conn.execute(f"SELECT count(*) FROM {count_source(query)} {clause}", params).fetchone()  # noqa: S608
        return int(row[0])

    def facet_counts(self, query: ReportQuery) -> dict[str, dict[str, int]]:
        """How many of the reports ``query`` selects have each state, event type, harm level, unit, PSO status
        (``''``: none) and category, for the list's printed summary. Most frequent first (states in order)."""
        where = where_clause(query, search_hits=self._search(query))
        result: dict[str, dict[str, int]] = {
            name: {} for name in ("state", "event_type", "harm", "unit", "pso_status", "category")
        }
        if where is None:
            return result
        clause, params = where
        with translate_errors():
            for name in ("state", "event_type", "harm", "unit", "pso_status"):
                # ``name`` is one of the fixed column names above; the query's values are bound. A facility copy
                # counts as "facility", not by its stored state (as the list's chips do).
                column = _CHIP_STATE if name == "state" else name
                rows = self._conn.execute(
                    f"SELECT coalesce({column}, '') AS value, count(*) AS n FROM {LIST_SOURCE} {clause} "  # noqa: S608
                    "GROUP BY value ORDER BY n DESC, value",
                    params,
                ).fetchall()
                result[name] = {str(value): int(n) for value, n in rows}
            rows = self._conn.execute(
                "SELECT c.code, count(*) AS n FROM report_categories AS c "  # noqa: S608
                f"WHERE c.report_pk IN (SELECT pk FROM {LIST_SOURCE} {clause}) GROUP BY c.code ORDER BY n DESC, c.code",
                params,
            ).fetchall()
            result["category"] = {str(code): int(n) for code, n in rows}
        return result

    def units(self) -> list[str]:
        """Every unit named by a report, sorted (for the unit filter; an index walk, no scan of the reports)."""
        with translate_errors():
            rows = self._conn.execute(
                "SELECT DISTINCT unit FROM reports INDEXED BY reports_by_unit WHERE unit IS NOT NULL AND unit != '' "
                "ORDER BY unit"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def summary(self, report_id: str) -> ReportSummary | None:
        """One report's list row (state, case number, the PSO's status), or ``None``."""
        with translate_errors():
            row = self._conn.execute(f"SELECT {_SUMMARY} FROM reports WHERE id = ?", (report_id,)).fetchone()  # noqa: S608
        return None if row is None else _summary(row)

    def trend_counts(
        self, since: str, until: str, query: ReportQuery | None = None, *, drafts: bool = False
    ) -> TrendCounts:
        """Counts for the risk manager's charts, no PHI, for events discovered from ``since`` up to, not
        including, ``until`` (ISO dates): reports per discovery month (``YYYY-MM``) and event type, per category
        code, per unit (``''`` when none) and, among the incidents only (only an incident reached a patient), per
        harm level (``''`` when none is given). Events are reports sent or received: a draft (never submitted)
        counts only with ``drafts``. With ``query``, only the reports the list shows for it count (its sort is
        ignored)."""
        where = where_clause(query or ReportQuery(), search_hits=self._search(query))
        if where is None:
            return TrendCounts([], [], [], [])
        clause, params = where
        extra = clause.replace("WHERE ", "AND ", 1)
        if not drafts:
            extra += " AND state != 'draft'"
        scope = f"FROM {LIST_SOURCE} WHERE discovered_on >= ? AND discovered_on < ? {extra}"
        bound = (since, until, *params)
        # Fixed fragments only (report_query.py); every value is bound.
        with translate_errors():
            by_month = self._conn.execute(
                "SELECT substr(discovered_on, 1, 7) AS month, coalesce(event_type, ''), count(*) "
                f"{scope} GROUP BY month, event_type ORDER BY month",
                bound,
            ).fetchall()
            by_harm = self._conn.execute(
                f"SELECT coalesce(harm, '') AS level, count(*) {scope} AND event_type = 'incident' GROUP BY level",
                bound,
            ).fetchall()
            by_unit = self._conn.execute(
                f"SELECT coalesce(unit, '') AS place, count(*) {scope} GROUP BY place",
                bound,
            ).fetchall()
            by_category = self._conn.execute(
                "SELECT code, count(*) FROM report_categories "  # noqa: S608
                f"WHERE report_pk IN (SELECT pk {scope}) GROUP BY code",
                bound,
            ).fetchall()
        return TrendCounts(
            [(str(m), str(e), int(n)) for m, e, n in by_month],
            [(str(h), int(n)) for h, n in by_harm],
            [(str(u), int(n)) for u, n in by_unit],
            [(str(c), int(n)) for c, n in by_category],
        )

    def export_all(self) -> Iterator[dict[str, Any]]:
        """Every report's current content, oldest first, read page by page (memory stays flat)."""
        for row in self._export_rows(None, "wire"):
            yield _decode(row[0])

    def export_matching(self, query: ReportQuery) -> Iterator[dict[str, Any]]:
        """The current content of exactly the reports the list shows for ``query``, in the list's order, read
        page by page (the ordered keys first, then the content of ``_EXPORT_PAGE`` reports at a time)."""
        for row in self._export_rows(query, "wire"):
            yield _decode(row[0])

    def export_with_status(self, query: ReportQuery | None = None) -> Iterator[ExportedReport]:
        """As :meth:`export_all` (or :meth:`export_matching` with ``query``), each report with its list row's
        state, case number and the PSO's status (the readable CSV)."""
        for wire, state, server_ref, pso_status in self._export_rows(query, "wire, state, server_ref, pso_status"):
            yield ExportedReport(_decode(wire), str(state), server_ref, pso_status)

    def _export_rows(self, query: ReportQuery | None, columns: str) -> Iterator[Sequence[Any]]:
        if query is None:
            last_pk = 0
            while True:
                with translate_errors():
                    rows = self._conn.execute(
                        f"SELECT pk, {columns} FROM reports WHERE pk > ? ORDER BY pk LIMIT ?",  # noqa: S608
                        (last_pk, _EXPORT_PAGE),
                    ).fetchall()
                if not rows:
                    return
                for row in rows:
                    yield row[1:]
                last_pk = rows[-1][0]
        where = where_clause(query, search_hits=self._search(query))
        if where is None:
            return
        clause, params = where
        with translate_errors():
            keys = [
                int(row[0])
                for row in self._conn.execute(
                    f"SELECT pk FROM {list_source(query)} {clause} {order_clause(query)}",  # noqa: S608
                    params,
                ).fetchall()
            ]
        for start in range(0, len(keys), _EXPORT_PAGE):
            chunk = keys[start : start + _EXPORT_PAGE]
            marks = ", ".join("?" * len(chunk))
            with translate_errors():
                found = {
                    row[0]: row[1:]
                    for row in self._conn.execute(
                        f"SELECT pk, {columns} FROM reports WHERE pk IN ({marks})",  # noqa: S608
                        chunk,
                    ).fetchall()
                }
            for pk in chunk:
                if pk in found:  # deleted meanwhile (another connection): left out
                    yield found[pk]

    def _data_key(self) -> tuple[int, int]:
        """Changes whenever the database's content changes: SQLite's ``data_version`` (another connection wrote)
        and the rows this connection changed, less its own search bookkeeping."""
        with translate_errors():
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        return version, self._conn.total_changes - self._own_changes

    def _search(self, query: ReportQuery | None) -> bool:
        """Fills :data:`SEARCH_HITS` with the pks of the reports ``query``'s search matches, unless it holds them
        already for the data as it is now (nothing written since, here or by another connection); True when the
        query searches. One full-text look-up then serves a page, its counts and the next pages."""
        if query is None or not query.text:
            return False
        expression = match_expression(query.text)
        if expression is None:
            return False
        key = (expression, *self._data_key())
        if self._hits_key == key:
            return True
        before = self._conn.total_changes
        with translate_errors():
            self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS list_search_hits (pk INTEGER PRIMARY KEY)")
            self._conn.execute(f"DELETE FROM {SEARCH_HITS}")  # noqa: S608 -- a fixed name
            self._conn.execute(
                f"INSERT INTO {SEARCH_HITS} (pk) SELECT rowid FROM report_search WHERE report_search MATCH ?",  # noqa: S608
                (expression,),
            )
        self._own_changes += self._conn.total_changes - before
        self._hits_key = key
        return True

    # --- submitting and the outbox -----------------------------------------------------------------------

    def submit(self, report_ids: Sequence[str]) -> None:
        """Freeze the current draft of each report and queue it, all in one transaction.

        Reports whose current revision is already submitted are left as they are (nothing new to send).
        An unknown id raises :class:`StorageError` and nothing is submitted.
        """
        with transaction(self._conn):
            for report_id in report_ids:
                self._freeze(report_id)

    def outbox_counts(self) -> dict[str, int]:
        """How many reports are in each state: ``draft`` counts reports with unsubmitted changes; the other
        states count reports by their most recently submitted revision (so a report whose revision 1 is
        queued while revision 2 is being edited counts once as ``draft`` and once as ``queued``)."""
        counts = dict.fromkeys(STATES, 0)
        # A submitted report's row state mirrors its latest outbox entry; a report being edited again has
        # revision n as draft and its latest submitted revision is exactly n - 1. Two index-only counts,
        # instead of a correlated "latest entry per report" scan of the whole outbox.
        with translate_errors():
            rows = self._conn.execute(
                "SELECT state, count(*) FROM reports INDEXED BY reports_by_origin WHERE origin = 'mine' GROUP BY state "
                "UNION ALL "
                "SELECT o.state, count(*) FROM reports AS r JOIN outbox AS o "
                "ON o.report_id = r.id AND o.revision = r.revision - 1 WHERE r.state = 'draft' GROUP BY o.state"
            ).fetchall()
        for state, count in rows:
            counts[state] += count
        return counts

    def server_errors(self, report_id: str) -> list[Any]:
        """The server's reasons for the report's latest revision needing attention ([] when it does not)."""
        attention = self.attention(report_id)
        return [] if attention is None else attention[1]

    def attention(self, report_id: str) -> tuple[str, list[Any]] | None:
        """Why the PSO did not take the report's latest submitted revision: the server's outcome (``rejected``,
        ``conflict``, ...) and its errors; ``None`` unless that revision needs attention."""
        with translate_errors():
            row = self._conn.execute(
                "SELECT state, server_status, errors FROM outbox WHERE report_id = ? ORDER BY seq DESC LIMIT 1",
                (report_id,),
            ).fetchone()
        if row is None or row[0] != "needs_attention":
            return None
        errors = json.loads(row[2]) if row[2] is not None else []
        return str(row[1] or ""), errors if isinstance(errors, list) else [errors]

    def claim_batch(self, limit: int, max_bytes: int) -> list[OutboxItem]:
        """Move the oldest queued entries to ``sending`` and return their frozen content, in queue order.

        At most ``limit`` entries whose wire JSON adds up to at most ``max_bytes`` (the first entry is
        always returned, even when larger: the server's 413 then tells the caller it can never fit).
        Returns [] when nothing is queued.
        """
        if limit < 1 or max_bytes < 1:
            raise ValueError("limit and max_bytes must be positive")
        now = self._now()
        self._key_queued(limit)
        with transaction(self._conn, durable=False):  # replayed harmlessly: see transaction()
            rows = self._conn.execute(
                "SELECT o.seq, o.report_id, o.revision, o.size_bytes, o.attempts, rr.sha256, rr.wire, k.owner_key "
                "FROM outbox AS o JOIN report_revisions AS rr "
                "ON rr.report_id = o.report_id AND rr.revision = o.revision "
                "LEFT JOIN report_keys AS k ON k.report_id = o.report_id "
                "WHERE o.state = 'queued' ORDER BY o.seq LIMIT ?",
                (limit,),
            ).fetchall()
            items: list[OutboxItem] = []
            total = 0
            for seq, report_id, revision, size, attempts, sha, wire, key in rows:
                if items and total + size > max_bytes:
                    break
                total += size
                owner_key = key or self._ensure_key(report_id)  # (keyed by _key_queued just before)
                items.append(OutboxItem(seq, report_id, revision, wire, sha, size, attempts + 1, owner_key))
            self._conn.executemany(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE seq = ?",
                [(now, item.seq) for item in items],
            )
            self._conn.executemany(
                "UPDATE reports SET state = 'sending' WHERE id = ? AND revision = ? AND state = 'queued'",
                [(item.report_id, item.revision) for item in items],
            )
        return items

    def _key_queued(self, limit: int) -> None:
        """Gives the next ``limit`` queued reports that have no owner key yet (queued before this version kept
        keys) their key, in a durable transaction of its own: a key the server may have seen must never be lost
        with a damaged -wal, as the claim's own bookkeeping may be."""
        with translate_errors():
            missing = self._conn.execute(
                "SELECT DISTINCT q.report_id FROM "
                "(SELECT report_id FROM outbox WHERE state = 'queued' ORDER BY seq LIMIT ?) AS q "
                "LEFT JOIN report_keys AS k ON k.report_id = q.report_id WHERE k.report_id IS NULL",
                (limit,),
            ).fetchall()
        if missing:
            with transaction(self._conn):
                for (report_id,) in missing:
                    self._ensure_key(str(report_id))

    def record_results(self, results: Sequence[Mapping[str, Any]]) -> None:
        """Apply the server's per-report results in one transaction (the checkpoint after each batch).

        ``created``/``duplicate``/``updated``/``stale`` → ``submitted``; ``conflict``/``rejected`` and any
        status this version does not know → ``needs_attention`` with the server's ``errors`` kept. Results
        for entries that are not ``sending`` (already recorded, or never claimed) are ignored, so replaying
        a checkpoint is harmless.
        """
        now = self._now()
        with transaction(self._conn, durable=False):  # replayed harmlessly: see transaction()
            for result in results:
                report_id = str(result["id"])
                revision = int(result["revision"])
                status = str(result.get("status", ""))
                state = "submitted" if status in SUCCESS_STATUSES else "needs_attention"
                errors = None if state == "submitted" else json.dumps(result.get("errors") or [])
                server_ref = result.get("server_ref")
                server_ref = None if server_ref is None else str(server_ref)
                cursor = self._conn.execute(
                    "UPDATE outbox SET state = ?, server_status = ?, errors = ?, "
                    "server_ref = coalesce(?, server_ref), updated_at = ? "
                    "WHERE report_id = ? AND revision = ? AND state = 'sending'",
                    (state, status, errors, server_ref, now, report_id, revision),
                )
                if cursor.rowcount == 0:
                    continue
                # The list shows the state of the current content; a newer draft stays a draft.
                self._conn.execute(
                    "UPDATE reports SET server_ref = coalesce(?, server_ref), "
                    "state = CASE WHEN revision = ? AND state = 'sending' THEN ? ELSE state END WHERE id = ?",
                    (server_ref, revision, state, report_id),
                )

    def owner_keys(self, report_ids: Sequence[str]) -> dict[str, str]:
        """The owner keys of the listed reports that have one (those submitted at least once): the proof, sent
        with status lookups of anonymous reports, that this profile first sent them."""
        keys: dict[str, str] = {}
        with translate_errors():
            for start in range(0, len(report_ids), 500):
                chunk = list(report_ids[start : start + 500])
                marks = ", ".join("?" for _ in chunk)
                rows = self._conn.execute(
                    f"SELECT report_id, owner_key FROM report_keys WHERE report_id IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
                keys.update((str(r), str(k)) for r, k in rows)
        return keys

    def queued_revisions(self, report_ids: Sequence[str]) -> list[OutboxItem]:
        """The queued (not yet sent) revisions of the listed reports, with their frozen content and owner keys:
        what the sealed outbox seals at Submit, inside the Submit's own transaction."""
        items: list[OutboxItem] = []
        with translate_errors():
            for start in range(0, len(report_ids), 500):
                chunk = list(report_ids[start : start + 500])
                marks = ", ".join("?" for _ in chunk)
                rows = self._conn.execute(
                    "SELECT o.seq, o.report_id, o.revision, o.size_bytes, o.attempts, rr.sha256, rr.wire, "  # noqa: S608
                    "k.owner_key FROM outbox AS o JOIN report_revisions AS rr "
                    "ON rr.report_id = o.report_id AND rr.revision = o.revision "
                    "LEFT JOIN report_keys AS k ON k.report_id = o.report_id "
                    f"WHERE o.state = 'queued' AND o.report_id IN ({marks}) ORDER BY o.seq",
                    chunk,
                ).fetchall()
                items.extend(
                    OutboxItem(seq, rid, rev, wire, sha, size, attempts, key)
                    for seq, rid, rev, size, attempts, sha, wire, key in rows
                )
        return items

    def revision_states(self, pairs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """The outbox state of each (report id, revision) that has an outbox entry."""
        states: dict[tuple[str, int], str] = {}
        with translate_errors():
            for report_id, revision in pairs:
                row = self._conn.execute(
                    "SELECT state FROM outbox WHERE report_id = ? AND revision = ?", (report_id, revision)
                ).fetchone()
                if row is not None:
                    states[(report_id, revision)] = str(row[0])
        return states

    def ensure_owner_keys(self, report_ids: Sequence[str]) -> None:
        """Gives each existing report its owner key in a commit of its own, before the Submit that seals it: a
        Submit killed after its sealed copy reached the spool must not lose the key that copy carries (the PSO
        would refuse the report's next revision from this profile as not its owner's)."""
        with transaction(self._conn):
            for report_id in report_ids:
                if self._conn.execute("SELECT 1 FROM reports WHERE id = ?", (report_id,)).fetchone():
                    self._ensure_key(report_id)

    def renumber_orphan_draft(self, report_id: str, revision: int, server_ref: str | None) -> bool:
        """A sealed copy of ``revision`` may be (or, with ``server_ref``, is) held by the PSO while that revision
        is still this report's draft: a Submit killed between its spool write and its commit. The draft moves
        to ``revision`` + 1, so its Submit reaches the PSO as a newer revision rather than a conflicting copy;
        the case number, when known, is kept. True when the draft was renumbered."""
        with transaction(self._conn):
            row = self._conn.execute(
                "SELECT pk, wire FROM reports WHERE id = ? AND revision = ? AND state = 'draft'",
                (report_id, revision),
            ).fetchone()
            if (
                row is None
                or self._conn.execute(
                    "SELECT 1 FROM report_revisions WHERE report_id = ? AND revision = ?", (report_id, revision)
                ).fetchone()
            ):
                return False
            wire, sha = _encode(json.loads(row[1]), revision + 1)
            self._conn.execute(
                "UPDATE reports SET revision = ?, wire = ?, sha256 = ?, server_ref = COALESCE(?, server_ref), "
                "updated_at = ? WHERE pk = ?",
                (revision + 1, wire, sha, server_ref, self._now(), row[0]),
            )
        return True

    def record_sealed_rejection(self, report_id: str, revision: int, status: str, errors: Sequence[Any]) -> bool:
        """The PSO refused a revision the agent sent sealed: a queued (or sending) entry needs attention with the
        server's reasons, as if the outbox had sent it. False when the entry is no longer waiting."""
        now = self._now()
        with transaction(self._conn):
            cursor = self._conn.execute(
                "UPDATE outbox SET state = 'needs_attention', server_status = ?, errors = ?, updated_at = ? "
                "WHERE report_id = ? AND revision = ? AND state IN ('queued', 'sending')",
                (status, json.dumps(list(errors)), now, report_id, revision),
            )
            if cursor.rowcount == 0:
                return False
            self._conn.execute(
                "UPDATE reports SET state = 'needs_attention' WHERE id = ? AND revision = ? "
                "AND state IN ('queued', 'sending')",
                (report_id, revision),
            )
        return True

    def requeue_sending(self) -> int:
        """After a crash or an aborted upload: every ``sending`` entry goes back to ``queued``; returns how many."""
        with transaction(self._conn):
            count = self._conn.execute(
                "UPDATE outbox SET state = 'queued', updated_at = ? WHERE state = 'sending'", (self._now(),)
            ).rowcount
            self._conn.execute("UPDATE reports SET state = 'queued' WHERE state = 'sending'")
        return int(count)

    # --- internals (run inside the caller's transaction) ---------------------------------------------------

    def _upsert_draft(self, report: Mapping[str, Any]) -> int:
        report = _checked(report)
        report_id: str = report["id"]
        now = self._now()
        row = self._conn.execute(
            "SELECT pk, revision, state, sha256, origin FROM reports WHERE id = ?", (report_id,)
        ).fetchone()
        if row is not None and row[4] == "facility":
            raise StorageError(FACILITY_READ_ONLY)
        if row is None:
            revision = int(report["revision"])
            wire, sha = _encode(report, revision)
            self._conn.execute(
                "INSERT INTO reports (id, revision, state, event_type, unit, discovered_on, categories, "
                "created_at, updated_at, sha256, wire) VALUES (?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?)",
                (report_id, revision, *summary_columns(report), now, now, sha, wire),
            )
            return revision
        pk, stored_revision, state, stored_sha, _origin = row
        if state == "draft":
            revision = stored_revision
            wire, sha = _encode(report, revision)
        else:
            wire, sha = _encode(report, stored_revision)
            if sha == stored_sha:
                return int(stored_revision)  # saved without changes: no new revision to send
            revision = stored_revision + 1
            wire, sha = _encode(report, revision)
        self._conn.execute(
            "UPDATE reports SET revision = ?, state = 'draft', event_type = ?, unit = ?, discovered_on = ?, "
            "categories = ?, updated_at = ?, sha256 = ?, wire = ? WHERE pk = ?",
            (revision, *summary_columns(report), now, sha, wire, pk),
        )
        return int(revision)

    def _freeze(self, report_id: str) -> None:
        row = self._conn.execute("SELECT pk, state, origin FROM reports WHERE id = ?", (report_id,)).fetchone()
        if row is None:
            raise StorageError("A report to submit was not found; refresh the list and try again.")
        pk, state, origin = row
        if origin == "facility":
            raise StorageError(FACILITY_READ_ONLY)
        if state != "draft":
            return
        now = self._now()
        # Copied inside SQLite: the frozen bytes are exactly the stored draft, hash included.
        self._conn.execute(
            "INSERT INTO report_revisions (report_id, revision, sha256, frozen_at, wire) "
            "SELECT id, revision, sha256, ?, wire FROM reports WHERE pk = ?",
            (now, pk),
        )
        self._conn.execute(
            "INSERT INTO outbox (report_id, revision, state, size_bytes, queued_at, updated_at) "
            "SELECT id, revision, 'queued', length(CAST(wire AS BLOB)), ?, ? FROM reports WHERE pk = ?",
            (now, now, pk),
        )
        self._conn.execute("UPDATE reports SET state = 'queued' WHERE pk = ?", (pk,))
        self._ensure_key(report_id)

    def _ensure_key(self, report_id: str) -> str:
        """The report's owner key, generated (256 random bits) the first time the report is submitted."""
        self._conn.execute(
            "INSERT INTO report_keys (report_id, owner_key) VALUES (?, ?) ON CONFLICT (report_id) DO NOTHING",
            (report_id, secrets.token_urlsafe(32)),
        )
        row = self._conn.execute("SELECT owner_key FROM report_keys WHERE report_id = ?", (report_id,)).fetchone()
        return str(row[0])

    def _now(self) -> str:
        return self._clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


SUBMIT_INTERRUPTED = (
    "This draft cannot be deleted: a Submit of it was interrupted and may have reached the PSO; submit it instead."
)

# Read-only copies: a risk manager reviews the facility's reports but never edits, submits or deletes them.
FACILITY_READ_ONLY = (
    "This report belongs to your facility's record: it can be reviewed here, not changed; only its reporter can "
    "send a new version."
)


# --- helpers -----------------------------------------------------------------------------------------------


def checked_report(report: Mapping[str, Any]) -> Mapping[str, Any]:
    """The report when it has the minimal shape storage relies on; ValueError otherwise."""
    return _checked(report)


def encode_report(report: Mapping[str, Any], revision: int) -> tuple[str, str]:
    """The canonical JSON text and SHA-256 storage keeps for ``report`` at ``revision``."""
    return _encode(report, revision)


def _checked(report: Mapping[str, Any]) -> Mapping[str, Any]:
    """The minimal shape storage relies on (full validation belongs to the domain layer)."""
    if not isinstance(report, Mapping):
        raise ValueError("a report must be a JSON object")
    report_id = report.get("id")
    if not isinstance(report_id, str):
        raise ValueError("a report needs an 'id' that is a UUID string")
    try:
        uuid.UUID(report_id)
    except ValueError:
        raise ValueError("a report needs an 'id' that is a UUID string") from None
    revision = report.get("revision")
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
        raise ValueError("a report needs a 'revision' that is a whole number of at least 1")
    categories = report.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(code, str) for code in categories):
        raise ValueError("a report's 'categories' must be a list of codes")
    return report


def _encode(report: Mapping[str, Any], revision: int) -> tuple[str, str]:
    """Canonical JSON text (the same bytes the domain hashes) and its SHA-256, with ``revision`` set."""
    content = dict(report)
    content["revision"] = revision
    try:
        data = canonical_json(content)
    except UnicodeEncodeError:
        raise ValueError("the report contains characters that cannot be stored (unpaired surrogates)") from None
    except (TypeError, ValueError):
        raise ValueError("the report contains values that are not plain JSON data") from None
    return data.decode("utf-8"), hashlib.sha256(data).hexdigest()


def _decode(wire: str) -> dict[str, Any]:
    content = json.loads(wire)
    if not isinstance(content, dict):
        raise StorageError("A stored report could not be read; run an integrity check and contact IT support.")
    return content


def _summary(row: Sequence[Any]) -> ReportSummary:
    return ReportSummary(
        id=row[0],
        revision=row[1],
        state=row[2],
        event_type=row[3],
        categories=tuple(json.loads(row[4])),
        unit=row[5],
        discovered_on=row[6],
        updated_at=row[7],
        server_ref=row[8],
        pso_status=row[9],
        origin=row[10],
        review_state=row[11],
    )


def summary_columns(report: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, str]:
    """event_type, unit, discovered_on and categories (JSON) for the list; never narrative or patient data."""
    location = report.get("location")
    discovery = report.get("discovery")
    unit = location.get("unit") if isinstance(location, Mapping) else None
    discovered = discovery.get("date") if isinstance(discovery, Mapping) else None
    event_type = report.get("event_type")
    return (
        event_type if isinstance(event_type, str) else None,
        unit if isinstance(unit, str) else None,
        discovered if isinstance(discovered, str) else None,
        json.dumps(list(report.get("categories", []))),
    )


def _combined(query: ReportQuery | None, state: str | None, text: str | None) -> ReportQuery:
    """``query`` with the shorthand ``state`` and ``text`` of :meth:`ReportStore.list_summaries` applied."""
    query = query or ReportQuery()
    if state is not None:
        if state not in STATES:
            raise ValueError(f"unknown report state {state!r}")
        query = query.with_changes(states=(state,))
    if text is not None:
        query = query.with_changes(text=text)
    return query
