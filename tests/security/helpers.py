"""Reading what a profile left on disk and in the keyring, for assertions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pso_desktop.security.profiles import KEYRING_SERVICE
from tests.support.memory_keyring import MemoryKeyring


def profile_record(home: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((home / "profiles" / name / "profile.json").read_text())
    return data


def entry_key(home: Path, name: str) -> tuple[str, str]:
    """The (service, username) of the profile's keyring entry, as its profile.json records it."""
    return KEYRING_SERVICE, profile_record(home, name)["keyring_username"]


def entry(backend: MemoryKeyring, home: Path, name: str) -> str | None:
    return backend.entries.get(entry_key(home, name))


def file_state(path: Path) -> tuple[bytes, int]:
    """Content and modification time, to prove a file was not touched."""
    return path.read_bytes(), path.stat().st_mtime_ns
