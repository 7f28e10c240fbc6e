"""Saved views of the report list: a name and a :class:`ReportQuery` (filters, sort, search text).

A search can be PHI (a patient's name), so views are kept here, inside the encrypted profile, never in the
settings file; they are not audited (the audit log never holds a search). Storage worker thread only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlcipher3.dbapi2 import Connection

from pso_desktop.storage.database import transaction, translate_errors
from pso_desktop.storage.report_query import ReportQuery
from pso_desktop.storage.reports import utc_now

MAX_NAME = 80


class SavedViews:
    """The profile's saved views, by name."""

    def __init__(self, conn: Connection, *, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def names(self) -> list[str]:
        """Every saved view's name, sorted case-insensitively."""
        with translate_errors():
            rows = self._conn.execute("SELECT name FROM saved_views ORDER BY name COLLATE NOCASE").fetchall()
        return [str(row[0]) for row in rows]

    def get(self, name: str) -> ReportQuery | None:
        """The view called ``name``, or None (also for a view a newer app saved in a form this one cannot read)."""
        with translate_errors():
            row = self._conn.execute("SELECT query FROM saved_views WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        try:
            return ReportQuery.from_json(str(row[0]))
        except (ValueError, TypeError):
            return None

    def save(self, name: str, query: ReportQuery) -> None:
        """Saves ``query`` as ``name`` (replacing a view of that name). ValueError for an empty or long name."""
        name = name.strip()
        if not name or len(name) > MAX_NAME or any(ch in name for ch in "\r\n"):
            raise ValueError(f"a view's name is one line of 1 to {MAX_NAME} characters")
        at = self._clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO saved_views (name, query, saved_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET query = excluded.query, saved_at = excluded.saved_at",
                (name, query.to_json(), at),
            )

    def delete(self, name: str) -> None:
        with transaction(self._conn):
            self._conn.execute("DELETE FROM saved_views WHERE name = ?", (name,))
