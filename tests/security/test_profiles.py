"""Profiles with keys in a (test) OS keyring: create, unlock, failures, password change, KDF parameters."""

from __future__ import annotations

import json
import logging
import stat
import threading
import time
from pathlib import Path

import pytest
import secretstorage.exceptions
import sqlcipher3
from keyring.errors import KeyringError

from pso_desktop.security import (
    BackendChangedError,
    CorruptKeyDataError,
    InvalidProfileNameError,
    KdfParams,
    KeyEntryMissingError,
    KeyringUnavailableError,
    ProfileExistsError,
    ProfileFolderError,
    ProfileNotFoundError,
    WeakSecretError,
    WrongSecretError,
)
from pso_desktop.security.profiles import KeyPolicy, ProfileKeys
from tests.security.fakes import (
    FailingKeyring,
    ForgetfulKeyring,
    OtherSecureKeyring,
    chainer_of,
    fail_keyring,
)
from tests.security.helpers import entry, entry_key, file_state, profile_record
from tests.support.clock import FakeClock
from tests.support.kdf import CHEAP_KDF
from tests.support.memory_keyring import MemoryKeyring
from tests.support.profile_keys import SECRET_A, SECRET_B, MakeKeys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _fake_database(keys: ProfileKeys, name: str) -> Path:
    """Stands in for the storage layer's file: its bytes and mtime must survive every failure."""
    db = keys.database_path(name)
    db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    return db


def test_create_then_unlock_after_restart_returns_the_same_key(make_keys: MakeKeys) -> None:
    key = make_keys().create("nurse.a", SECRET_A)
    assert isinstance(key, bytes) and len(key) == 32
    assert make_keys().unlock("nurse.a", SECRET_A) == key  # a new instance, as after a restart


def test_every_profile_gets_its_own_random_key(keys: ProfileKeys) -> None:
    assert keys.create("a", SECRET_A) != keys.create("b", SECRET_A)


def test_profile_files_are_private_and_hold_no_secret(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring, clock: FakeClock
) -> None:
    key = keys.create("ward3", SECRET_A)
    folder = pso_home / "profiles" / "ward3"
    assert _mode(folder) == 0o700 and _mode(folder.parent) == 0o700
    assert _mode(folder / "profile.json") == 0o600
    record = profile_record(pso_home, "ward3")
    assert record["storage_mode"] == "os_keyring"
    assert record["keyring_backend"] == "tests.support.memory_keyring.MemoryKeyring"
    assert record["key_version"] == 1 and record["created"] == clock.now
    stored = entry(memory_keyring, pso_home, "ward3")
    assert stored is not None
    for text in (json.dumps(record), stored):
        assert key.hex() not in text and key.hex().upper() not in text and SECRET_A not in text
    assert not (folder / "wrapped-key.json").exists()
    assert keys.warning is None


