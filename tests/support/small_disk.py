"""A really full disk for tests: a small tmpfs mounted for one test (needs root; skipped where mounting is
refused), and a filler file that takes every free byte until the test frees it."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(folder: Path, size: str = "4m") -> Iterator[Path]:
    """Mounts a tmpfs of ``size`` on ``folder`` (created) for the block; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a small tmpfs for a full disk needs root to mount")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, check=False)


def fill(folder: Path) -> Path:
    """Writes a filler file in ``folder`` until the file system refuses (ENOSPC); returns its path."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (64 * 1024, 4096, 512, 1):
            block = b"\0" * chunk
            while True:
                try:
                    out.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler
