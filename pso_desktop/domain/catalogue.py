"""The form catalogue: questions, answer codes and branching of the Common Formats, read from data.

The catalogue lives in ``resources/forms/<version>.json`` so that a PSO can correct a code, add a category
module or ship a later form version without a code change. Validation and the UI both read it from here.
``resources/forms/catalogue.schema.json`` describes the file; :mod:`pso_desktop.domain.catalogue_check` lists
every problem of one (``pso-server catalogue check FILE``).

Every element may say where it comes from: ``source`` (ids of the catalogue's ``sources``), ``verified``
(seen in a primary AHRQ/USHIK/PSOPPC/LOINC text), ``cf_version`` (the Common Formats version of its wording)
and ``status`` (V2.0 "core" or "supplemental", where known). Answers may carry equivalent codes in other code
systems (``codings``, e.g. the LOINC answer code of the LOINC panel) beside the code a report stores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from pso_desktop.paths import resources_dir

CURRENT_FORM_VERSION = "hospital-2.0"
# A form version is a file name in resources/forms/, never a path: reports name it, and reports are untrusted.
_VERSION_NAME = re.compile(r"[a-z0-9][a-z0-9.\-]{0,39}")


CATALOGUE_FORMAT = 2  # the catalogue file format this code reads (``format`` in the file; absent means 1)
QUESTION_TYPES = ("choice", "multi", "text", "text_list", "number", "date", "datetime", "group")
CHOICE_TYPES = frozenset({"choice", "multi"})
# The generic form's coded fields (wire path) and the answer set their codes come from (exports' displays).
GENERIC_ANSWER_SETS: Mapping[str, str] = {
    "patient.gender": "gender",
    "patient.ethnicity": "ethnicity",
    "patient.race": "race",
    "harm.evidence_of_harm": "yes_no_unknown",
    "harm.duration": "harm_duration",
    "harm.increased_length_of_stay": "yes_no_unknown",
    "rescue.attempted": "yes_no_unknown",
    "rescue.intervention_types": "rescue_interventions",
    "contributing_factors": "contributing_factors",
    "handover_involved": "yes_no_unknown",
    "preventability": "preventability",
    "near_miss_reason": "near_miss_reason",
    "serious_reportable_event": "yes_no_unknown",
    "family_notified": "yes_no_unknown",
    "reporter.first_reported_by": "first_reported_by",
    "reporter.professional_type": "professional_type",
}

# Looks up a value of the report by its dotted wire path ("categories", "patient.gender",
# "modules.medication.characterisation"), for conditions that reach outside their own module's answers.
Lookup = Callable[[str], Any]


@dataclass(frozen=True)
class Coding:
    """The same answer in another code system (e.g. its LOINC answer code), for exports and mapping."""

    system: str
    code: str
    display: str = ""
    verified: bool = True


@dataclass(frozen=True)
class Answer:
    code: str
    display: str
    definition: str = ""
    specify: bool = False  # "Other: please specify" - needs free text beside the code
    system: str = "ahrq"
    verified: bool = True
    codings: tuple[Coding, ...] = ()
    source: tuple[str, ...] = ()


def choices_text(answers: Sequence[Answer]) -> str:
    """``Yes (A15), No (A18), Unknown (UNK)``: the words a nurse picks from and the code a file must hold."""
    return ", ".join(f"{a.display} ({a.code})" for a in answers)


@dataclass(frozen=True)
class Condition:
    """One clause of a question's enable_when; all clauses of a question must hold for it to apply."""

    question: str | None = None  # a question of the same module (or of the same repeating-group entry)
    answers: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    field: str | None = None  # or any value of the report, by wire path: across sections and modules
    negate: bool = False  # "not_in": holds unless the answer is one of ``answers`` (also when unanswered)

    def holds(self, event_type: str, answers: Mapping[str, Any], lookup: Lookup | None = None) -> bool:
        if self.event_types and event_type not in self.event_types:
            return False
        if self.question is not None:
            given = answers.get(self.question)
        elif self.field is not None:
            given = lookup(self.field) if lookup is not None else None
        else:
            return True
        return self._matches(given) != self.negate

    def _matches(self, given: Any) -> bool:
        # Answers are untrusted JSON: only text can be a code (a dict or list would not even be hashable).
        if isinstance(given, str):
            return given in self.answers
        if isinstance(given, list):
            for code in given:  # a plain loop: this runs for every branching question of every report
                if isinstance(code, str) and code in self.answers:
                    return True
        return False


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    type: str  # choice | multi | text | text_list | date | group
    required: bool = False
    answers: tuple[Answer, ...] = ()
    enable_when: tuple[Condition, ...] = ()
    max_length: int = 2000
    max_items: int = 1
    item_name: str = "entry"  # what one entry of a repeating group is called on the form's buttons
    pattern: str | None = None
    help: str = ""
    verified: bool = True
    questions: tuple[Question, ...] = ()  # the repeating group's own questions
    unit: str = ""  # number: the unit the value is in (UCUM where one exists), shown beside the input
    minimum: float | None = None  # number: the smallest and largest value accepted
    maximum: float | None = None
    decimals: int = 0  # number: digits allowed after the decimal point (0: whole numbers only)
    loinc: str | None = None
    data_element: str | None = None  # the AHRQ DE number, where the id is not one
    source: tuple[str, ...] = ()
    cf_version: str = ""
    status: str | None = None  # V2.0 "core" or "supplemental"; None where no source says
    # Where the FHIR export puts the answer besides the answers extension: "event" (it says what happened:
    # AdverseEvent.event) or "date" (when it happened: AdverseEvent.date); None for neither.
    fhir: str | None = None

    def answer(self, code: str) -> Answer | None:
        return self._answer_index.get(code)

    @cached_property
    def _answer_index(self) -> dict[str, Answer]:
        return {a.code: a for a in self.answers}

    @cached_property
    def codes(self) -> frozenset[str]:
        """The answer codes this question accepts."""
        return frozenset(self._answer_index)

    @cached_property
    def specify_codes(self) -> frozenset[str]:
        """The answer codes that need "please specify" text beside them (empty for most questions)."""
        return frozenset(code for code, a in self._answer_index.items() if a.specify)

    @cached_property
    def compiled_pattern(self) -> re.Pattern[str] | None:
        """``pattern``, compiled once (matched from the start of the text, as ``re.match`` does)."""
        return re.compile(self.pattern) if self.pattern else None

    @cached_property
    def specify_key(self) -> str:
        """Where the "please specify" text of this question is kept among the module's answers."""
        return f"{self.id}_specify"

    @cached_property
    def choices_text(self) -> str:
        """The answers, for messages that list what may be chosen: display text and the code a file holds."""
        return choices_text(self.answers)

    @cached_property
    def children(self) -> QuestionIndex:
        """The repeating group's own questions, indexed (empty for other types)."""
        return QuestionIndex.of(self.questions)

    def applies(self, event_type: str, answers: Mapping[str, Any], lookup: Lookup | None = None) -> bool:
        # Most questions always apply, and the others have one clause: this is the hot path of server intake,
        # where a plain loop costs a third of all() over a generator.
        for cond in self.enable_when:  # noqa: SIM110
            if not cond.holds(event_type, answers, lookup):
                return False
        return True

    def describe_condition(
        self, questions: Mapping[str, Question], labels: Callable[[str], Question | None] | None = None
    ) -> str:
        """Words for when this question applies, e.g. "when 'Prior to the fall ...' is 'Yes'"."""
        parts = []
        for cond in self.enable_when:
            source = questions.get(cond.question) if cond.question is not None else None
            if source is None and cond.field is not None and labels is not None:
                source = labels(cond.field)
            if source is not None:
                names = [f"'{a.display}'" for a in source.answers if a.code in cond.answers]
                if not cond.negate:
                    parts.append(f"'{source.text}' is {' or '.join(names) or 'a matching answer'}")
                elif len(names) == 1:
                    parts.append(f"'{source.text}' is not {names[0]}")
                else:  # "none of": unanswered counts too
                    parts.append(f"'{source.text}' is none of {', '.join(names) or 'its listed answers'}")
            if cond.event_types:
                parts.append("the event is " + " or ".join(sorted(cond.event_types)).replace("_", " "))
        return " and ".join(parts)


@dataclass(frozen=True)
class QuestionIndex:
    """A list of questions with lookups built once: by id, the keys of their "please specify" texts, and every
    key an answer may have (both)."""

    questions: tuple[Question, ...]
    by_id: Mapping[str, Question]
    specify_keys: frozenset[str]
    known_keys: frozenset[str]

    @classmethod
    def of(cls, questions: tuple[Question, ...]) -> QuestionIndex:
        by_id = {q.id: q for q in questions}
        specify_keys = frozenset(q.specify_key for q in questions if any(a.specify for a in q.answers))
        return cls(questions, by_id, specify_keys, specify_keys.union(by_id))


@dataclass(frozen=True)
class Module:
    key: str
    title: str
    category: str
    questions: tuple[Question, ...]
    # Whether choosing the category demands the module's answers. A module whose content no AHRQ source
    # confirms is offered but not demanded (its required questions count once any of it is answered).
    required: bool = True
    guide: str = ""
    loinc_panel: str | None = None
    source: tuple[str, ...] = ()
    verified: bool = True
    cf_version: str = ""

    @cached_property
    def index(self) -> QuestionIndex:
        return QuestionIndex.of(self.questions)

    @property
    def by_id(self) -> Mapping[str, Question]:
        return self.index.by_id


@dataclass(frozen=True)
class Category:
    code: str
    display: str
    event_types: frozenset[str]
    module: str | None = None
    specify: bool = False
    verified: bool = True
    source: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """A public text the catalogue's content was taken from."""

    id: str
    title: str
    url: str = ""
    kind: str = ""  # primary | secondary | local


