"""The real Secret Service (gnome-keyring under dbus-run-session): run by run_secret_service_tier.sh.

Skipped unless PSO_TEST_SECRET_SERVICE=1. With it set, these tests fail rather than skip when the service is
missing: whoever set it expects them to run.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import keyring.backends.SecretService
import pytest
import secretstorage
from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import DBusConnection
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend

from pso_desktop.security import KeyEntryMissingError, KeyringUnavailableError, WrongSecretError, classify_backend
from pso_desktop.security.profiles import KEYRING_SERVICE, KeyPolicy, ProfileKeys
from tests.security.helpers import profile_record
from tests.support.clock import FakeClock
from tests.support.kdf import CHEAP_KDF
from tests.support.profile_keys import CLOCK_START, SECRET_A, SECRET_B

pytestmark = [
    pytest.mark.secret_service,
    pytest.mark.skipif(
        os.environ.get("PSO_TEST_SECRET_SERVICE") != "1",
        reason="needs a real Secret Service: run tests/security/run_secret_service_tier.sh "
        "(sets PSO_TEST_SECRET_SERVICE=1 inside a dbus-run-session with gnome-keyring unlocked)",
    ),
]

_SECRETS_PATH = "/org/freedesktop/secrets"
_SECRETS_BUS = "org.freedesktop.secrets"


def _secret_service() -> KeyringBackend:
    return keyring.backends.SecretService.Keyring()  # type: ignore[no-untyped-call]


@pytest.fixture
def backend(pso_home: Path) -> Iterator[KeyringBackend]:
    """The real backend; afterwards removes the entries this test's profiles left in the shared keyring."""
    real = _secret_service()
    yield real
    profiles = pso_home / "profiles"
    for folder in profiles.iterdir() if profiles.is_dir() else []:
        if not (folder / "profile.json").is_file():
            continue  # a create that failed before the profile existed
        username = profile_record(pso_home, folder.name).get("keyring_username")
        if username and real.get_password(KEYRING_SERVICE, username) is not None:
            real.delete_password(KEYRING_SERVICE, username)


def _keys(pso_home: Path, backend: KeyringBackend) -> ProfileKeys:
    return ProfileKeys(pso_home, backend=backend, policy=KeyPolicy(), kdf=CHEAP_KDF, clock=FakeClock(CLOCK_START))


def _username(pso_home: Path, name: str) -> str:
    return str(profile_record(pso_home, name)["keyring_username"])


def test_secret_service_is_classified_secure_also_behind_the_chainer() -> None:
    verdict = classify_backend(_secret_service())
    assert verdict.secure and "Secret Service" in verdict.reason
    # keyring's own pick when several backends are viable: the chainer must resolve to the Secret Service.
    chained = classify_backend(ChainerBackend())  # type: ignore[no-untyped-call]
    assert chained.secure
    assert isinstance(chained.effective, keyring.backends.SecretService.Keyring)


def test_round_trip_through_the_real_keyring(pso_home: Path, backend: KeyringBackend) -> None:
    key = _keys(pso_home, backend).create("ward3", SECRET_A)
    assert profile_record(pso_home, "ward3")["keyring_backend"] == "keyring.backends.SecretService.Keyring"
    # What the Secret Service holds is the wrapped form only.
    stored = _secret_service().get_password(KEYRING_SERVICE, _username(pso_home, "ward3"))
    assert stored is not None
    assert key.hex() not in stored and SECRET_A not in stored
    assert json.loads(stored)["kdf"]["algorithm"] == "argon2id"
    # A fresh backend object and ProfileKeys, as after a restart.
    assert _keys(pso_home, _secret_service()).unlock("ward3", SECRET_A) == key
    with pytest.raises(WrongSecretError):
        _keys(pso_home, backend).unlock("ward3", SECRET_B)


def test_deleted_entry_is_reported_missing(pso_home: Path, backend: KeyringBackend) -> None:
    keys = _keys(pso_home, backend)
    keys.create("ward3", SECRET_A)
    backend.delete_password(KEYRING_SERVICE, _username(pso_home, "ward3"))
    with pytest.raises(KeyEntryMissingError):
        keys.unlock("ward3", SECRET_A)
    assert backend.get_password(KEYRING_SERVICE, _username(pso_home, "ward3")) is None


def test_swapped_entries_of_two_clinicians_give_no_key(pso_home: Path, backend: KeyringBackend) -> None:
    keys = _keys(pso_home, backend)
    keys.create("alice", SECRET_A)
    keys.create("bob", SECRET_B)
    user_a, user_b = _username(pso_home, "alice"), _username(pso_home, "bob")
    entry_a = backend.get_password(KEYRING_SERVICE, user_a)
    entry_b = backend.get_password(KEYRING_SERVICE, user_b)
    assert entry_a is not None and entry_b is not None
    backend.set_password(KEYRING_SERVICE, user_a, entry_b)
    backend.set_password(KEYRING_SERVICE, user_b, entry_a)
    with pytest.raises(WrongSecretError):
        keys.unlock("alice", SECRET_A)
    with pytest.raises(WrongSecretError):
        keys.unlock("bob", SECRET_B)


def _unlock_collection(connection: DBusConnection, collection_path: str, password: str) -> None:
    """Unlocks a gnome-keyring collection without a prompt (none can appear here), through the daemon's
    internal interface over a 'plain' session: test-only, as its name says."""
    service = DBusAddress(_SECRETS_PATH, bus_name=_SECRETS_BUS, interface="org.freedesktop.Secret.Service")
    session = connection.send_and_get_reply(new_method_call(service, "OpenSession", "sv", ("plain", ("s", ""))))
    internal = DBusAddress(
        _SECRETS_PATH, bus_name=_SECRETS_BUS, interface="org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"
    )
    secret = (session.body[1], b"", password.encode(), "text/plain")
    connection.send_and_get_reply(
        new_method_call(internal, "UnlockWithMasterPassword", "o(oayays)", (collection_path, secret))
    )


# keyring 25.7's SecretService.get_preferred_collection opens a D-Bus connection and, when the collection
# stays locked, raises KeyringLocked without closing it (the leak jaraco/keyring#380 fixed for the other
# paths). The test collects those connections itself so the ResourceWarning does not land on another test.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
def test_locked_keyring_is_reported_and_nothing_is_created(pso_home: Path, backend: KeyringBackend) -> None:
    password = os.environ.get("PSO_TEST_KEYRING_PASSWORD")
    if password is None:
        pytest.skip("PSO_TEST_KEYRING_PASSWORD (the login keyring's password) is needed to unlock it again")
    keys = _keys(pso_home, backend)
    key = keys.create("ward3", SECRET_A)
    with closing(secretstorage.dbus_init()) as connection:
        collection = secretstorage.get_default_collection(connection)
        collection.lock()
        try:
            assert collection.is_locked()
            with pytest.raises(KeyringUnavailableError, match="KeyringLocked"):
                keys.unlock("ward3", SECRET_A)
            with pytest.raises(KeyringUnavailableError):
                keys.create("ward4", SECRET_A)
            assert not keys.exists("ward4")
            gc.collect()  # reclaims the connections keyring leaked (see above) while the filter applies
        finally:
            _unlock_collection(connection, collection.collection_path, password)
        assert not collection.is_locked()
    assert keys.unlock("ward3", SECRET_A) == key
