"""Backups and ``pso-desktop recover``, run for real in a subprocess against real SQLCipher files."""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pso_desktop.domain.samples import sample_report
from pso_desktop.texts import LOCKOUT_NOTE
from tests.support.cli import SECRET, cli_env, login, run_cli


def add_reports(home: Path, count: int, *, seed: int, submit: bool = False) -> list[dict]:
    rng = random.Random(seed)
    reports = [sample_report(rng, i) for i in range(count)]
    args = ["report", "add", "-", "--password-stdin", *(["--submit"] if submit else [])]
    result = run_cli(home, *args, stdin=SECRET + "\n" + json.dumps(reports))
    assert result.code == 0, result.err
    return reports


def backups(home: Path) -> list[Path]:
    folder = home / "profiles" / "alice" / "backups"
    return sorted(folder.glob("reports-*Z.db")) if folder.is_dir() else []


@pytest.fixture
def profile(pso_home: Path) -> Path:
    result = run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    return pso_home


def test_profile_create_says_what_a_forgotten_password_costs(pso_home: Path):
    result = run_cli(pso_home, "profile", "create", "bob", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    assert result.out.strip() == f"Created profile bob. {LOCKOUT_NOTE}"
    assert "not yet sent" in LOCKOUT_NOTE and "kept at the PSO" in LOCKOUT_NOTE


def test_a_failed_backup_is_a_warning_after_the_commands_own_outcome(profile: Path):
    (profile / "profiles" / "alice" / "backups").write_bytes(b"a file in the way")
    rng = random.Random(3)
    result = run_cli(
        profile, "report", "add", "-", "--password-stdin", stdin=SECRET + "\n" + json.dumps(sample_report(rng))
    )
    assert result.code == 0, result.err
    assert result.out.strip() == "1 report(s) added."
    assert (
        result.err.strip()
        .splitlines()[-1]
        .startswith(
            "pso-desktop: warning: The automatic backup of this profile could not be written; your reports are unchanged."
        )
    )
    assert "Traceback" not in result.err


def test_a_command_takes_a_backup_when_one_is_due(profile: Path):
    assert backups(profile) == []  # an empty profile has nothing to back up
    add_reports(profile, 3, seed=1)
    first = backups(profile)
    assert len(first) == 1
    add_reports(profile, 2, seed=2)
    assert backups(profile) == first  # the newest is minutes old: not due yet


# --- recover ----------------------------------------------------------------------------------------------


def profile_key(home: Path) -> bytes:
    from keyring.backends.null import Keyring

    from pso_desktop.security.profiles import ProfileKeys

    return ProfileKeys(home, backend=Keyring()).unlock("alice", SECRET)


def db_file(home: Path) -> Path:
    return home / "profiles" / "alice" / "reports.db"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored(home: Path) -> dict[str, dict]:
    """The profile's reports as the app exports them, by id (through the real CLI)."""
    out = home.parent / "export.json"
    result = run_cli(
        home, "export", "--format", "json", "--out", str(out), "--password-stdin", stdin=SECRET + "\n"
    )
    assert result.code == 0, result.err
    return {report["id"]: report for report in json.loads(out.read_text(encoding="utf-8"))["reports"]}


def status(home: Path) -> dict[str, int]:
    result = run_cli(home, "status", "--json", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    return json.loads(result.out)


def unreadable_ids(db: Path, key: bytes, ids: list[str], *, damaged_main: bytes) -> set[str]:
    """Which reports a plain keyed reader could no longer read if ``db`` held ``damaged_main`` (its -wal, if any,
    replayed). Read on copies, with a fresh connection per report, since SQLCipher fails every read on a
    connection after its first HMAC failure."""
    import shutil

    import sqlcipher3.dbapi2 as sqlcipher

    from pso_desktop.storage.database import apply_cipher_settings

    lost = set()
    for report_id in ids:
        folder = Path(tempfile.mkdtemp(dir=db.parent.parent.parent))
        try:
            copy = folder / "probe.db"
            copy.write_bytes(damaged_main)
            if db.with_name(db.name + "-wal").exists():
                shutil.copyfile(db.with_name(db.name + "-wal"), folder / "probe.db-wal")
            conn = sqlcipher.connect(str(copy))
            try:
                conn.execute("PRAGMA cipher_log_level = NONE")
                conn.set_key(f"x'{key.hex()}'".encode())
                apply_cipher_settings(conn)
                conn.execute("SELECT wire FROM reports WHERE id = ?", (report_id,)).fetchone()
            except sqlcipher.DatabaseError:
                lost.add(report_id)
            finally:
                conn.close()
        finally:
            shutil.rmtree(folder)
    return lost


def damage_a_page_of(db: Path, key: bytes, only: list[str], spare: list[str]) -> set[str]:
    """Flips a byte in a page whose loss costs some of the ``only`` reports and none of ``spare``; returns the
    reports a reader can no longer read."""
    data = db.read_bytes()
    for page in range(2, len(data) // 4096):
        lost = unreadable_ids(db, key, only + spare, damaged_main=flip_page(data, page))
        if lost and lost <= set(only):
            db.write_bytes(flip_page(data, page))
            return lost
    raise AssertionError("no page holds only the reports to lose")


def owner_keys(home: Path) -> dict[str, str]:
    """The per-report owner keys (issue 9, item 2) held in the profile's database."""
    import sqlcipher3.dbapi2 as sqlcipher

    from pso_desktop.storage.database import apply_cipher_settings

    conn = sqlcipher.connect(f"{db_file(home).as_uri()}?mode=ro&immutable=1", uri=True)  # leaves no -shm
    try:
        conn.set_key(f"x'{profile_key(home).hex()}'".encode())
        apply_cipher_settings(conn)
        return {str(r): str(k) for r, k in conn.execute("SELECT report_id, owner_key FROM report_keys")}
    finally:
        conn.close()


def _remember_device(home: Path) -> None:
    """A device token, as 'login' keeps it (issue 9, item 7), written after the backup: only the file has it."""
    from pso_desktop.storage.account import AccountStore
    from pso_desktop.storage.database import open_database

    conn = open_database(db_file(home), profile_key(home))
    try:
        AccountStore(conn).set_device_token("https://pso.example.org", "psod_known")
    finally:
        conn.close()


def _device(home: Path) -> tuple[str, str] | None:
    import sqlcipher3.dbapi2 as sqlcipher

    from pso_desktop.storage.database import apply_cipher_settings

    conn = sqlcipher.connect(f"{db_file(home).as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        conn.set_key(f"x'{profile_key(home).hex()}'".encode())
        apply_cipher_settings(conn)
        row = conn.execute("SELECT server_url, token FROM known_device").fetchone()
        return None if row is None else (str(row[0]), str(row[1]))
    finally:
        conn.close()


def flip_page(data: bytes, page: int) -> bytes:
    damaged = bytearray(data)
    damaged[page * 4096 + 300] ^= 0x5A
    return bytes(damaged)


def assert_clean(result, code: int) -> None:
    assert result.code == code, (result.out, result.err)
    assert "Traceback" not in result.err


@pytest.fixture
def history(profile: Path) -> tuple[list[dict], list[dict]]:
    """30 reports queued before the automatic backup, then 10 drafts and a new revision of one report after it."""
    before = add_reports(profile, 30, seed=1, submit=True)
    assert len(backups(profile)) == 1
    after = add_reports(profile, 10, seed=2)
    amended = dict(before[0], narrative="Amended after the backup: the pump was reprogrammed by a second nurse.")
    result = run_cli(profile, "report", "add", "-", "--password-stdin", stdin=SECRET + "\n" + json.dumps(amended))
    assert result.code == 0, result.err
    assert len(backups(profile)) == 1  # no second backup yet: what came after it lives only in the database
    return before, after


def test_check_without_the_secret_lists_backups_and_changes_nothing(profile: Path, history):
    db = db_file(profile)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) - 1000])  # cut short, mid-page
    before = digest(db)

    result = run_cli(profile, "recover", "--profile", "alice")

    assert_clean(result, 1)
    assert "not a whole number of 4,096-byte pages" in result.out
    assert backups(profile)[0].name in result.out
    assert (
        result.err.strip()
        .splitlines()[-1]
        .startswith("pso-desktop: The database of profile 'alice' looks damaged")
    )
    assert digest(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == [
        "backups",
        "profile.json",
        "reports.db",
        "wrapped-key.json",
    ]


def test_check_of_a_sound_profile_exits_0(profile: Path, history):
    result = run_cli(profile, "recover")
    assert_clean(result, 0)
    assert "problem:" not in result.out


def test_set_aside_moves_the_files_for_it_and_restore_brings_the_backup_back(profile: Path, history):
    before, _after = history
    db = db_file(profile)
    keys = owner_keys(profile)
    assert set(keys) == {r["id"] for r in before}  # every submitted report has its key
    wal = db.with_name("reports.db-wal")
    wal.write_bytes(b"\x37\x7f\x06\x82" + bytes(28))  # a crash's leftover WAL header: it must travel with the file
    original = digest(db)

    result = run_cli(profile, "recover", "--set-aside")

    assert_clean(result, 0)
    folders = list((db.parent / "set-aside").iterdir())
    assert len(folders) == 1
    assert sorted(p.name for p in folders[0].iterdir()) == ["reports.db", "reports.db-wal"]
    assert digest(folders[0] / "reports.db") == original
    assert not db.exists() and not wal.exists()
    assert str(folders[0]) in result.out

    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")

    assert_clean(result, 0)
    assert "only from the backup" in result.out
    assert f"read from the damaged database set aside in {folders[0]}" in result.out
    restored = stored(profile)
    # What the backup held and what was set aside: the later drafts come back from the set-aside file.
    assert set(restored) == {r["id"] for r in before} | {r["id"] for r in _after}
    assert status(profile)["queued"] == 30
    assert owner_keys(profile) == keys  # without them the restored reports could never be revised
    assert digest(folders[0] / "reports.db") == original  # the set-aside copy is never touched
    assert digest(folders[0] / "reports.db-wal") == hashlib.sha256(b"\x37\x7f\x06\x82" + bytes(28)).hexdigest()
    assert (folders[0] / "recovered").exists()  # merged: marked, so a later recovery does not read it again
    assert not [p for p in db.parent.iterdir() if p.name.startswith(".recover")]  # no scratch copy left


def test_restore_after_it_set_the_damaged_file_aside_reads_it(profile: Path, history):
    """IT runs 'recover --set-aside' first, then 'recover --password-stdin' as that command says: the reports
    still readable in the set-aside file come back, as they would have with the file in place."""
    before, after = history
    db = db_file(profile)
    key = profile_key(profile)
    lost = damage_a_page_of(db, key, [r["id"] for r in before], [r["id"] for r in after])
    damaged = digest(db)
    assert run_cli(profile, "status", "--password-stdin", stdin=SECRET + "\n").code == 1

    assert_clean(run_cli(profile, "recover", "--set-aside"), 0)
    (folder,) = (db.parent / "set-aside").iterdir()
    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")

    assert_clean(result, 0)
    assert result.out.startswith("Recovered profile 'alice': 40 report(s)")
    assert f"read from the damaged database set aside in {folder}" in result.out
    counts = re.search(
        r"(\d+) read from the damaged database set aside in .*, (\d+) only from the backup", result.out
    )
    assert counts is not None and int(counts[1]) >= 10 and int(counts[1]) + int(counts[2]) == 40
    restored = stored(profile)
    assert set(restored) == {r["id"] for r in before} | {r["id"] for r in after}
    for report in after:  # written after the backup: only the set-aside file had them
        assert restored[report["id"]]["narrative"] == report["narrative"]
    assert status(profile)["draft"] == 10 + (before[0]["id"] not in lost)
    assert digest(folder / "reports.db") == damaged  # read through a scratch copy, never changed
    assert sorted(p.name for p in (db.parent / "set-aside").iterdir()) == [folder.name]

    # Merged once: a later recovery of a lost database does not read the set-aside file again.
    db.unlink()
    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")
    assert_clean(result, 0)
    assert "set aside in" not in result.out
    assert set(stored(profile)) == {r["id"] for r in before}


def test_restore_merges_the_backup_with_what_the_damaged_file_still_holds(profile: Path, history):
    before, after = history
    db = db_file(profile)
    key = profile_key(profile)
    early = [r["id"] for r in before]
    _remember_device(profile)  # after the backup: only the damaged file has it
    lost = damage_a_page_of(db, key, early, [r["id"] for r in after])
    damaged = digest(db)
    assert run_cli(profile, "status", "--password-stdin", stdin=SECRET + "\n").code == 1  # the app refuses it

    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")

    assert_clean(result, 0)
    assert result.out.startswith("Recovered profile 'alice': 40 report(s)")
    assert _device(profile) == ("https://pso.example.org", "psod_known")  # the device stays known
    counts = re.search(r"(\d+) read from the damaged database, (\d+) only from the backup", result.out)
    assert counts is not None and int(counts[1]) + int(counts[2]) == 40
    restored = stored(profile)
    assert set(restored) == set(early) | {r["id"] for r in after}
    for report in after:  # written after the backup: read back from the damaged file
        assert restored[report["id"]]["narrative"] == report["narrative"]
    # The amended report: its revision 2 (a draft, only in the damaged file) wins over the backup's revision 1
    # (queued), unless its own row was on the damaged page; then its frozen, queued revision 1 is back.
    first = restored[early[0]]
    if early[0] in lost:
        assert first["revision"] == 1 and first["narrative"] == before[0]["narrative"]
    else:
        assert first["revision"] == 2 and first["narrative"].startswith("Amended after the backup")
    counts = status(profile)
    assert counts["queued"] == 30  # every frozen revision still waits to be sent, exactly once
    assert counts["draft"] == 10 + (early[0] not in lost)
    aside = next((db.parent / "set-aside").iterdir())
    assert digest(aside / "reports.db") == damaged  # kept for IT, byte for byte

    entries = audit_actions(profile, key)  # the chain verifies
    assert entries[0] == "profile_create"
    assert entries.count("recover") == 1
    assert entries.count("submit") == 1  # the history from before the damage is carried over


def audit_actions(home: Path, key: bytes) -> list[str]:
    from pso_desktop.storage.audit import AuditLog
    from pso_desktop.storage.database import open_database

    conn = open_database(db_file(home), key, full_check=True)
    try:
        log = AuditLog(conn)
        assert log.verify()
        return [entry.action for entry in log.entries()]
    finally:
        conn.close()


def test_restore_after_truncation_says_what_was_lost(profile: Path, history):
    before, after = history
    db = db_file(profile)
    data = db.read_bytes()
    # Cut past the schema's own pages (a new profile already spans about 30 pages of tables, indexes and
    # triggers); a cut inside the schema leaves nothing readable, and everything comes from the backup.
    db.write_bytes(data[: len(data) * 2 // 3])

    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")

    assert_clean(result, 0)
    restored = stored(profile)
    assert {r["id"] for r in before} <= set(restored)  # everything in the backup is back
    missing = {r["id"] for r in after} - set(restored)
    assert missing  # two thirds of the file are gone: the later drafts with them
    assert (
        f"{len(missing)} report(s) known to the damaged database could not be read" in result.err
        or "Parts of the damaged database could not be read; reports written or changed after the backup"
        in result.err
    )
    assert "recover" in audit_actions(profile, profile_key(profile))


def test_restore_of_a_deleted_database_uses_the_backup(profile: Path, history):
    before, _after = history
    db_file(profile).unlink()
    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")
    assert_clean(result, 0)
    assert set(stored(profile)) == {r["id"] for r in before}


def test_a_sound_database_is_left_alone(profile: Path, history):
    original = digest(db_file(profile))
    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")
    assert_clean(result, 0)
    assert "passed every check" in result.out
    assert digest(db_file(profile)) == original
    assert not (db_file(profile).parent / "set-aside").exists()


def test_wrong_secret_changes_nothing(profile: Path, history):
    db = db_file(profile)
    db.write_bytes(flip_page(db.read_bytes(), 3))
    damaged = digest(db)
    result = run_cli(profile, "recover", "--password-stdin", stdin="not the secret at all\n")
    assert_clean(result, 1)
    assert len(result.err.strip().splitlines()) == 2  # the keyring warning, then the one-line reason
    assert digest(db) == damaged
    assert not (db.parent / "set-aside").exists()


def test_nothing_to_restore_from_is_a_clean_failure(profile: Path):
    add_reports(profile, 2, seed=1)
    for backup_file in backups(profile):
        backup_file.unlink()
    db_file(profile).unlink()
    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")
    assert_clean(result, 1)
    assert "no usable backup exists" in result.err


CRASHING_WRITER = """
import json, os, sys
from pso_desktop.services.workstation import Workstation
secret = sys.stdin.readline().rstrip("\\n")
session = Workstation().open("alice", secret)
reader = session.second_connection()  # holds a snapshot, as a backup does: the commit stays in the -wal
reader._conn.execute("BEGIN")
reader._conn.execute("SELECT count(*) FROM reports").fetchone()
session.add_from_bytes(sys.stdin.read().encode())
os._exit(0)  # killed: the -wal is never folded into the database file
"""


def test_restore_reads_what_a_crash_left_in_the_wal(profile: Path, history):
    before, after = history
    rng = random.Random(7)
    crashed = [sample_report(rng, i) for i in range(4)]
    subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER],
        input=(SECRET + "\n" + json.dumps(crashed)).encode(),
        env=cli_env(profile),
        check=True,
        timeout=120,
    )
    db = db_file(profile)
    assert db.with_name("reports.db-wal").stat().st_size > 0
    key = profile_key(profile)
    early = [r["id"] for r in before]
    damage_a_page_of(db, key, early, [r["id"] for r in after + crashed])

    check = run_cli(profile, "recover")
    assert "reports.db-wal is present" in check.out
    assert_clean(
        check, 0
    )  # a sound WAL (its header is not encrypted) and whole pages: nothing seen without the key

    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")

    assert_clean(result, 0)
    assert result.out.startswith("Recovered profile 'alice': 44 report(s)")
    restored = stored(profile)
    assert set(restored) == set(early) | {r["id"] for r in after + crashed}  # the WAL's reports are back
    aside = next((db.parent / "set-aside").iterdir())
    assert {"reports.db", "reports.db-wal", "reports.db-walmark"} <= {p.name for p in aside.iterdir()}


def test_a_profile_open_elsewhere_is_neither_set_aside_nor_replaced(profile: Path, history):
    from pso_desktop.storage.database import open_database

    db = db_file(profile)
    original = digest(db)
    conn = open_database(db, profile_key(profile))  # the window has the profile open
    try:
        check = run_cli(profile, "recover")
        assert_clean(check, 0)
        assert "the profile is open now" in check.out
        for args, stdin in ((["--set-aside"], ""), (["--password-stdin"], SECRET + "\n")):
            result = run_cli(profile, "recover", *args, stdin=stdin)
            assert_clean(result, 1)
            assert "is open in PSO Desktop or in another command" in result.err
    finally:
        conn.close()
    assert digest(db) == original
    assert not (db.parent / "set-aside").exists()
    assert_clean(run_cli(profile, "recover", "--set-aside"), 0)  # closed: now it can


def test_a_lost_wal_is_restored_around_and_said(profile: Path, history):
    before, after = history
    rng = random.Random(8)
    in_wal = [sample_report(rng, i) for i in range(3)]
    subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER],
        input=(SECRET + "\n" + json.dumps(in_wal)).encode(),
        env=cli_env(profile),
        check=True,
        timeout=120,
    )
    db = db_file(profile)
    db.with_name("reports.db-wal").unlink()  # the saves it held are gone
    assert_clean(run_cli(profile, "status", "--password-stdin", stdin=SECRET + "\n"), 1)

    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")

    assert_clean(result, 0)
    assert "Changes saved while reports.db-wal held them may be missing" in result.err
    assert set(stored(profile)) == {r["id"] for r in before + after}  # all that the database itself held


