"""Windows Credential Manager keeps profile keys on this machine (issue 9, item 6).

Only Linux runs here, so Windows' credential API is stood in for by a small in-memory ``win32cred`` with the
same calls, constants and errors; everything above it is keyring's real ``WinVaultKeyring`` and this
application's real ProfileKeys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring.backends.Windows as windows
import pytest

from pso_desktop.security.profiles import KEYRING_SERVICE, KeyPolicy, ProfileKeys
from pso_desktop.security.winvault import ensure_local_persistence
from tests.support.kdf import CHEAP_KDF
from tests.support.profile_keys import SECRET_A


class _WinError(Exception):
    def __init__(self, winerror: int, funcname: str) -> None:
        super().__init__(winerror, funcname)
        self.winerror, self.funcname = winerror, funcname


class _FakePywintypes:
    error = _WinError


class _FakeWin32Cred:
    CRED_TYPE_GENERIC = 1
    CRED_PERSIST_SESSION = 1
    CRED_PERSIST_LOCAL_MACHINE = 2
    CRED_PERSIST_ENTERPRISE = 3

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}

    def CredRead(self, Type: int, TargetName: str) -> dict[str, Any]:
        if TargetName not in self.store:
            raise _WinError(1168, "CredRead")
        return dict(self.store[TargetName])

    def CredWrite(self, credential: dict[str, Any], flags: int) -> None:
        blob = credential["CredentialBlob"]
        self.store[credential["TargetName"]] = credential | {"CredentialBlob": blob.encode("utf-16")}

    def CredDelete(self, Type: int, TargetName: str) -> None:
        if self.store.pop(TargetName, None) is None:
            raise _WinError(1168, "CredDelete")


@pytest.fixture
def win32cred(monkeypatch: pytest.MonkeyPatch) -> _FakeWin32Cred:
    fake = _FakeWin32Cred()
    monkeypatch.setattr(windows, "win32cred", fake, raising=False)
    monkeypatch.setattr(windows, "pywintypes", _FakePywintypes, raising=False)
    monkeypatch.setattr(windows, "missing_deps", False)  # as on Windows with pywin32
    return fake


def _keys(home: Path) -> ProfileKeys:
    backend = windows.WinVaultKeyring()  # type: ignore[no-untyped-call]
    return ProfileKeys(home, backend=backend, policy=KeyPolicy(), kdf=CHEAP_KDF)


def test_new_keys_are_written_for_this_machine_only(pso_home: Path, win32cred: _FakeWin32Cred) -> None:
    keys = _keys(pso_home)
    key = keys.create("ward3", SECRET_A)
    assert keys.storage_mode("ward3") == "os_keyring"
    [credential] = win32cred.store.values()
    assert credential["Persist"] == win32cred.CRED_PERSIST_LOCAL_MACHINE  # not keyring's roaming default
    assert keys.unlock("ward3", SECRET_A) == key


def test_a_roaming_entry_is_moved_to_this_machine_at_unlock(pso_home: Path, win32cred: _FakeWin32Cred) -> None:
    key = _keys(pso_home).create("ward3", SECRET_A)
    for credential in win32cred.store.values():  # as keyring's default (or an older version of the app) wrote it
        credential["Persist"] = win32cred.CRED_PERSIST_ENTERPRISE
    before = {target: c["CredentialBlob"] for target, c in win32cred.store.items()}
    assert _keys(pso_home).unlock("ward3", SECRET_A) == key
    assert {c["Persist"] for c in win32cred.store.values()} == {win32cred.CRED_PERSIST_LOCAL_MACHINE}
    assert {target: c["CredentialBlob"] for target, c in win32cred.store.items()} == before  # same entry, same key
    assert _keys(pso_home).unlock("ward3", SECRET_A) == key


def test_two_profiles_each_move_their_own_entry(pso_home: Path, win32cred: _FakeWin32Cred) -> None:
    keys = _keys(pso_home)
    key_a, key_b = keys.create("ward3", SECRET_A), keys.create("ward4", SECRET_A + "-b")
    assert len(win32cred.store) == 2  # keyring's compound target names keep them apart
    for credential in win32cred.store.values():
        credential["Persist"] = win32cred.CRED_PERSIST_ENTERPRISE
    assert _keys(pso_home).unlock("ward4", SECRET_A + "-b") == key_b
    assert _keys(pso_home).unlock("ward3", SECRET_A) == key_a
    assert {c["Persist"] for c in win32cred.store.values()} == {win32cred.CRED_PERSIST_LOCAL_MACHINE}


def test_nothing_happens_for_another_backend(memory_keyring: object) -> None:
    assert ensure_local_persistence(memory_keyring, KEYRING_SERVICE, "x") is False  # type: ignore[arg-type]
