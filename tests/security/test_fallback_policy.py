"""No secure keyring: the password-protected key file fallback, and IT policy that forbids it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend

from pso_desktop.security import (
    InsecureKeyringError,
    KdfParams,
    KeyEntryMissingError,
    PolicyError,
    WrongSecretError,
)
from pso_desktop.security.profiles import KeyPolicy, ProfileKeys, ServerPolicy
from tests.security.fakes import (
    AltEncryptedKeyring,
    PlaintextKeyring,
    ZeroPriorityKeyring,
    chainer_of,
    fail_keyring,
    null_keyring,
)
from tests.security.helpers import entry, profile_record
from tests.support.clock import FakeClock
from tests.support.memory_keyring import MemoryKeyring
from tests.support.profile_keys import SECRET_A, SECRET_B, MakeKeys

REQUIRE = KeyPolicy(allow_file_fallback=False)


def _weak_backends() -> list[KeyringBackend]:
    return [
        fail_keyring(),
        null_keyring(),
        PlaintextKeyring(),
        AltEncryptedKeyring(),
        ZeroPriorityKeyring(),
        chainer_of(PlaintextKeyring()),
    ]


WEAK_IDS = ["fail", "null", "plaintext", "keyrings.alt", "priority-0", "chainer-no-secure-child"]


@pytest.mark.parametrize("backend", _weak_backends(), ids=WEAK_IDS)
def test_weak_backend_falls_back_to_a_password_protected_file_with_a_warning(
    make_keys: MakeKeys, pso_home: Path, backend: KeyringBackend
) -> None:
    keys = make_keys(backend=backend)
    assert keys.warning is not None
    assert keys.warning.startswith("No secure system keyring is available")
    assert keys.warning.endswith("ask IT to enable the system keyring.")
    assert "available (no system keyring is available)" not in keys.warning  # the reason said once
    key = keys.create("ward3", SECRET_A)
    assert keys.storage_mode("ward3") == "password_file"
    key_file = pso_home / "profiles" / "ward3" / "wrapped-key.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    text = key_file.read_text()
    assert key.hex() not in text and SECRET_A not in text
    assert json.loads(text)["kdf"]["algorithm"] == "argon2id"
    # Nothing went into the weak keyring.
    if isinstance(backend, MemoryKeyring):
        assert backend.entries == {}
    record = profile_record(pso_home, "ward3")
    assert record["keyring_backend"] is None and record["keyring_username"] is None
    assert make_keys(backend=backend).unlock("ward3", SECRET_A) == key
    with pytest.raises(WrongSecretError):
        keys.unlock("ward3", SECRET_B)


@pytest.mark.parametrize("backend", _weak_backends(), ids=WEAK_IDS)
def test_policy_requiring_an_os_keyring_refuses_weak_backends(
    make_keys: MakeKeys, pso_home: Path, backend: KeyringBackend
) -> None:
    keys = make_keys(backend=backend, policy=REQUIRE)
    assert keys.warning is None
    with pytest.raises(InsecureKeyringError, match="IT policy requires one"):
        keys.create("ward3", SECRET_A)
    assert not (pso_home / "profiles" / "ward3").exists()
    if isinstance(backend, MemoryKeyring):
        assert backend.entries == {}


def test_policy_blocks_an_existing_file_profile_without_a_secure_keyring(make_keys: MakeKeys) -> None:
    fail = fail_keyring()
    make_keys(backend=fail).create("ward3", SECRET_A)
    with pytest.raises(InsecureKeyringError, match="IT policy forbids"):
        make_keys(backend=fail, policy=REQUIRE).unlock("ward3", SECRET_A)


def test_missing_key_file_is_reported_and_not_replaced(make_keys: MakeKeys, pso_home: Path) -> None:
    keys = make_keys(backend=fail_keyring())
    keys.create("ward3", SECRET_A)
    key_file = pso_home / "profiles" / "ward3" / "wrapped-key.json"
    key_file.unlink()
    with pytest.raises(KeyEntryMissingError, match="key file of profile 'ward3' is missing"):
        keys.unlock("ward3", SECRET_A)
    assert not key_file.exists()


def test_file_key_moves_into_the_keyring_once_one_is_available(
    make_keys: MakeKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    key = make_keys(backend=fail_keyring()).create("ward3", SECRET_A)
    keys = make_keys()  # the memory keyring, secure
    # Even when IT now requires the OS keyring: the file key is read once to move it.
    assert make_keys(policy=REQUIRE).unlock("ward3", SECRET_A) == key
    assert keys.storage_mode("ward3") == "os_keyring"
    assert not (pso_home / "profiles" / "ward3" / "wrapped-key.json").exists()
    assert entry(memory_keyring, pso_home, "ward3") is not None
    assert keys.unlock("ward3", SECRET_A) == key


def test_file_key_stays_put_while_the_keyring_is_locked(
    make_keys: MakeKeys, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    key = make_keys(backend=fail_keyring()).create("ward3", SECRET_A)
    memory_keyring.locked = True
    keys = make_keys()
    assert keys.unlock("ward3", SECRET_A) == key
    assert keys.storage_mode("ward3") == "password_file"
    assert (pso_home / "profiles" / "ward3" / "wrapped-key.json").exists()


def test_password_change_in_file_mode(make_keys: MakeKeys) -> None:
    keys = make_keys(backend=fail_keyring())
    key = keys.create("ward3", SECRET_A)
    keys.change_secret("ward3", SECRET_A, SECRET_B)
    assert keys.unlock("ward3", SECRET_B) == key
    with pytest.raises(WrongSecretError):
        keys.unlock("ward3", SECRET_A)


# -- the policy file --------------------------------------------------------------------------------------


def test_no_policy_file_means_defaults(pso_home: Path) -> None:
    assert KeyPolicy.load(pso_home) == KeyPolicy(allow_file_fallback=True, kdf=None)


def test_policy_file_in_the_data_root(pso_home: Path) -> None:
    (pso_home / "policy.json").write_text('{"require_os_keyring": true}')
    assert KeyPolicy.load(pso_home).allow_file_fallback is False


def test_policy_file_named_by_environment_wins(
    pso_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pso_home / "policy.json").write_text('{"require_os_keyring": true}')
    it_policy = tmp_path / "it-policy.json"
    it_policy.write_text(json.dumps({"require_os_keyring": False, "kdf": {"memory_kib": 32768}}))
    monkeypatch.setenv("PSO_DESKTOP_POLICY", str(it_policy))
    policy = KeyPolicy.load(pso_home)
    assert policy.allow_file_fallback is True
    assert policy.kdf == KdfParams(memory_kib=32768, time_cost=3, parallelism=4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{require_os_keyring: true", "not valid"),
        ('["require_os_keyring"]', "not valid"),
        ('{"require_os_keyring": "yes"}', "not valid"),
        ('{"require_os_keyrng": true}', "unknown settings \\(require_os_keyrng\\)"),
        ('{"kdf": {"memory_kib": 1024}}', "below 19 MiB"),
        ('{"kdf": {"time_cost": 1}}', "below 19 MiB"),
        ('{"kdf": {"memory_kib": "lots"}}', "not valid"),
        ('{"kdf": {"salt": "x"}}', "not valid"),
        ('{"pso_server": {"url": "http://pso.example.org"}}', "https://"),
        ('{"pso_server": "https://pso.example.org"}', "https://"),
        ('{"pso_server": {"url": "https://pso.example.org", "proxi": "system"}}', 'invalid "pso_server"'),
        ('{"pso_server": {"url": "https://pso.example.org", "ca_file": ""}}', 'invalid "pso_server"'),
        ('{"proxy_from_environment": "yes"}', "not valid"),
        ('{"proxy_from_environmnet": true}', "unknown settings"),
    ],
)
def test_unusable_policy_files_are_refused_not_ignored(pso_home: Path, text: str, message: str) -> None:
    (pso_home / "policy.json").write_text(text)
    with pytest.raises(PolicyError, match=message):
        KeyPolicy.load(pso_home)


def test_policy_can_fix_the_pso_server(pso_home: Path) -> None:
    server = {"url": "https://pso.example.org", "ca_file": "/etc/pso/hospital-ca.pem", "proxy": "system"}
    (pso_home / "policy.json").write_text(json.dumps({"pso_server": server}))
    assert KeyPolicy.load(pso_home).server == ServerPolicy(**server)
    (pso_home / "policy.json").write_text(json.dumps({"pso_server": {"url": "https://pso.example.org"}}))
    assert KeyPolicy.load(pso_home).server == ServerPolicy("https://pso.example.org")


def test_only_policy_makes_the_proxy_variables_the_system_proxy(pso_home: Path) -> None:
    assert KeyPolicy.load(pso_home).proxy_from_environment is False
    (pso_home / "policy.json").write_text(json.dumps({"proxy_from_environment": True}))
    assert KeyPolicy.load(pso_home).proxy_from_environment is True


def test_policy_named_by_environment_must_exist(
    pso_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSO_DESKTOP_POLICY", str(tmp_path / "missing.json"))
    with pytest.raises(PolicyError, match="does not exist"):
        KeyPolicy.load(pso_home)


def test_profile_keys_reads_the_policy_and_its_kdf_cost(
    pso_home: Path, memory_keyring: MemoryKeyring, clock: FakeClock
) -> None:
    (pso_home / "policy.json").write_text(
        json.dumps({"require_os_keyring": True, "kdf": {"memory_kib": 19456, "time_cost": 2, "parallelism": 1}})
    )
    with pytest.raises(InsecureKeyringError):
        ProfileKeys(pso_home, backend=fail_keyring(), clock=clock).create("ward3", SECRET_A)
    keys = ProfileKeys(pso_home, clock=clock)  # default backend: the memory keyring
    keys.create("ward3", SECRET_A)
    stored = entry(memory_keyring, pso_home, "ward3")
    assert stored is not None
    assert json.loads(stored)["kdf"]["memory_kib"] == 19456


def test_policy_sets_how_long_a_sync_keeps_retrying(pso_home: Path) -> None:
    assert KeyPolicy.load(pso_home).sync_max_wait_seconds is None  # each tool's own default
    for seconds in (0, 1.5, 900):
        (pso_home / "policy.json").write_text(json.dumps({"sync": {"max_wait_seconds": seconds}}))
        assert KeyPolicy.load(pso_home).sync_max_wait_seconds == seconds
    for bad in (
        {"max_wait_seconds": -1},
        {"max_wait_seconds": True},
        {"max_wait_seconds": "10 min"},
        {"max_wait_seconds": 90_000},
        {"max_wait": 60},
        600,
    ):
        (pso_home / "policy.json").write_text(json.dumps({"sync": bad}))
        with pytest.raises(PolicyError, match='"sync"'):
            KeyPolicy.load(pso_home)


def test_policy_times_the_windows_automatic_sending(pso_home: Path) -> None:
    from pso_desktop.sync.schedule import DEFAULT_PROBE, DEFAULT_SEND_INTERVAL, DEFAULT_STATUS_INTERVAL, Schedule

    assert Schedule.from_policy(KeyPolicy.load(pso_home)) == Schedule()  # no policy: the defaults
    assert (Schedule().send_interval, Schedule().status_interval, Schedule().probe) == (
        DEFAULT_SEND_INTERVAL,
        DEFAULT_STATUS_INTERVAL,
        DEFAULT_PROBE,
    )
    given = {
        "send_interval_seconds": 60,
        "status_interval_seconds": 1800,
        "probe_seconds": 10,
        "probe_max_seconds": 120,
    }
    (pso_home / "policy.json").write_text(json.dumps({"sync": {"max_wait_seconds": 900, **given}}))
    policy = KeyPolicy.load(pso_home)
    assert policy.sync_max_wait_seconds == 900
    assert Schedule.from_policy(policy) == Schedule(60, 1800, 10, 120)
    # A cap below the first wait is raised to it: the back-off never waits less than IT's probe interval.
    (pso_home / "policy.json").write_text(json.dumps({"sync": {"probe_seconds": 90, "probe_max_seconds": 30}}))
    assert Schedule.from_policy(KeyPolicy.load(pso_home)).probe_max == 90
    for bad in (
        {"send_interval_seconds": 0},
        {"status_interval_seconds": "15 min"},
        {"probe_seconds": True},
        {"probe_seconds": 7200},
        {"probe_max_seconds": -5},
        {"interval": 60},
    ):
        (pso_home / "policy.json").write_text(json.dumps({"sync": bad}))
        with pytest.raises(PolicyError, match='"sync"'):
            KeyPolicy.load(pso_home)
