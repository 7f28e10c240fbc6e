"""The FHIR R4 export: one Bundle (collection) of AdverseEvents, checked against the R4 rules and fhir.resources.

Rules checked here (FHIR R4, hl7.org/fhir/R4/adverseevent.html and the Bundle/DomainResource pages): actuality
1..1 (actual | potential), subject 1..1 Reference(Patient | Group | ...), identifier 0..1, severity and outcome
from their required value sets; every ``#id`` reference resolves to a contained resource and every contained
resource is referenced (dom-3); contained resources have no meta (dom-4, dom-5) and contain nothing (dom-2);
text.div is XHTML in the XHTML namespace; Bundle ``collection`` entries have a unique fullUrl and no total.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import typing
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pso_desktop.domain import load_catalogue, validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.paths import resources_dir
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services import fhir_export
from pso_desktop.services.workstation import PSWP_LABEL, Workstation
from tests.support.kdf import CHEAP_KDF
from tests.support.memory_keyring import MemoryKeyring

EXAMPLES = {
    p.stem: json.loads(p.read_text(encoding="utf-8"))
    for p in sorted((resources_dir() / "examples").glob("*.json"))
}
XHTML = "{http://www.w3.org/1999/xhtml}"
# The R4 AdverseEventCategory code system (http://terminology.hl7.org/CodeSystem/adverse-event-category, 4.0.1).
AE_CATEGORY_CODES = {
    "product-problem",
    "product-quality",
    "product-use-error",
    "wrong-dose",
    "incorrect-prescribing-information",
    "wrong-technique",
    "wrong-route-of-administration",
    "wrong-rate",
    "wrong-duration",
    "wrong-time",
    "expired-drug",
    "medical-device-use-error",
    "problem-different-manufacturer",
    "unsafe-physical-environment",
}
LOCAL = "urn:pso-desktop:common-formats:hospital-2.0"
SYSTEMS = {
    "ahrq": fhir_export.AHRQ_SYSTEM,
    "ahrq?": LOCAL + ":unverified:ahrq",  # an AHRQ code no primary source confirms: never under AHRQ's OID
    "loinc": "http://loinc.org",
    "local": LOCAL,
}
Json = dict[str, typing.Any]


def export(report: Json) -> Json:
    resource = fhir_export.adverse_event(report, PSWP_LABEL)
    check_r4(resource)
    return resource


def scalars(value: typing.Any) -> typing.Iterator[typing.Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from scalars(item)
    else:
        yield value


def references(value: typing.Any) -> typing.Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def answers(resource: Json) -> dict[str, list[Json]]:
    """The answers extension, as question path -> [value[x] dicts]."""
    found: dict[str, list[Json]] = {}
    for ext in resource.get("extension", []):
        assert ext["url"] == fhir_export.EXT_ANSWER
        parts = ext["extension"]
        question = next(p["valueString"] for p in parts if p["url"] == "question")
        module = next((p["valueString"] for p in parts if p["url"] == "module"), None)
        key = f"modules.{module}.{question}" if module else question
        found[key] = [{k: v for k, v in p.items() if k != "url"} for p in parts if p["url"] == "answer"]
        assert found[key], "an answer entry without an answer"
    return found


def assert_no_empty_values(value: typing.Any) -> None:
    """FHIR JSON has no empty strings, arrays or objects, and no nulls."""
    assert value not in ("", [], {}) and value is not None
    if isinstance(value, dict):
        for item in value.values():
            assert_no_empty_values(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_empty_values(item)


def check_r4(resource: Json) -> None:
    """The R4 rules this exporter must meet, structurally, then fhir.resources' own model check."""
    assert resource["resourceType"] == "AdverseEvent"
    assert resource.get("actuality") in ("actual", "potential") or "_actuality" in resource  # 1..1
    assert isinstance(resource["identifier"], dict)  # 0..1 in R4 (a list in R5)
    if "date" in resource:  # when the event happened: a date (a time would need a zone the form never records)
        assert dt.date.fromisoformat(resource["date"]).isoformat() == resource["date"]
    for concept in resource.get("category", []):  # only FHIR's AdverseEventCategory codes, nothing local
        assert [c["system"] for c in concept["coding"]] == [fhir_export.CATEGORY_SYSTEM]
        assert {c["code"] for c in concept["coding"]} <= AE_CATEGORY_CODES
    contained = {c["id"]: c for c in resource.get("contained", [])}
    assert len(contained) == len(resource.get("contained", [])), "contained ids must be unique"
    local = [r[1:] for r in references(resource) if r.startswith("#")]
    assert set(local) <= set(contained), "every local reference resolves"  # dom-3, first half
    assert set(contained) <= set(local), "every contained resource is referenced"  # dom-3, second half
    for c in contained.values():
        assert "meta" not in c and "contained" not in c and "text" not in c  # dom-4, dom-5, dom-2
    subject = contained[resource["subject"]["reference"][1:]]
    assert subject["resourceType"] in ("Patient", "Group")
    if subject["resourceType"] == "Group":
        assert subject["type"] == "person" and subject["actual"] is True  # Group's own 1..1 elements
    for element, system, codes in (
        ("severity", fhir_export.SEVERITY_SYSTEM, {"mild", "moderate", "severe"}),
        ("outcome", fhir_export.OUTCOME_SYSTEM, {"resolved", "recovering", "ongoing", "fatal", "unknown"}),
    ):
        for coding in resource.get(element, {}).get("coding", []):
            assert coding["system"] == system and coding["code"] in codes  # required bindings
    div = ET.fromstring(resource["text"]["div"])  # well-formed XML, or this raises
    assert div.tag == f"{XHTML}div"
    assert resource["text"]["status"] in ("generated", "extensions", "additional", "empty")
    assert_no_empty_values(resource)
    AdverseEvent.model_validate(resource)


