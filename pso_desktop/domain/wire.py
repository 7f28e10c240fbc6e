"""Canonical bytes of a wire-form report: the basis of content hashes (dedupe, conflict detection)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(wire: Mapping[str, Any]) -> bytes:
    """Stable UTF-8 JSON: sorted keys, no spaces, non-ASCII kept as is (so equal reports give equal bytes)."""
    return json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_hash(wire: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of a wire-form report."""
    return hashlib.sha256(canonical_json(wire)).hexdigest()
