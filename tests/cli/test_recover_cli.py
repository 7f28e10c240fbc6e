"""Backups and ``pso-desktop recover``, run for real in a subprocess against real SQLCipher files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pso_desktop.domain.samples import sample_report
from pso_desktop.texts import LOCKOUT_NOTE
from tests.support.cli import SECRET, run_cli


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


def test_a_command_takes_a_backup_when_one_is_due(profile: Path):
    assert backups(profile) == []  # an empty profile has nothing to back up
    add_reports(profile, 3, seed=1)
    first = backups(profile)
    assert len(first) == 1
    add_reports(profile, 2, seed=2)
    assert backups(profile) == first  # the newest is minutes old: not due yet
