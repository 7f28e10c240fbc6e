"""``pso-server catalogue withdraw``, run as a PSO operator runs it, on a version already withdrawn: it says so
and that nothing changed (it said "Withdrew ..." every time, and for hospital-1.2, which is always withdrawn).
Found by an outside tester of issue 11."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pso_desktop.domain.catalogue import catalogue_path


def _pso_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pso_server", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_withdrawing_twice_says_nothing_changed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'pso.db'}"
    data = json.loads(catalogue_path("hospital-2.0").read_text(encoding="utf-8"))
    data["version"] = "hospital-2.1"
    successor = tmp_path / "hospital-2.1.json"
    successor.write_text(json.dumps(data), encoding="utf-8")
    assert _pso_server("catalogue", "publish", str(successor), "--db", db).returncode == 0

    first = _pso_server("catalogue", "withdraw", "hospital-2.0", "--db", db)
    again = _pso_server("catalogue", "withdraw", "hospital-2.0", "--db", db)
    legacy = _pso_server("catalogue", "withdraw", "hospital-1.2", "--db", db)

    assert first.returncode == 0 and first.stdout.startswith("Withdrew hospital-2.0: ")
    assert (again.returncode, again.stdout, again.stderr) == (
        0,
        "hospital-2.0 was already withdrawn: no new report starts on it (new ones start on hospital-2.1); "
        "nothing changed.\n",
        "",
    )
    assert legacy.returncode == 0 and legacy.stdout.startswith("hospital-1.2 was already withdrawn: ")
    # The last version drafts can start on still cannot be withdrawn.
    last = _pso_server("catalogue", "withdraw", "hospital-2.1", "--db", db)
    assert last.returncode == 1 and "publish its successor first" in last.stderr
