"""``pso-server catalogue check``, run as a PSO operator runs it, on catalogues whose conditions go in a circle
through 'field' paths. Found by an outside tester of issue 11: a question shown only when it is itself answered,
or two questions (in one module or two) each shown only when the other is answered, passed the check although
the form can never ask them. A circle broken by 'not_in' (true while unanswered) is fine."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.domain.catalogue import catalogue_path

CIRCLE = (
    "Unreachable question: its conditions lead back to its own answer (a circle through the questions they "
    "name), so it can never apply."
)


def _check(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> subprocess.CompletedProcess[str]:
    data = json.loads(catalogue_path("hospital-2.0").read_text(encoding="utf-8"))
    data["version"] = "hospital-2.1"
    change(data)
    path = tmp_path / "hospital-2.1.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pso_server", "catalogue", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _fall(data: dict[str, Any]) -> list[dict[str, Any]]:
    questions: list[dict[str, Any]] = data["modules"]["fall"]["questions"]
    assert [q["id"] for q in questions[:2]] == ["DE192", "DE204"]
    return questions


def _first_code(question: dict[str, Any]) -> str:
    return str(question["answers"][0]["code"])


def _itself(data: dict[str, Any]) -> None:
    fall = _fall(data)
    fall[0]["enable_when"] = [{"field": "modules.fall.DE192", "in": [_first_code(fall[0])]}]


def _pair(data: dict[str, Any]) -> None:
    fall = _fall(data)
    fall[0]["enable_when"] = [{"field": "modules.fall.DE204", "in": [_first_code(fall[1])]}]
    fall[1]["enable_when"] = [{"question": "DE192", "in": [_first_code(fall[0])]}]


def _across_modules(data: dict[str, Any]) -> None:
    surgery = data["modules"]["surgery"]["questions"]
    anesthesia = data["modules"]["anesthesia"]["questions"]
    assert surgery[0]["id"] == "DE513" and anesthesia[3]["id"] == "DE474"
    surgery[0]["enable_when"] = [{"field": "modules.anesthesia.DE474", "in": [_first_code(anesthesia[3])]}]
    anesthesia[3]["enable_when"] = [{"field": "modules.surgery.DE513", "in": [_first_code(surgery[0])]}]


@pytest.mark.parametrize(
    ("change", "paths"),
    [
        (_itself, ["$.modules.fall.questions[0]"]),
        (_pair, ["$.modules.fall.questions[0]", "$.modules.fall.questions[1]"]),
        (_across_modules, ["$.modules.surgery.questions[0]", "$.modules.anesthesia.questions[3]"]),
    ],
)
def test_a_circle_of_conditions_is_an_unreachable_question(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], paths: list[str]
) -> None:
    result = _check(tmp_path, change)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{path}: {CIRCLE}" for path in paths]
    assert "Traceback" not in result.stderr


def test_a_circle_broken_by_not_in_is_fine(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        fall = _fall(data)
        fall[0]["enable_when"] = [{"field": "modules.fall.DE204", "not_in": [_first_code(fall[1])]}]
        fall[1]["enable_when"] = [{"question": "DE192", "in": [_first_code(fall[0])]}]

    result = _check(tmp_path, change)
    assert result.returncode == 0, result.stdout
