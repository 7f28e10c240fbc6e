"""A profile that cannot record its closing (the disk fills while the "lock" audit entry is written) never
changes what the command tells the user: its own result and exit code, or its own error, come first; the failed
close is logged (type and place only) and, after a success, said on a second line.

The disk is filled for real: the CLI runs under ``strace``, which makes the database's WAL writes fail with
ENOSPC from the last one on. A first run on a copy of the same profile counts those writes, so the last one is
the closing entry's (the last transaction of every command).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pso_desktop.paths import profile_names
from tests.support.cli import SECRET, Result, cli_env, run_cli

STRACE = shutil.which("strace")
EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "examples" / "fall-incident.json"
PROFILE = "nurse"

pytestmark = pytest.mark.skipif(STRACE is None, reason="strace injects the full disk")


def run_traced(home: Path, *args: str, fail_from: int | None = None) -> tuple[Result, int]:
    """Runs ``pso-desktop ARGS --password-stdin`` under strace; returns its result and how many writes it made
    to the profile's WAL. With ``fail_from``, that write and every later one fail with ENOSPC."""
    assert STRACE is not None
    wal = home / "profiles" / PROFILE / "reports.db-wal"
    trace = home.parent / f"{home.name}.strace"
    inject = [] if fail_from is None else ["-e", f"inject=pwrite64:error=ENOSPC:when={fail_from}+"]
    command = [sys.executable, "-m", "pso_desktop", *args, "--profile", PROFILE, "--password-stdin"]
    proc = subprocess.run(
        [STRACE, "-f", "-qq", "-o", str(trace), "-e", "trace=pwrite64", *inject, "-P", str(wal), *command],
        input=(SECRET + "\n").encode(),
        capture_output=True,
        env=cli_env(home),
        timeout=120,
        check=False,
    )
    writes = sum(1 for line in trace.read_text().splitlines() if "pwrite64(" in line)
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode()), writes


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
