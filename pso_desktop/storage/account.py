"""The profile's link to its PSO account, and what sync keeps between runs (inside the encrypted database).

Holds the server address and TLS settings, the rotating refresh token, the status-feed cursor, the cached
reference data (units, form versions) and the form catalogues the PSO published, for offline use, and the PSO's latest status of each report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlcipher3.dbapi2 import Connection

from pso_desktop.storage.database import transaction, translate_errors
from pso_desktop.storage.reports import utc_now
from pso_desktop.times import parse_utc_time

_STATUS_KEYS = ("id", "server_ref", "status", "changed_at")


def _sortable_time(value: object) -> str | None:
    """An ISO time as UTC with all six fraction digits, so that text order is time order: the server writes
    "...:00Z" on a whole second and "...:00.500000Z" half a second later, which sort the other way round."""
    moment = parse_utc_time(value)
    return None if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Account:
    server_url: str
    username: str
    device_name: str
    ca_file: str | None = None
    proxy: str | None = None
    refresh_token: str | None = field(default=None, repr=False)  # reprs reach logs and test output
    status_cursor: str | None = None


@dataclass(frozen=True)
class ServerStatus:
    report_id: str
    server_ref: str
    status: str
    note: str | None
    changed_at: str


class AccountStore:
    """Repository over an open database connection; every method is one transaction."""

    def __init__(self, conn: Connection, *, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def get(self) -> Account | None:
        with translate_errors():
            row = self._conn.execute(
                "SELECT server_url, username, device_name, ca_file, proxy, refresh_token, status_cursor "
                "FROM account WHERE id = 1"
            ).fetchone()
        return None if row is None else Account(*row)

    def link(self, account: Account) -> None:
        """Links the profile to ``account`` (replacing any earlier link, its cursor and cached data)."""
        with transaction(self._conn):
            self._conn.execute("DELETE FROM account")
            self._conn.execute(
                "INSERT INTO account (id, server_url, ca_file, proxy, username, device_name, refresh_token, "
                "status_cursor, linked_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account.server_url,
                    account.ca_file,
                    account.proxy,
                    account.username,
                    account.device_name,
                    account.refresh_token,
                    account.status_cursor,
                    self._clock().isoformat(),
                ),
            )

    def device_token(self, server_url: str) -> str | None:
        """The device token ``server_url`` gave this profile at its last sign-in there, if any."""
        with translate_errors():
            row = self._conn.execute(
                "SELECT token FROM known_device WHERE server_url = ?", (server_url,)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_device_token(self, server_url: str, token: str) -> None:
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO known_device (server_url, token) VALUES (?, ?) "
                "ON CONFLICT (server_url) DO UPDATE SET token = excluded.token",
                (server_url, token),
            )

    def set_refresh_token(self, token: str | None) -> None:
        """Stores the newest refresh token (``None`` signs the profile out: nothing can renew access)."""
        with transaction(self._conn):
            self._conn.execute("UPDATE account SET refresh_token = ? WHERE id = 1", (token,))

    def set_status_cursor(self, cursor: str | None) -> None:
        """``None`` reads the status feed from its beginning next time."""
        with transaction(self._conn):
            self._conn.execute("UPDATE account SET status_cursor = ? WHERE id = 1", (cursor,))

    def save_reference(self, reference: Mapping[str, Any]) -> None:
        with transaction(self._conn, durable=False):  # fetched again at the next sync if a damaged -wal loses it
            self._conn.execute("UPDATE account SET reference = ? WHERE id = 1", (json.dumps(reference),))

    def reference(self) -> dict[str, Any] | None:
        """The reference data (units, form versions) last fetched from the server, for offline use."""
        with translate_errors():
            row = self._conn.execute("SELECT reference FROM account WHERE id = 1").fetchone()
        if row is None or row[0] is None:
            return None
        value = json.loads(row[0])
        return value if isinstance(value, dict) else None

    def save_catalogue(self, version: str, body: str, content_hash: str) -> None:
        """Keeps a catalogue the PSO published (its canonical JSON, checked against ``content_hash``)."""
        with transaction(self._conn, durable=False):  # fetched again at the next sync if a damaged -wal loses it
            self._conn.execute(
                "INSERT INTO catalogues (version, body, content_hash) VALUES (?, ?, ?) "
                "ON CONFLICT (version) DO UPDATE SET body = excluded.body, content_hash = excluded.content_hash",
                (version, body, content_hash),
            )

    def catalogue_hashes(self) -> dict[str, str]:
        """The SHA-256 of each catalogue kept, by version."""
        with translate_errors():
            rows = self._conn.execute("SELECT version, content_hash FROM catalogues").fetchall()
        return {str(v): str(h) for v, h in rows}

    def catalogues(self) -> list[tuple[str, str]]:
        """(version, JSON) of every catalogue kept, for offline use."""
        with translate_errors():
            rows = self._conn.execute("SELECT version, body FROM catalogues ORDER BY version").fetchall()
        return [(str(v), str(b)) for v, b in rows]

    def anonymous_to_follow(self) -> list[str]:
        """Ids of this profile's anonymous reports the server holds and has not closed, oldest first. The status
        feed cannot attribute them to the account (the server stores no link), so sync looks them up by id."""
        with translate_errors():
            rows = self._conn.execute(
                "SELECT r.id FROM reports AS r LEFT JOIN server_status AS s ON s.report_id = r.id "
                "WHERE r.origin = 'mine' AND r.server_ref IS NOT NULL AND json_extract(r.wire, '$.reporter.anonymous') = 1 "
                "AND coalesce(s.status, '') <> 'closed' ORDER BY r.pk"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def record_statuses(self, changes: Sequence[Mapping[str, Any]], cursor: str | None) -> int:
        """Applies status changes (a page of the feed, or looked-up statuses) and advances the feed cursor when
        one is given, in one transaction; returns how many reports' statuses changed. A replay is harmless: an
        older change never overwrites a newer one, and the same status again changes nothing."""
        changed = 0
        with transaction(self._conn, durable=False):  # a lost page of the feed is fetched again (cursor with it)
            for change in changes:
                changed_at = _sortable_time(change.get("changed_at"))
                if changed_at is None or not all(isinstance(change.get(key), str) for key in _STATUS_KEYS):
                    continue  # not a status change this version understands: skipped, never half-applied
                cursor_row = self._conn.execute(
                    "INSERT INTO server_status (report_id, server_ref, status, note, changed_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (report_id) DO UPDATE SET server_ref = excluded.server_ref, "
                    "status = excluded.status, note = excluded.note, changed_at = excluded.changed_at "
                    "WHERE excluded.changed_at >= server_status.changed_at AND (excluded.status, "
                    "coalesce(excluded.note, '')) IS NOT (server_status.status, coalesce(server_status.note, ''))",
                    (
                        str(change["id"]),
                        str(change["server_ref"]),
                        str(change["status"]),
                        change.get("note"),
                        changed_at,
                    ),
                )
                changed += max(0, cursor_row.rowcount)
            if cursor is not None:
                self._conn.execute("UPDATE account SET status_cursor = ? WHERE id = 1", (cursor,))
        return changed

    def server_status(self, report_id: str) -> ServerStatus | None:
        with translate_errors():
            row = self._conn.execute(
                "SELECT report_id, server_ref, status, note, changed_at FROM server_status WHERE report_id = ?",
                (report_id,),
            ).fetchone()
        return None if row is None else ServerStatus(*row)

    def status_counts(self) -> dict[str, int]:
        with translate_errors():
            rows = self._conn.execute("SELECT status, count(*) FROM server_status GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}