def check_bundle(document: Json) -> None:
    assert document["resourceType"] == "Bundle" and document["type"] == "collection"
    assert "total" not in document  # bdl-1: total only in a searchset or history
    assert_no_empty_values(document)
    urls = [e["fullUrl"] for e in document.get("entry", [])]
    assert len(set(urls)) == len(urls)  # bdl-7
    for entry in document.get("entry", []):
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
        assert "request" not in entry and "response" not in entry
        check_r4(entry["resource"])
    Bundle.model_validate(json.loads(json.dumps(document)))


def is_labelled(meta: Json) -> bool:
    restricted = {"system": fhir_export.CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"}
    tags = [t for t in meta.get("tag", []) if t["system"] == fhir_export.PSWP_TAG_SYSTEM]
    return restricted in meta["security"] and [t["display"] for t in tags] == [PSWP_LABEL]


def test_examples_make_a_valid_labelled_bundle():
    document = fhir_export.bundle(EXAMPLES.values(), PSWP_LABEL, now=dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC))
    check_bundle(document)
    assert document["timestamp"] == "2026-11-27T12:00:00+00:00"
    assert is_labelled(document["meta"])
    assert [e["resource"]["id"] for e in document["entry"]] == [r["id"] for r in EXAMPLES.values()]
    for entry in document["entry"]:
        assert is_labelled(entry["resource"]["meta"])
        assert PSWP_LABEL in ET.fromstring(entry["resource"]["text"]["div"]).findtext(f"{XHTML}p/{XHTML}b", "")


def test_no_reports_make_a_bundle_without_entries():
    document = fhir_export.bundle([], PSWP_LABEL)
    check_bundle(document)
    assert "entry" not in document and is_labelled(document["meta"])


