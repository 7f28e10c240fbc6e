"""The storage benchmark still runs end to end (tiny sizes; the real figures come from the full run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_store_runs_with_tiny_sizes() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_store.py"),
            "--saves",
            "5",
            "--autosave-rounds",
            "2",
            "--reports",
            "60",
            "--bulk-rounds",
            "2",
            "--chunk",
            "25",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode in (0, 1), result.stderr  # 1 = a goal missed, which tiny sizes may well do
    assert result.stderr == ""
    for expected in ("autosave:", "ratio", "bulk queue: 60 reports", "unlock", "goals "):
        assert expected in result.stdout, expected