@dataclass(frozen=True)
class FieldCondition:
    """A generic-form field applies only when ``field`` holds one of ``answers`` (codes of ``answer_set``)."""

    field: str
    answers: frozenset[str]
    answer_set: str


@dataclass(frozen=True)
class Catalogue:
    version: str
    title: str
    code_systems: Mapping[str, str]
    event_types: tuple[Answer, ...]
    categories: tuple[Category, ...]
    harm_levels: tuple[Answer, ...]
    harm_guidance: str
    answer_sets: Mapping[str, tuple[Answer, ...]]
    modules: Mapping[str, Module]
    labels: Mapping[str, str] = field(default_factory=dict)
    # Branching between fields of the generic form: field path -> the answers of another field it needs,
    # e.g. "reporter.professional_type" applies only when "reporter.first_reported_by" is A288.
    field_conditions: Mapping[str, FieldCondition] = field(default_factory=dict)
    sources: Mapping[str, Source] = field(default_factory=dict)

    def question_at(self, path: str) -> Question | None:
        """The module question at a wire path like ``modules.medication.characterisation`` (or None)."""
        head, _, rest = path.partition(".")
        if head != "modules":
            return None
        key, _, qid = rest.partition(".")
        module = self.modules.get(key)
        return module.by_id.get(qid) if module is not None else None

    def category(self, code: str) -> Category | None:
        return self._category_index.get(code)

    @cached_property
    def _category_index(self) -> dict[str, Category]:
        # Built from the end so that, as in a search from the start, the first category with a code wins.
        return {c.code: c for c in reversed(self.categories)}

    @cached_property
    def harm_level_codes(self) -> frozenset[str]:
        return frozenset(h.code for h in self.harm_levels)

    def answer_set(self, name: str) -> tuple[Answer, ...]:
        return self.answer_sets[name]

    def codes(self, name: str) -> frozenset[str]:
        return self._code_sets[name]

    @cached_property
    def _code_sets(self) -> dict[str, frozenset[str]]:
        return {name: frozenset(a.code for a in answers) for name, answers in self.answer_sets.items()}

    def display(self, name: str, code: str) -> str:
        found = next((a for a in self.answer_sets[name] if a.code == code), None)
        return found.display if found else code

    def label(self, path: str) -> str:
        """A field's name as the form shows it; falls back to the path itself."""
        return self.labels.get(path, path)


