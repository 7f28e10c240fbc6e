"""Tampering: every single-byte change to a closed database is detected, and the file stays as it was."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.storage import database
from pso_desktop.storage.audit import AuditLog
from pso_desktop.storage.database import check_integrity, open_database
from pso_desktop.storage.errors import DatabaseTamperedError, WrongKeyError
from pso_desktop.storage.reports import ReportStore
from tests.support.database import file_set_digest

RUNS = 100


@pytest.fixture
def small_database(db_path: Path, key: bytes, reports: list[dict[str, Any]]) -> Path:
    """A closed database of a few dozen pages holding drafts, submitted reports and audit entries."""
    conn = open_database(db_path, key, create=True)
    store = ReportStore(conn)
    store.add_reports(reports[:3], submit=True)
    store.save_draft(reports[3])
    AuditLog(conn).append("submit", actor="nurse", detail="3 reports")
    conn.close()
    assert not db_path.with_name(db_path.name + "-wal").exists()
    return db_path


def _flip_one_byte(source: Path, target: Path, rng: random.Random) -> int:
    data = bytearray(source.read_bytes())
    offset = rng.randrange(len(data))
    data[offset] ^= rng.randrange(1, 256)
    target.write_bytes(bytes(data))
    return offset


def test_every_single_byte_change_is_detected(small_database: Path, key: bytes, tmp_path: Path) -> None:
    rng = random.Random(4242)
    pages = small_database.stat().st_size // 4096
    assert 4 <= pages <= 200, pages
    outcomes: dict[str, int] = {}
    for run in range(RUNS):
        copy = tmp_path / f"tampered-{run}" / "reports.db"
        copy.parent.mkdir()
        offset = _flip_one_byte(small_database, copy, rng)
        before = file_set_digest(copy)
        with pytest.raises((WrongKeyError, DatabaseTamperedError)) as raised:
            open_database(copy, key).close()
        after = file_set_digest(copy)
        assert after == before, f"run {run}: byte {offset} flipped, the files changed"
        assert after["-wal"] is None and after["-shm"] is None, f"run {run}: files left beside the database"
        outcomes[type(raised.value).__name__] = outcomes.get(type(raised.value).__name__, 0) + 1
    # Page 1 damage looks like a wrong key; damage anywhere else is reported as tampering.
    assert outcomes.get("DatabaseTamperedError", 0) > 0, outcomes


def test_with_a_proven_key_every_single_byte_change_is_said_as_damage(
    small_database: Path, key: bytes, tmp_path: Path
) -> None:
    """The app's key comes out of its AEAD-wrapped keyring entry, so it is right: page 1 damage too is damage."""
    rng = random.Random(4343)
    for run in range(RUNS // 4):
        copy = tmp_path / f"tampered-{run}" / "reports.db"
        copy.parent.mkdir()
        offset = _flip_one_byte(small_database, copy, rng if run else random.Random(1))
        if run == 0:  # one run on page 1 for certain
            data = bytearray(small_database.read_bytes())
            data[100] ^= 0x20
            copy.write_bytes(bytes(data))
            offset = 100
        before = file_set_digest(copy)
        with pytest.raises(DatabaseTamperedError) as raised:
            open_database(copy, key, key_proven=True).close()
        assert "damaged" in str(raised.value), f"run {run}: byte {offset}"
        assert file_set_digest(copy) == before, f"run {run}: byte {offset} flipped, the files changed"


def test_untampered_copy_opens(small_database: Path, key: bytes, tmp_path: Path) -> None:
    """The control for the test above: a byte-for-byte copy opens fine, so detection is not an artefact."""
    copy = tmp_path / "copy.db"
    copy.write_bytes(small_database.read_bytes())
    open_database(copy, key).close()


def test_large_files_skip_the_full_check_at_open_but_check_integrity_finds_it(
    small_database: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytearray(small_database.read_bytes())
    last_page = len(data) - 4096
    data[last_page + 100] ^= 0x55
    small_database.write_bytes(bytes(data))

    with pytest.raises(DatabaseTamperedError):  # small file: every page is checked at open
        open_database(small_database, key).close()

    monkeypatch.setattr(database, "FULL_CHECK_MAX_BYTES", 1024)  # now the file counts as "large"
    before = file_set_digest(small_database)
    problems = check_integrity(small_database, key)  # the background check the app runs after unlock
    assert problems and all("page" in problem.lower() for problem in problems[:1]), problems
    assert file_set_digest(small_database) == before
    # Key check only at open now; SQLCipher still checks each page it reads, so opening either succeeds
    # (the damaged page was not needed) or fails as tampered (it was). Neither writes to the file.
    with contextlib.suppress(DatabaseTamperedError):
        open_database(small_database, key).close()
    assert file_set_digest(small_database)["db"] == before["db"]


def test_a_plaintext_database_in_place_of_ours_is_reported_as_tampering(
    small_database: Path, key: bytes, tmp_path: Path
) -> None:
    replacement = tmp_path / "plain.db"
    database._open_unencrypted_for_benchmark(replacement, create=True).close()
    small_database.write_bytes(replacement.read_bytes())
    before = file_set_digest(small_database)
    with pytest.raises(DatabaseTamperedError):
        open_database(small_database, key).close()
    assert check_integrity(small_database, key) != []
    assert file_set_digest(small_database) == before
