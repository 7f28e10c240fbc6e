"""The real CLI against the real Secret Service (gnome-keyring under dbus-run-session; see scripts/test-all.sh)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pso_desktop.paths import resources_dir
from tests.support.cli import SECRET, run_cli

pytestmark = [
    pytest.mark.secret_service,
    pytest.mark.skipif(
        os.environ.get("PSO_TEST_SECRET_SERVICE") != "1",
        reason="needs the real Secret Service: run tests/security/run_secret_service_tier.sh",
    ),
]
REAL = {"PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"}


def test_profile_key_lives_in_the_os_keyring_and_unlocks_in_a_new_process(pso_home: Path):
    result = run_cli(pso_home, "profile", "create", "ward7", "--password-stdin", stdin=SECRET + "\n", **REAL)
    assert result.code == 0, result.err
    assert "warning" not in result.err
    folder = pso_home / "profiles" / "ward7"
    assert not (folder / "wrapped-key.json").exists(), "the key must be in the keyring, not in a file"
    example = resources_dir() / "examples" / "fall-incident.json"
    result = run_cli(
        pso_home, "report", "add", str(example), "--submit", "--password-stdin", stdin=SECRET + "\n", **REAL
    )
    assert result.code == 0, result.err
    result = run_cli(pso_home, "status", "--json", "--password-stdin", stdin=SECRET + "\n", **REAL)
    assert json.loads(result.out)["queued"] == 1
    wrong = run_cli(pso_home, "status", "--json", "--password-stdin", stdin="not the secret\n", **REAL)
    assert wrong.code == 1 and "Traceback" not in wrong.err
