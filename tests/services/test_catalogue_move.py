"""Moving a draft to another form version (issue 11, item 3): what no longer fits is left out, one sentence each,
in the catalogues' words (never what was typed)."""

from __future__ import annotations

import copy
import json

from pso_desktop.domain import load_catalogue
from pso_desktop.domain.catalogue import parse_catalogue
from pso_desktop.paths import resources_dir
from pso_desktop.services.catalogues import move_report, new_draft_version
from tests.support.catalogues import changed_catalogue, fall_report


def test_each_answer_that_no_longer_fits_gets_a_sentence() -> None:
    data = changed_catalogue()
    fall = data["modules"]["fall"]["questions"]
    dropped = fall.pop(2)  # a question no longer asked
    data["modules"].pop("medication")
    data["categories"] = [c for c in data["categories"] if c.get("module") != "medication"]
    target = parse_catalogue(data)
    report = fall_report("hospital-2.0", DE204="A906")
    report["modules"]["fall"][dropped["id"]] = "A15"
    report["modules"]["medication"] = {"anything": "Grace Castillo"}
    report["categories"] = [*report["categories"], "A54"]
    before = copy.deepcopy(report)
    moved, said = move_report(report, target)
    assert report == before  # the input is not changed
    assert moved["form_version"] == "hospital-2.1"
    assert "DE204" not in moved["modules"]["fall"] and dropped["id"] not in moved["modules"]["fall"]
    assert "medication" not in moved["modules"] and "A54" not in moved["categories"]
    assert any('"Intracranial injury" is no longer offered' in s for s in said)
    assert any(f'"{dropped["text"]}" (Fall) is no longer asked' in s for s in said)
    assert any("Medication or Other Substance questions are no longer on the form" in s for s in said)
    assert any("is no longer an event category" in s for s in said)
    assert len(said) == 4
    assert "Grace" not in " ".join(said)


def test_new_drafts_start_on_the_current_version_unless_withdrawn() -> None:
    assert new_draft_version(None) == "hospital-2.0"
    # A current version this app has no catalogue for (not fetched yet) is not started on.
    reference = {"form_catalogue_version": "hospital-2.9", "form_versions": ["hospital-2.0", "hospital-2.9"]}
    assert new_draft_version(reference) == "hospital-2.0"
    assert new_draft_version({**reference, "withdrawn_versions": ["hospital-2.0"]}) == "hospital-2.0"


def test_generic_answers_no_longer_offered_are_left_out_with_a_sentence() -> None:
    data = changed_catalogue()
    factors = data["answer_sets"]["contributing_factors"]
    data["answer_sets"]["contributing_factors"] = [a for a in factors if a["code"] not in ("staffing", "A66")]
    data["answer_sets"]["race"] = [a for a in data["answer_sets"]["race"] if a["code"] != "asian"]
    data["harm_scale"]["levels"] = [h for h in data["harm_scale"]["levels"] if h["code"] != "LA20749-0"]
    target = parse_catalogue(data)
    report = fall_report("hospital-2.0")
    report["contributing_factors"] = ["communication", "staffing", "A66"]
    report["contributing_factors_other"] = "Grace Castillo's note"
    report["patient"] = {**report.get("patient", {}), "race": ["asian", "white"]}
    report["harm"] = {**report.get("harm", {}), "level": "LA20749-0", "evidence_of_harm": "A15"}
    moved, said = move_report(report, target)
    assert moved["contributing_factors"] == ["communication"] and "contributing_factors_other" not in moved
    assert moved["patient"]["race"] == ["white"]
    assert "level" not in moved["harm"] and moved["harm"]["evidence_of_harm"] == "A15"  # still offered: kept
    assert (
        '"Contributing factors": the answer "Staffing levels or workload" is no longer offered; it was left out.'
        in said
    )
    assert any('the answer "Moderate harm" is no longer offered' in s for s in said)
    assert any('the answer "Asian" is no longer offered' in s for s in said)
    assert any('the answer "Other: please specify" is no longer offered' in s for s in said)
    assert len(said) == 4 and "Grace" not in " ".join(said)
    # Nothing to leave out: nothing is said and the answers stay as they were.
    same = fall_report("hospital-2.0")
    again, quiet = move_report(same, parse_catalogue(changed_catalogue()))
    assert quiet == [] and {k: v for k, v in again.items() if k != "form_version"} == {
        k: v for k, v in same.items() if k != "form_version"
    }


def test_each_entry_of_a_repeating_group_is_moved_answer_by_answer() -> None:
    data = changed_catalogue()
    medication = data["modules"]["medication"]["questions"]
    products = next(q for q in medication if q["id"] == "products")
    products["max_items"] = 2
    children = products["questions"]
    dropped_child = next(q for q in children if q["id"] == "dosage_form")
    products["questions"] = [q for q in children if q["id"] != "dosage_form"]
    target = parse_catalogue(data)
    report = {
        "id": "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a70",
        "revision": 1,
        "form_version": "hospital-2.0",
        "event_type": "incident",
        "categories": ["A54"],
        "modules": {
            "medication": {
                "products": [
                    {"generic_name": "heparin", "dosage_form": "injection solution"},
                    {"generic_name": "Grace Castillo"},
                    {"generic_name": "insulin", "dosage_form": "pen"},
                ]
            }
        },
    }
    moved, said = move_report(report, target)
    entries = moved["modules"]["medication"]["products"]
    assert entries == [{"generic_name": "heparin"}, {"generic_name": "Grace Castillo"}]
    noun = products.get("item_name", "entry")
    assert f'"{products["text"]}" (Medication or Other Substance) now takes at most 2 {noun}(s)' in said[0]
    assert said[1:] == [
        f'"{dropped_child["text"]}" (Medication or Other Substance, {noun} 1) is no longer asked; its answer was '
        "left out."
    ]
    assert "Grace" not in " ".join(said) and "heparin" not in " ".join(said)


def test_a_v12_draft_moves_to_v20_naming_each_category_and_module_left_out() -> None:
    path = resources_dir() / "examples" / "hospital-1.2" / "surgery-or-anesthesia-surgical.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    moved, said = move_report(report, load_catalogue("hospital-2.0"))
    assert moved["form_version"] == "hospital-2.0" and moved["categories"] == [] and moved["modules"] == {}
    assert said == [
        '"Surgery or Anesthesia (includes invasive procedure)" is no longer an event category; choose the category '
        "again.",
        "The Surgery or Anesthesia questions are no longer on the form; their answers were left out.",
    ]
    assert moved["narrative"] == report["narrative"] and moved["patient"] == report["patient"]
