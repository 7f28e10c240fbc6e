"""Database URLs and the dialect shim (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pso_server.errors import DatabaseURLInvalid
from pso_server.store import POSTGRESQL, SQLITE, Database, format_ref, parse_ref


@pytest.mark.parametrize("form", ["{p}", "sqlite:///{p}"])
def test_sqlite_paths_and_urls_open_the_same_file(tmp_path: Path, form: str) -> None:
    file = tmp_path / "server.db"
    db = Database.open(form.format(p=file))
    try:
        assert db.dialect is SQLITE
        with db.reader() as tx:
            assert tx.one("PRAGMA journal_mode") == ("wal",)
            assert tx.one("PRAGMA synchronous") == (2,)  # FULL
            assert tx.one("PRAGMA foreign_keys") == (1,)
    finally:
        db.close()
    assert file.is_file()


@pytest.mark.parametrize("url", ["sqlite://host/x.db", "sqlite://", "mysql://db/pso", "/no/such/folder/x.db"])
def test_unusable_urls_are_refused_plainly(url: str) -> None:
    with pytest.raises(DatabaseURLInvalid) as refused:
        Database(url)
    assert str(refused.value).endswith(".")


def test_postgresql_urls_select_the_postgresql_dialect() -> None:
    assert Database("postgresql://u:p@127.0.0.1:1/x").dialect is POSTGRESQL
    assert Database("postgres://u:p@127.0.0.1:1/x").dialect is POSTGRESQL


def test_placeholders_are_rewritten_only_for_postgresql() -> None:
    assert SQLITE.sql("SELECT ? , ?") == "SELECT ? , ?"
    assert POSTGRESQL.sql("SELECT ? , ?") == "SELECT %s , %s"


def test_case_references_round_trip() -> None:
    assert format_ref(2026, 123) == "PSO-2026-000123"
    assert parse_ref("pso-2026-000123 ") == 123
    assert parse_ref("PSO-2026-x") is None and parse_ref("7c4b7a51-3b7e-4f4e-9a43-2d7e51a0b0a1") is None
