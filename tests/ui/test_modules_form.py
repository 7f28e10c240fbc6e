"""Every category module in the real form: ticking its category opens it, every example reads back unchanged,
and the new question kinds (number with unit, date-time) are typed from the keyboard, shown and left out with
their branching."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PySide6.QtCore import Qt

from pso_desktop.domain import load_catalogue, validate_report
from pso_desktop.paths import resources_dir
from pso_desktop.ui.form_fields import (
    CheckListField,
    ChoiceField,
    DateTimeField,
    FormField,
    GroupField,
    NumberField,
    RadioField,
)
from pso_desktop.ui.report_form import ReportForm, first_sentence

EXAMPLES = sorted((resources_dir() / "examples").glob("*.json"))
V12_EXAMPLES = sorted((resources_dir() / "examples" / "hospital-1.2").glob("*.json"))


def new_form(qtbot: Any) -> ReportForm:
    form = ReportForm(load_catalogue())
    qtbot.addWidget(form)
    form.show()
    return form


def example(name: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        (resources_dir() / "examples" / f"{name}.json").read_text(encoding="utf-8")
    )
    return report


def choose(field: FormField, code: str) -> None:
    if isinstance(field, ChoiceField):
        field.combo.setCurrentIndex(field.combo.findData(code))
    elif isinstance(field, RadioField):
        field.buttons[code].click()
    else:
        assert isinstance(field, CheckListField)
        item = field.item(code)
        assert item is not None
        field.list.setCurrentItem(item)
        item.setCheckState(Qt.CheckState.Checked)


def untick(field: FormField, code: str) -> None:
    assert isinstance(field, CheckListField)
    item = field.item(code)
    assert item is not None
    item.setCheckState(Qt.CheckState.Unchecked)


def type_over(qtbot: Any, field: FormField, text: str) -> None:
    target = field.focus_target()
    target.setFocus()
    qtbot.keyClick(target, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(target, Qt.Key.Key_Delete)
    qtbot.keyClicks(target, text)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_opens_and_reads_back_unchanged(qtbot: Any, path: Any) -> None:
    report = json.loads(path.read_text(encoding="utf-8"))
    form = new_form(qtbot)
    form.load(report)
    assert form.report() == report


@pytest.mark.parametrize("path", V12_EXAMPLES, ids=[p.stem for p in V12_EXAMPLES])
def test_every_v12_example_opens_on_its_own_form_and_reads_back_unchanged(qtbot: Any, path: Any) -> None:
    report = json.loads(path.read_text(encoding="utf-8"))
    form = ReportForm(load_catalogue("hospital-1.2"))
    qtbot.addWidget(form)
    form.show()
    form.load(report)
    assert form.report() == report
    module = next(iter(report["modules"]))
    assert form.guides[module].isVisible()  # its V1.2 module opened, guide and all


def test_each_module_shows_its_guide_while_open(qtbot: Any) -> None:
    """The catalogue's guide of each module: its first sentence above the questions (the notes on where the content
    comes from are on hover), the whole guide as the section's description for a screen reader."""
    catalogue = load_catalogue()
    form = new_form(qtbot)
    form.load({"id": "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a62", "revision": 1})
    choose(form.fields["event_type"], "incident")
    assert (
        first_sentence("A fall is a descent (e.g. onto a mat). Second one.")
        == "A fall is a descent (e.g. onto a mat)."
    )
    for module in catalogue.modules.values():
        guide = form.guides[module.key]
        assert not guide.isVisible(), module.key
        choose(form.fields["categories"], module.category)
        assert guide.isVisible() and guide.text() == first_sentence(module.guide), module.key
        assert guide.text() and len(guide.text()) <= len(module.guide) and guide.wordWrap()
        section = guide.parentWidget()
        assert section is not None and section.accessibleDescription() == module.guide
        assert guide.accessibleName() == guide.text()
        untick(form.fields["categories"], module.category)
        assert not guide.isVisible(), module.key
    medication = form.guides["medication"]
    assert "LOINC" not in medication.text() and "LOINC" in medication.toolTip()  # provenance only on hover


def test_ticking_each_category_opens_its_module(qtbot: Any) -> None:
    catalogue = load_catalogue()
    form = new_form(qtbot)
    form.load({"id": "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a61", "revision": 1})
    choose(form.fields["event_type"], "incident")
    for module in catalogue.modules.values():
        first = form.fields[f"modules.{module.key}.{module.questions[0].id}"]
        assert not first.isVisible(), module.key
        choose(form.fields["categories"], module.category)
        assert first.isVisible(), module.key
        untick(form.fields["categories"], module.category)
        assert not first.isVisible(), module.key


def test_a_number_with_its_unit_is_typed_shown_and_left_out_when_it_stops_applying(qtbot: Any) -> None:
    form = new_form(qtbot)
    form.load(example("perinatal-mother"))
    f = form.fields
    weight = f["modules.perinatal.birthweight"]
    assert isinstance(weight, NumberField) and weight.unit.text() == "g"
    assert not weight.isVisible()  # no neonate affected: no birthweight asked
    choose(f["modules.perinatal.neonate_affected"], "A15")
    assert weight.isVisible() and f["modules.perinatal.neonate_name"].isVisible()
    type_over(qtbot, weight, "3350")
    type_over(qtbot, f["modules.perinatal.neonate_name"], "Baby Boy Example")
    type_over(qtbot, f["modules.perinatal.neonate_mrn"], "MRN90000006")
    choose(f["modules.perinatal.neonate_gender"], "M")
    answers = form.report()["modules"]["perinatal"]
    assert answers["birthweight"] == 3350 and isinstance(answers["birthweight"], int)
    assert answers["gestational_age"] == 38.5  # a decimal kept as it was loaded
    validate_report(form.report())

    choose(f["modules.perinatal.neonate_affected"], "A18")  # the trigger changes: the neonate's answers go
    assert not weight.isVisible()
    answers = form.report()["modules"]["perinatal"]
    assert not {"birthweight", "neonate_name", "neonate_mrn", "neonate_gender"} & set(answers)
    validate_report(form.report())

    type_over(qtbot, f["modules.perinatal.gestational_age"], "thirty")  # not a number: kept for validation to say
    assert form.report()["modules"]["perinatal"]["gestational_age"] == "thirty"


