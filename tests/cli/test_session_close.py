"""A profile that cannot record its closing (the disk fills while the "lock" audit entry is written) never
changes what the command tells the user: its own result and exit code, or its own error, come first; the failed
close is logged (type and place only) and, after a success, said on a second line. The window's lock says it is
locked and that the closing was not recorded, not that something was not saved.

The disk is filled for real: the process runs under ``strace``, which makes the database's WAL writes fail with
ENOSPC from the last one on. A first run on a copy of the same profile counts those writes, so the last one is
the closing entry's (the last transaction of every command).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from pso_desktop.paths import profile_names
from tests.support.cli import SECRET, Result, cli_env, run_cli
from tests.support.enospc import STRACE, run_with_wal_writes_failing

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "examples" / "fall-incident.json"
PROFILE = "nurse"
pytestmark = pytest.mark.skipif(STRACE is None, reason="strace injects the full disk")


def run_traced(home: Path, *args: str, fail_from: int | None = None) -> tuple[Result, int]:
    """Runs ``pso-desktop ARGS --password-stdin`` under strace (see ``run_with_wal_writes_failing``)."""
    return run_with_wal_writes_failing(
        [sys.executable, "-m", "pso_desktop", *args, "--profile", PROFILE, "--password-stdin"],
        home / "profiles" / PROFILE / "reports.db-wal",
        env=cli_env(home),
        stdin=(SECRET + "\n").encode(),
        fail_from=fail_from,
    )


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    """A profile, and an identical copy of it for the counting run."""
    home = tmp_path / "home"
    created = run_cli(home, "profile", "create", PROFILE, "--password-stdin", stdin=SECRET + "\n")
    assert created.code == 0, created.err
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    return home, copy


def closing_fails(homes: tuple[Path, Path], *args: str) -> Result:
    """Runs the command with the disk filling at its closing audit entry (after its own work)."""
    home, copy = homes
    counted, writes = run_traced(copy, *args)
    assert writes >= 2, counted.err  # the unlock and lock entries at least: the trace sees the WAL
    result, _ = run_traced(home, *args, fail_from=writes)
    assert "Traceback" not in result.err
    return result


def assert_close_logged(home: Path) -> None:
    log = (home / "logs" / "pso-desktop.log").read_text()
    assert "profile closed without its lock audit entry: DiskFullError at " in log  # what IT needs, no values


def status(home: Path) -> dict[str, int]:
    result = run_cli(home, "status", "--json", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    counts: dict[str, int] = json.loads(result.out)
    return counts


def test_a_command_that_succeeded_says_so_and_exits_0_when_the_closing_cannot_be_recorded(
    homes: tuple[Path, Path],
) -> None:
    result = closing_fails(homes, "report", "add", str(EXAMPLE))
    assert result.code == 0, result.err
    assert result.out == "1 report(s) added.\n"
    lines = [line for line in result.err.splitlines() if "keyring" not in line]
    assert len(lines) == 1, result.err
    assert lines[0].startswith(
        "pso-desktop: warning: The profile was closed and what was saved before stays saved"
    )
    assert "the disk is full" in lines[0]
    assert "not saved" not in result.err
    home, _ = homes
    assert profile_names(home) == [PROFILE]
    assert status(home)["draft"] == 1  # the report it acknowledged is there
    assert_close_logged(home)


def test_a_command_that_failed_keeps_its_own_error_when_the_closing_cannot_be_recorded(
    homes: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "no-such-folder" / "reports.json"
    result = closing_fails(homes, "export", "--format", "json", "--out", str(out))
    assert result.code == 1
    lines = [line for line in result.err.splitlines() if "keyring" not in line]
    assert lines == [f"pso-desktop: The folder {out.parent} does not exist; create it or choose another place."]
    assert_close_logged(homes[0])


def test_the_window_locked_on_a_full_disk_says_it_is_locked_not_that_something_was_not_saved(
    homes: tuple[Path, Path],
) -> None:
    """The real window in a subprocess (tests/support/gui_driver.py): unlock, Ctrl+L; the status bar's line."""
    home, copy = homes

    def lock_in_the_window(at: Path, fail_from: int | None = None) -> tuple[Result, int]:
        return run_with_wal_writes_failing(
            [sys.executable, "-m", "tests.support.gui_driver", PROFILE, "lock"],
            at / "profiles" / PROFILE / "reports.db-wal",
            env=cli_env(at, QT_QPA_PLATFORM="offscreen", GUI_TEST_SECRET=SECRET),
            fail_from=fail_from,
        )

    counted, writes = lock_in_the_window(copy)
    assert counted.code == 0 and counted.out == "\n", counted.err  # locked, nothing to say
    assert writes >= 2
    result, _ = lock_in_the_window(home, fail_from=writes)
    assert result.code == 0, result.err
    assert result.out.startswith("The profile was closed and what was saved before stays saved"), result.out
    assert "not saved" not in result.out
    assert "Traceback" not in result.err
    assert_close_logged(home)
