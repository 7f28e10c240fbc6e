"""Killing the real ``pso-desktop`` at chosen write calls, with ``strace -e inject``.

A scenario is run twice or more: once under a plain trace that lists every write call the process makes to the
profile's database and its WAL (:func:`trace_writes`), then once per chosen call under
``strace -e inject=SYSCALL:signal=SIGKILL:when=N -P FILE`` (:func:`kill_at`), which kills the process as it
enters the Nth such call on that file (the call itself never runs). strace counts ``when=`` per system call
and per thread, after the ``-P`` path filter, so a point is the pair (file, system call) and its ordinal; the
database is written by one thread in every command, so the ordinals of a dry trace name the same calls in a
killed run of the same command on a copy of the same profile.

Only write calls are listed (``pwrite64``/``write``/``fsync``/``fdatasync``/``ftruncate``/``rename``/
``unlink``): SQLite writes WAL frames, then fsyncs them (the commit); the database file itself is only
written by WAL checkpoints (automatic past 1,000 WAL pages, and when the last connection closes), so every
call on ``db`` is inside a checkpoint.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STRACE = shutil.which("strace")
REPO_ROOT = Path(__file__).resolve().parents[2]
WRITE_CALLS = ("pwrite64", "write", "fsync", "fdatasync", "ftruncate", "rename", "unlink")
# "1234 pwrite64(5</path/reports.db-wal>, ..." (with -y) or '1234 unlink("/path/reports.db-wal") = 0'
_FD_CALL = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\w+)\(\d+<([^>]*)>")
_PATH_CALL = re.compile(r'^(?:\[pid\s+)?(\d+)\]?\s+(\w+)\("([^"]*)"')


def database_files(home: Path, profile: str) -> dict[str, Path]:
    """The profile's database and WAL, by the names kill points use ("db", "wal")."""
    db = home / "profiles" / profile / "reports.db"
    return {"db": db, "wal": db.with_name(db.name + "-wal")}


def strace_unavailable() -> str | None:
    """Why this machine cannot run the fault tier (no strace, or ptrace refused), or None when it can."""
    if STRACE is None:
        return "strace is not installed (scripts/setup.sh test installs it)"
    probe = subprocess.run(
        [
            STRACE,
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=pwrite64",
            "-e",
            "inject=pwrite64:error=ENOSPC",
            "true",
        ],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if probe.returncode != 0:
        reason = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"strace cannot trace here ({reason[-1] if reason else 'exit ' + str(probe.returncode)})"
    return None


@dataclass(frozen=True)
class WriteCall:
    """The ``nth`` call of ``syscall`` on ``file`` ("db" or "wal") in a run, 1-based as strace counts."""

    file: str
    syscall: str
    nth: int


@dataclass(frozen=True)
class KillPoint:
    call: WriteCall
    index: int  # position among all the run's write calls, 1-based
    total: int

    @property
    def in_checkpoint(self) -> bool:
        return self.call.file == "db"

    def __str__(self) -> str:
        where = ", in a checkpoint" if self.in_checkpoint else ""
        return f"{self.call.syscall} #{self.call.nth} on {self.call.file} (write call {self.index}/{self.total}{where})"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL


def _run(argv: Sequence[str], *, env: Mapping[str, str], stdin: bytes, timeout: float) -> Run:
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, env=dict(env), timeout=timeout, check=False, cwd=REPO_ROOT
    )
    return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def trace_writes(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: bytes,
    files: Mapping[str, Path],
    timeout: float = 300,
) -> tuple[Run, list[WriteCall]]:
    """Runs ``argv`` under strace and returns its outcome and every write call on ``files``, in order."""
    assert STRACE is not None
    by_path = {str(path.resolve()): name for name, path in files.items()}
    with tempfile.TemporaryDirectory(prefix="pso-strace-") as folder:
        log = Path(folder) / "trace.log"
        command = [STRACE, "-f", "-qq", "-y", "-e", "signal=none", "-o", str(log)]
        command += ["-e", "trace=" + ",".join(WRITE_CALLS)]
        for path in files.values():
            command += ["-P", str(path)]
        run = _run([*command, *argv], env=env, stdin=stdin, timeout=timeout)
        lines = log.read_text("utf-8", "replace").splitlines()
    counts: Counter[tuple[str, str]] = Counter()
    calls: list[WriteCall] = []
    for line in lines:
        if "resumed>" in line:
            continue  # the second half of a call already counted when it started
        match = _FD_CALL.match(line) or _PATH_CALL.match(line)
        if match is None or match.group(2) not in WRITE_CALLS:
            continue
        name = by_path.get(match.group(3))
        if name is None:
            continue
        counts[(name, match.group(2))] += 1
        calls.append(WriteCall(name, match.group(2), counts[(name, match.group(2))]))
    return run, calls


