"""Child process for the kill -9 test: autosaves one draft in a loop, acknowledging each committed save.

Usage: python -m tests.support.autosave_loop PROFILE REPORT_ID  (secret on stdin; PSO_DESKTOP_HOME set)
Prints "ack <n>" after save n is committed, so the parent knows which saves were acknowledged.
"""

from __future__ import annotations

import json
import random
import sys

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.services.workstation import Workstation


def main() -> None:
    profile, report_id = sys.argv[1], sys.argv[2]
    secret = sys.stdin.readline().rstrip("\n")
    session = Workstation().open(profile, secret)
    report = validate_report(sample_report(random.Random(report_id), 0) | {"id": report_id}).export()
    n = 0
    while True:
        n += 1
        report["narrative"] = f"autosave {n} " + "x" * (n % 500)
        session.store.save_draft(report)
        sys.stdout.write(json.dumps({"ack": n}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
