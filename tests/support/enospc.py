"""A real full disk for one process: ``strace`` makes its writes to a profile's WAL fail with ENOSPC from a
chosen write on (strace's syscall injection; the writes are counted per thread, and SQLite writes each
connection's WAL from the thread that uses it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.cli import Result

STRACE = shutil.which("strace")


def run_with_wal_writes_failing(
    command: list[str],
    wal: Path,
    *,
    env: dict[str, str],
    stdin: bytes = b"",
    fail_from: int | None = None,
    timeout: float = 180,
) -> tuple[Result, int]:
    """Runs ``command`` under strace; returns its result and how many writes it made to ``wal``. With
    ``fail_from``, that write (counted from 1) and every later one fail with ENOSPC."""
    assert STRACE is not None, "strace is needed"
    handle, name = tempfile.mkstemp(suffix=".strace")
    os.close(handle)
    trace = Path(name)
    inject = [] if fail_from is None else ["-e", f"inject=pwrite64:error=ENOSPC:when={fail_from}+"]
    proc = subprocess.run(
        [STRACE, "-f", "-qq", "-o", str(trace), "-e", "trace=pwrite64", *inject, "-P", str(wal), *command],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    writes = sum(1 for line in trace.read_text().splitlines() if "pwrite64(" in line)
    trace.unlink()
    result = Result(
        proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )
    return result, writes