def test_wrong_secret_is_refused_and_nothing_is_touched(
    make_keys: MakeKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    keys = make_keys()
    keys.create("ward3", SECRET_A)
    db = _fake_database(keys, "ward3")
    before, stored = file_state(db), entry(memory_keyring, pso_home, "ward3")
    with pytest.raises(WrongSecretError, match="wrong") as caught:
        make_keys().unlock("ward3", SECRET_B)
    assert SECRET_B not in str(caught.value)
    assert file_state(db) == before
    assert entry(memory_keyring, pso_home, "ward3") == stored
    assert len(memory_keyring.entries) == 1


def test_unwritable_profile_folder_is_a_clear_error_and_leaves_no_key(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    (pso_home / "profiles").write_text("a file where the profiles folder belongs")
    with pytest.raises(ProfileFolderError, match="cannot be written"):
        keys.create("ward9", SECRET_A)
    assert memory_keyring.entries == {}


class _RendezvousKeyring(MemoryKeyring):
    """Holds every writer until two have arrived: both creates have passed the "name taken?" check."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2, timeout=10)

    def set_password(self, service: str, username: str, password: str) -> None:
        self.barrier.wait()
        super().set_password(service, username, password)


def test_two_creates_of_one_name_at_once_leave_one_profile_and_one_key(make_keys: MakeKeys) -> None:
    backend = _RendezvousKeyring()
    results: dict[str, object] = {}

    def create(secret: str) -> None:
        try:
            results[secret] = make_keys(backend=backend).create("ward7", secret)
        except ProfileExistsError as exc:
            results[secret] = exc

    threads = [threading.Thread(target=create, args=(secret,)) for secret in (SECRET_A, SECRET_B)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [secret for secret, result in results.items() if isinstance(result, bytes)]
    assert len(winners) == 1 and len(results) == 2
    assert len(backend.entries) == 1  # the loser removed its own entry
    assert make_keys(backend=backend).unlock("ward7", winners[0]) == results[winners[0]]


def test_create_never_overwrites_an_existing_profile(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    key = keys.create("ward3", SECRET_A)
    stored = entry(memory_keyring, pso_home, "ward3")
    with pytest.raises(ProfileExistsError, match="already exists"):
        keys.create("ward3", SECRET_B)
    assert entry(memory_keyring, pso_home, "ward3") == stored
    assert len(memory_keyring.entries) == 1
    assert keys.unlock("ward3", SECRET_A) == key


def test_create_refuses_a_folder_that_already_holds_a_database(
    keys: ProfileKeys, memory_keyring: MemoryKeyring
) -> None:
    keys.database_path("ward3").parent.mkdir(parents=True)
    db = _fake_database(keys, "ward3")
    before = file_state(db)
    with pytest.raises(ProfileExistsError):
        keys.create("ward3", SECRET_A)
    assert file_state(db) == before
    assert memory_keyring.entries == {}


def test_missing_keyring_entry_is_reported_and_no_key_is_made(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    keys.create("ward3", SECRET_A)
    db = _fake_database(keys, "ward3")
    before = file_state(db)
    del memory_keyring.entries[entry_key(pso_home, "ward3")]
    with pytest.raises(KeyEntryMissingError, match="missing"):
        keys.unlock("ward3", SECRET_A)
    assert memory_keyring.entries == {}
    assert file_state(db) == before


def test_locked_keyring_is_reported_and_create_leaves_nothing(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    key = keys.create("ward3", SECRET_A)
    memory_keyring.locked = True
    with pytest.raises(KeyringUnavailableError, match="unlock the keyring") as caught:
        keys.unlock("ward3", SECRET_A)
    assert "KeyringLocked" in str(caught.value)
    with pytest.raises(KeyringUnavailableError):
        keys.create("ward4", SECRET_A)
    assert not keys.exists("ward4")
    assert keys.list_profiles() == ["ward3"]
    memory_keyring.locked = False
    assert keys.unlock("ward3", SECRET_A) == key


@pytest.mark.parametrize(
    "error",
    [
        KeyringError("backend said: entry for ward3 with value xyz"),
        secretstorage.exceptions.SecretServiceNotAvailableException("dbus: connection refused"),
        OSError(111, "Connection refused"),
    ],
    ids=["KeyringError", "secretstorage", "OSError"],
)
def test_backend_failures_become_keyring_unavailable(make_keys: MakeKeys, error: Exception) -> None:
    backend = FailingKeyring(error)
    with pytest.raises(KeyringUnavailableError) as caught:
        make_keys(backend=backend).create("ward3", SECRET_A)
    # The backend's own message is not repeated: it may name entries or values.
    assert "xyz" not in str(caught.value) and "refused" not in str(caught.value)
    assert caught.value.__cause__ is error


def test_keyring_that_keeps_nothing_is_detected(make_keys: MakeKeys) -> None:
    keys = make_keys(backend=ForgetfulKeyring())
    with pytest.raises(KeyringUnavailableError, match="did not keep"):
        keys.create("ward3", SECRET_A)
    assert not keys.exists("ward3")


def test_changed_backend_is_reported(make_keys: MakeKeys, pso_home: Path) -> None:
    make_keys().create("ward3", SECRET_A)
    with pytest.raises(BackendChangedError, match="MemoryKeyring"):
        make_keys(backend=OtherSecureKeyring()).unlock("ward3", SECRET_A)
    with pytest.raises(BackendChangedError, match="no system keyring is available"):
        make_keys(backend=fail_keyring()).unlock("ward3", SECRET_A)
    # Nothing was created in place of the missing key.
    assert profile_record(pso_home, "ward3")["storage_mode"] == "os_keyring"
    assert not (pso_home / "profiles" / "ward3" / "wrapped-key.json").exists()


def test_key_stays_reachable_through_a_chainer_holding_the_same_keyring(
    make_keys: MakeKeys, memory_keyring: MemoryKeyring
) -> None:
    key = make_keys().create("ward3", SECRET_A)
    assert make_keys(backend=chainer_of(memory_keyring)).unlock("ward3", SECRET_A) == key


def test_clinicians_on_one_account_cannot_use_each_others_entries(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    key_a = keys.create("alice", SECRET_A)
    key_b = keys.create("bob", SECRET_B)
    where_a, where_b = entry_key(pso_home, "alice"), entry_key(pso_home, "bob")
    entries = memory_keyring.entries
    entries[where_a], entries[where_b] = entries[where_b], entries[where_a]
    # Each clinician, with their own password, is handed the other's entry: no key comes out.
    with pytest.raises(WrongSecretError):
        keys.unlock("alice", SECRET_A)
    with pytest.raises(WrongSecretError):
        keys.unlock("bob", SECRET_B)
    # Even a password shared by both does not let an entry open under the other profile's name.
    entries[where_a], entries[where_b] = entries[where_b], entries[where_a]
    keys.change_secret("bob", SECRET_B, SECRET_A)
    assert keys.unlock("bob", SECRET_A) == key_b
    entries[where_a] = entries[where_b]
    with pytest.raises(WrongSecretError):
        keys.unlock("alice", SECRET_A)
    assert key_a != key_b


def test_empty_and_short_secrets_are_refused(keys: ProfileKeys) -> None:
    with pytest.raises(WeakSecretError, match="must not be empty"):
        keys.create("ward3", "")
    with pytest.raises(WeakSecretError, match="at least 8 characters"):
        keys.create("ward3", "1234567")
    assert not keys.exists("ward3")
    keys.create("ward3", "12345678")
    with pytest.raises(WeakSecretError, match="Enter the password"):
        keys.unlock("ward3", "")


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 65])
def test_unusable_profile_names_are_refused(keys: ProfileKeys, name: str) -> None:
    with pytest.raises(InvalidProfileNameError, match="choose a name"):
        keys.create(name, SECRET_A)
    with pytest.raises(InvalidProfileNameError):
        keys.unlock(name, SECRET_A)
    with pytest.raises(InvalidProfileNameError):
        keys.database_path(name)
    assert not keys.exists(name)


def test_unknown_profile(keys: ProfileKeys) -> None:
    with pytest.raises(ProfileNotFoundError, match="no profile named 'ghost'"):
        keys.unlock("ghost", SECRET_A)
    with pytest.raises(ProfileNotFoundError):
        keys.storage_mode("ghost")


def test_listing_and_paths(keys: ProfileKeys, pso_home: Path) -> None:
    assert keys.list_profiles() == []
    keys.create("b-nurse", SECRET_A)
    keys.create("a-nurse", SECRET_B)
    (pso_home / "profiles" / "half-made").mkdir()  # a folder without profile.json is not a profile
    assert keys.list_profiles() == ["a-nurse", "b-nurse"]
    assert keys.exists("a-nurse") and not keys.exists("half-made")
    assert keys.database_path("a-nurse") == pso_home / "profiles" / "a-nurse" / "reports.db"
    assert not keys.database_path("a-nurse").exists()  # the storage layer creates it
    assert keys.storage_mode("a-nurse") == "os_keyring"


def test_change_secret_keeps_the_key_and_retires_the_old_secret(
    make_keys: MakeKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    keys = make_keys()
    key = keys.create("ward3", SECRET_A)
    keys.change_secret("ward3", SECRET_A, SECRET_B)
    assert make_keys().unlock("ward3", SECRET_B) == key
    with pytest.raises(WrongSecretError):
        keys.unlock("ward3", SECRET_A)
    assert profile_record(pso_home, "ward3")["key_version"] == 2
    stored = entry(memory_keyring, pso_home, "ward3")
    assert stored is not None and json.loads(stored)["key_version"] == 2
    assert len(memory_keyring.entries) == 1


def test_change_secret_checks_both_secrets_before_changing_anything(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    keys.create("ward3", SECRET_A)
    stored = entry(memory_keyring, pso_home, "ward3")
    with pytest.raises(WrongSecretError):
        keys.change_secret("ward3", SECRET_B, "a-new-secret")
    with pytest.raises(WeakSecretError):
        keys.change_secret("ward3", SECRET_A, "short")
    assert entry(memory_keyring, pso_home, "ward3") == stored


def test_old_entry_restored_after_a_password_change_is_refused(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    keys.create("ward3", SECRET_A)
    where = entry_key(pso_home, "ward3")
    old_entry = memory_keyring.entries[where]
    keys.change_secret("ward3", SECRET_A, SECRET_B)
    memory_keyring.entries[where] = old_entry  # e.g. a colleague who knew the old password puts it back
    with pytest.raises(KeyEntryMissingError, match="older than"):
        keys.unlock("ward3", SECRET_A)


def test_interrupted_password_change_rolls_the_record_forward(keys: ProfileKeys, pso_home: Path) -> None:
    key = keys.create("ward3", SECRET_A)
    keys.change_secret("ward3", SECRET_A, SECRET_B)
    # As if the process died after writing the new entry but before saving profile.json.
    record_path = pso_home / "profiles" / "ward3" / "profile.json"
    record = json.loads(record_path.read_text())
    record["key_version"] = 1
    record_path.write_text(json.dumps(record))
    assert keys.unlock("ward3", SECRET_B) == key
    assert profile_record(pso_home, "ward3")["key_version"] == 2


def test_kdf_parameters_are_stored_honoured_and_only_ever_raised(
    make_keys: MakeKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    def stored_kdf() -> tuple[int, int]:
        stored = entry(memory_keyring, pso_home, "ward3")
        assert stored is not None
        kdf = json.loads(stored)["kdf"]
        return kdf["memory_kib"], kdf["time_cost"]

    key = make_keys(kdf=KdfParams(memory_kib=512, time_cost=2, parallelism=1)).create("ward3", SECRET_A)
    assert stored_kdf() == (512, 2)
    # A weaker configuration unlocks with the stored parameters and does not lower them.
    assert make_keys(kdf=CHEAP_KDF).unlock("ward3", SECRET_A) == key
    assert stored_kdf() == (512, 2)
    # A stronger configuration re-wraps after a successful unlock (a new key version, the same key).
    assert make_keys(kdf=KdfParams(memory_kib=1024, time_cost=2, parallelism=1)).unlock("ward3", SECRET_A) == key
    assert stored_kdf() == (1024, 2)
    assert profile_record(pso_home, "ward3")["key_version"] == 2
    assert make_keys(kdf=CHEAP_KDF).unlock("ward3", SECRET_A) == key
    # A password change with test parameters keeps the higher cost too.
    make_keys(kdf=CHEAP_KDF).change_secret("ward3", SECRET_A, SECRET_B)
    assert stored_kdf() == (1024, 2)


def test_production_kdf_defaults_round_trip_under_a_second(
    pso_home: Path, memory_keyring: MemoryKeyring, clock: FakeClock
) -> None:
    keys = ProfileKeys(pso_home, policy=KeyPolicy(), clock=clock)  # default backend and default KDF
    started = time.perf_counter()
    key = keys.create("ward3", SECRET_A)
    created = time.perf_counter()
    assert keys.unlock("ward3", SECRET_A) == key
    unlocked = time.perf_counter()
    stored = entry(memory_keyring, pso_home, "ward3")
    assert stored is not None
    kdf = json.loads(stored)["kdf"]
    assert (kdf["memory_kib"], kdf["time_cost"], kdf["parallelism"]) == (65536, 3, 4)
    assert created - started < 1.0 and unlocked - created < 1.0


def test_damaged_records_are_reported_without_changes(
    keys: ProfileKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    keys.create("ward3", SECRET_A)
    where = entry_key(pso_home, "ward3")
    memory_keyring.entries[where] = "{not json"
    with pytest.raises(CorruptKeyDataError, match="damaged"):
        keys.unlock("ward3", SECRET_A)
    assert memory_keyring.entries[where] == "{not json"
    (pso_home / "profiles" / "ward3" / "profile.json").write_text("[]")
    with pytest.raises(CorruptKeyDataError, match="settings of profile 'ward3' are damaged"):
        keys.unlock("ward3", SECRET_A)


def test_no_secret_or_key_in_logs(keys: ProfileKeys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = keys.create("ward3", SECRET_A)
    with pytest.raises(WrongSecretError):
        keys.unlock("ward3", SECRET_B)
    keys.change_secret("ward3", SECRET_A, SECRET_B)
    assert caplog.records, "the operations are logged"
    for secret in (SECRET_A, SECRET_B, key.hex(), key.hex().upper()):
        assert secret not in caplog.text


def test_the_key_opens_the_profiles_sqlcipher_database_and_no_other(keys: ProfileKeys) -> None:
    """End to end with real SQLCipher: the raw key as the storage layer uses it (x'<hex>')."""
    key_a = keys.create("alice", SECRET_A)
    key_b = keys.create("bob", SECRET_B)
    db = keys.database_path("alice")
    conn = sqlcipher3.connect(str(db))
    conn.execute(f"PRAGMA key = \"x'{key_a.hex()}'\"")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t VALUES ('draft')")
    conn.commit()
    conn.close()

    reopened = sqlcipher3.connect(str(db))
    reopened.execute(f"PRAGMA key = \"x'{keys.unlock('alice', SECRET_A).hex()}'\"")
    assert reopened.execute("SELECT v FROM t").fetchall() == [("draft",)]
    reopened.close()

    other = sqlcipher3.connect(str(db))
    other.execute(f"PRAGMA key = \"x'{key_b.hex()}'\"")
    with pytest.raises(sqlcipher3.DatabaseError):
        other.execute("SELECT v FROM t").fetchall()
    other.close()