def kill_at(
    argv: Sequence[str],
    call: WriteCall,
    *,
    env: Mapping[str, str],
    stdin: bytes,
    files: Mapping[str, Path],
    timeout: float = 300,
) -> Run:
    """Runs ``argv`` and SIGKILLs it on entering ``call`` (the call does not run). ``Run.killed`` tells
    whether the process got that far; a run that made fewer such calls ends normally."""
    assert STRACE is not None
    command = [STRACE, "-f", "-qq", "-o", os.devnull, "-e", f"trace={call.syscall}"]
    command += ["-e", f"inject={call.syscall}:signal=SIGKILL:when={call.nth}", "-P", str(files[call.file])]
    return _run([*command, *argv], env=env, stdin=stdin, timeout=timeout)


def fail_from(
    argv: Sequence[str],
    syscall: str,
    nth: int,
    path: Path,
    *,
    env: Mapping[str, str],
    stdin: bytes,
    timeout: float = 300,
) -> Run:
    """Runs ``argv`` with the ``nth`` and every later ``syscall`` on ``path`` failing with ENOSPC (a full disk,
    where a tmpfs cannot be mounted)."""
    assert STRACE is not None
    command = [STRACE, "-f", "-qq", "-o", os.devnull, "-e", f"trace={syscall}"]
    command += ["-e", f"inject={syscall}:error=ENOSPC:when={nth}+", "-P", str(path)]
    return _run([*command, *argv], env=env, stdin=stdin, timeout=timeout)


def choose_points(calls: Sequence[WriteCall], count: int, *, checkpoint_share: float = 0.35) -> list[KillPoint]:
    """About ``count`` kill points spread over the run: a share of them inside checkpoints (calls on the
    database file: the first, middle and last call of checkpoints spread over the run, then more calls spread
    over them), the rest spread evenly over the other write calls (WAL frames, commit fsyncs, the WAL's
    removal)."""
    total = len(calls)
    checkpoint = [i for i, call in enumerate(calls, start=1) if call.file == "db"]
    runs: list[list[int]] = []
    for i in checkpoint:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    want = max(3, round(count * checkpoint_share)) if runs else 0
    # The first, middle and last call of evenly chosen checkpoints (one: the middle checkpoint of the run; two or
    # more: the first and the last, the one at close, among them),
    # then, if there is room, more calls spread over all of them.
    used = _spread(list(range(len(runs))), -(-want // 3))
    chosen = {i for r in used for i in (runs[r][0], runs[r][len(runs[r]) // 2], runs[r][-1])}
    chosen |= set(_spread([i for i in checkpoint if i not in chosen], want - len(chosen)))
    rest = [i for i in range(1, total + 1) if i not in chosen and calls[i - 1].file != "db"]
    chosen |= set(_spread(rest, count - len(chosen)))
    return [KillPoint(calls[i - 1], i, total) for i in sorted(chosen)]


def _spread(items: Sequence[int], count: int) -> list[int]:
    if count <= 0 or not items:
        return []
    if count >= len(items):
        return list(items)
    if count == 1:
        return [items[len(items) // 2]]
    return [items[round(k * (len(items) - 1) / (count - 1))] for k in range(count)]