def test_a_date_time_is_typed_and_a_multi_choice_follow_up_is_left_out(qtbot: Any) -> None:
    form = new_form(qtbot)
    form.load(example("vte-pe"))
    f = form.fields
    onset = f["modules.vte.onset"]
    assert isinstance(onset, DateTimeField) and onset.isVisible()
    type_over(qtbot, onset, "2026-11-17 21:05")
    assert form.report()["modules"]["vte"]["onset"] == "2026-11-17T21:05:00"
    assert onset.edit.text() == "2026-11-17 21:05"

    location = f["modules.vte.dvt_location"]
    assert not location.isVisible()
    choose(f["modules.vte.DE1003"], "dvt")
    assert location.isVisible()
    choose(location, "lower")
    report = form.report()
    assert report["modules"]["vte"]["DE1003"] == ["pe", "dvt"] and report["modules"]["vte"]["dvt_location"] == [
        "lower"
    ]
    validate_report(report)
    untick(f["modules.vte.DE1003"], "dvt")
    assert not location.isVisible()
    report = form.report()
    assert "dvt_location" not in report["modules"]["vte"]
    validate_report(report)


def test_a_repeating_group_of_a_new_module_adds_and_keeps_its_entries(qtbot: Any) -> None:
    form = new_form(qtbot)
    report = example("device-incident")
    form.load(report)
    devices = form.fields["modules.device.devices"]
    assert form.report() == report
    assert isinstance(devices, GroupField)
    devices.add_button.click()
    type_over(qtbot, devices.entries[1]["name"], "Pressure bag")
    assert form.report()["modules"]["device"]["devices"][1] == {"name": "Pressure bag"}


def test_a_product_question_follows_the_medication_answer_outside_its_entry(qtbot: Any) -> None:
    """SDC branching across levels: 'prescribed' in each product entry is asked unless the event is
    characterised as an unsafe condition; the stage only for an incorrect action."""
    form = new_form(qtbot)
    report = example("medication-near-miss")
    form.load(report)
    f = form.fields
    products = f["modules.medication.products"]
    assert isinstance(products, GroupField)
    prescribed = products.entries[0]["prescribed"]
    assert prescribed.isVisible() and f["modules.medication.stage"].isVisible()
    choose(f["modules.medication.characterisation"], "unsafe_condition")
    assert not prescribed.isVisible() and not f["modules.medication.stage"].isVisible()
    answers = form.report()["modules"]["medication"]
    assert "prescribed" not in answers["products"][0] and "stage" not in answers
    assert "incorrect_actions" not in answers and "strength_error" not in answers
    validate_report(form.report())
    choose(f["modules.medication.characterisation"], "incorrect_action")
    assert prescribed.isVisible() and prescribed.value() == "A18"  # shown again as it was typed


def test_coded_rescue_interventions_appear_with_yes_and_are_left_out_with_no(qtbot: Any) -> None:
    form = new_form(qtbot)
    report = example("hai-urinary")
    form.load(report)
    f = form.fields
    types = f["rescue.intervention_types"]
    assert isinstance(types, CheckListField) and types.isVisible()
    assert form.report()["rescue"]["intervention_types"] == ["diagnostics", "medication"]
    choose(types, "transfer")
    assert form.report()["rescue"]["intervention_types"] == ["diagnostics", "medication", "transfer"]
    choose(f["rescue.attempted"], "A18")  # no intervention attempted: the list stops applying
    assert not types.isVisible() and not f["rescue.interventions"].isVisible()
    rescue = form.report()["rescue"]
    assert "intervention_types" not in rescue and "interventions" not in rescue
    assert validate_report(form.report()).export()["rescue"] == {"attempted": "A18", "interventions": ""}
    choose(f["rescue.attempted"], "A15")
    assert types.isVisible()


def test_an_hai_opens_no_module_in_the_v20_form(qtbot: Any) -> None:
    form = new_form(qtbot)
    form.load({"id": "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a63", "revision": 1})
    choose(form.fields["event_type"], "incident")
    choose(form.fields["categories"], "A51")
    assert not any(guide.isVisible() for guide in form.guides.values())
    assert form.report()["categories"] == ["A51"]


def test_v12_surgery_or_anesthesia_shows_one_branch_and_leaves_the_other_out(qtbot: Any) -> None:
    form = ReportForm(load_catalogue("hospital-1.2"))
    qtbot.addWidget(form)
    form.show()
    form.load(json.loads((V12_EXAMPLES[0].parent / "surgery-or-anesthesia-surgical.json").read_text("utf-8")))
    f = form.fields
    surgical, anesthesia = f["modules.surgery_anesthesia.DE513"], f["modules.surgery_anesthesia.anesthesia_event"]
    assert surgical.isVisible() and not anesthesia.isVisible()
    choose(f["modules.surgery_anesthesia.event_kind"], "anesthesia")
    assert anesthesia.isVisible() and not surgical.isVisible()
    answers = form.report()["modules"]["surgery_anesthesia"]
    assert answers == {"event_kind": "anesthesia"}  # the surgical answers stopped applying: left out
    choose(anesthesia, "difficult_airway")
    assert form.report()["modules"]["surgery_anesthesia"]["anesthesia_event"] == "difficult_airway"
