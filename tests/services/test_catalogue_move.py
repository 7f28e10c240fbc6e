"""Moving a draft to another form version (issue 11, item 3): what no longer fits is left out, one sentence each,
in the catalogues' words (never what was typed)."""

from __future__ import annotations

import copy

from pso_desktop.domain.catalogue import parse_catalogue
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
