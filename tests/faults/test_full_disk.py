"""A full disk under ``report add`` and the form's autosave.

The profile lives on a small tmpfs (mounted here as root, unmounted afterwards), filled up to a few
kilobytes of slack; commands run until the disk refuses. A command that fails must say so (exit 1, one line
on stderr, no traceback), nothing acknowledged may be lost, and once space is freed the profile opens with
every acknowledged report. Where mounting is refused it skips; test_enospc.py injects ENOSPC with strace instead
(and also as root, since it can hit a checkpoint's writes exactly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.autosave_child import narrative
from tests.faults.checks import (
    PROFILE,
    SECRET,
    acknowledged,
    add_reports,
    all_or_none,
    clean_failure,
    kill_env,
    lost,
    new_profile,
    open_profile,
    sample_reports,
)
from tests.support.cli import run_cli

pytestmark = [pytest.mark.faults, pytest.mark.slow]

DISK = "6m"
SLACK_STEPS = (
    0,
    96 * 1024,
    256 * 1024,
)  # space freed before each round of report add (0: a disk full to the byte)
AUTOSAVE_SLACK = (
    128 * 1024
)  # then freed again for the round's autosave, so it saves a while before the disk refuses


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; test_enospc.py covers a full disk without it")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs was refused here; test_enospc.py covers a full disk")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Fills the file system holding ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    chunk = b"\0" * (64 * 1024)
    # Unbuffered: a buffered file keeps the chunk the disk refused and raises ENOSPC again when it is closed.
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
    # Whatever a partial last chunk left: write single bytes until the disk refuses those too.
    with filler.open("ab", buffering=0) as out:
        try:
            while True:
                out.write(b"\0")
        except OSError:
            pass
    return filler


def free(filler: Path, size: int) -> None:
    with filler.open("r+b") as out:
        out.truncate(max(0, filler.stat().st_size - size))


def test_full_disk_report_add_and_autosave(small_disk: Path, tmp_path: Path) -> None:
    home = new_profile(small_disk / "home")
    acked: dict[str, dict[str, Any]] = {}
    earlier = sample_reports(seed=900, count=20)
    add_reports(home, earlier, submit=True)
    acked |= {report["id"]: report for report in earlier}
    filler = fill(small_disk)
    problems: list[str] = []
    failed_adds = drafts = 0
    refused: list[list[str]] = []  # the reports of each command that said it failed
    seed = 1000
    for round_number, slack in enumerate(SLACK_STEPS, start=1):
        free(filler, slack)
        for _ in range(60):  # report add until the disk refuses
            seed += 1
            batch = sample_reports(seed=seed, count=8)
            payload = "\n".join(json.dumps(report) for report in batch)
            result = run_cli(
                home, "report", "add", "-", "--submit", "--password-stdin", stdin=f"{SECRET}\n{payload}\n"
            )
            if result.code == 0:
                acked |= {report["id"]: report for report in batch}
                continue
            failed_adds += 1
            refused.append([report["id"] for report in batch])
            problems += clean_failure(result, f"round {round_number}: report add on a full disk")
            break
        else:
            problems.append(f"round {round_number}: the disk never filled up")
        # The form's autosave on the same disk: saves until one fails, which the child reports.
        free(filler, AUTOSAVE_SLACK)
        seed += 1
        draft = sample_reports(seed=seed, count=1)[0]
        draft_file = tmp_path / "draft.json"
        draft_file.write_text(json.dumps(draft), "utf-8")
        child = subprocess.run(
            [sys.executable, "-m", "tests.faults.autosave_child", PROFILE, str(draft_file), "400"],
            input=f"{SECRET}\n".encode(),
            capture_output=True,
            env=kill_env(home),
            timeout=300,
            check=False,
        )
        out, err = child.stdout.decode(), child.stderr.decode()
        last = acknowledged(out)
        said = '"error"' in out
        if child.returncode != 1 or not said or "Traceback" in err:
            problems.append(
                f"round {round_number}: autosave on a full disk ended with exit {child.returncode}, "
                f"{'an error line' if said else 'no error line'}, traceback: {'Traceback' in err}"
            )
        if last:
            drafts += 1
            acked[draft["id"]] = draft | {"narrative": narrative(last)}
            acked[draft["id"]]["_saves"] = last

    filler.unlink()
    opened = open_profile(home, tmp_path)
    if opened.problem is not None:
        problems.append(f"after freeing space: {opened.problem}")
    else:
        for report_id, report in list(acked.items()):
            last = report.pop("_saves", None)
            stored = opened.reports.get(report_id)
            if last is not None and stored is not None:
                saved = int(str(stored["narrative"]).split()[1])
                if saved in (last, last + 1):
                    acked[report_id] = report | {"narrative": narrative(saved)}
        problems += lost(acked, opened.reports)
        problems += [half for ids in refused if (half := all_or_none(ids, opened.reports)) is not None]
    if failed_adds != len(SLACK_STEPS):
        problems.append(f"report add failed {failed_adds} times in {len(SLACK_STEPS)} rounds")
    if not drafts:
        problems.append("no autosave was acknowledged before the disk refused")
    assert not problems, "\n".join(problems)


def test_status_on_a_full_disk_succeeds_and_warns_that_the_unlock_was_not_recorded(small_disk: Path) -> None:
    """'status' only reads: a disk with room for the -shm but not for the unlock's audit entry must not turn its
    answer into "the disk is full, so the last change was not saved". The answer stands (exit 0), and the
    unrecorded unlock is one warning line after it."""
    home = new_profile(small_disk / "home")
    reports = sample_reports(seed=950, count=12)
    add_reports(home, reports, submit=True)
    filler = fill(small_disk)
    free(filler, 36 * 1024)  # the -shm's 32 KiB fit; the -wal frames of an audit entry do not

    result = run_cli(home, "status", "--json", "--password-stdin", stdin=f"{SECRET}\n")

    assert result.code == 0, result.err
    assert json.loads(result.out)["queued"] == 12
    assert "Traceback" not in result.err
    assert result.err.strip().splitlines()[-1] == (
        "pso-desktop: warning: Nothing was changed, but the audit log could not record this unlock because the "
        "disk is full; free some disk space, and tell IT if it happens again."
    )
    # A command that writes still says the disk is full, and nothing of it is kept.
    refused = run_cli(
        home, "report", "add", "-", "--password-stdin", stdin=f"{SECRET}\n{json.dumps(sample_reports(951, 1)[0])}"
    )
    assert refused.code == 1 and "The disk is full" in refused.err

    filler.unlink()
    opened = run_cli(home, "status", "--json", "--password-stdin", stdin=f"{SECRET}\n")
    assert opened.code == 0, opened.err
    assert json.loads(opened.out) == json.loads(result.out)
    assert "warning: Nothing was changed" not in opened.err
