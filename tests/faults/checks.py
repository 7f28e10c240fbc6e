"""What the fault tier checks after every kill or full disk, through the real CLI only.

"The profile opens": ``status --json`` and ``export --format json`` both exit 0 (no "contact IT" lock-out).
"Nothing acknowledged is lost": every report the killed command acknowledged is in the export, byte for byte
the content that was given. Problems are returned as PHI-free sentences (report UUIDs and counts only), so a
scenario can try every kill point and list all that failed.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from tests.support.cli import SECRET, Result, cli_env, run_cli
from tests.support.faults import Run

PROFILE = "nurse"
REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pso_desktop", *args]


def kill_env(home: Path) -> dict[str, str]:
    """The killed command's environment. Unbuffered stdout: an acknowledgement is on the pipe the moment the
    command prints it (as on a terminal), so a kill just after it still counts it as given."""
    return cli_env(home, PYTHONUNBUFFERED="1")


def reason(err: str) -> str:
    """The CLI's one-line reason (warnings about the keyring left out)."""
    lines = [line for line in err.strip().splitlines() if line and "warning:" not in line]
    return lines[-1] if lines else "(nothing on stderr)"


@dataclass
class Opened:
    problem: str | None
    status: dict[str, int] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)


def open_profile(home: Path, scratch: Path) -> Opened:
    """Opens the profile with the real CLI: its counts and every report it exports."""
    status = run_cli(home, "status", "--json", "--password-stdin", stdin=SECRET + "\n")
    if status.code != 0:
        return Opened(f"the profile does not open (status exit {status.code}: {reason(status.err)})")
    out = scratch / "export.json"
    exported = run_cli(
        home, "export", "--format", "json", "--out", str(out), "--password-stdin", stdin=SECRET + "\n"
    )
    if exported.code != 0:
        return Opened(f"the profile does not export (exit {exported.code}: {reason(exported.err)})")
    document = json.loads(out.read_text("utf-8"))
    out.unlink()
    return Opened(None, json.loads(status.out), {report["id"]: report for report in document["reports"]})


def lost(expected: Mapping[str, Mapping[str, Any]], found: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each expected report that is missing or whose content differs (by UUID only)."""
    problems = []
    for report_id, report in expected.items():
        stored = found.get(report_id)
        if stored is None:
            problems.append(f"acknowledged report {report_id} is missing")
        elif dict(stored) != dict(report):
            fields = sorted(k for k in set(stored) | set(report) if stored.get(k) != report.get(k))
            problems.append(f"acknowledged report {report_id} changed ({', '.join(fields)})")
    return problems


def all_or_none(ids: list[str], found: Mapping[str, Any]) -> str | None:
    """One transaction: after an unacknowledged command, either all of its reports are there or none."""
    present = sum(1 for report_id in ids if report_id in found)
    if 0 < present < len(ids):
        return f"half a command was stored: {present} of {len(ids)} reports"
    return None


def sample_reports(seed: int, count: int) -> list[dict[str, Any]]:
    """Valid synthetic reports (no real patient data), as a client exports them."""
    rng = random.Random(seed)
    return [validate_report(sample_report(rng, i)).export() for i in range(count)]


def fresh_copy(template: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest, symlinks=True)
    return dest


def new_profile(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    created = run_cli(home, "profile", "create", PROFILE, "--password-stdin", stdin=SECRET + "\n")
    assert created.code == 0, reason(created.err)
    return home


def add_reports(home: Path, reports: list[dict[str, Any]], *, submit: bool) -> None:
    lines = "\n".join(json.dumps(report) for report in reports)
    args = ["report", "add", "-", "--password-stdin", *(["--submit"] if submit else [])]
    result = run_cli(home, *args, stdin=f"{SECRET}\n{lines}\n", timeout=300)
    assert result.code == 0, reason(result.err)


def clean_failure(result: Result | Run, what: str) -> list[str]:
    """A failed command says so: exit 1 and one line on stderr (keyring warnings aside), no traceback."""
    problems = []
    lines = [line for line in result.err.strip().splitlines() if "warning:" not in line]
    if result.code != 1:
        problems.append(f"{what}: exit {result.code}, not 1")
    if "Traceback" in result.err or len(lines) != 1:
        problems.append(f"{what}: stderr is not one line ({len(lines)} lines, first: {lines[:1]})")
    return problems


def summary(failures: list[str], tried: int, killed: int) -> str:
    shown = "\n  ".join(failures[:40])
    more = f"\n  ... and {len(failures) - 40} more" if len(failures) > 40 else ""
    return f"{len(failures)} problem(s) in {tried} kill points ({killed} killed):\n  {shown}{more}"


__all__ = ["PROFILE", "REPO_ROOT", "SECRET", "Opened", "cli_argv", "cli_env"]


def acknowledged(out: str) -> int:
    """The last save the child acknowledged (complete lines only: a line cut by the kill was not given)."""
    last = 0
    for line in out.splitlines(keepends=True):
        if line.endswith("\n") and '"ack"' in line:
            last = int(json.loads(line)["ack"])
    return last
