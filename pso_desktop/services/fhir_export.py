"""FHIR R4 export: each report becomes one ``AdverseEvent``, all of them one ``Bundle`` of type ``collection``.

Pure mapping, no I/O: :func:`adverse_event` turns a report in its wire form into a resource dict and
:func:`bundle` wraps many. Reports are exported as stored, unfinished drafts included, so the mapping reads
them defensively: a value it cannot place in a FHIR element is carried in the answers extension rather than
dropped or altered, and nothing is invented (no time zone, occurrence date, harm judgement or patient).
docs/import-export.md ("FHIR") documents every decision below.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pso_desktop.domain.catalogue import (
    CURRENT_FORM_VERSION,
    GENERIC_ANSWER_SETS,
    Answer,
    Catalogue,
    Coding,
    Question,
    load_catalogue,
)
from pso_desktop.times import parse_iso_time

# Our own definitions (no web domain of ours to host StructureDefinitions): absolute URIs, documented.
EXT_ANSWER = "urn:pso-desktop:fhir:extension:common-formats-answer"
PSWP_TAG_SYSTEM = "urn:pso-desktop:fhir:label"
PSWP_TAG_CODE = "PSWP"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
REPORT_ID_SYSTEM = "urn:ietf:rfc:3986"
UNIT_SYSTEM = "urn:pso-desktop:unit"  # the facility's unit codes (server reference data, not the form catalogue)
AHRQ_SYSTEM = "urn:oid:2.16.840.1.113883.3.263.1.12"
_SYSTEMS = {
    "ahrq": AHRQ_SYSTEM,
    "nullflavor": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
    "loinc": "http://loinc.org",
}
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SEVERITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-category"
# The catalogue's name for FHIR's AdverseEventCategory: codings in it go to ``category``, nowhere else.
_CATEGORY_KEY = "adverse_event_category"
OUTCOME_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

_ACTUALITY = {"incident": "actual", "near_miss": "potential", "unsafe_condition": "potential"}
_GENDER = {"M": "male", "F": "female", "UNK": "unknown"}
# The AHRQ harm levels whose names are FHIR's severity codes, and Death, which is FHIR's "fatal" outcome.
_SEVERITY = {"LA20748-2": "severe", "LA20749-0": "moderate", "LA21150-0": "mild"}
_DEATH = "LA20747-4"
_KINDS = {
    "initial_report_date": "date",
    "discovery.time": "time",
    "harm.assessed_at": "datetime",
    "patient.date_of_birth": "date",
}
# Who the reporter is: never exported for an anonymous report, whatever else the report holds.
_IDENTITY = ("name", "telephone", "email", "job")
# What FHIR strings cannot hold (and XML cannot either); validation refuses these, unvalidated drafts might not.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?")
_INT32 = 2**31


def local_system(form_version: str) -> str:
    """The code system of the catalogue's local codes (event types, medication answers, ...) of one version."""
    return f"urn:pso-desktop:common-formats:{form_version}"


def unverified_system(form_version: str, system_name: str) -> str:
    """Where a code the catalogue marks unverified goes (``...:hospital-2.0:unverified:ahrq``): never under the
    real system's URI, which would vouch for a code no primary source gave; the suffix keeps what it claims."""
    return f"{local_system(form_version)}:unverified:{system_name}"


def security_meta(label: str) -> dict[str, Any]:
    """``meta`` of the Bundle and of each AdverseEvent: restricted (v3-Confidentiality R), plus the PSWP label."""
    return {
        "security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"}],
        "tag": [{"system": PSWP_TAG_SYSTEM, "code": PSWP_TAG_CODE, "display": label}],
    }


