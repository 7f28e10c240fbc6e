"""Regenerate tests/domain/data/validation_golden.json: validate_report's outcome for a few hundred varied reports.

Run from the repository root:  .venv/bin/python -m tests.domain.make_validation_golden [--rerecord]
The cases are generated deterministically (fixed seeds, hypothesis included) and stored with their outcome,
so test_validation_equivalence.py checks the current code against the outcomes recorded when this was run.
Only regenerate when a change to the validation rules or messages is intended.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pso_desktop.domain import ReportInvalid, load_catalogue, validate_report
from pso_desktop.domain.catalogue import Question
from pso_desktop.domain.samples import sample_report
from pso_desktop.paths import resources_dir

TODAY = dt.date(2026, 11, 27)  # fixed: the date rules compare with "today"
GOLDEN = Path(__file__).parent / "data" / "validation_golden.json"
SAMPLES = 150  # unchanged sample reports (mostly valid)
MUTANTS = 600  # hypothesis-mutated variants (mostly invalid)

_CATALOGUE = load_catalogue()
_EXAMPLES = sorted((resources_dir() / "examples").glob("*.json"))
_BASES = [json.loads(p.read_text(encoding="utf-8")) for p in _EXAMPLES] + [
    sample_report(random.Random(seed), seed, today=TODAY) for seed in range(30)
]

# Every code the catalogue knows, so that mutations often pick a *known* code (reaching the deeper rules)
# rather than only junk that stops at the first check.
_CODES = sorted(
    {a.code for answers in _CATALOGUE.answer_sets.values() for a in answers}
    | {c.code for c in _CATALOGUE.categories}
    | {h.code for h in _CATALOGUE.harm_levels}
    | {a.code for m in _CATALOGUE.modules.values() for q in m.questions for a in q.answers}
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 200) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
odd_text = st.sampled_from(
    ["", " ", "x" * 2001, "a\x00b", "a\ud800b", "\u202eRTL", "2026-13-40", "2026-11-20", "2099-01-01", "03:40"]
)
values = st.one_of(
    st.sampled_from(_CODES),
    st.sampled_from(["incident", "near_miss", "unsafe_condition", "A66", "UNK", "Z99", "bad code!"]),
    odd_text,
    json_values,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside a report (dict keys and list indexes), parents before children."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def _parent(report: dict[str, Any], path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        report = report[key]
    return report


def _module_answers(
    draw: st.DrawFn, rnd: random.Random, questions: tuple[Question, ...], depth: int = 0
) -> dict[str, Any]:
    """Random answers to a module's questions, mostly with the module's own codes so branches open and close."""
    answers: dict[str, Any] = {}
    for q in questions:
        if rnd.random() < 0.4:
            continue
        codes = [a.code for a in q.answers]
        if rnd.random() < 0.1:
            answers[q.id] = draw(values)
        elif q.type == "choice" and codes:
            answers[q.id] = rnd.choice(codes)
        elif q.type == "multi" and codes:
            answers[q.id] = rnd.sample(codes, rnd.randrange(0, 4)) + rnd.choice([[], [], ["A15"], ["nope"]])
        elif q.type == "group" and depth == 0:
            answers[q.id] = [_module_answers(draw, rnd, q.questions, 1) for _ in range(rnd.randrange(0, 7))]
        elif q.type == "date":
            answers[q.id] = rnd.choice(["2026-01-01", "2026-1-1", "2026-01-01T00:00"])
        elif q.type == "text_list":
            answers[q.id] = rnd.choice([["Saline"], [], ["a", "b"], ["x" * 2001], ["a\x00"]])
        else:
            answers[q.id] = rnd.choice(["L123", "12345", "", "x" * 2001, "a\x00b"])
        if any(a.specify for a in q.answers) and rnd.random() < 0.3:
            answers[f"{q.id}_specify"] = rnd.choice(["Wrong diluent", " ", None, 7])
    if rnd.random() < 0.1:
        answers[rnd.choice(["DE999", "surprise", "x" * 70])] = "A15"
    return answers


_KINDS = ["drop", "set", "set", "event", "event", "categories", "modules", "modules", "modules", "anonymous"]
_KINDS += ["dates", "version"]


@st.composite
def mutated_reports(draw: st.DrawFn) -> Any:
    # Choices come from a seeded Random drawn from hypothesis, so they spread evenly over the report's fields
    # (hypothesis itself favours the first of a list); odd values come from hypothesis strategies.
    rnd = draw(st.randoms(use_true_random=False))
    report = copy.deepcopy(rnd.choice(_BASES))
    for _ in range(rnd.randrange(1, 5)):
        kind = rnd.choice(_KINDS)
        paths = _paths(report)
        if kind in ("drop", "set") and paths:
            path = rnd.choice(paths)
            parent = _parent(report, path)
            if kind == "drop" and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(values)
        elif kind == "event":
            report["event_type"] = rnd.choice(["incident", "near_miss", "unsafe_condition"])
        elif kind == "categories":
            codes = [c.code for c in _CATALOGUE.categories]
            report["categories"] = rnd.sample([*codes, "Z99"], rnd.randrange(0, 3)) + rnd.choice([[], ["A48"]])
            if rnd.random() < 0.4:
                report["categories_other"] = rnd.choice(["Lift failure", " "])
        elif kind == "modules":
            # "hai": a module key the form does not know (HAI was retired in V2.0).
            key = rnd.choice([*sorted(_CATALOGUE.modules), *sorted(_CATALOGUE.modules), "hai"])
            module = _CATALOGUE.modules.get(key)
            answers = _module_answers(draw, rnd, module.questions) if module else {"DE1": "A15"}
            if rnd.random() < 0.1:
                answers = draw(values)
            if not isinstance(report.get("modules"), dict):
                report["modules"] = {}  # an earlier mutation left something else there
            report["modules"][key] = answers
            # Mostly with its category chosen, so the answers are checked question by question.
            if module and rnd.random() < 0.7:
                category = next(c.code for c in _CATALOGUE.categories if c.module == key)
                report["categories"] = [category]
                report["event_type"] = rnd.choice(sorted(_CATALOGUE.category(category).event_types))
        elif kind == "anonymous":
            reporter = report.setdefault("reporter", {})
            if isinstance(reporter, dict):
                reporter["anonymous"] = not reporter.get("anonymous", False)
                if rnd.random() < 0.5:
                    reporter["email"] = rnd.choice(["a@b.org", "not an email", ""])
        elif kind == "dates":
            field = rnd.choice(["report_date", "initial_report_date", "discovery"])
            if field == "discovery":
                options = {
                    "date": ["2026-11-20", "2026-11-29", "2099-01-01"],
                    "date_unknown": [True, False],
                    "time": ["03:40", "25:00"],
                    "time_unknown": [True, False],
                }
                report[field] = {k: rnd.choice(v) for k, v in options.items() if rnd.random() < 0.5}
            else:
                report[field] = rnd.choice(["2026-11-21", "2026-11-30", "2026-02-30"])
        elif kind == "version":
            report["form_version"] = rnd.choice([None, "hospital-9.9", "../forms/hospital-2.0", 2.0])
    return report


def _collect_mutants(count: int) -> list[Any]:
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(20261127)
    @given(mutated_reports())
    def collect(report: Any) -> None:
        found.append(report)

    collect()
    return found[:count]


def outcome(data: Any) -> dict[str, Any]:
    """What validate_report does with ``data``: the exported report, or every error in order."""
    try:
        return {"report": validate_report(data, today=TODAY).export()}
    except ReportInvalid as exc:
        return {"errors": [[e.field, e.message] for e in exc.errors], "summary": str(exc)}


def cases() -> list[Any]:
    rng = random.Random(20261127)
    inputs: list[Any] = [sample_report(rng, i, today=TODAY) for i in range(SAMPLES)]
    inputs += copy.deepcopy(_BASES[: len(_EXAMPLES)])
    inputs += [None, [], "a report", 42]  # not even an object
    inputs += _collect_mutants(MUTANTS)
    return inputs


def main() -> None:
    """``--rerecord``: keep the stored inputs and record their outcomes again (for a deliberate change of
    messages or paths: the diff of the file then shows exactly what changed, case by case). Without it the
    inputs are generated again too (hypothesis may then vary a few of them)."""
    GOLDEN.parent.mkdir(exist_ok=True)
    if "--rerecord" in sys.argv[1:]:
        inputs = [case["input"] for case in json.loads(GOLDEN.read_text(encoding="ascii"))]
    else:
        inputs = cases()
    golden = [{"input": data, "outcome": outcome(data)} for data in inputs]
    # Key order kept: the order of errors follows the order of the input's keys (modules, answers).
    # ASCII only: lone surrogates in the inputs survive as \ud800 escapes.
    GOLDEN.write_text(json.dumps(golden, separators=(",", ":")) + "\n", encoding="ascii")
    invalid = sum("errors" in case["outcome"] for case in golden)
    print(f"{len(golden)} cases ({invalid} invalid) written to {GOLDEN}")


if __name__ == "__main__":
    main()
