"""A risk manager's copies of the facility's reports, and the facility's review records (issue 12).

Facility reports are rows of ``reports`` marked ``origin = 'facility'``: the list, its filters, the charts and
the exports see them like the profile's own, but :class:`~pso_desktop.storage.reports.ReportStore` refuses to
edit, submit or delete them, and :meth:`FacilityStore.purge` removes every one of them (and every review record)
when the account is no longer a risk manager. The profile's own reports never become facility copies.

Review records are append-only. A field change (``state``, ``assignee``, ``harm``) is made on the version of
that field its author last saw; the server accepts it, or keeps it as a *conflict* beside the accepted value
when someone else changed the field meanwhile (see pso_server.store.record_review). A record made here waits,
with no ``seq``, until the next sync sends it. :meth:`FacilityStore.review` derives what a person sees: each
field's value, the unsent change, and the conflicting values still to resolve; the notes and the actions.

Runs on the thread that owns the connection; every public method is one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlcipher3.dbapi2 import Connection

from pso_desktop.storage.database import transaction, translate_errors
from pso_desktop.storage.reports import checked_report, encode_report, summary_columns, utc_now
from pso_desktop.times import parse_utc_time

REVIEW_STATES: tuple[str, ...] = ("new", "in_review", "waiting_for_information", "closed")
REVIEW_FIELDS: tuple[str, ...] = ("state", "assignee", "harm")
_OUTCOMES = ("accepted", "conflict", "appended")


def _stamp(value: object) -> str | None:
    moment = parse_utc_time(value)
    return None if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Conflict:
    """A value someone set on an older version of the field than the one accepted: still to be resolved."""

    value: Any
    author: str
    created_at: str


@dataclass(frozen=True)
class FieldReview:
    value: Any  # the accepted value (None: never set)
    version: int  # the field's version as last heard from the server
    pending: bool  # a change made here waits to be sent (``value`` is then that change)
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True)
class Note:
    text: str
    author: str
    created_at: str
    pending: bool


@dataclass(frozen=True)
class Action:
    text: str
    owner: str | None
    due: str | None
    author: str
    created_at: str
    pending: bool


@dataclass(frozen=True)
class Review:
    report_id: str
    fields: dict[str, FieldReview]
    notes: tuple[Note, ...]
    actions: tuple[Action, ...]

    @property
    def has_conflict(self) -> bool:
        return any(f.conflicts for f in self.fields.values())


class FacilityStore:
    """Repository over an open database connection."""

    def __init__(self, conn: Connection, *, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    # --- the facility's reports ----------------------------------------------------------------------------

    def cursors(self) -> tuple[str | None, str | None]:
        """(facility reports cursor, review records cursor)."""
        with translate_errors():
            row = self._conn.execute("SELECT facility_cursor, review_cursor FROM account WHERE id = 1").fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def save_reports(self, page: Sequence[Mapping[str, Any]], cursor: str | None) -> int:
        """Keeps a page of the facility feed (each report at its newest revision) and its cursor, in one
        transaction; returns how many copies were added or updated. The profile's own reports are left as they
        are; an item of the wrong shape is skipped, never half-stored."""
        stored = 0
        with transaction(self._conn, durable=False):  # a lost page is fetched again, its cursor with it
            for item in page:
                prepared = _prepared(item)
                if prepared is None:
                    continue
                content, revision, server_ref, received = prepared
                wire, sha = encode_report(content, revision)
                cursor_row = self._conn.execute(
                    "INSERT INTO reports (id, revision, state, event_type, unit, discovered_on, categories, "
                    "server_ref, created_at, updated_at, sha256, wire, origin, review_state) "
                    "VALUES (?, ?, 'submitted', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'facility', 'new') "
                    "ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, event_type = excluded.event_type, "
                    "unit = excluded.unit, discovered_on = excluded.discovered_on, categories = excluded.categories, "
                    "server_ref = excluded.server_ref, updated_at = excluded.updated_at, sha256 = excluded.sha256, "
                    "wire = excluded.wire WHERE reports.origin = 'facility' AND excluded.revision > reports.revision",
                    (
                        content["id"],
                        revision,
                        *summary_columns(content),
                        server_ref,
                        received,
                        received,
                        sha,
                        wire,
                    ),
                )
                stored += max(0, cursor_row.rowcount)
            if cursor is not None:
                self._conn.execute("UPDATE account SET facility_cursor = ? WHERE id = 1", (cursor,))
            self._refresh_states(str(item.get("id")) for item in page)
        return stored

    def purge(self) -> int:
        """Removes every copy of the facility's reports, every review record and both cursors (the account is
        no longer a risk manager, or its session ended for good); returns how many reports went. The profile's
        own reports stay (``secure_delete`` zeroes the freed pages)."""
        if not self._holds_anything():
            return 0  # a reporter's profile, refused at every sync: nothing to write
        with transaction(self._conn):
            gone = self._conn.execute("DELETE FROM reports WHERE origin = 'facility'").rowcount
            # Only the profile's own reports can still have one (the copies are gone): few rows, read by id.
            self._conn.execute(
                "UPDATE reports SET review_state = NULL WHERE id IN (SELECT report_id FROM review_records) "
                "AND review_state IS NOT NULL"
            )
            self._conn.execute("DELETE FROM review_records")
            self._conn.execute("DELETE FROM review_closed")
            # Statuses of the facility's reports came with the status feed; only the profile's own stay.
            self._conn.execute("DELETE FROM server_status WHERE report_id NOT IN (SELECT id FROM reports)")
            self._conn.execute("UPDATE account SET facility_cursor = NULL, review_cursor = NULL WHERE id = 1")
        return int(gone)

    def _holds_anything(self) -> bool:
        with translate_errors():
            held = self._conn.execute(
                "SELECT EXISTS (SELECT 1 FROM reports INDEXED BY reports_by_origin WHERE origin = 'facility') "
                "OR EXISTS (SELECT 1 FROM review_records) "
                "OR EXISTS (SELECT 1 FROM account WHERE facility_cursor IS NOT NULL OR review_cursor IS NOT NULL)"
            ).fetchone()
        return bool(held[0])

    def forget_closed(self, keep_days: float) -> int:
        """IT's retention: removes the facility's reports whose review was closed more than ``keep_days`` ago,
        with their review records; returns how many went."""
        limit = (self._clock() - dt.timedelta(days=keep_days)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with transaction(self._conn):
            ids = [
                str(row[0])
                for row in self._conn.execute(
                    "SELECT c.report_id FROM review_closed AS c JOIN reports AS r ON r.id = c.report_id "
                    "WHERE r.origin = 'facility' AND c.closed_at < ?",
                    (limit,),
                ).fetchall()
            ]
            for report_id in ids:
                self._conn.execute("DELETE FROM reports WHERE id = ? AND origin = 'facility'", (report_id,))
                self._conn.execute("DELETE FROM review_records WHERE report_id = ?", (report_id,))
                self._conn.execute("DELETE FROM review_closed WHERE report_id = ?", (report_id,))
                self._conn.execute("DELETE FROM server_status WHERE report_id = ?", (report_id,))
        return len(ids)

    def is_facility_copy(self, report_id: str) -> bool:
        with translate_errors():
            row = self._conn.execute("SELECT origin FROM reports WHERE id = ?", (report_id,)).fetchone()
        return row is not None and row[0] == "facility"

    def count(self) -> int:
        with translate_errors():
            row = self._conn.execute("SELECT count(*) FROM reports WHERE origin = 'facility'").fetchone()
        return int(row[0])

    # --- review records ------------------------------------------------------------------------------------

    def change_field(self, report_id: str, field: str, value: Any, author: str) -> None:
        """Records a change of ``field`` made here, on the version last heard from the server (a change not
        sent yet is replaced: only the newest intent is sent, on the version its first draft saw)."""
        if field not in REVIEW_FIELDS:
            raise ValueError(f"unknown review field {field!r}")
        if field == "state" and value not in REVIEW_STATES:
            raise ValueError(f"unknown review state {value!r}")
        if field != "state" and value is not None and not isinstance(value, str):
            raise ValueError("an assignee or a harm level is a text")
        text = json.dumps(value if value != "" else None, ensure_ascii=False)
        with transaction(self._conn):
            self._require_report(report_id)
            pending = self._conn.execute(
                "SELECT event_id FROM review_records WHERE report_id = ? AND kind = 'field' AND field = ? "
                "AND seq IS NULL",
                (report_id, field),
            ).fetchone()
            if pending is not None:
                self._conn.execute("UPDATE review_records SET value = ? WHERE event_id = ?", (text, pending[0]))
            else:
                base = self._version(report_id, field)
                self._insert_local(report_id, "field", field, text, base, author)
            self._refresh_states([report_id])

    def add_note(self, report_id: str, text: str, author: str) -> None:
        if not text.strip():
            raise ValueError("a note needs some text")
        with transaction(self._conn):
            self._require_report(report_id)
            self._insert_local(
                report_id, "note", None, json.dumps({"text": text}, ensure_ascii=False), None, author
            )

    def add_action(self, report_id: str, text: str, owner: str | None, due: dt.date | None, author: str) -> None:
        if not text.strip():
            raise ValueError("an action needs some text")
        value = {"text": text, "owner": owner or None, "due": due.isoformat() if due else None}
        with transaction(self._conn):
            self._require_report(report_id)
            self._insert_local(report_id, "action", None, json.dumps(value, ensure_ascii=False), None, author)

    def unsent_count(self) -> int:
        """How many review records made here wait to be sent (the window's sending indicator counts them)."""
        with translate_errors():
            row = self._conn.execute("SELECT count(*) FROM review_records WHERE seq IS NULL").fetchone()
        return int(row[0])

    def unsent(self, limit: int = 500) -> list[dict[str, Any]]:
        """Review records made here and not yet sent, oldest first, in the shape the server takes."""
        with translate_errors():
            rows = self._conn.execute(
                "SELECT event_id, report_id, kind, field, value, base_version FROM review_records "
                "WHERE seq IS NULL ORDER BY rowid LIMIT ?",
                (limit,),
            ).fetchall()
        records = []
        for event_id, report_id, kind, field, value, base in rows:
            record: dict[str, Any] = {
                "event_id": event_id,
                "report_id": report_id,
                "kind": kind,
                "value": json.loads(value),
            }
            if kind == "field":
                record["field"] = field
                record["base_version"] = base
            records.append(record)
        return records

    def record_sent(self, results: Sequence[Mapping[str, Any]]) -> int:
        """Applies the server's answer to sent records; a rejected one is dropped (its report is not the
        facility's any more); returns how many were rejected."""
        rejected = 0
        touched: list[str] = []
        with transaction(self._conn):
            for result in results:
                record = result.get("record")
                event_id = str(result.get("event_id"))
                if result.get("outcome") == "rejected":
                    row = self._conn.execute(
                        "DELETE FROM review_records WHERE event_id = ? AND seq IS NULL RETURNING report_id",
                        (event_id,),
                    ).fetchone()
                    if row is not None:
                        rejected += 1
                        touched.append(str(row[0]))
                elif isinstance(record, Mapping):
                    touched.extend(self._store_records([record]))
            self._refresh_states(touched)
        return rejected

    def save_review_page(self, records: Sequence[Mapping[str, Any]], cursor: str | None) -> int:
        """Keeps a page of the facility's review feed and its cursor in one transaction; returns how many
        records were new here. A replay changes nothing."""
        with transaction(self._conn, durable=False):  # a lost page is fetched again, its cursor with it
            touched = self._store_records(records)
            if cursor is not None:
                self._conn.execute("UPDATE account SET review_cursor = ? WHERE id = 1", (cursor,))
            self._refresh_states(touched)
        return len(touched)

    def review(self, report_id: str) -> Review:
        """What the review panel shows for one report."""
        with translate_errors():
            rows = self._conn.execute(
                "SELECT kind, field, value, version, outcome, author, created_at, seq FROM review_records "
                "WHERE report_id = ? ORDER BY seq IS NULL, seq, rowid",
                (report_id,),
            ).fetchall()
        return _derive(report_id, rows)

    # --- internals -----------------------------------------------------------------------------------------

    def _require_report(self, report_id: str) -> None:
        row = self._conn.execute("SELECT server_ref FROM reports WHERE id = ?", (report_id,)).fetchone()
        if row is None or row[0] is None:
            raise ValueError("only a report the PSO server holds can be reviewed")

    def _version(self, report_id: str, field: str) -> int:
        row = self._conn.execute(
            "SELECT max(version) FROM review_records WHERE report_id = ? AND kind = 'field' AND field = ?",
            (report_id, field),
        ).fetchone()
        return int(row[0] or 0)

    def _insert_local(
        self, report_id: str, kind: str, field: str | None, value: str, base: int | None, author: str
    ) -> None:
        self._conn.execute(
            "INSERT INTO review_records (event_id, report_id, kind, field, value, base_version, author, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (str(uuid.uuid4()), report_id, kind, field, value, base, author, self._now()),
        )

    def _store_records(self, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Upserts records as the server holds them; returns the report ids of those new or changed here."""
        touched = []
        for record in records:
            seq, kind, outcome = record.get("seq"), record.get("kind"), record.get("outcome")
            event_id, report_id = record.get("event_id"), record.get("report_id")
            created = _stamp(record.get("created_at"))
            if (
                not isinstance(event_id, str)
                or not isinstance(report_id, str)
                or kind not in ("field", "note", "action")
                or outcome not in _OUTCOMES
                or created is None
                or not isinstance(record.get("author"), str)
            ):
                continue  # not a record this version understands: skipped, never half-applied
            version = record.get("version")
            cursor = self._conn.execute(
                "INSERT INTO review_records (event_id, seq, report_id, kind, field, value, base_version, version, "
                "outcome, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (event_id) DO UPDATE SET seq = excluded.seq, value = excluded.value, "
                "base_version = excluded.base_version, version = excluded.version, outcome = excluded.outcome, "
                "created_at = excluded.created_at WHERE review_records.seq IS NULL",
                (
                    event_id,
                    seq if isinstance(seq, int) else None,
                    report_id,
                    kind,
                    record.get("field"),
                    json.dumps(record.get("value"), ensure_ascii=False),
                    record.get("base_version"),
                    version if isinstance(version, int) else None,
                    outcome,
                    record["author"],
                    created,
                ),
            )
            if cursor.rowcount > 0:
                touched.append(report_id)
        return touched

    def _refresh_states(self, report_ids: Iterable[str]) -> None:
        """Keeps ``reports.review_state`` (what the list filters on) and the closing time in step."""
        for report_id in set(report_ids):
            fields = self.review(report_id).fields
            state = fields["state"].value
            self._conn.execute(
                "UPDATE reports SET review_state = coalesce(?, CASE WHEN origin = 'facility' THEN 'new' END) "
                "WHERE id = ?",
                (state, report_id),
            )
            if state == "closed":
                self._conn.execute(
                    "INSERT INTO review_closed (report_id, closed_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (report_id, self._now()),
                )
            else:
                self._conn.execute("DELETE FROM review_closed WHERE report_id = ?", (report_id,))

    def _now(self) -> str:
        return self._clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _prepared(item: Mapping[str, Any]) -> tuple[dict[str, Any], int, str, str] | None:
    """(content, revision, case number, arrival time) of one feed item, or None when it is not of the shape."""
    content, revision, server_ref = item.get("report"), item.get("revision"), item.get("server_ref")
    received = _stamp(item.get("received_at"))
    if not isinstance(content, dict) or not isinstance(server_ref, str) or received is None:
        return None
    if isinstance(revision, bool) or not isinstance(revision, int) or content.get("id") != item.get("id"):
        return None
    try:
        checked = dict(checked_report({**content, "revision": revision}))
    except ValueError:
        return None
    return checked, revision, server_ref, received


def _derive(report_id: str, rows: Sequence[Sequence[Any]]) -> Review:
    values: dict[str, Any] = dict.fromkeys(REVIEW_FIELDS)
    versions = dict.fromkeys(REVIEW_FIELDS, 0)
    pending: dict[str, bool] = dict.fromkeys(REVIEW_FIELDS, False)
    conflicts: dict[str, list[Conflict]] = {f: [] for f in REVIEW_FIELDS}
    notes: list[Note] = []
    actions: list[Action] = []
    for kind, field, value, version, outcome, author, created_at, seq in rows:
        content = json.loads(value) if value is not None else None
        sent = seq is not None
        if kind == "field" and field in values:
            if not sent:
                values[field], pending[field] = content, True
            elif outcome == "accepted":
                values[field] = content
                conflicts[field] = []  # its author had seen every earlier record of the field
            else:
                conflicts[field].append(Conflict(content, str(author), str(created_at)))
            if isinstance(version, int):
                versions[field] = max(versions[field], version)
        elif kind == "note" and isinstance(content, dict):
            notes.append(Note(str(content.get("text", "")), str(author), str(created_at), not sent))
        elif kind == "action" and isinstance(content, dict):
            actions.append(
                Action(
                    str(content.get("text", "")),
                    content.get("owner"),
                    content.get("due"),
                    str(author),
                    str(created_at),
                    not sent,
                )
            )
    fields = {f: FieldReview(values[f], versions[f], pending[f], tuple(conflicts[f])) for f in REVIEW_FIELDS}
    return Review(report_id, fields, tuple(notes), tuple(actions))