@pytest.mark.parametrize(
    ("name", "actuality", "subject"),
    [
        ("fall-incident", "actual", "Patient"),
        ("medication-near-miss", "potential", "Patient"),
        ("unsafe-condition", "potential", "Group"),
    ],
)
def test_event_type_gives_actuality_and_subject_and_stays_an_answer(name: str, actuality: str, subject: str):
    report = EXAMPLES[name]
    resource = export(report)
    assert resource["actuality"] == actuality
    contained = {c["id"]: c for c in resource["contained"]}
    assert contained[resource["subject"]["reference"][1:]]["resourceType"] == subject
    assert resource["id"] == report["id"] and resource["meta"]["versionId"] == str(report["revision"])
    assert resource["identifier"] == {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{report['id']}"}
    # What kind of report it is (near miss or unsafe condition are both "potential") is an answer, not the event.
    (event_type,) = answers(resource)["event_type"]
    assert (
        event_type["valueCoding"]["system"] == LOCAL and event_type["valueCoding"]["code"] == report["event_type"]
    )
    assert report["event_type"] not in {c["code"] for c in resource["event"]["coding"]}


# Every example: actuality, what happened (event: the categories, then the answers of the module questions the
# catalogue marks fhir "event", each with its other codings), FHIR's AdverseEventCategory, and when it happened.
EXPECTED = [
    ("anesthesia-airway", "actual", [("ahrq?", "A41"), ("local", "difficult_airway")], [], "2026-11-18"),
    ("anesthesia-sedation", "actual", [("ahrq?", "A41"), ("local", "physiologic_complication")], [], "2026-11-18"),
    (
        "blood-incident",
        "actual",
        [("ahrq", "A42"), ("ahrq", "A570"), ("local", "incorrect_patient")],
        [],
        "2026-11-18",
    ),
    (
        "blood-near-miss",
        "potential",
        [("ahrq", "A42"), ("ahrq", "A570"), ("local", "expired_or_stored")],
        [],
        "2026-11-18",
    ),
    ("device-incident", "actual", [("ahrq?", "A45"), ("local", "malfunction")], ["product-problem"], "2026-11-18"),
    (
        "device-unsafe-condition",
        "potential",
        [("ahrq?", "A45"), ("local", "reprocessing"), ("ahrq?", "A66")],
        ["unsafe-physical-environment"],
        "2026-11-18",
    ),
    ("fall-incident", "actual", [("ahrq", "A48"), ("ahrq?", "A867")], [], "2026-11-20"),
    # V2.0 retired the HAI module: an HAI is its category through the generic form, nothing more.
    ("hai-bloodstream", "actual", [("ahrq", "A51")], [], "2026-11-19"),
    ("hai-urinary", "actual", [("ahrq", "A51")], [], "2026-11-21"),
    (
        "medication-near-miss",
        "potential",
        [
            ("ahrq", "A54"),
            ("local", "incorrect_action"),
            ("ahrq?", "A1257"),
            ("loinc", "LA20275-6"),
            ("local", "strength"),
            ("ahrq?", "A1293"),
            ("loinc", "LA20309-3"),
        ],
        [],
        "2026-11-21",
    ),
    ("perinatal-mother", "actual", [("ahrq", "A57"), ("ahrq?", "A66")], [], "2026-11-18"),
    ("perinatal-neonate", "actual", [("ahrq", "A57"), ("local", "birth_trauma")], [], "2026-11-18"),
    ("pressure-injury-sdti", "actual", [("ahrq", "A60"), ("local", "sdti")], [], "2026-11-18"),
    ("pressure-injury-stage3", "actual", [("ahrq", "A60"), ("local", "stage_3")], [], "2026-11-18"),
    ("surgery-laceration", "actual", [("ahrq?", "A61"), ("ahrq", "A2187")], [], "2026-11-18"),
    ("surgery-near-miss-wrong-side", "potential", [("ahrq?", "A61"), ("ahrq", "A2181")], [], "2026-11-18"),
    ("unsafe-condition", "potential", [("ahrq?", "A45")], ["unsafe-physical-environment"], "2026-11-22"),
    # The VTE's onset (fhir "date") is the day before it was discovered: date is the onset, detected the discovery.
    ("vte-dvt", "actual", [("ahrq", "A64"), ("local", "dvt")], [], "2026-11-17"),
    ("vte-pe", "actual", [("ahrq", "A64"), ("local", "pe")], [], "2026-11-18"),
]


def test_every_example_has_an_expectation():
    assert sorted(name for name, *_ in EXPECTED) == sorted(EXAMPLES)


@pytest.mark.parametrize(("name", "actuality", "event", "category", "date"), EXPECTED)
def test_examples_say_what_happened_and_when(
    name: str, actuality: str, event: list[tuple[str, str]], category: list[str], date: str
):
    report = EXAMPLES[name]
    resource = export(report)
    assert resource["actuality"] == actuality
    assert [(c["system"], c["code"]) for c in resource["event"]["coding"]] == [
        (SYSTEMS[system], code) for system, code in event
    ]
    assert [c["coding"][0]["code"] for c in resource.get("category", [])] == category
    assert resource["date"] == date and resource["detected"] == report["discovery"]["date"]
    # The event's words are the catalogue's: the first category's display leads them.
    first = load_catalogue().category(report["categories"][0])
    assert first is not None and resource["event"]["text"].startswith(first.display)


def test_an_incorrect_dose_is_wrong_dose_and_a_route_error_wrong_route():
    report = json.loads(json.dumps(EXAMPLES["medication-near-miss"]))
    medication = report["modules"]["medication"]
    medication["incorrect_actions"] = ["dose", "route"]
    medication.pop("strength_error", None)
    medication |= {"dose_error": "overdose", "intended_route": "oral", "actual_route": "intravenous"}
    report = validate_report(report).export()  # a report the form would accept
    resource = export(report)
    assert [c["coding"] for c in resource["category"]] == [
        [{"system": fhir_export.CATEGORY_SYSTEM, "code": "wrong-dose", "display": "Wrong Dose"}],
        [
            {
                "system": fhir_export.CATEGORY_SYSTEM,
                "code": "wrong-route-of-administration",
                "display": "Wrong Route of Administration",
            }
        ],
    ]
    assert {c["code"] for c in resource["event"]["coding"]} >= {"dose", "LA20303-6", "route", "LA20304-4"}
    # A near miss is not an unsafe condition: no unsafe-physical-environment for it.
    assert "unsafe-physical-environment" not in json.dumps(resource["category"])


def test_date_is_the_discovery_date_only_where_the_occurrence_is_unknown():
    report = json.loads(json.dumps(EXAMPLES["vte-dvt"]))
    report["discovery"] = {"date_unknown": True, "time_unknown": True}
    resource = export(report)
    assert resource["date"] == "2026-11-17" and "detected" not in resource  # the onset is still known
    del report["modules"]["vte"]["onset"]
    resource = export(report)
    assert "date" not in resource and "detected" not in resource  # neither is known: nothing is invented


def test_unsafe_condition_subject_is_a_group_of_no_one():
    resource = export(EXAMPLES["unsafe-condition"])
    (group,) = [c for c in resource["contained"] if c["resourceType"] == "Group"]
    assert group["quantity"] == 0 and "No patient involved" in group["name"]
    assert not [c for c in resource["contained"] if c["resourceType"] == "Patient"]


def test_fall_incident_maps_patient_location_harm_and_reporter():
    resource = export(EXAMPLES["fall-incident"])
    contained = {c["id"]: c for c in resource["contained"]}
    patient = contained["subject"]
    assert patient["identifier"][0]["value"] == "MRN00000001"
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert patient["name"] == [{"text": "Test Patient Alpha"}] and patient["gender"] == "female"
    assert "birthDate" not in patient  # not given, so not invented from the age
    assert answers(resource)["patient.age_years"] == [{"valueInteger": 82}]
    location = contained[resource["location"]["reference"][1:]]
    assert location["name"] == "4W-MEDSURG" and location["description"] == "Room 12B, bathroom"
    assert location["identifier"] == [{"system": fhir_export.UNIT_SYSTEM, "value": "4W-MEDSURG"}]
    assert resource["seriousness"]["coding"] == [
        {"system": "http://loinc.org", "code": "LA21150-0", "display": "Mild harm"}
    ]
    assert resource["severity"]["coding"][0]["code"] == "mild" and "outcome" not in resource
    assert resource["recordedDate"] == "2026-11-20" and resource["detected"] == "2026-11-20"
    assert answers(resource)["discovery.time"] == [{"valueTime": "03:40:00"}]  # no time zone is invented
    role = contained[resource["recorder"]["reference"][1:]]
    assert role["resourceType"] == "PractitionerRole" and role["code"] == [{"text": "Night-shift RN"}]
    assert contained[role["practitioner"]["reference"][1:]]["name"] == [{"text": "Jordan Example"}]
    # DE204's codes come from one third-party note (unverified): a local system, never AHRQ's OID.
    assert answers(resource)["modules.fall.DE204"] == [
        {"valueCoding": {"system": SYSTEMS["ahrq?"], "code": "A905", "display": answers_display("A905")}}
    ]


def answers_display(code: str) -> str:
    answer = load_catalogue().modules["fall"].by_id["DE204"].answer(code)
    assert answer is not None
    return answer.display


def test_death_is_a_fatal_outcome_and_severity_stays_out():
    report = json.loads(json.dumps(EXAMPLES["fall-incident"]))
    report["harm"]["level"] = "LA20747-4"
    resource = export(report)
    assert resource["outcome"]["coding"][0]["code"] == "fatal" and "severity" not in resource
    assert resource["seriousness"]["coding"][0]["display"] == "Death"


def test_medication_products_are_suspect_entities():
    resource = export(EXAMPLES["medication-near-miss"])
    contained = {c["id"]: c for c in resource["contained"]}
    (suspect,) = resource["suspectEntity"]
    medication = contained[suspect["instance"]["reference"][1:]]
    assert medication["resourceType"] == "Medication"
    assert medication["code"] == {"text": "heparin"} and medication["form"] == {"text": "injection solution"}
    assert medication["ingredient"] == [{"itemCodeableConcept": {"text": "heparin"}}]
    found = answers(resource)
    assert found["modules.medication.products.1.strength"] == [{"valueString": "5,000 units/mL"}]
    assert found["modules.medication.incorrect_actions"][0]["valueCoding"]["code"] == "strength"


def identity_free(resource: Json, report: Json) -> None:
    text = json.dumps(resource, ensure_ascii=False)
    for field in ("name", "telephone", "email", "job"):
        value = report["reporter"].get(field)
        if value:
            assert value not in text, f"the anonymous reporter's {field} leaked"
            assert f"reporter.{field}" not in text
    assert "recorder" not in resource and "contributor" not in resource
    assert not [c for c in resource.get("contained", []) if c["resourceType"].startswith("Practitioner")]


def test_anonymous_report_carries_no_reporter_identity():
    resource = export(EXAMPLES["medication-near-miss"])
    identity_free(resource, EXAMPLES["medication-near-miss"])
    assert answers(resource)["reporter.anonymous"] == [{"valueBoolean": True}]
    # A draft is stored unvalidated: even one that holds an identity beside the anonymous box exports none.
    draft = json.loads(json.dumps(EXAMPLES["fall-incident"]))
    draft["reporter"] |= {"anonymous": True, "telephone": "555-0100", "email": "jordan@hospital.example"}
    identity_free(export(draft), draft)
    draft["reporter"]["anonymous"] = "yes"  # not plainly False: treated as anonymous
    identity_free(export(draft), draft)


def test_identified_reporter_telecom():
    report = json.loads(json.dumps(EXAMPLES["unsafe-condition"]))
    report["reporter"] |= {"telephone": "555-0100", "email": "sam@hospital.example"}
    resource = export(report)
    contained = {c["id"]: c for c in resource["contained"]}
    assert contained["reporter"]["telecom"] == [
        {"system": "phone", "value": "555-0100"},
        {"system": "email", "value": "sam@hospital.example"},
    ]


def test_unknown_dates_are_left_out_never_invented():
    report = json.loads(json.dumps(EXAMPLES["medication-near-miss"]))
    report["discovery"] = {"date_unknown": True, "time_unknown": True}
    resource = export(report)
    assert "detected" not in resource
    assert resource["_detected"] == {"extension": [{"url": fhir_export.DATA_ABSENT, "valueCode": "unknown"}]}
    assert "discovery.time" not in answers(resource) and "discovery.date" not in answers(resource)
    assert answers(resource)["discovery.time_unknown"] == [{"valueBoolean": True}]
    assert "date" not in resource  # nor when it happened: the form does not know
    # Known time, unknown date: the time is kept, still without a zone; no occurrence date appears.
    report["discovery"] = {"date_unknown": True, "time": "14:15:00"}
    resource = export(report)
    assert "detected" not in resource and answers(resource)["discovery.time"] == [{"valueTime": "14:15:00"}]
    assert "date" not in resource


def test_naive_harm_assessment_time_stays_text():
    report = json.loads(json.dumps(EXAMPLES["fall-incident"]))
    report["harm"]["assessed_at"] = "2026-11-20T05:00:00"
    assert answers(export(report))["harm.assessed_at"] == [{"valueString": "2026-11-20T05:00:00"}]


def leaf_values(value: typing.Any, path: str = "") -> typing.Iterator[tuple[str, typing.Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_values(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            yield from leaf_values(item, path)
    else:
        yield path, value


def assert_nothing_dropped(report: Json, resource: Json) -> None:
    """Every non-empty value of the report is somewhere in the resource (reporter identity aside, when
    anonymous), as the same JSON scalar: text, code, number, boolean or date."""
    out = set()
    for s in scalars(resource):
        out.add(json.dumps(s))
    anonymous = report["reporter"].get("anonymous", False)
    for path, value in leaf_values(report):
        if value in ("", None):
            continue
        if anonymous and path in ("reporter.name", "reporter.telephone", "reporter.email", "reporter.job"):
            continue
        expected = {"revision": str(value), "patient.gender": fhir_export._GENDER.get(value)}.get(path, value)
        assert json.dumps(expected) in out, f"{path} is missing from the FHIR resource"


def test_examples_drop_nothing():
    for report in EXAMPLES.values():
        assert_nothing_dropped(report, export(report))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_sample_reports_export_valid_and_complete(seed: int):
    rng = random.Random(seed)
    reports = [validate_report(sample_report(rng, i)).export() for i in range(5)]
    document = fhir_export.bundle(reports, PSWP_LABEL)
    check_bundle(document)
    for report, entry in zip(reports, document["entry"], strict=True):
        assert_nothing_dropped(report, entry["resource"])
        if report["reporter"].get("anonymous"):
            identity_free(entry["resource"], report)


free_text = st.text(
    alphabet=st.one_of(st.sampled_from("<>&\"']]>\r\n\t;/ é中"), st.characters(codec="utf-8")),
    min_size=1,
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(narrative=free_text)
def test_narrative_is_escaped_xhtml_and_kept_whole(narrative: str):
    report = json.loads(json.dumps(EXAMPLES["fall-incident"]))
    report["narrative"] = narrative
    resource = export(report)
    div = ET.fromstring(resource["text"]["div"])
    assert not [e for e in div.iter() if e.tag not in (f"{XHTML}div", f"{XHTML}p", f"{XHTML}b", f"{XHTML}br")]
    if narrative.strip():
        kept = fhir_export._text(narrative)  # what FHIR can hold: refused control characters become U+FFFD
        assert answers(resource)["narrative"] == [{"valueString": kept}]
        paragraph = div.findall(f"{XHTML}p")[-1]
        shown = (paragraph.text or "") + "".join("\n" + (br.tail or "") for br in paragraph)
        assert shown == kept.replace("\r\n", "\n").replace("\r", "\n")


def test_script_in_narrative_is_text_not_markup():
    report = json.loads(json.dumps(EXAMPLES["fall-incident"]))
    report["narrative"] = '<script>alert(1)</script> & </div><p onclick="x">'
    div = export(report)["text"]["div"]
    assert "<script>" not in div and "&lt;script&gt;" in div and "&amp; &lt;/div&gt;" in div


def test_unfinished_drafts_export_as_they_are():
    half_filled = {"id": str(uuid.uuid4()), "revision": 1, "event_type": "incident", "narrative": "Started typing"}
    resource = export(half_filled)
    assert resource["actuality"] == "actual"
    assert next(c for c in resource["contained"] if c["resourceType"] == "Group")["name"].startswith("Patient not")
    nothing_yet = {"id": str(uuid.uuid4()), "revision": 2, "categories": [], "report_date": "2026-11-"}
    resource = export(nothing_yet)
    # actuality is 1..1 but unknown for a draft without an event type: a data-absent reason, not a guess.
    assert "actuality" not in resource and resource["_actuality"]["extension"][0]["valueCode"] == "unknown"
    assert "recordedDate" not in resource and answers(resource)["report_date"] == [{"valueString": "2026-11-"}]
    odd = {
        "id": str(uuid.uuid4()),
        "revision": 1,
        "event_type": "near_miss",
        "form_version": "hospital-9.9",
        "categories": ["A54", "not a code"],
        "patient": {"age_years": 2**40, "weight": 3.5},
        "modules": {"medication": {"products": [{"brand_rxcui": "1234"}, "stray"]}, "fall": "x"},
        "narrative": "bad \x00 byte",
    }
    resource = export(odd)
    found = answers(resource)
    assert found["patient.age_years"] == [{"valueString": str(2**40)}]
    assert found["patient.weight"] == [{"valueDecimal": 3.5}]
    assert found["categories"] == [{"valueString": "A54"}, {"valueString": "not a code"}]
    assert found["narrative"] == [{"valueString": "bad \ufffd byte"}]
    medication = next(c for c in resource["contained"] if c["resourceType"] == "Medication")
    assert medication["code"] == {"coding": [{"system": fhir_export.RXNORM_SYSTEM, "code": "1234"}]}


SECRET = "a long enough secret"


def test_session_export_fhir_writes_every_report_drafts_included(
    pso_home: Path, memory_keyring: MemoryKeyring, tmp_path: Path
):
    ws = Workstation(pso_home, keys=ProfileKeys(pso_home, backend=memory_keyring, kdf=CHEAP_KDF))
    ws.create_profile("alice", SECRET)
    draft_id = str(uuid.uuid4())
    with ws.session("alice", SECRET) as session:
        session.add_reports(list(EXAMPLES.values()), submit=True)
        session.save_draft({"id": draft_id, "revision": 1, "event_type": "incident", "narrative": "Started"})
        out = tmp_path / "reports.fhir.json"
        assert session.export_fhir(out) == len(EXAMPLES) + 1
        entries = [(e.action, e.detail) for e in session.audit.entries() if e.action == "export"]
    assert entries == [("export", f"fhir, {len(EXAMPLES) + 1} report(s)")]
    assert out.stat().st_mode & 0o777 == 0o600
    document = json.loads(out.read_text(encoding="utf-8"))
    check_bundle(document)
    ids = {e["resource"]["id"] for e in document["entry"]}
    assert ids == {*(r["id"] for r in EXAMPLES.values()), draft_id}
