"""Fixtures for storage tests: a real SQLCipher database per test, realistic fictitious reports."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlcipher3.dbapi2 import Connection

from pso_desktop.domain.samples import sample_report
from pso_desktop.storage.audit import AuditLog
from pso_desktop.storage.database import open_database
from pso_desktop.storage.reports import ReportStore


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def db_path(pso_home: Path) -> Path:
    return pso_home / "profiles" / "nurse" / "reports.db"


@pytest.fixture
def conn(db_path: Path, key: bytes) -> Iterator[Connection]:
    connection = open_database(db_path, key, create=True)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def store(conn: Connection) -> ReportStore:
    return ReportStore(conn)


@pytest.fixture
def audit(conn: Connection) -> AuditLog:
    return AuditLog(conn)


@pytest.fixture
def reports() -> list[dict[str, Any]]:
    """Twenty realistic reports (fixed seed, so failures reproduce)."""
    rng = random.Random(20261127)
    return [sample_report(rng, index) for index in range(20)]
