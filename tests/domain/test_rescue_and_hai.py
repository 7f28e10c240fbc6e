"""Coded rescue interventions (PIF 74561-2, local codes: LOINC's answer list was not public) and HAIs reported
through the generic form, as V2.0 says (no HAI module)."""

from __future__ import annotations

import copy
import json
import typing

import pytest

from pso_desktop.domain import ReportInvalid, load_catalogue, validate_report
from pso_desktop.domain.catalogue import parse_catalogue
from pso_desktop.paths import resources_dir
from tests.support.catalogues import bundled

Json = dict[str, typing.Any]


def example(name: str) -> Json:
    report: Json = json.loads((resources_dir() / "examples" / f"{name}.json").read_text(encoding="utf-8"))
    return report


def errors_of(report: Json, **kwargs: typing.Any) -> list[tuple[str, str]]:
    with pytest.raises(ReportInvalid) as refused:
        validate_report(report, **kwargs)
    return [(e.field, e.message) for e in refused.value.errors]


def test_hai_is_a_v20_category_without_a_module_and_incident_only():
    catalogue = load_catalogue()
    hai = catalogue.category("A51")
    assert hai is not None and hai.module is None and hai.event_types == frozenset({"incident"})
    for name in ("hai-bloodstream", "hai-urinary"):
        report = example(name)
        assert report["categories"] == ["A51"] and report["modules"] == {}
        assert validate_report(report).export() == report
    near_miss = copy.deepcopy(example("hai-urinary"))
    near_miss["event_type"] = "near_miss"
    near_miss.pop("harm")
    near_miss.pop("rescue")
    assert any(field.startswith("categories") for field, _ in errors_of(near_miss))


def test_coded_interventions_are_asked_only_when_one_was_attempted():
    report = example("hai-bloodstream")
    assert report["rescue"]["intervention_types"] == ["diagnostics", "medication", "transfer"]
    answers = load_catalogue().answer_set("rescue_interventions")
    assert all(a.system in ("local", "nullflavor") for a in answers)  # no AHRQ code invented
    assert all(not a.verified for a in answers if a.system == "local")
    not_attempted = copy.deepcopy(report)
    not_attempted["rescue"] = {"attempted": "A18", "intervention_types": ["medication"]}
    assert [f for f, _ in errors_of(not_attempted)] == ["rescue.intervention_types"]
    # Without any coded intervention, "No" is a whole answer again.
    not_attempted["rescue"].pop("intervention_types")
    assert validate_report(not_attempted).export()["rescue"] == {"attempted": "A18", "interventions": ""}
    unknown = copy.deepcopy(report)
    unknown["rescue"]["intervention_types"] = ["medication", "prayer"]
    (problem,) = errors_of(unknown)
    assert problem[0] == "rescue.intervention_types.1" and "Transfer to a higher level of care" in problem[1]


def test_a_form_version_without_coded_interventions_refuses_them_with_a_sentence():
    old = bundled()
    old["version"] = "hospital-2.1"
    del old["answer_sets"]["rescue_interventions"]
    catalogue = parse_catalogue(old)
    report = dict(example("hai-urinary"), form_version="hospital-2.1")
    assert errors_of(report, catalogues={"hospital-2.1": catalogue}.get) == [
        (
            "rescue.intervention_types",
            "This form version does not ask which interventions were documented; describe them in words.",
        )
    ]
    report["rescue"] = {k: v for k, v in report["rescue"].items() if k != "intervention_types"}
    assert validate_report(report, catalogues={"hospital-2.1": catalogue}.get).export() == report


def test_reports_without_coded_interventions_keep_their_wire_form():
    fall = example("fall-incident")
    assert "intervention_types" not in fall["rescue"]
    assert validate_report(fall).export() == fall  # no empty list appears: old reports hash the same
