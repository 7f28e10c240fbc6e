"""The keyboard-only fall report (DESIGN.md, performance; issue 8): the example in resources/examples/ written
and submitted in the real window at 1024x600 from Ctrl+N to queued, keys only, counting the keys that are not
characters of an answer. Goal: no more than 40.

Run from the repository root:  .venv/bin/python benchmarks/bench_keyboard.py
It runs the scripted test (tests/ui/test_keyboard_fall_report.py) on Qt's offscreen platform against a real
encrypted profile in a temporary folder, and prints its figure; exit 0 when the goal is met, 1 otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

GOAL = 40
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    test = "tests/ui/test_keyboard_fall_report.py"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-s", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"(\d+) non-character keys .*?, (\d+) characters typed", run.stdout)
    if run.returncode != 0 or found is None:
        print(run.stdout[-3000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
        print("bench_keyboard: the scripted fall report did not complete", file=sys.stderr)
        return 1
    keys, characters = int(found.group(1)), int(found.group(2))
    verdict = "met" if keys <= GOAL else "missed"
    print(
        f"keyboard-only fall report, 1024x600: {keys} non-character keys (goal <= {GOAL}: {verdict}), "
        f"{characters} characters typed"
    )
    return 0 if keys <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
