"""Catalogue files a PSO might publish, made from the bundled one (for the publishing tests)."""

from __future__ import annotations

import copy
import json
import random
import uuid
from pathlib import Path
from typing import Any

from pso_desktop.domain.catalogue import catalogue_path
from pso_desktop.domain.samples import sample_report

NEW_QUESTION_TEXT = "Was a bed or chair alarm in use at the time of the fall?"
CHANGED_TEXT = "Was the fall unassisted, or assisted by a member of staff?"


def bundled() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(catalogue_path("hospital-2.0").read_text(encoding="utf-8"))
    return data


def changed_catalogue(version: str = "hospital-2.1") -> dict[str, Any]:
    """``hospital-2.0`` with the Fall module's first question reworded, 'Intracranial injury' (A906) dropped
    from its injury question, and a new optional local question at its end."""
    data = copy.deepcopy(bundled())
    data["version"] = version
    fall = data["modules"]["fall"]["questions"]
    fall[0]["text"] = CHANGED_TEXT
    injury = next(q for q in fall if q["id"] == "DE204")
    injury["answers"] = [a for a in injury["answers"] if a["code"] != "A906"]
    fall.append(
        {
            "id": "bed_alarm",
            "text": NEW_QUESTION_TEXT,
            "type": "choice",
            "required": False,
            "verified": False,
            "source": ["LOCAL"],
            "cf_version": "local",
            "answers": [
                {"code": "alarm_on", "display": "Yes, an alarm was on", "system": "local"},
                {"code": "alarm_off", "display": "No alarm was on", "system": "local"},
            ],
        }
    )
    return data


def fall_report(version: str, **fall: str) -> dict[str, Any]:
    """A valid fall report of the samples, on ``version``, with these Fall answers changed."""
    rng = random.Random(1)
    for index in range(100):
        report = sample_report(rng, index)
        if "fall" in report.get("modules", {}):
            report["id"] = str(uuid.uuid4())
            report["form_version"] = version
            report["modules"]["fall"].update(fall)
            return report
    raise AssertionError("no fall sample")


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path
