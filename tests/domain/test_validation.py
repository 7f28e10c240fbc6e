"""Domain validation: catalogue rules, branching, and messages that say what to fix."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pso_desktop.domain import ReportInvalid, load_catalogue, report_json_schema, validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.paths import resources_dir

EXAMPLES = sorted((resources_dir() / "examples").glob("*.json"))


def example(name: str) -> dict[str, Any]:
    return json.loads((resources_dir() / "examples" / f"{name}.json").read_text(encoding="utf-8"))


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ReportInvalid) as info:
        validate_report(data)
    return {e.field: e.message for e in info.value.errors}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_shipped_examples_are_valid_canonical_and_round_trip(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    report = validate_report(data)
    assert report.export() == data
    assert len(EXAMPLES) >= 3


def test_generated_samples_are_valid():
    rng = random.Random(7)
    for i in range(300):
        exported = validate_report(sample_report(rng, i)).export()
        assert validate_report(exported).export() == exported


def test_fall_is_always_an_incident():
    data = example("fall-incident")
    data["event_type"] = "near_miss"
    errs = errors_of(data)
    assert "always reported as Incident" in errs["categories.0"]
    assert "harm" in errs  # a near miss has no harm either


def test_unsafe_condition_has_no_patient():
    data = example("unsafe-condition")
    data["patient"] = {"mrn": "X1", "gender": "M", "age_years": 40}
    assert "does not involve a patient" in errors_of(data)["patient"]


def test_incident_needs_patient_identifiers_and_harm():
    data = example("fall-incident")
    data["patient"] = {"name": "", "gender": "F"}
    del data["harm"]
    errs = errors_of(data)
    assert "medical record number" in errs["patient.mrn"]
    assert "age" in errs["patient.age_years"]
    assert "evidence of harm" in errs["harm.evidence_of_harm"]


def test_harm_level_must_agree_with_evidence():
    data = example("fall-incident")
    data["harm"] = {"evidence_of_harm": "A15", "level": "LA21151-8"}
    assert "contradicts" in errors_of(data)["harm.level"]
    data["harm"] = {"evidence_of_harm": "A15"}
    assert "more severe" in errors_of(data)["harm.level"]


def test_fall_branching_dependent_question():
    data = example("fall-incident")
    data["modules"]["fall"]["DE210"] = "A18"  # no assessment documented, so DE213 must not be answered
    msg = errors_of(data)["modules.fall.DE213"]
    assert "applies only when" in msg and "'Yes'" in msg
    del data["modules"]["fall"]["DE213"]
    validate_report(data)
    data["modules"]["fall"]["DE210"] = "A15"  # now DE213 is required
    assert "Unknown is allowed" in errors_of(data)["modules.fall.DE213"]


def test_medication_branching_and_specify():
    data = example("medication-near-miss")
    med = data["modules"]["medication"]
    med["incorrect_actions"] = ["strength", "route", "A66"]
    errs = errors_of(data)
    assert "intended route" in errs["modules.medication.intended_route"]
    assert "please specify" in errs["modules.medication.incorrect_actions_specify"]
    med |= {
        "intended_route": "oral",
        "actual_route": "intravenous",
        "incorrect_actions_specify": "Wrong diluent",
    }
    validate_report(data)
    med["products"][0]["given"] = "A15"  # 'given' is omitted for a near miss
    assert "applies only when" in errors_of(data)["modules.medication.products.0.given"]


def test_medication_products_limited_to_five():
    data = example("medication-near-miss")
    data["modules"]["medication"]["products"] = [{"generic_name": f"drug {i}"} for i in range(6)]
    assert "at most 5" in errors_of(data)["modules.medication.products"]


def test_module_required_for_its_category_and_refused_without_it():
    data = example("fall-incident")
    data["modules"] = {}
    assert "answer its questions" in errors_of(data)["modules.fall"]
    data = example("unsafe-condition")
    data["modules"] = {"fall": {"DE192": "A867"}}
    assert "choose that category" in errors_of(data)["modules.fall"]


def test_anonymous_report_carries_no_identity():
    data = example("medication-near-miss")
    data["reporter"]["email"] = "someone@hospital.org"
    assert "anonymous report carries no reporter identity" in errors_of(data)["reporter.email"]
    report = validate_report(example("medication-near-miss"))
    assert report.is_anonymous
    assert set(report.export()["reporter"]) <= {"anonymous", "first_reported_by", "professional_type"}


def test_named_reporter_needs_a_name():
    data = example("unsafe-condition")
    data["reporter"] = {}
    assert "tick 'Report anonymously'" in errors_of(data)["reporter.name"]


def test_unknown_codes_and_fields_are_located_by_position():
    data = example("fall-incident")
    data["categories"] = ["A48", "Z99"]
    data["modules"]["fall"]["DE999"] = "A15"
    errs = errors_of(data)
    assert "Event category 2 is not a category of this form" in errs["categories.1"]
    position = list(data["modules"]["fall"]).index("DE999") + 1
    assert f"Answer {position} of the Fall form is not one of its questions" in errs["modules.fall"]
    assert "DE999" not in json.dumps(errs)


def test_unknown_field_is_located_by_position_never_named():
    data = example("fall-incident")
    data["Jane Roe MRN 4471"] = True
    data["patient"]["Zelda Quux"] = "x"
    data["modules"]["Zelda_Quux"] = {}
    errs = errors_of(data)
    top = list(data).index("Jane Roe MRN 4471") + 1  # the key's position in the object as written, from 1
    assert errs["report"] == f"Field {top} at the top level is not part of the report form; remove it."
    patient = list(data["patient"]).index("Zelda Quux") + 1
    assert errs["patient"].startswith(f"Field {patient} of 'Patient")
    assert "is not part of the report form" in errs["patient"]
    assert "Jane" not in json.dumps(errs) and "Zelda" not in json.dumps(errs)


def test_dates_in_words():
    data = example("fall-incident")
    data["discovery"] = {"date": "20/11/2026", "time": "03:40"}
    assert "2026-11-27" in errors_of(data)["discovery.date"]
    data["discovery"] = {"date": "2026-11-20"}
    assert "tick 'Unknown'" in errors_of(data)["discovery.time"]
    data["discovery"] = {"date": "2099-01-01", "time_unknown": True}
    errs = errors_of(data)
    assert "future" in errs["discovery.date"]


def test_unknown_form_version_is_refused_plainly_without_repeating_it():
    for version in ("hospital-9.9", "Jane Roe MRN 4471", "\ud800", 7):
        data = example("fall-incident")
        data["form_version"] = version
        with pytest.raises(ReportInvalid) as info:
            validate_report(data)
        assert [e.field for e in info.value.errors] == ["form_version"]
        assert "update PSO Desktop" in info.value.errors[0].message
        shown = json.dumps(info.value.as_json(), ensure_ascii=False) + str(info.value)
        assert str(version) not in shown


def test_form_version_is_a_name_never_a_path():
    # The path reaches the real catalogue file, so only the name check can refuse it.
    for version in ("../forms/hospital-2.0", "./hospital-2.0", "/etc/hostname", "HOSPITAL-2.0"):
        data = example("fall-incident")
        data["form_version"] = version
        assert "update PSO Desktop" in errors_of(data)["form_version"], version


def test_error_messages_never_echo_free_text():
    data = example("fall-incident")
    data["narrative"] = "Patient Zelda Quux\x00 fell"
    data["patient"]["mrn"] = "Q" * 100
    with pytest.raises(ReportInvalid) as info:
        validate_report(data)
    text = json.dumps(info.value.as_json()) + str(info.value)
    assert "Zelda" not in text and "QQQQ" not in text


def test_wrong_codes_are_located_but_not_repeated():
    # Free text pasted where a code belongs (a CSV column off by one) may be patient details.
    data = example("medication-near-miss")
    data["categories"] = ["MRN4471"]
    with pytest.raises(ReportInvalid) as info:
        validate_report(data)
    assert "MRN4471" not in json.dumps(info.value.as_json()) + str(info.value)
    data = example("medication-near-miss")
    data["modules"]["medication"]["incorrect_actions"] = ["strength", "Zelda Quux got twice the dose"]
    with pytest.raises(ReportInvalid) as info:
        validate_report(data)
    errs = {e.field: e.message for e in info.value.errors}
    assert "Answer 2 to 'Which incorrect action(s)?'" in errs["modules.medication.incorrect_actions.1"]
    assert "Zelda" not in json.dumps(info.value.as_json()) + str(info.value)


def test_catalogue_is_data_with_harm_definitions():
    cat = load_catalogue()
    assert cat.version == "hospital-2.0"
    levels = {h.display: h for h in cat.harm_levels}
    assert levels["Death"].code == "LA20747-4" and levels["Death"].definition
    assert cat.category("A48").event_types == {"incident"}
    assert "more severe" in cat.harm_guidance


def test_json_schema_lists_catalogue_codes():
    schema = report_json_schema()
    assert "A48" in schema["properties"]["categories"]["items"]["enum"]
    assert schema["properties"]["event_type"]["enum"] == ["incident", "near_miss", "unsafe_condition"]
    json.dumps(schema)


def test_validation_does_not_mutate_input():
    data = example("fall-incident")
    before = copy.deepcopy(data)
    validate_report(data)
    assert data == before


def test_professional_type_only_after_a_healthcare_professional_first_reported():
    data = example("fall-incident")
    data["reporter"] |= {"first_reported_by": "A297", "professional_type": "A306"}
    message = errors_of(data)["reporter.professional_type"]
    assert "'Who first reported the event' is 'Healthcare professional'" in message
    data["reporter"]["first_reported_by"] = "A288"
    validate_report(data)
    del data["reporter"]["first_reported_by"]  # not answered: nothing to contradict
    validate_report(data)


def test_messages_give_the_code_a_file_needs_and_plain_limits():
    data = example("fall-incident")
    data["harm"]["evidence_of_harm"] = "yes"
    data["location"]["unit"] = ""
    data["revision"] = 0
    data["patient"]["age_years"] = 200
    errs = errors_of(data)
    assert errs["location.unit"] == "'Unit where the event occurred' is empty; fill it in."
    data["categories"] = []
    assert errors_of(data)["categories"] == "'Event category' is empty; choose at least one."
    assert errs["revision"] == "'Revision' must be at least 1."
    assert errs["patient.age_years"] == "'Patient age at the time of the event' must be at most 130."
    data = example("fall-incident")
    data["harm"]["evidence_of_harm"] = "yes"
    data["modules"]["fall"]["DE192"] = "assisted"
    errs = errors_of(data)
    assert "Yes (A15), No (A18), Unknown (UNK)" in errs["harm.evidence_of_harm"]
    assert "Unassisted (A867), Assisted (A870)" in errs["modules.fall.DE192"]


def test_duration_of_harm_only_with_evidence_of_harm():
    data = example("fall-incident")
    data["harm"] = {"evidence_of_harm": "A18", "level": "LA21151-8", "duration": "permanent"}
    message = errors_of(data)["harm.duration"]
    assert "applies only when 'Was there any evidence of harm at the time of this report?' is 'Yes'" in message
    data["harm"]["evidence_of_harm"] = "yes"  # a wrong code is one error, not two
    errs = errors_of(data)
    assert "harm.evidence_of_harm" in errs and "harm.duration" not in errs


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data[part]
    if value is _DROP:
        del data[last]
    else:
        data[last] = value


_DROP = object()


@pytest.mark.parametrize(
    ("name", "changes", "field", "words"),
    [
        ("fall-incident", {"near_miss_reason": "luck"}, "near_miss_reason", "Only a near miss"),
        ("fall-incident", {"categories": ["A48", "A66"]}, "categories_other", "say what kind of event"),
        ("fall-incident", {"categories_other": "Something"}, "categories_other", "choose the category 'Other'"),
        ("fall-incident", {"categories": ["A48", "A48"]}, "categories", "only once"),
        ("fall-incident", {"rescue.attempted": "A18"}, "rescue.interventions", "only when one was attempted"),
        ("fall-incident", {"discovery.date": _DROP}, "discovery.date", "or tick 'Unknown'"),
        ("fall-incident", {"discovery.date_unknown": True}, "discovery.date_unknown", "not both"),
        ("fall-incident", {"discovery.date": "2026-11-21"}, "discovery.date", "after the date of the report"),
        ("fall-incident", {"initial_report_date": "2026-11-21"}, "initial_report_date", "cannot be later"),
        ("fall-incident", {"patient.date_of_birth": "2026-11-21"}, "patient.date_of_birth", "after the report"),
        ("fall-incident", {"reporter.email": "jordan at hospital"}, "reporter.email", "name@hospital.org"),
        ("fall-incident", {"contributing_factors": ["A66"]}, "contributing_factors_other", "describe the"),
        ("medication-near-miss", {"near_miss_reason": "A66"}, "near_miss_reason_other", "describe the reason"),
        ("medication-near-miss", {"contributing_factors": ["equipment"]}, "contributing_factors_other", "Remove"),
        ("medication-near-miss", {"reporter.name": "Jordan"}, "reporter.name", "anonymous report carries no"),
        ("unsafe-condition", {"harm": {"evidence_of_harm": "A18"}}, "harm", "has no harm"),
        ("unsafe-condition", {"categories": ["A61"]}, "categories.0", "always reported as"),
    ],
    ids=lambda v: v if isinstance(v, str) and "." not in v and " " not in v else None,
)
def test_generic_form_rules(name: str, changes: dict[str, Any], field: str, words: str):
    data = example(name)
    for path, value in changes.items():
        _set(data, path, value)
    assert words in errors_of(data).get(field, ""), errors_of(data)


# Medication module branching as the Common Formats (LOINC panel 74080-3) define it:
# question -> (the answers that open it, a valid answer to it, whether it must then be answered).
_MED_BRANCHES: dict[str, tuple[dict[str, Any], Any, bool]] = {
    "medication_type": ({"substance_type": "medications"}, "UNK", True),
    "compounded_ingredients": ({"substance_type": "medications", "medication_type": "compounded"}, ["x"], True),
    "biological_type": ({"substance_type": "biological"}, "other_biological", True),
    "vaccine_lot": ({"substance_type": "biological", "biological_type": "vaccine"}, "L123", True),
    "nutritional_type": ({"substance_type": "nutritional"}, "enteral", True),
    "incorrect_actions": ({"characterisation": "incorrect_action"}, ["patient"], True),
    "dose_error": ({"characterisation": "incorrect_action", "incorrect_actions": ["dose"]}, "UNK", True),
    "timing_error": ({"characterisation": "incorrect_action", "incorrect_actions": ["timing"]}, "UNK", True),
    "rate_error": ({"characterisation": "incorrect_action", "incorrect_actions": ["rate"]}, "UNK", True),
    "strength_error": ({"characterisation": "incorrect_action", "incorrect_actions": ["strength"]}, "UNK", True),
    "expiration_date": (
        {"characterisation": "incorrect_action", "incorrect_actions": ["expired"]},
        "2026-01-01",
        True,
    ),
    "allergy_documented": (
        {"characterisation": "incorrect_action", "incorrect_actions": ["allergen"]},
        "UNK",
        True,
    ),
    "contraindication_type": (
        {"characterisation": "incorrect_action", "incorrect_actions": ["contraindication"]},
        "drug_drug",
        True,
    ),
    "intended_route": (
        {"characterisation": "incorrect_action", "incorrect_actions": ["route"], "actual_route": "oral"},
        "oral",
        True,
    ),
    "actual_route": (
        {"characterisation": "incorrect_action", "incorrect_actions": ["route"], "intended_route": "oral"},
        "oral",
        True,
    ),
}


def _medication(answers: dict[str, Any]) -> dict[str, Any]:
    data = example("medication-near-miss")
    base = {"substance_type": "contrast", "characterisation": "UNK"}  # no branch open
    data["modules"]["medication"] = base | answers
    if answers.get("characterisation") == "incorrect_action":  # then the stage and the products are required
        data["modules"]["medication"] |= {"stage": "UNK", "products": [{"generic_name": "x", "prescribed": "A18"}]}
    return data


@pytest.mark.parametrize("question", sorted(_MED_BRANCHES))
def test_medication_branch_opens_and_closes(question: str):
    opens, answer, required = _MED_BRANCHES[question]
    validate_report(_medication(opens | {question: answer}))  # opened and answered: valid
    if required:
        assert "Answer '" in errors_of(_medication(opens))[f"modules.medication.{question}"]
    else:
        validate_report(_medication(opens))
    closed = errors_of(_medication({question: answer}))  # answered while closed: refused
    assert "applies only when" in closed[f"modules.medication.{question}"]


# Keys that are nobody's field names: a canary prefix, then anything (lone surrogates included).
_CANARY = "Zqj"
unknown_keys = st.builds(
    lambda a, b: f"{_CANARY}{a}{b}",
    st.text(alphabet=st.characters(codec=None), max_size=20),
    st.sampled_from(["", "\ud800", "\udfff x", " Jane Roe", ".", "[key]", "0"]),
)
_PLACES = ["", "patient", "discovery", "location", "harm", "reporter", "modules", "modules.fall", "rescue"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=unknown_keys, place=st.sampled_from(_PLACES), version=st.one_of(st.none(), unknown_keys))
def test_no_message_repeats_a_field_name_or_form_version_that_was_typed(key: str, place: str, version: str | None):
    data = example("fall-incident")
    target: Any = data
    for part in filter(None, place.split(".")):
        target = target.setdefault(part, {})
    target[key] = "x"
    if version is not None:
        data["form_version"] = version
    with pytest.raises(ReportInvalid) as info:
        validate_report(data)
    shown = json.dumps(info.value.as_json(), ensure_ascii=False) + str(info.value)
    assert _CANARY not in shown and "\ud800" not in shown and "\udfff" not in shown
    shown.encode("utf-8")  # nothing unencodable reaches a message (a server answer, a terminal)
    for error in info.value.errors:
        assert error.message and error.field
