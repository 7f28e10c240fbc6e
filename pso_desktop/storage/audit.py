"""The audit log: append-only (triggers refuse UPDATE and DELETE) and hash-chained.

Each row's ``hash`` is ``sha256(prev_hash + canonical row)``, where the canonical row is the JSON array
``[seq, at, actor, action, report_id, detail]``; the first row's ``prev_hash`` is 64 zeros. Editing, removing
or reordering rows breaks the chain, and ``sqlite_sequence`` (AUTOINCREMENT's high-water mark) reveals rows
cut off the end. The log names who did what to which report id, never content: no PHI in ``detail``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlcipher3.dbapi2 import Connection

from pso_desktop.storage.database import transaction, translate_errors
from pso_desktop.storage.reports import utc_now

GENESIS_HASH = "0" * 64
ACTIONS = frozenset(
    {
        "profile_create",
        "sign_in",
        "sign_out",
        "unlock",
        "unlock_failed",
        "lock",
        "create",
        "update",
        "submit",
        "delete",
        "export",
        "print",
        "import",
        "sync",
        "key_change",
        "backup",
        "recover",
        "review",
        "view",
    }
)
_MAX_DETAIL = 200
# Detail is for counts, formats and outcomes ("12 reports", "format=csv"): a short single line.
_DETAIL = re.compile(r"^[^\r\n]*$")


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    report_id: str | None
    detail: str
    prev_hash: str
    hash: str


class AuditLog:
    """Append and verify audit entries on an open database connection (storage worker thread only)."""

    def __init__(self, conn: Connection, *, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def append(self, action: str, *, actor: str, report_id: str | None = None, detail: str = "") -> None:
        """Add one entry, chained to the previous one, in one transaction (a savepoint inside the caller's).

        ``action`` must be one of :data:`ACTIONS`; ``detail`` a short single line with no PHI (counts,
        formats, outcomes). Violations raise ``ValueError``: they are programming errors.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        if len(detail) > _MAX_DETAIL or not _DETAIL.match(detail):
            raise ValueError("audit detail must be one short line (counts or outcomes, never report content)")
        if not actor or len(actor) > 128:
            raise ValueError("audit actor must be a non-empty name of at most 128 characters")
        at = self._clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with transaction(self._conn):
            last = self._conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            high = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
            # The hash covers seq, so seq is chosen before the insert (the write lock is held, and rows can
            # never be updated afterwards): the value AUTOINCREMENT would have picked.
            seq = max(0 if last is None else int(last[0]), 0 if high is None else int(high[0])) + 1
            prev_hash = GENESIS_HASH if last is None else str(last[1])
            row_hash = _row_hash(prev_hash, seq, at, actor, action, report_id, detail)
            self._conn.execute(
                "INSERT INTO audit_log (seq, at, actor, action, report_id, detail, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, at, actor, action, report_id, detail, prev_hash, row_hash),
            )

    def verify(self) -> bool:
        """True when every row's hash matches its content and its predecessor, and no row is missing."""
        expected_prev = GENESIS_HASH
        last_seq = 0
        for entry in self.entries():
            if entry.seq <= last_seq or entry.prev_hash != expected_prev:
                return False
            if entry.hash != _row_hash(
                entry.prev_hash, entry.seq, entry.at, entry.actor, entry.action, entry.report_id, entry.detail
            ):
                return False
            expected_prev = entry.hash
            last_seq = entry.seq
        with translate_errors():
            row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
        high_water = 0 if row is None else int(row[0])
        return high_water == last_seq

    def entries(self) -> list[AuditEntry]:
        """All entries, oldest first."""
        with translate_errors():
            rows = self._conn.execute(
                "SELECT seq, at, actor, action, report_id, detail, prev_hash, hash FROM audit_log ORDER BY seq"
            ).fetchall()
        return [AuditEntry(*row) for row in rows]


def _row_hash(
    prev_hash: str, seq: int, at: str, actor: str, action: str, report_id: str | None, detail: str
) -> str:
    canonical = json.dumps([seq, at, actor, action, report_id, detail], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()