def _sources(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("source", ())
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _answer(raw: Mapping[str, Any], verified: bool = True) -> Answer:
    """``verified``: what an answer that does not say is (its question's flag: an answer of an unverified
    question is no better sourced than the question, unless it says so itself)."""
    return Answer(
        code=str(raw["code"]),
        display=str(raw["display"]),
        definition=str(raw.get("definition", "")),
        specify=bool(raw.get("specify", False)),
        system=str(raw.get("system", "ahrq")),
        # HL7's Unknown (NullFlavor UNK) means the same in any question: an unverified question does not make
        # it doubtful, so its FHIR coding stays under v3-NullFlavor (an answer may still say otherwise).
        verified=bool(raw.get("verified", verified or raw.get("system") == "nullflavor")),
        codings=tuple(
            Coding(
                system=str(c["system"]),
                code=str(c["code"]),
                display=str(c.get("display", "")),
                verified=bool(c.get("verified", True)),
            )
            for c in raw.get("codings", ())
        ),
        source=_sources(raw),
    )


def _condition(raw: Mapping[str, Any]) -> Condition:
    negate = "not_in" in raw
    return Condition(
        question=raw.get("question"),
        answers=frozenset(raw.get("not_in" if negate else "in", ())),
        event_types=frozenset(raw.get("event_type", ())),
        field=raw.get("field"),
        negate=negate,
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _question(raw: Mapping[str, Any], answer_sets: Mapping[str, tuple[Answer, ...]]) -> Question:
    if "answer_set" in raw:
        answers = answer_sets[raw["answer_set"]]
    else:
        answers = tuple(_answer(a, bool(raw.get("verified", True))) for a in raw.get("answers", ()))
    qtype = str(raw["type"])
    return Question(
        id=str(raw["id"]),
        text=str(raw["text"]),
        type=qtype,
        required=bool(raw.get("required", False)),
        answers=answers,
        enable_when=tuple(_condition(c) for c in raw.get("enable_when", ())),
        max_length=int(raw.get("max_length", 2000)),
        max_items=int(raw.get("max_items", 1)),
        item_name=str(raw.get("item_name", "entry")),
        pattern=raw.get("pattern"),
        help=str(raw.get("help", "")),
        verified=bool(raw.get("verified", True)),
        questions=tuple(_question(q, answer_sets) for q in raw.get("questions", ())),
        unit=str(raw.get("unit", "")),
        minimum=_number(raw.get("min")),
        maximum=_number(raw.get("max")),
        decimals=int(raw.get("decimals", 0)),
        loinc=raw.get("loinc"),
        data_element=raw.get("data_element"),
        source=_sources(raw),
        cf_version=str(raw.get("cf_version", "")),
        status=raw.get("status"),
        fhir=raw.get("fhir"),
    )


def parse_catalogue(raw: Mapping[str, Any]) -> Catalogue:
    answer_sets = {name: tuple(_answer(a) for a in items) for name, items in raw["answer_sets"].items()}
    modules = {
        key: Module(
            key=key,
            title=str(m["title"]),
            category=str(m["category"]),
            questions=tuple(_question(q, answer_sets) for q in m["questions"]),
            required=bool(m.get("required", True)),
            guide=str(m.get("guide", "")),
            loinc_panel=m.get("loinc_panel"),
            source=_sources(m),
            verified=bool(m.get("verified", True)),
            cf_version=str(m.get("cf_version", "")),
        )
        for key, m in raw["modules"].items()
    }
    categories = tuple(
        Category(
            code=str(c["code"]),
            display=str(c["display"]),
            event_types=frozenset(c["event_types"]),
            module=c.get("module"),
            specify=bool(c.get("specify", False)),
            verified=bool(c.get("verified", True)),
            source=_sources(c),
        )
        for c in raw["categories"]
    )
    return Catalogue(
        version=str(raw["version"]),
        title=str(raw["title"]),
        code_systems=dict(raw["code_systems"]),
        event_types=tuple(_answer(e) for e in raw["event_types"]),
        categories=categories,
        harm_levels=tuple(_answer(h) for h in raw["harm_scale"]["levels"]),
        harm_guidance=str(raw["harm_scale"].get("guidance", "")),
        answer_sets=answer_sets,
        modules=modules,
        labels=dict(raw.get("fields", {})),
        field_conditions={
            path: FieldCondition(
                field=str(cond["field"]),
                answers=frozenset(cond["in"]),
                # Answer sets are named after their field unless the condition says otherwise.
                answer_set=str(cond.get("answer_set", str(cond["field"]).rpartition(".")[2])),
            )
            for path, cond in raw.get("field_conditions", {}).items()
        },
        sources={
            key: Source(id=key, title=str(v["title"]), url=str(v.get("url", "")), kind=str(v.get("kind", "")))
            for key, v in raw.get("sources", {}).items()
        },
    )


def catalogue_path(version: str) -> Path:
    return resources_dir() / "forms" / f"{version}.json"


def available_versions() -> Sequence[str]:
    return sorted(
        p.stem for p in (resources_dir() / "forms").glob("*.json") if not p.name.endswith(".schema.json")
    )


# Catalogues the PSO published, installed by the client from its encrypted profile (never from a file). A
# version is immutable once published, so an installed version never changes under a report.
_installed: dict[str, Catalogue] = {}


def catalogue_json(data: Any) -> str:
    """The canonical JSON of a published catalogue: what the server stores and hashes, and the client keeps."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def is_version_name(version: object) -> bool:
    """A plain form version name (``hospital-2.1``), never a path."""
    return isinstance(version, str) and bool(_VERSION_NAME.fullmatch(version)) and not version.endswith(".schema")


def install_catalogue(catalogue: Catalogue) -> None:
    """Makes ``load_catalogue`` answer ``catalogue.version`` with this catalogue (a published one the client
    fetched); a bundled version is never replaced."""
    if not is_version_name(catalogue.version):
        raise ValueError("not a form version name")
    if catalogue.version not in bundled_versions():
        _installed[catalogue.version] = catalogue


def known_versions() -> list[str]:
    """Every form version this client can read now: bundled and installed, sorted."""
    return sorted(bundled_versions() | set(_installed))


def uninstall_catalogues() -> None:
    """Forgets every installed catalogue (a profile was locked or closed)."""
    _installed.clear()


def category_names() -> dict[str, str]:
    """Every category code a report this client can read may carry, with its words: the bundled current form's,
    then for a code it lacks, the words of another version that has it (a V1.2 report's A63, a category the PSO
    published), so lists, filters and charts never show a bare code for a report written on another version."""
    names: dict[str, str] = {}
    for version in [CURRENT_FORM_VERSION, *reversed(known_versions())]:
        try:
            catalogue = load_catalogue(version)
        except KeyError:
            continue
        for category in catalogue.categories:
            names.setdefault(category.code, category.display)
    return names


@cache
def bundled_versions() -> frozenset[str]:
    return frozenset(available_versions())


def load_catalogue(version: str = CURRENT_FORM_VERSION) -> Catalogue:
    """The parsed catalogue for one form version: bundled with this build, or installed from the PSO; raises
    KeyError for a version neither knows (anything that is not a plain version name, such as a path, included)."""
    installed = _installed.get(version)
    if installed is not None:
        return installed
    return load_bundled_catalogue(version)


@cache
def load_bundled_catalogue(version: str = CURRENT_FORM_VERSION) -> Catalogue:
    """The parsed catalogue this build ships for ``version``; KeyError otherwise."""
    if not is_version_name(version):
        raise KeyError(version)
    path = catalogue_path(version)
    if not path.is_file():
        raise KeyError(version)
    with path.open(encoding="utf-8") as fh:
        return parse_catalogue(json.load(fh))
