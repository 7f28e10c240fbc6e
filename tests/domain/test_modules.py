"""The category modules as data: every branching rule of every module, through the catalogue's own visibility
(``Question.applies``) and validation: the question appears when its trigger is answered (and, when required,
is demanded), and its answer is refused when the trigger changes so that it no longer applies. Plus the new
question kinds (number with unit, date-time), conditions across modules and sections, and module reachability."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping
from functools import partial
from typing import Any

import pytest

from pso_desktop.domain import ReportInvalid, load_catalogue, validate_report
from pso_desktop.domain.catalogue import Condition, Module, Question, parse_catalogue
from pso_desktop.paths import resources_dir

TODAY = dt.date(2026, 11, 27)
CATALOGUE = load_catalogue()
EXAMPLES = {
    p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (resources_dir() / "examples").glob("*.json")
}


def example_for(module: Module) -> dict[str, Any]:
    for report in EXAMPLES.values():
        if module.key in report.get("modules", {}):
            return copy.deepcopy(report)
    raise AssertionError(f"no example for {module.key}")


def errors_of(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    try:
        validate_report(report, today=TODAY)
    except ReportInvalid as exc:
        return [(e.field, e.message) for e in exc.errors]
    return []


def sample(q: Question, event: str = "incident", lookup: Any = None) -> Any:
    """A valid answer to ``q`` (never an 'Other' that would need text beside it)."""
    plain = [a.code for a in q.answers if not a.specify]
    if q.type == "choice":
        return plain[0]
    if q.type == "multi":
        return plain[:1]
    if q.type == "number":
        return int(q.minimum) if q.minimum is not None else 1
    if q.type == "date":
        return "2026-11-01"
    if q.type == "datetime":
        return "2026-11-01T10:00:00"
    if q.type == "text_list":
        return ["x"]
    if q.type == "group":
        return [fill(q.questions, {}, event, lookup)]
    return "x"


def fill(
    questions: tuple[Question, ...], answers: dict[str, Any], event: str, lookup: Any = None
) -> dict[str, Any]:
    """Answers every required question that applies and is not answered yet, until nothing changes.
    ``lookup`` finds the answers outside ``answers`` (the module's, for a repeating group's entry)."""
    changed = True
    while changed:
        changed = False
        for q in questions:
            if q.required and q.id not in answers and q.applies(event, answers, lookup):
                own = lookup or partial(_own_answer, answers)
                answers[q.id] = sample(q, event, own)
                changed = True
    return answers


def as_answer(target: Question, codes: list[str]) -> Any:
    return codes if target.type == "multi" else codes[0]


def trigger(cond: Condition, target: Question) -> list[str]:
    """Answers to ``target`` that make ``cond`` hold."""
    if cond.negate:
        return [next(a.code for a in target.answers if a.code not in cond.answers and not a.specify)]
    return [sorted(cond.answers)[0]]


def breaker(cond: Condition, target: Question) -> list[str] | None:
    """Answers to ``target`` that make ``cond`` fail (None: no answer can)."""
    if cond.negate:
        return [sorted(cond.answers)[0]]
    other = [a.code for a in target.answers if a.code not in cond.answers and not a.specify]
    return other[:1] or None


def prune(module: Module, answers: dict[str, Any], event: str) -> None:
    """Removes the answers that no longer apply, and then theirs, as the form does."""
    own = partial(_own_answer, answers)
    for q in module.questions:
        if q.id in answers and not q.applies(event, answers, own):
            del answers[q.id]
        elif q.type == "group" and isinstance(answers.get(q.id), list):
            for entry in answers[q.id]:
                for child in q.questions:
                    if child.id in entry and not child.applies(event, entry, own):
                        del entry[child.id]


def satisfy(module: Module, q: Question, answers: dict[str, Any]) -> None:
    """Answers the questions ``q`` depends on (and theirs, first) so that ``q`` applies."""
    for cond in q.enable_when:
        if cond.question is not None:
            target = module.by_id[cond.question]
            satisfy(module, target, answers)
            answers[target.id] = as_answer(target, trigger(cond, target))


BRANCHES = [
    (module.key, q.id)
    for module in CATALOGUE.modules.values()
    for q in module.questions
    if any(c.question is not None for c in q.enable_when)
]


def test_every_module_has_branching_rules_under_test() -> None:
    covered = {key for key, _ in BRANCHES}
    # Device has no branching (its questions always apply); every other module has at least one rule.
    assert covered == set(CATALOGUE.modules) - {"device"}


@pytest.mark.parametrize(("key", "qid"), BRANCHES, ids=[f"{k}.{q}" for k, q in BRANCHES])
def test_a_follow_up_appears_with_its_trigger_and_is_refused_when_it_stops_applying(key: str, qid: str) -> None:
    module = CATALOGUE.modules[key]
    q = module.by_id[qid]
    report = example_for(module)
    event = report["event_type"]
    category = CATALOGUE.category(module.category)
    assert category is not None
    for cond in q.enable_when:
        if cond.event_types and event not in cond.event_types:
            event = sorted(cond.event_types & category.event_types)[0]
    if event != report["event_type"]:
        report = next(
            r
            for r in map(copy.deepcopy, EXAMPLES.values())
            if r["event_type"] == event and key in r.get("modules", {})
        )
    answers: dict[str, Any] = {}
    satisfy(module, q, answers)
    fill(module.questions, answers, event)
    assert q.applies(event, answers)

    # It applies: answered it is kept, and a required one left out is asked for.
    answers[qid] = sample(q, event, partial(_own_answer, answers))
    report["modules"] = {key: answers}
    assert errors_of(report) == []
    assert validate_report(report, today=TODAY).export()["modules"][key][qid] == answers[qid]
    if q.required:
        without = copy.deepcopy(report)
        left = without["modules"][key]
        del left[qid]
        for other in module.questions:  # its own follow-ups go with it
            if other.id in left and not other.applies(event, left):
                del left[other.id]
        assert [f for f, _ in errors_of(without)] == [f"modules.{key}.{qid}"]

    # Its trigger changes: it no longer applies, and an answer left behind is refused with a sentence.
    cond = next(c for c in q.enable_when if c.question is not None)
    target = module.by_id[str(cond.question)]
    broken = breaker(cond, target)
    assert broken is not None, "a follow-up whose trigger cannot change"
    changed = copy.deepcopy(answers)
    changed[target.id] = as_answer(target, broken)
    assert not q.applies(event, changed)
    kept = changed.pop(qid)
    prune(module, changed, event)  # follow-ups of the old answer go too; follow-ups of the new one come
    changed[qid] = kept
    fill(module.questions, changed, event)
    report["modules"] = {key: changed}
    problems = errors_of(report)
    assert [f for f, _ in problems] == [f"modules.{key}.{qid}"]
    assert "applies only when" in problems[0][1]
    del changed[qid]
    prune(module, changed, event)
    assert errors_of(report) == []


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_is_valid_and_exports_unchanged(name: str) -> None:
    report = EXAMPLES[name]
    assert validate_report(report, today=TODAY).export() == report


def test_every_module_has_two_valid_examples_and_is_opened_by_its_category() -> None:
    for module in CATALOGUE.modules.values():
        examples = [n for n, r in EXAMPLES.items() if module.key in r.get("modules", {})]
        assert len(examples) >= 2 or module.key in ("fall", "medication"), module.key
        category = CATALOGUE.category(module.category)
        assert category is not None and category.module == module.key
    # Fall and Medication have their examples in resources/examples and in the samples of the other tests.
    assert any("fall" in r.get("modules", {}) for r in EXAMPLES.values())
    assert any("medication" in r.get("modules", {}) for r in EXAMPLES.values())


def test_a_module_without_verified_content_is_offered_but_not_demanded() -> None:
    report = copy.deepcopy(EXAMPLES["vte-pe"])
    del report["modules"]
    assert errors_of(report) == []  # the VTE category alone, as reports written before the module existed
    # Once any of it is answered, its required questions count.
    report["modules"] = {"vte": {"risk_assessment": "A15"}}
    assert {f for f, _ in errors_of(report)} == {"modules.vte.DE1003", "modules.vte.onset_timing"}
    fall = copy.deepcopy(EXAMPLES["fall-incident"])
    del fall["modules"]
    assert errors_of(fall) == [("modules.fall", "You chose Fall: answer its questions.")]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("4120", "must be a number in g"),
        (True, "must be a number in g"),
        (4120.5, "must be a whole number of g"),
        (150, "must be at least 200 g"),
        (7001, "must be at most 7000 g"),
    ],
)
def test_a_number_with_a_unit_is_checked_in_its_unit(value: Any, words: str) -> None:
    report = copy.deepcopy(EXAMPLES["perinatal-neonate"])
    report["modules"]["perinatal"]["birthweight"] = value
    problems = errors_of(report)
    assert [f for f, _ in problems] == ["modules.perinatal.birthweight"]
    assert words in problems[0][1]


def test_a_number_may_have_the_decimals_its_question_allows() -> None:
    report = copy.deepcopy(EXAMPLES["perinatal-mother"])
    assert report["modules"]["perinatal"]["gestational_age"] == 38.5
    report["modules"]["perinatal"]["gestational_age"] = 38.25
    assert [f for f, _ in errors_of(report)] == ["modules.perinatal.gestational_age"]


@pytest.mark.parametrize(
    "value", ["2026-11-17", "2026-11-17 21:00", "2026-11-17T25:00:00", "2026-11-17T21:00:00Z", 5]
)
def test_a_date_time_must_be_written_in_full(value: Any) -> None:
    report = copy.deepcopy(EXAMPLES["vte-dvt"])
    report["modules"]["vte"]["onset"] = value
    problems = errors_of(report)
    assert [f for f, _ in problems] == ["modules.vte.onset"]
    assert "2026-11-27T14:30:00" in problems[0][1]


def test_unknown_is_the_hl7_null_flavor_in_every_module() -> None:
    for module in CATALOGUE.modules.values():
        for q in module.questions:
            for a in q.answers:
                if a.code == "UNK":
                    assert a.system == "nullflavor", (module.key, q.id)
    assert CATALOGUE.code_systems["nullflavor"] == "2.16.840.1.113883.5.1008"


def test_other_please_specify_needs_its_text_in_a_new_module() -> None:
    report = copy.deepcopy(EXAMPLES["device-unsafe-condition"])
    del report["modules"]["device"]["device_problems_specify"]
    assert errors_of(report) == [
        (
            "modules.device.device_problems_specify",
            "You chose 'Other' for 'What was the problem?': please specify.",
        )
    ]


def _with_cross_conditions() -> Any:
    """The shipped catalogue plus two conditions that reach outside their module: a VTE question asked only when
    the report also has the Surgery category, and one asked only when the Surgery details say 'Wrong side'."""
    raw = json.loads((resources_dir() / "forms" / "hospital-2.0.json").read_text(encoding="utf-8"))
    vte = raw["modules"]["vte"]["questions"]
    vte.append(
        {
            "id": "after_surgery",
            "text": "Did the VTE follow the surgery reported here?",
            "type": "choice",
            "answer_set": "yes_no_unknown",
            "verified": False,
            "source": ["LOCAL"],
            "cf_version": "local",
            "enable_when": [{"field": "categories", "in": ["A61"]}],
        }
    )
    vte.append(
        {
            "id": "side",
            "text": "Was the DVT on the side of the surgery?",
            "type": "choice",
            "answer_set": "yes_no_unknown",
            "verified": False,
            "source": ["LOCAL"],
            "cf_version": "local",
            "enable_when": [
                {"field": "modules.surgery.DE513", "in": ["A2181"]},
                {"question": "DE1003", "in": ["dvt"]},
            ],
        }
    )
    return raw


def test_conditions_across_sections_and_modules() -> None:
    from pso_desktop.domain.catalogue_check import check_catalogue

    raw = _with_cross_conditions()
    assert check_catalogue(raw) == []
    catalogue = parse_catalogue(raw)
    after, side = catalogue.modules["vte"].by_id["after_surgery"], catalogue.modules["vte"].by_id["side"]
    report: dict[str, Any] = {"categories": ["A64"], "modules": {"vte": {"DE1003": ["dvt"]}}}
    lookup = partial(_get, report)
    answers = report["modules"]["vte"]
    assert not after.applies("incident", answers, lookup) and not side.applies("incident", answers, lookup)
    report["categories"].append("A61")
    report["modules"]["surgery"] = {"DE513": "A2181"}
    assert after.applies("incident", answers, lookup) and side.applies("incident", answers, lookup)
    report["modules"]["surgery"]["DE513"] = "A2172"  # the other module's answer changes: the follow-up goes
    assert not side.applies("incident", answers, lookup)
    words = side.describe_condition(catalogue.modules["vte"].by_id, catalogue.question_at)
    assert (
        words == "'Which of the following best characterizes the surgical event?' is "
        "'Incorrect surgical or invasive procedure' and 'Which of the following occurred?' is 'Deep vein thrombosis (DVT)'"
    )
    broken = copy.deepcopy(raw)
    broken["modules"]["vte"]["questions"][-1]["enable_when"][0]["field"] = "modules.surgery.DE999"
    assert [p.path for p in check_catalogue(broken)] == ["$.modules.vte.questions[9].enable_when[0].field"]


def _own_answer(answers: Mapping[str, Any], path: str) -> Any:
    """A module question's answer by its wire path, read from that module's answers."""
    return answers.get(path.rpartition(".")[2]) if path.startswith("modules.") else None


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def test_medication_follows_the_sdc_branching_of_the_loinc_panel() -> None:
    medication = CATALOGUE.modules["medication"]
    answer = medication.by_id["substance_type"].answer("medications")
    assert answer is not None  # the AHRQ (V1.2, via the SDC copy) and LOINC answer codes beside ours
    assert [(c.system, c.code) for c in answer.codings] == [("ahrq", "A1197"), ("loinc", "LA20271-5")]

    base = copy.deepcopy(EXAMPLES["medication-near-miss"])
    answers = base["modules"]["medication"]
    assert errors_of(base) == []
    # An unsafe condition: no incorrect action and no stage; the products stay, without "prescribed".
    for key in ("incorrect_actions", "strength_error"):
        del answers[key]
    answers["characterisation"] = "unsafe_condition"
    assert [f for f, _ in errors_of(base)] == [
        "modules.medication.stage",
        "modules.medication.products.0.prescribed",
    ]
    del answers["stage"]
    del answers["products"][0]["prescribed"]
    assert errors_of(base) == []
    # An incorrect action needs its stage and at least one product, each saying whether it was prescribed.
    answers |= {"characterisation": "incorrect_action", "incorrect_actions": ["dose"], "dose_error": "overdose"}
    assert [f for f, _ in errors_of(base)] == [
        "modules.medication.stage",
        "modules.medication.products.0.prescribed",
    ]
    answers["stage"] = "administering"
    answers["products"] = []
    assert [f for f, _ in errors_of(base)] == ["modules.medication.products"]
    answers["products"] = [{"generic_name": "heparin", "prescribed": "A15"}]
    assert errors_of(base) == []
    # A radiopharmaceutical: "best characterises" is not asked, so nothing that follows from it is either.
    base["modules"]["medication"] = {"substance_type": "radiopharmaceutical", "characterisation": "UNK"}
    problems = errors_of(base)
    assert [f for f, _ in problems] == ["modules.medication.characterisation"]
    assert (
        "applies only when 'What type of substance was involved?' is none of 'Radiopharmaceuticals'"
        in problems[0][1]
    )
    base["modules"]["medication"] = {"substance_type": "radiopharmaceutical", "products": [{"generic_name": "x"}]}
    assert [f for f, _ in errors_of(base)] == ["modules.medication.products.0.prescribed"]
