"""What the profile remembers for the next new report (the unit, the reporter), inside the encrypted database:
a unit name with a date can identify a patient, so none of it goes to the settings file. Storage worker only.
"""

from __future__ import annotations

import json
from typing import Any

from sqlcipher3.dbapi2 import Connection

from pso_desktop.storage.database import transaction, translate_errors


class Remembered:
    """JSON values by key."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, key: str) -> Any:
        with translate_errors():
            row = self._conn.execute("SELECT value FROM remembered WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(str(row[0]))
        except ValueError:
            return None

    def put(self, key: str, value: Any) -> None:
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO remembered (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
