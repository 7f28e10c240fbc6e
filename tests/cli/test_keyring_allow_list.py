"""Issue 9, item 6: a secure keyring is one we know. Replays the audit's attack with the real CLI in a subprocess:
a custom keyring backend (loaded through PYTHON_KEYRING_BACKEND from a module on PYTHONPATH) that keeps entries
in a world-readable file must not receive a wrapped key, with or without ``require_os_keyring``, unless IT
policy names it; and a broken PYTHON_KEYRING_BACKEND is one sentence, not a traceback."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.support.cli import SECRET, Result, run_cli

REPO = Path(__file__).resolve().parents[2]
FILE_KEYRING = "tests.support.file_keyring.WorldReadableKeyring"
IMPOSTOR = "tests.support.file_keyring.SecretServiceImpostor"


def _create(home: Path, tmp_path: Path, backend: str, policy: dict[str, object] | None = None) -> Result:
    env = {
        "PYTHONPATH": str(REPO),
        "PYTHON_KEYRING_BACKEND": backend,
        "PSO_TEST_FILE_KEYRING": str(tmp_path / "kr"),
    }
    if policy is not None:
        (tmp_path / "policy.json").write_text(json.dumps(policy))
        env["PSO_DESKTOP_POLICY"] = str(tmp_path / "policy.json")
    return run_cli(home, "profile", "create", "ward3", "--password-stdin", stdin=SECRET + "\n", **env)  # type: ignore[arg-type]


def _record(home: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((home / "profiles" / "ward3" / "profile.json").read_text())
    return data


@pytest.mark.parametrize(
    "backend",
    [FILE_KEYRING, IMPOSTOR, "tests.support.memory_keyring.MemoryKeyring"],
    ids=["custom-file-backend", "claims-secret-service-name", "test-memory-keyring"],
)
def test_an_unknown_backend_gets_no_key_and_the_fallback_is_said(
    pso_home: Path, tmp_path: Path, backend: str
) -> None:
    result = _create(pso_home, tmp_path, backend)
    assert result.code == 0, result.err
    assert "No secure system keyring is available" in result.err
    assert "not a known system keychain" in result.err
    assert "Traceback" not in result.err
    assert _record(pso_home)["storage_mode"] == "password_file"  # the documented fallback
    assert not (tmp_path / "kr").exists()  # nothing was written to the world-readable file
    # and the profile works: unlocked from its password-protected key file
    status = run_cli(
        pso_home,
        "status",
        "--json",
        "--password-stdin",
        stdin=SECRET + "\n",
        PYTHONPATH=str(REPO),
        PYTHON_KEYRING_BACKEND=backend,
        PSO_TEST_FILE_KEYRING=str(tmp_path / "kr"),
    )
    assert status.code == 0, status.err
    assert not (tmp_path / "kr").exists()


@pytest.mark.parametrize("backend", [FILE_KEYRING, IMPOSTOR])
def test_an_unknown_backend_is_refused_when_policy_requires_an_os_keyring(
    pso_home: Path, tmp_path: Path, backend: str
) -> None:
    result = _create(pso_home, tmp_path, backend, {"require_os_keyring": True})
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "IT policy requires one" in lines[0], result.err
    assert not (pso_home / "profiles" / "ward3" / "profile.json").exists()
    assert not (tmp_path / "kr").exists()


def test_a_backend_it_policy_names_is_used(pso_home: Path, tmp_path: Path) -> None:
    result = _create(
        pso_home, tmp_path, FILE_KEYRING, {"require_os_keyring": True, "allowed_keyring_backends": [FILE_KEYRING]}
    )
    assert result.code == 0, result.err
    assert result.err == ""
    record = _record(pso_home)
    assert record["storage_mode"] == "os_keyring" and record["keyring_backend"] == FILE_KEYRING
    entries = json.loads((tmp_path / "kr").read_text())
    assert len(entries) == 1  # the wrapped key, where IT said keys go
    assert stat.S_IMODE((tmp_path / "kr").stat().st_mode) == 0o644


def test_naming_a_class_does_not_admit_an_impostor_of_another_name(pso_home: Path, tmp_path: Path) -> None:
    # IT names the Secret Service by its path; a class that only claims that path is still refused.
    policy = {"require_os_keyring": True, "allowed_keyring_backends": ["keyring.backends.SecretService.Keyring"]}
    result = _create(pso_home, tmp_path, IMPOSTOR, policy)
    assert result.code == 1 and "IT policy requires one" in result.err
    assert not (tmp_path / "kr").exists()


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("", "PYTHON_KEYRING_BACKEND is set but empty"),
        ("   ", "PYTHON_KEYRING_BACKEND is set but empty"),
        ("keyring.backends.SecretServic.Keyring", "keyring.backends.SecretServic.Keyring named by"),
        ("keyring.backends.SecretService.Keyrin", "keyring.backends.SecretService.Keyrin named by"),
        ("keyring.backends.SecretService", "named by PYTHON_KEYRING_BACKEND cannot be loaded"),
        ("SecretService", "does not name a keyring backend class"),
        ("keyring.backends.Windows.WinVaultKeyring", "WinVaultKeyring named by"),  # cannot run here
    ],
    ids=["empty", "blank", "misspelt-module", "misspelt-class", "module-only", "no-dots", "other-platform"],
)
def test_a_broken_backend_setting_is_one_sentence(pso_home: Path, tmp_path: Path, value: str, said: str) -> None:
    result = _create(pso_home, tmp_path, value)
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert said in lines[0] and "correct or unset it" in lines[0]
    assert "Traceback" not in result.err
    assert not (pso_home / "profiles" / "ward3").exists()


def test_a_bad_policy_list_is_one_sentence(pso_home: Path, tmp_path: Path) -> None:
    result = _create(pso_home, tmp_path, FILE_KEYRING, {"allowed_keyring_backends": "tests.support.file_keyring"})
    assert result.code == 1
    assert "allowed_keyring_backends" in result.err and len(result.err.strip().splitlines()) == 1


def test_a_profile_kept_in_a_backend_policy_no_longer_names_is_not_read(pso_home: Path, tmp_path: Path) -> None:
    # As a profile made while the custom backend was trusted (before the allow-list, or before IT dropped it).
    assert _create(pso_home, tmp_path, FILE_KEYRING, {"allowed_keyring_backends": [FILE_KEYRING]}).code == 0
    (tmp_path / "policy.json").write_text(json.dumps({}))
    entries_before = (tmp_path / "kr").read_bytes()
    result = run_cli(
        pso_home,
        "status",
        "--password-stdin",
        stdin=SECRET + "\n",
        PYTHONPATH=str(REPO),
        PYTHON_KEYRING_BACKEND=FILE_KEYRING,
        PSO_TEST_FILE_KEYRING=str(tmp_path / "kr"),
        PSO_DESKTOP_POLICY=str(tmp_path / "policy.json"),
    )
    assert result.code == 1
    last = result.err.strip().splitlines()[-1]
    assert "not a known system keychain" in last and "allowed_keyring_backends" in last, result.err
    assert (tmp_path / "kr").read_bytes() == entries_before