def age_backups(home: Path, hours: float) -> None:
    """Make the existing backups look ``hours`` older (their time is in their name)."""
    import datetime as dt

    for path in backups(home):
        taken = dt.datetime.strptime(path.name[len("reports-") : -len("Z.db")], "%Y%m%dT%H%M%S.%f")
        older = (taken - dt.timedelta(hours=hours)).strftime("%Y%m%dT%H%M%S.%f")
        path.rename(path.with_name(f"reports-{older}Z.db"))


def test_a_sync_takes_a_backup_so_a_restore_does_not_lose_what_was_sent(profile: Path, tmp_path: Path):
    from tests.support.sync import practice_server

    sent = add_reports(profile, 12, seed=5, submit=True)
    age_backups(profile, 2)  # the newest backup is two hours old: a sync takes a new one
    with practice_server(tmp_path / "server", {"alice": "nurse account password"}) as server:
        signed_in = login(profile, server, "alice", "nurse account password")
        assert signed_in.code == 0, signed_in.err
        synced = run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n")
        assert synced.code == 0, synced.err
    assert len(backups(profile)) == 2

    db_file(profile).unlink()
    result = run_cli(profile, "recover", "--password-stdin", stdin=SECRET + "\n")

    assert_clean(result, 0)
    assert status(profile)["submitted"] == len(sent)  # the restored profile knows they were sent