def bundle(reports: Iterable[Mapping[str, Any]], label: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """One Bundle (type ``collection``) holding one AdverseEvent entry per report, in the given order."""
    entries = []
    for report in reports:
        resource = adverse_event(report, label)
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    document: dict[str, Any] = {
        "resourceType": "Bundle",
        "meta": security_meta(label),
        "type": "collection",
        "timestamp": stamp,
    }
    if entries:  # FHIR JSON has no empty arrays: an export of no reports is a Bundle without entries
        document["entry"] = entries
    return document


def adverse_event(report: Mapping[str, Any], label: str) -> dict[str, Any]:
    """One report (wire form, draft or not) as a FHIR R4 AdverseEvent with its contained resources."""
    return _Mapper(report, label).resource()


class _Mapper:
    def __init__(self, report: Mapping[str, Any], label: str) -> None:
        self.report = report
        self.label = label
        version = report.get("form_version", CURRENT_FORM_VERSION)
        self.version = version if isinstance(version, str) else CURRENT_FORM_VERSION
        self.catalogue = _catalogue(self.version)
        self.local = local_system(self.version)
        self.contained: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.consumed: set[str] = set()  # paths placed in FHIR elements (everything else goes to answers)
        reporter = report.get("reporter")
        # Anonymous unless the report says plainly that it is not: a doubt never exports an identity.
        self.anonymous = isinstance(reporter, Mapping) and reporter.get("anonymous", False) is not False

    def resource(self) -> dict[str, Any]:
        r = self.report
        report_id = str(r.get("id"))
        self.consumed.update({"id", "revision"})
        meta = security_meta(self.label)
        revision = r.get("revision")
        if isinstance(revision, int) and not isinstance(revision, bool):
            meta = {"versionId": str(revision), **meta}
        else:
            self.consumed.discard("revision")
        ae: dict[str, Any] = {"resourceType": "AdverseEvent", "id": report_id, "meta": meta}
        ae["identifier"] = {"system": REPORT_ID_SYSTEM, "value": f"urn:uuid:{report_id}"}
        event_type = r.get("event_type")
        if isinstance(event_type, str) and event_type in _ACTUALITY:
            # The event type itself (near miss or unsafe condition, both "potential") stays in the answers
            # extension as its catalogue code: ``event`` says what happened, not what kind of report it is.
            ae["actuality"] = _ACTUALITY[event_type]
        else:
            # actuality is 1..1; an unfinished draft has no event type yet, and guessing one would mislead.
            ae["_actuality"] = _absent("unknown")
        categories = self._fhir_categories()
        if categories:
            ae["category"] = categories
        event = self._event()
        if event:
            ae["event"] = event
        ae["subject"] = {"reference": "#" + self._subject()}
        detected = _date_value(_get(r, "discovery.date"))
        occurred = self._occurrence_date()
        if occurred is not None or detected is not None:
            ae["date"] = occurred or detected  # when it happened; the discovery date where that is not known
        if detected is not None:
            ae["detected"] = detected
            self.consumed.add("discovery.date")
        elif _get(r, "discovery.date_unknown") is True:
            ae["_detected"] = _absent("unknown")
        recorded = _date_value(r.get("report_date"))
        if recorded is not None:
            ae["recordedDate"] = recorded
            self.consumed.add("report_date")
        location = self._location()
        if location:
            ae["location"] = {"reference": "#" + location}
        self._harm(ae)
        recorder = self._recorder()
        if recorder:
            ae["recorder"] = {"reference": "#" + recorder}
        suspects = self._suspects()
        if suspects:
            ae["suspectEntity"] = suspects
        self._collect_answers()
        ae["text"] = {"status": "generated", "div": self._narrative_div()}
        if self.contained:
            ae["contained"] = self.contained
        if self.answers:
            ae["extension"] = self.answers
        # FHIR's usual element order (resourceType, id, meta, text, contained, extension, ...) for human readers.
        order = ["resourceType", "id", "meta", "text", "contained", "extension"]
        return {k: ae[k] for k in order if k in ae} | {k: v for k, v in ae.items() if k not in order}

    # --- coded values ---------------------------------------------------------------------------------------

    def _coding(self, code: str, system_name: str, display: str | None, verified: bool = True) -> dict[str, Any]:
        """A Coding: AHRQ, NullFlavor and LOINC codes under their own systems when the catalogue calls them
        verified; unverified codes under a local system (:func:`unverified_system`); local codes under the
        catalogue version's local system."""
        if system_name in _SYSTEMS:
            system = _SYSTEMS[system_name] if verified else unverified_system(self.version, system_name)
        else:
            system = CATEGORY_SYSTEM if system_name == _CATEGORY_KEY else self.local
        coding: dict[str, Any] = {"system": system, "code": code}
        if display:
            coding["display"] = display
        return coding

    def _answer_codings(self, answer: Answer) -> list[dict[str, Any]]:
        """The answer's own code, then the same answer in the other systems the catalogue gives (LOINC, AHRQ);
        AdverseEventCategory codings are left to ``category``."""
        codings = [self._coding(answer.code, answer.system, answer.display, answer.verified)]
        for other in answer.codings:
            if other.system != _CATEGORY_KEY:
                codings.append(self._coding(other.code, other.system, None, other.verified and answer.verified))
        return codings

    def _category_codes(self) -> list[str]:
        codes = self.report.get("categories")
        if not isinstance(codes, list) or not codes or not all(_is_code(c) for c in codes):
            return []
        return [str(c) for c in codes]

    def _chosen(self) -> Iterator[tuple[Question, Answer]]:
        """Every (question, answer) chosen in the report's modules, in the catalogue's order."""
        modules = self.report.get("modules")
        if not self.catalogue or not isinstance(modules, Mapping):
            return
        for key, module in self.catalogue.modules.items():
            given = modules.get(key)
            if not isinstance(given, Mapping):
                continue
            for question in module.questions:
                value = given.get(question.id)
                for code in value if isinstance(value, list) else [value]:
                    answer = question.answer(code) if isinstance(code, str) else None
                    if answer is not None:
                        yield question, answer

    def _event(self) -> dict[str, Any] | None:
        """What happened: the categories (AHRQ codes) and the answers of the module questions the catalogue
        marks ``fhir: event`` (e.g. the Fall's assisted/unassisted, the medication's incorrect actions)."""
        codings: list[dict[str, Any]] = []
        words: list[str] = []
        other = self.report.get("categories_other")
        for code in self._category_codes():
            found = self.catalogue.category(code) if self.catalogue else None
            verified = found.verified if found else True
            codings.append(self._coding(code, "ahrq", found.display if found else None, verified))
            if code == "A66" and isinstance(other, str) and other.strip():
                words.append(_text(other))
            elif found:
                words.append(found.display)
            self.consumed.add("categories")
        for question, answer in self._chosen():
            if question.fhir == "event":
                codings.extend(self._answer_codings(answer))
                words.append(answer.display)
        unique = list({(c["system"], c["code"]): c for c in codings}.values())
        if not unique:
            return None
        return {"coding": unique, "text": "; ".join(dict.fromkeys(words))} if words else {"coding": unique}

    def _fhir_categories(self) -> list[dict[str, Any]]:
        """AdverseEventCategory codes where the catalogue maps one: the event type's (an unsafe condition) and
        the chosen module answers' (an incorrect dose is wrong-dose)."""
        mapped: list[Coding] = []
        event_type = self.report.get("event_type")
        if self.catalogue and isinstance(event_type, str):
            found = next((a for a in self.catalogue.event_types if a.code == event_type), None)
            mapped.extend(found.codings if found else ())
        for _question, answer in self._chosen():
            mapped.extend(answer.codings)
        result: dict[str, dict[str, Any]] = {}
        for coding in mapped:
            if coding.system == _CATEGORY_KEY and coding.code not in result:
                concept = {"coding": [self._coding(coding.code, _CATEGORY_KEY, coding.display or None)]}
                result[coding.code] = concept | ({"text": coding.display} if coding.display else {})
        return list(result.values())

    def _occurrence_date(self) -> str | None:
        """The date part of the first module answer the catalogue marks ``fhir: date`` (when the event
        happened, e.g. the VTE's onset); a date-time without a zone gives only its date, never an invented zone."""
        modules = self.report.get("modules")
        if not self.catalogue or not isinstance(modules, Mapping):
            return None
        for key, module in self.catalogue.modules.items():
            given = modules.get(key)
            for question in module.questions if isinstance(given, Mapping) else ():
                value = given.get(question.id) if isinstance(given, Mapping) else None
                if question.fhir == "date" and isinstance(value, str):
                    date = _date_value(value[:10])
                    if date is not None:
                        return date
        return None

    def _event_type_display(self, code: str) -> str:
        found = next((a for a in self.catalogue.event_types if a.code == code), None) if self.catalogue else None
        return found.display if found else code.replace("_", " ")

    # --- contained resources ------------------------------------------------------------------------------

    def _contain(self, resource: dict[str, Any]) -> str:
        self.contained.append(resource)
        return str(resource["id"])

    def _subject(self) -> str:
        patient = self.report.get("patient")
        if isinstance(patient, Mapping) and any(_present(v) for v in patient.values()):
            return self._contain(self._patient(patient))
        # subject is 1..1. A Group of no one says what the report says: nobody (unsafe condition) or nobody named.
        group: dict[str, Any] = {"resourceType": "Group", "id": "subject", "type": "person", "actual": True}
        if self.report.get("event_type") == "unsafe_condition":
            group |= {"quantity": 0, "name": "No patient involved (unsafe condition)"}
        else:
            group["name"] = "Patient not identified in this report"
        return self._contain(group)

    def _patient(self, patient: Mapping[str, Any]) -> dict[str, Any]:
        resource: dict[str, Any] = {"resourceType": "Patient", "id": "subject"}
        mrn = patient.get("mrn")
        if isinstance(mrn, str) and mrn.strip():
            mr = {"coding": [{"system": _V2_0203, "code": "MR", "display": "Medical record number"}]}
            resource["identifier"] = [{"type": mr, "value": _text(mrn)}]
            self.consumed.add("patient.mrn")
        name = patient.get("name")
        if isinstance(name, str) and name.strip():
            resource["name"] = [{"text": _text(name)}]  # as written: splitting into given/family would guess
            self.consumed.add("patient.name")
        gender = patient.get("gender")
        if isinstance(gender, str) and gender in _GENDER:
            resource["gender"] = _GENDER[gender]
            self.consumed.add("patient.gender")
        birth = _date_value(patient.get("date_of_birth"))
        if birth is not None:
            resource["birthDate"] = birth
            self.consumed.add("patient.date_of_birth")
        return resource

    def _location(self) -> str | None:
        location = self.report.get("location")
        if not isinstance(location, Mapping):
            return None
        resource: dict[str, Any] = {"resourceType": "Location", "id": "location"}
        unit = location.get("unit")
        if isinstance(unit, str) and unit.strip():
            resource["identifier"] = [{"system": UNIT_SYSTEM, "value": _text(unit)}]
            resource["name"] = _text(unit)
            self.consumed.add("location.unit")
        description = location.get("description")
        if isinstance(description, str) and description.strip():
            resource["description"] = _text(description)
            self.consumed.add("location.description")
        return self._contain(resource) if len(resource) > 2 else None

    def _recorder(self) -> str | None:
        reporter = self.report.get("reporter")
        if self.anonymous or not isinstance(reporter, Mapping):
            return None
        person: dict[str, Any] = {"resourceType": "Practitioner", "id": "reporter"}
        name = reporter.get("name")
        if isinstance(name, str) and name.strip():
            person["name"] = [{"text": _text(name)}]
            self.consumed.add("reporter.name")
        telecom = []
        for field, system in (("telephone", "phone"), ("email", "email")):
            value = reporter.get(field)
            if isinstance(value, str) and value.strip():
                telecom.append({"system": system, "value": _text(value)})
                self.consumed.add(f"reporter.{field}")
        if telecom:
            person["telecom"] = telecom
        job = reporter.get("job")
        has_job = isinstance(job, str) and bool(job.strip())
        if len(person) == 2 and not has_job:
            return None
        self._contain(person)
        if not has_job:
            return "reporter"
        self.consumed.add("reporter.job")
        return self._contain(
            {
                "resourceType": "PractitionerRole",
                "id": "reporter-role",
                "practitioner": {"reference": "#reporter"},
                "code": [{"text": _text(str(job))}],
            }
        )

    def _suspects(self) -> list[dict[str, Any]]:
        """Medication products named in the medication module, as contained Medications (the module's answers,
        strength and manufacturer included, also travel in the answers extension)."""
        modules = self.report.get("modules")
        medication = modules.get("medication") if isinstance(modules, Mapping) else None
        products = medication.get("products") if isinstance(medication, Mapping) else None
        if not isinstance(products, list):
            return []
        suspects = []
        for n, product in enumerate(products, start=1):
            if not isinstance(product, Mapping):
                continue
            resource = _medication(product, f"medication-{n}")
            if resource is not None:
                suspects.append({"instance": {"reference": "#" + self._contain(resource)}})
        return suspects

    # --- harm -----------------------------------------------------------------------------------------------

    def _harm(self, ae: dict[str, Any]) -> None:
        level = _get(self.report, "harm.level")
        if not self.catalogue or not isinstance(level, str):
            return
        found = next((h for h in self.catalogue.harm_levels if h.code == level), None)
        if found is None:
            return  # not a LOINC answer of the harm scale: carried in the answers extension as given
        # seriousness has an example binding: the AHRQ Harm Scale answer (LOINC 74560-4) goes there whole.
        coding = {"system": _SYSTEMS["loinc"], "code": level, "display": found.display}
        ae["seriousness"] = {"coding": [coding], "text": found.display}
        if level in _SEVERITY:  # same words, so no judgement is added
            code = _SEVERITY[level]
            ae["severity"] = {"coding": [{"system": SEVERITY_SYSTEM, "code": code, "display": code.title()}]}
        elif level == _DEATH:
            ae["outcome"] = {"coding": [{"system": OUTCOME_SYSTEM, "code": "fatal", "display": "Fatal"}]}
        self.consumed.add("harm.level")

    # --- everything else: the answers extension -------------------------------------------------------------

    def _collect_answers(self) -> None:
        for path, value in _leaves(self.report, ""):
            if path in self.consumed or not _present(value):
                continue
            if self.anonymous and path.startswith("reporter.") and path.split(".")[1] in _IDENTITY:
                continue  # an anonymous report carries no reporter identity, not even here
            key, _, question_path = path.removeprefix("modules.").partition(".")
            if path.startswith("modules.") and question_path:
                self._module_answer(key, question_path, value)
            else:
                self._add_answer(None, path, self.catalogue.labels.get(path) if self.catalogue else None, value)

    def _module_answer(self, key: str, question_path: str, value: Any) -> None:
        module = self.catalogue.modules.get(key) if self.catalogue else None
        parts = question_path.split(".")
        question = module.by_id.get(parts[0]) if module else None
        if question is not None and len(parts) == 3 and question.type == "group":
            question = question.children.by_id.get(parts[2])  # products.<n>.<child>
        elif len(parts) != 1:
            question = None
        self._add_answer(key, question_path, question.text if question else None, value, question)

    def _add_answer(
        self, module: str | None, path: str, text: str | None, value: Any, question: Question | None = None
    ) -> None:
        values = value if isinstance(value, list) else [value]
        typed = [v for v in (self._typed(path, item, question) for item in values) if v is not None]
        if not typed:
            return
        parts: list[dict[str, Any]] = []
        if module is not None:
            parts.append({"url": "module", "valueString": _text(module)})
        parts.append({"url": "question", "valueString": _text(path)})
        if text:
            parts.append({"url": "text", "valueString": text})
        parts.extend({"url": "answer", **v} for v in typed)
        self.answers.append({"url": EXT_ANSWER, "extension": parts})

    def _typed(self, path: str, value: Any, question: Question | None) -> dict[str, Any] | None:
        """``value[x]`` for one answer: a Coding for a code the catalogue knows, else the JSON type's own."""
        if isinstance(value, bool):
            return {"valueBoolean": value}
        if isinstance(value, int):
            return {"valueInteger": value} if -_INT32 <= value < _INT32 else {"valueString": str(value)}
        if isinstance(value, float):
            return {"valueDecimal": value} if math.isfinite(value) else {"valueString": str(value)}
        if not isinstance(value, str):
            return {"valueString": _text(_json_text(value))} if _present(value) else None
        if not value.strip():
            return None
        kind = _KINDS.get(path) or ("date" if question is not None and question.type == "date" else "")
        typed = _typed_text(kind, value)
        if typed is not None:
            return typed
        answers = question.answers if question is not None else ()
        if not answers and self.catalogue and path in GENERIC_ANSWER_SETS:
            answers = self.catalogue.answer_sets.get(GENERIC_ANSWER_SETS[path], ())
        if self.catalogue and path == "event_type":
            found = next((a for a in self.catalogue.event_types if a.code == value), None)
            if found is not None:  # the catalogue's own words (incident, near_miss), not AHRQ answer codes
                return {"valueCoding": self._coding(value, "local", found.display)}
        found = next((a for a in answers if a.code == value), None)
        if found is not None:
            return {"valueCoding": self._coding(value, found.system, found.display, found.verified)}
        if path == "patient.diagnosis_icd10":
            return {"valueCoding": {"system": ICD10CM_SYSTEM, "code": value}}
        return {"valueString": _text(value)}

    # --- narrative ------------------------------------------------------------------------------------------

    def _narrative_div(self) -> str:
        """The human-readable text: the label, what happened where and when, and the reporter's narrative."""
        r = self.report
        summary = []
        event_type = r.get("event_type")
        if isinstance(event_type, str) and event_type in _ACTUALITY:
            summary.append(self._event_type_display(event_type))
        names = []
        for code in self._category_codes():
            found = self.catalogue.category(code) if self.catalogue else None
            names.append(found.display if found else code)
        if names:
            summary.append("Category: " + ", ".join(names))
        for path, words in (("report_date", "Reported"), ("location.unit", "Unit")):
            value = _get(r, path)
            if isinstance(value, str) and value.strip():
                summary.append(f"{words}: {value}")
        paragraphs = [f"<p><b>{_escape(self.label)}</b></p>"]
        if summary:
            paragraphs.append(f"<p>{_escape('. '.join(summary))}.</p>")
        narrative = r.get("narrative")
        if isinstance(narrative, str) and narrative.strip():
            lines = _text(narrative).replace("\r\n", "\n").replace("\r", "\n").split("\n")
            paragraphs.append("<p>" + "<br/>".join(_escape(line) for line in lines) + "</p>")
        return '<div xmlns="http://www.w3.org/1999/xhtml">' + "".join(paragraphs) + "</div>"


def _medication(product: Mapping[str, Any], resource_id: str) -> dict[str, Any] | None:
    """A contained Medication for one product: brand (or generic) name as its code, the generic name and
    ingredient RxCUI as its ingredient, the dosage form as text. None when the product names nothing."""

    def text(key: str) -> str | None:
        value = product.get(key)
        return _text(value) if isinstance(value, str) and value.strip() else None

    generic, brand = text("generic_name"), text("brand_name")
    ingredient_rxcui, brand_rxcui = text("ingredient_rxcui"), text("brand_rxcui")
    if not (generic or brand or ingredient_rxcui or brand_rxcui):
        return None
    resource: dict[str, Any] = {"resourceType": "Medication", "id": resource_id}
    code: dict[str, Any] = {}
    if brand_rxcui:
        code["coding"] = [{"system": RXNORM_SYSTEM, "code": brand_rxcui}]
    elif ingredient_rxcui and not brand:
        code["coding"] = [{"system": RXNORM_SYSTEM, "code": ingredient_rxcui}]
    if brand or generic:
        code["text"] = brand or generic
    if code:
        resource["code"] = code
    form = text("dosage_form")
    if form:
        resource["form"] = {"text": form}
    if generic or ingredient_rxcui:
        item: dict[str, Any] = {}
        if ingredient_rxcui:
            item["coding"] = [{"system": RXNORM_SYSTEM, "code": ingredient_rxcui}]
        if generic:
            item["text"] = generic
        resource["ingredient"] = [{"itemCodeableConcept": item}]
    return resource


def _catalogue(version: str) -> Catalogue | None:
    try:
        return load_catalogue(version)
    except KeyError:
        return None  # a form version this build does not know: codes go out without system or display


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every answer: lists of plain values stay whole (one question, many answers);
    list items that are objects (product groups) are numbered from 1, as the CSV columns are."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and any(isinstance(item, Mapping | list) for item in value):
        for n, item in enumerate(value, start=1):
            yield from _leaves(item, f"{path}.{n}")
    else:
        yield path, value


def _get(report: Mapping[str, Any], path: str) -> Any:
    value: Any = report
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _is_code(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not any(c.isspace() for c in value)


def _date_value(value: Any) -> str | None:
    """A FHIR date from a wire date (YYYY-MM-DD), or None for anything else (a draft's half-typed text)."""
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value).isoformat() if len(value) == 10 else None
    except ValueError:
        return None


def _typed_text(kind: str, value: str) -> dict[str, Any] | None:
    if kind == "date":
        date = _date_value(value)
        return {"valueDate": date} if date else None
    if kind == "time":
        return {"valueTime": value} if _TIME.fullmatch(value) else None
    if kind == "datetime":
        stamp = parse_iso_time(value)
        if stamp is None:
            return None
        # FHIR needs a time zone beside a time; the form records local wall-clock time, so a naive value
        # stays text rather than gaining an invented zone.
        if stamp.tzinfo is None:
            return {"valueString": value}
        return {"valueDateTime": stamp.isoformat()}
    return None


def _absent(reason: str) -> dict[str, Any]:
    return {"extension": [{"url": DATA_ABSENT, "valueCode": reason}]}


def _text(value: str) -> str:
    """Text as FHIR strings and XHTML may hold it: the characters validation refuses become U+FFFD."""
    return _FORBIDDEN.sub("\ufffd", value)


def _escape(value: str) -> str:
    return html.escape(_text(value), quote=False)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
