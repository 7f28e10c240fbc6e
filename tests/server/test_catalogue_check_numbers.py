"""``pso-server catalogue check`` and ``publish``, run as a PSO operator runs them, on a catalogue whose range
bound is a number no answer can be compared with. Found by an outside tester of issue 11: a bound of 10**400
was a traceback (OverflowError), and NaN, Infinity or 1e400 passed the check and could be published (Python
reads them; they are not JSON, so another client could not read the catalogue)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pso_desktop.domain.catalogue import catalogue_path

VOLUME = "$.modules.blood.questions[4].max"


def _pso_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pso_server", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _catalogue_with_volume_max(tmp_path: Path, bound: str) -> Path:
    data = json.loads(catalogue_path("hospital-2.0").read_text(encoding="utf-8"))
    data["version"] = "hospital-2.1"
    (question,) = [q for q in data["modules"]["blood"]["questions"] if q["id"] == "volume_transfused"]
    assert data["modules"]["blood"]["questions"].index(question) == 4 and question["max"] == 20000
    text = json.dumps(data, indent=1).replace('"max": 20000', f'"max": {bound}', 1)
    path = tmp_path / "hospital-2.1.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bound", "problem"),
    [
        (str(10**400), f"{VOLUME}: Is too large to be a range bound: write at most 15 digits."),
        ("1e400", f"{VOLUME}: Is too large to be a range bound: write at most 15 digits."),
        ("NaN", "$: Not valid JSON: NaN and Infinity are not JSON numbers; write a number."),
        ("Infinity", "$: Not valid JSON: NaN and Infinity are not JSON numbers; write a number."),
    ],
)
def test_an_unusable_range_bound_is_a_problem_with_its_path(tmp_path: Path, bound: str, problem: str) -> None:
    path = _catalogue_with_volume_max(tmp_path, bound)

    checked = _pso_server("catalogue", "check", str(path))

    assert checked.returncode == 1
    assert "Traceback" not in checked.stderr
    assert checked.stdout.splitlines() == [problem]
    assert checked.stderr.strip() == "pso-server: hospital-2.1.json: 1 problem; the catalogue is not valid."

    db = tmp_path / "pso.db"
    published = _pso_server("catalogue", "publish", str(path), "--db", f"sqlite:///{db}")
    assert published.returncode == 1 and "nothing was published" in published.stderr
    assert "Traceback" not in published.stderr


def test_a_large_but_usable_bound_is_fine(tmp_path: Path) -> None:
    checked = _pso_server("catalogue", "check", str(_catalogue_with_volume_max(tmp_path, "999999999999999")))
    assert checked.returncode == 0, checked.stdout
