"""Child process of the fault tier: the form's autosave, headless, through the window's own backend.

Usage: python -m tests.faults.autosave_child PROFILE REPORT_JSON SAVES  (secret on stdin; PSO_DESKTOP_HOME set)

Unlocks the profile as the window does (``Backend.unlock``, every page checked), saves REPORT_JSON's report
SAVES times through ``Backend.save_draft`` (the call behind the form's autosave) with the narrative
"autosave <n> ..." and prints ``{"ack": n}`` after save n returned, as the form shows "Draft saved". Narratives
are long and made of distinct words, so the full-text index grows and the WAL passes SQLite's automatic
checkpoint (1,000 pages) within a run. Then it locks (``Backend.lock``, as at idle lock or close) and prints
``{"locked": true}``. A save or lock that fails with an expected error prints ``{"error": ..., "message": ...}``
and exits 1, as the form says "The draft could not be saved".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pso_desktop.errors import ExpectedError
from pso_desktop.services.backend import Backend


def narrative(n: int) -> str:
    words = 400 + (n * 397) % 2600
    return f"autosave {n} " + " ".join(f"w{n}x{k}" for k in range(words))


def _say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> int:
    profile, report_file, saves = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    secret = sys.stdin.readline().rstrip("\n")
    report = json.loads(report_file.read_text("utf-8"))
    backend = Backend()
    try:
        backend.unlock(profile, secret)
        for n in range(1, saves + 1):
            report["narrative"] = narrative(n)
            backend.save_draft(report)
            _say(ack=n)
        backend.lock()
    except ExpectedError as exc:
        _say(error=type(exc).__name__, message=str(exc))
        return 1
    _say(locked=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
