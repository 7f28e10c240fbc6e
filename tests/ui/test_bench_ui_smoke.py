"""The window benchmark still runs end to end (tiny sizes; the real figures come from the full run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_ui.py"
RATIOS = (
    "first screen / bare table",
    "worst stall / 100 ms",
    "filter+sort worst / 200 ms",
    "cold start / bare PySide6",
)


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.mark.slow
def test_bench_ui_prints_every_ratio_with_tiny_sizes() -> None:
    result = _run(
        *("--count", "300", "--chunk", "100", "--runs", "3", "--stall-rounds", "1", "--pages", "1"),
        *("--cold-runs", "1"),
    )
    assert result.returncode in (0, 1), result.stderr  # 1 = a goal missed, which tiny sizes may well do
    assert "Traceback" not in result.stderr, result.stderr
    assert "building: 300/300 reports" in result.stderr
    assert "profile: 300 reports built" in result.stdout
    # The list holds 300 reports: scrolling one page past the first must have shown all of them.
    assert "scrolling to the end 1x (to row 300)" in result.stdout, result.stdout
    # One report in four is queued; the sync round sends them all to the server process while browsing.
    assert "sending 75 queued reports, searching and scrolling meanwhile" in result.stdout, result.stdout
    for label in RATIOS:
        found = re.search(
            rf"^  {re.escape(label)} +(\d+\.\d\d)x +<=? [\d.]+x +(met|NOT met)$", result.stdout, re.M
        )
        assert found is not None, f"{label!r} missing from:\n{result.stdout}"
        assert float(found.group(1)) > 0
    verdict = "goals met" if result.returncode == 0 else "goals NOT met"
    assert result.stdout.rstrip().endswith(verdict), result.stdout


def test_bench_ui_refuses_an_empty_profile_as_a_usage_error() -> None:
    result = _run("--count", "0", timeout=60)
    assert result.returncode == 2
    assert "every count must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr
