"""The encrypted database as a test sees it from outside: the bytes of its files, and a bare SQLCipher connection."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlcipher3.dbapi2 import Connection


def file_set_digest(db_path: Path) -> dict[str, str | None]:
    """SHA-256 of the database file and of its -wal and -shm (None when absent)."""
    digests: dict[str, str | None] = {}
    for suffix in ("", "-wal", "-shm"):
        candidate = db_path.with_name(db_path.name + suffix)
        digests[suffix or "db"] = (
            hashlib.sha256(candidate.read_bytes()).hexdigest() if candidate.exists() else None
        )
    return digests


def raw_connection(db_path: Path, key: bytes) -> Connection:
    """A bare SQLCipher connection that bypasses open_database (to play the attacker or an old app version)."""
    import sqlcipher3.dbapi2 as sqlcipher

    from pso_desktop.storage.database import apply_cipher_settings

    conn = sqlcipher.connect(str(db_path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    apply_cipher_settings(conn)
    return conn
