"""Every problem of a form catalogue file, each with its JSON path (``pso-server catalogue check FILE``).

Two passes. The structure is checked against ``resources/forms/catalogue.schema.json`` by the small JSON Schema
interpreter below (the subset that schema uses: type, required, properties, additionalProperties, items,
enum, pattern, minItems, minLength, minimum, maximum, $ref), so the schema stays the one statement of the file's
shape and the server needs no schema library. Then the rules a schema cannot say: condition targets that do not
exist, duplicate codes and ids (duplicate JSON keys included), questions no answer can ever reach, and
definitions that are missing (answer sets, code systems, sources, modules, definitions of the harm levels).

Pure Python: no Qt, storage or HTTP. Paths are JSONPath-like: ``$.modules.fall.questions[3].enable_when[0]``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pso_desktop.domain.catalogue import CATALOGUE_FORMAT, CHOICE_TYPES, parse_catalogue
from pso_desktop.paths import resources_dir

UNKNOWN, NULLFLAVOR = "UNK", "nullflavor"
# Generic-form fields a condition may name besides those the catalogue labels (paths of the wire form).
_GENERIC_FIELDS = frozenset({"event_type", "categories"})


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@cache
def catalogue_schema() -> Mapping[str, Any]:
    with (resources_dir() / "forms" / "catalogue.schema.json").open(encoding="utf-8") as fh:
        schema: Mapping[str, Any] = json.load(fh)
    return schema


# --- reading, with duplicate keys noticed -----------------------------------------------------------------------


class _Pairs(dict[str, Any]):
    """A JSON object that remembers the keys it held more than once (json.load would keep only the last)."""

    duplicates: tuple[str, ...] = ()


def _pairs(items: list[tuple[str, Any]]) -> _Pairs:
    out = _Pairs(items)
    if len(out) != len(items):
        seen: set[str] = set()
        out.duplicates = tuple(k for k, _ in items if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return out


def check_file(path: Path) -> tuple[list[Problem], Any]:
    """The problems of the catalogue file at ``path`` and its parsed JSON (None when unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "it cannot be read"
        return [Problem("$", f"The catalogue file cannot be checked: {reason}.")], None
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        return [Problem("$", f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.")], None
    except ValueError:  # NaN or Infinity: Python reads them, JSON (and every other client) does not
        return [Problem("$", "Not valid JSON: NaN and Infinity are not JSON numbers; write a number.")], None
    return check_catalogue(data), data


def _not_json(constant: str) -> Any:
    raise ValueError(constant)


def check_catalogue(data: Any) -> list[Problem]:
    """Every problem of a catalogue (parsed JSON), in file order: structure first, then the rules."""
    problems = list(_duplicate_keys(data, "$"))
    problems += schema_problems(data, catalogue_schema())
    if problems:
        return problems  # the rules below read the structure the schema promises
    problems += _Rules(data).run()
    if not problems:
        try:
            parse_catalogue(data)
        except (
            ArithmeticError,
            KeyError,
            TypeError,
            ValueError,
        ) as exc:  # pragma: no cover - the checks above should catch it
            problems.append(Problem("$", f"The catalogue cannot be loaded ({type(exc).__name__})."))
    return problems


_LIMIT = 1e15  # beyond this a float no longer holds every whole number; no answer is that large


def _sensible_number(value: Any) -> bool:
    """A range bound the form can compare answers with: finite, and a float without losing whole numbers."""
    try:
        return math.isfinite(float(value)) and abs(float(value)) <= _LIMIT
    except (OverflowError, TypeError, ValueError):
        return False


def _duplicate_keys(node: Any, path: str) -> Iterator[Problem]:
    if isinstance(node, dict):
        for key in getattr(node, "duplicates", ()):
            yield Problem(_join(path, key), "This key appears more than once in its object; keep one.")
        for key, child in node.items():
            yield from _duplicate_keys(child, _join(path, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _duplicate_keys(child, f"{path}[{i}]")


_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_\-]*")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


# --- the JSON Schema subset ---------------------------------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def schema_problems(data: Any, schema: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    _validate(data, schema, schema, "$", out)
    return out


def _validate(node: Any, rule: Mapping[str, Any], root: Mapping[str, Any], path: str, out: list[Problem]) -> None:
    if "$ref" in rule:
        ref = str(rule["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        _validate(node, target, root, path, out)
        return
    kind = rule.get("type")
    if kind is not None:
        ok = isinstance(node, _TYPES[kind]) and not (kind in ("integer", "number") and isinstance(node, bool))
        if not ok:
            out.append(Problem(path, f"Must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}."))
            return
    if "enum" in rule and node not in rule["enum"]:
        out.append(Problem(path, "Must be one of: " + ", ".join(json.dumps(v) for v in rule["enum"]) + "."))
    if isinstance(node, str):
        if len(node) < rule.get("minLength", 0):
            out.append(Problem(path, "Must not be empty."))
        if "pattern" in rule and not re.search(str(rule["pattern"]), node):
            out.append(Problem(path, f"Does not have the form required here (pattern {rule['pattern']})."))
    if isinstance(node, int | float) and not isinstance(node, bool):
        if "minimum" in rule and node < rule["minimum"]:
            out.append(Problem(path, f"Must be at least {rule['minimum']}."))
        if "maximum" in rule and node > rule["maximum"]:
            out.append(Problem(path, f"Must be at most {rule['maximum']}."))
    if isinstance(node, list):
        if len(node) < rule.get("minItems", 0):
            out.append(Problem(path, f"Needs at least {rule['minItems']} item(s)."))
        if "items" in rule:
            for i, item in enumerate(node):
                _validate(item, rule["items"], root, f"{path}[{i}]", out)
    if isinstance(node, dict):
        for key in rule.get("required", ()):
            if key not in node:
                out.append(Problem(_join(path, key), "Is required and missing."))
        props: Mapping[str, Any] = rule.get("properties", {})
        extra = rule.get("additionalProperties", True)
        for key, child in node.items():
            if key in props:
                _validate(child, props[key], root, _join(path, key), out)
            elif extra is False:
                out.append(Problem(_join(path, key), "Is not part of the catalogue format; remove or rename it."))
            elif isinstance(extra, Mapping):
                _validate(child, extra, root, _join(path, key), out)


# --- the rules a schema cannot say --------------------------------------------------------------------------------


class _Rules:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: list[Problem] = []
        self.systems = set(data["code_systems"])
        self.sources = set(data.get("sources", {}))
        self.sets: Mapping[str, Sequence[Mapping[str, Any]]] = data["answer_sets"]
        self.event_types = {e["code"] for e in data["event_types"]}
        self.categories = {c["code"]: c for c in data["categories"]}
        self.fields = set(data.get("fields", {})) | _GENERIC_FIELDS

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def run(self) -> list[Problem]:
        d = self.data
        fmt = d.get("format", 1)
        if fmt > CATALOGUE_FORMAT:
            self.add("$.format", f"Format {fmt} is newer than this program reads ({CATALOGUE_FORMAT}); update it.")
        for name, answers in self.sets.items():
            self.answers(answers, f"$.answer_sets{_key(name)}")
        self.answers(d["event_types"], "$.event_types", definitions=True)
        self.answers(d["harm_scale"]["levels"], "$.harm_scale.levels", definitions=True)
        self.categories_rules()
        for path, cond in d.get("field_conditions", {}).items():
            where = f"$.field_conditions{_key(path)}"
            if path not in self.fields:
                self.add(where, "Names a field the form does not have (missing from 'fields').")
            if cond["field"] not in self.fields:
                self.add(f"{where}.field", "Names a field the form does not have (missing from 'fields').")
            name = cond.get("answer_set", str(cond["field"]).rpartition(".")[2])
            if name not in self.sets:
                self.add(where, "Its answer set is not defined in 'answer_sets'.")
            else:
                known = {a["code"] for a in self.sets[name]}
                for i, code in enumerate(cond["in"]):
                    if code not in known:
                        self.add(f"{where}.in[{i}]", "Is not an answer of the field it names.")
        for key, module in d["modules"].items():
            self.module(key, module, f"$.modules{_key(key)}")
        self.circles()
        return self.problems

    def circles(self) -> None:
        """A module question whose 'in' conditions lead, through the questions they name ('field' paths across
        modules included), back to itself can never apply: each needs the one before it answered first."""
        modules: Mapping[str, Mapping[str, Any]] = self.data["modules"]
        where: dict[tuple[str, str], str] = {}
        needs: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for key, module in modules.items():
            for i, q in enumerate(module["questions"]):
                node = (key, str(q["id"]))
                where.setdefault(node, f"$.modules{_key(key)}.questions[{i}]")
                targets = needs.setdefault(node, set())
                for cond in q.get("enable_when", ()):
                    if "in" not in cond:
                        continue  # 'not_in' holds while its target is unanswered: no circle can lock it
                    if "question" in cond:
                        targets.add((key, str(cond["question"])))
                    elif str(cond.get("field", "")).startswith("modules."):
                        other, _, qid = str(cond["field"]).removeprefix("modules.").partition(".")
                        targets.add((other, qid))
        for node, path in where.items():
            seen: set[tuple[str, str]] = set()
            todo = list(needs.get(node, ()))
            while todo:
                current = todo.pop()
                if current == node:
                    self.add(
                        path,
                        "Unreachable question: its conditions lead back to its own answer (a circle through "
                        "the questions they name), so it can never apply.",
                    )
                    break
                if current not in seen:
                    seen.add(current)
                    todo.extend(needs.get(current, ()))

    def source_ids(self, node: Mapping[str, Any], path: str) -> None:
        for i, sid in enumerate(node.get("source", ())):
            if sid not in self.sources:
                self.add(f"{path}.source[{i}]", "Names a source that 'sources' does not define.")

    def answers(self, answers: Sequence[Mapping[str, Any]], path: str, *, definitions: bool = False) -> set[str]:
        codes: set[str] = set()
        for i, a in enumerate(answers):
            where = f"{path}[{i}]"
            code = a["code"]
            if code in codes:
                self.add(f"{where}.code", "Duplicate answer code in this list; each code may appear once.")
            codes.add(code)
            system = a.get("system", "ahrq")
            if system not in self.systems:
                self.add(f"{where}.system", "Names a code system that 'code_systems' does not define.")
            if code == UNKNOWN and system != NULLFLAVOR:
                self.add(f"{where}.system", "Unknown (UNK) is an HL7 NullFlavor code: use system 'nullflavor'.")
            if definitions and not a.get("definition", "").strip():
                self.add(f"{where}.definition", "Missing definition: the form shows it next to the choice.")
            seen: set[tuple[str, str]] = set()
            for j, coding in enumerate(a.get("codings", ())):
                if coding["system"] not in self.systems:
                    self.add(
                        f"{where}.codings[{j}].system", "Names a code system that 'code_systems' does not define."
                    )
                pair = (coding["system"], coding["code"])
                if pair in seen:
                    self.add(f"{where}.codings[{j}]", "Duplicate coding of this answer.")
                seen.add(pair)
            self.source_ids(a, where)
        # The same code in another system (e.g. one LOINC answer code for two answers) would make exports ambiguous.
        by_system: dict[tuple[str, str], int] = {}
        for i, a in enumerate(answers):
            for j, coding in enumerate(a.get("codings", ())):
                pair = (coding["system"], coding["code"])
                if pair in by_system and by_system[pair] != i:
                    self.add(
                        f"{path}[{i}].codings[{j}].code", "Duplicate code: another answer of this list has it."
                    )
                by_system.setdefault(pair, i)
        return codes

    def categories_rules(self) -> None:
        seen: set[str] = set()
        opened: dict[str, str] = {}
        for i, c in enumerate(self.data["categories"]):
            where = f"$.categories[{i}]"
            if c["code"] in seen:
                self.add(f"{where}.code", "Duplicate category code; each code may appear once.")
            seen.add(c["code"])
            for j, event in enumerate(c["event_types"]):
                if event not in self.event_types:
                    self.add(f"{where}.event_types[{j}]", "Is not one of the catalogue's event types.")
            module = c.get("module")
            if module is not None:
                if module not in self.data["modules"]:
                    self.add(f"{where}.module", "Missing definition: no module of this name in 'modules'.")
                elif module in opened:
                    self.add(f"{where}.module", f"This module is already opened by category {opened[module]}.")
                opened.setdefault(module, c["code"])
            self.source_ids(c, where)

    def module(self, key: str, module: Mapping[str, Any], path: str) -> None:
        category = self.categories.get(module["category"])
        if category is None:
            self.add(f"{path}.category", "Missing definition: no category has this code.")
            events = set(self.event_types)
        else:
            if category.get("module") != key:
                self.add(path, "Unreachable module: its category does not open it (set the category's 'module').")
            events = set(category["event_types"])
        for name in ("source", "verified"):
            if name not in module:
                self.add(_join(path, name), f"Missing provenance: say the module's {name}.")
        self.source_ids(module, path)
        self.questions(module["questions"], f"{path}.questions", events, key, inherited=True)

    def questions(
        self,
        questions: Sequence[Mapping[str, Any]],
        path: str,
        events: set[str],
        module: str,
        *,
        inherited: bool,
    ) -> None:
        """One list of questions (a module's, or a repeating group's): ids, answers, conditions, reachability."""
        before: dict[str, Mapping[str, Any]] = {}
        ids = {q["id"] for q in questions}
        reachable: dict[str, bool] = {}
        for i, q in enumerate(questions):
            where = f"{path}[{i}]"
            qid = q["id"]
            if qid in before:
                self.add(f"{where}.id", "Duplicate question id in this list; each id may appear once.")
            if "verified" not in q:
                self.add(f"{where}.verified", "Missing provenance: say whether the question is verified.")
            if not inherited and "source" not in q:
                self.add(f"{where}.source", "Missing provenance: name the question's source.")
            self.source_ids(q, where)
            codes = self.question_answers(q, where)
            open_ = True
            for j, cond in enumerate(q.get("enable_when", ())):
                open_ = (
                    self.condition(cond, f"{where}.enable_when[{j}]", before, ids, events, module, reachable)
                    and open_
                )
            if not open_:
                self.add(
                    where, "Unreachable question: no answer to the questions it depends on can make it apply."
                )
            reachable[qid] = open_
            if q["type"] == "group":
                if "questions" not in q:
                    self.add(f"{where}.questions", "Missing definition: a repeating group needs its questions.")
                else:
                    self.questions(q["questions"], f"{where}.questions", events, module, inherited=True)
                    self.no_specify_inside(q["questions"], f"{where}.questions")
            elif "questions" in q:
                self.add(f"{where}.questions", "Only a repeating group (type 'group') has questions of its own.")
            self.number_rules(q, where)
            self.fhir_rule(q, where)
            before[qid] = {**q, "_codes": codes}

    def no_specify_inside(self, questions: Sequence[Mapping[str, Any]], path: str) -> None:
        """The form has no place for "please specify" text inside a repeating group's entry."""
        for i, q in enumerate(questions):
            for j, a in enumerate(q.get("answers", ())):
                if a.get("specify"):
                    self.add(
                        f"{path}[{i}].answers[{j}].specify",
                        "'Please specify' is not possible inside a repeating group; ask for the text as its own question.",
                    )

    def question_answers(self, q: Mapping[str, Any], where: str) -> set[str]:
        has_answers, has_set = "answers" in q, "answer_set" in q
        if q["type"] in CHOICE_TYPES:
            if has_answers and has_set:
                self.add(where, "Give either 'answers' or 'answer_set', not both.")
            if has_set:
                name = q["answer_set"]
                if name not in self.sets:
                    self.add(f"{where}.answer_set", "Missing definition: no answer set of this name.")
                    return set()
                return {a["code"] for a in self.sets[name]}
            if not has_answers:
                self.add(f"{where}.answers", "Missing definition: a choice question needs its answers.")
                return set()
            return self.answers(q["answers"], f"{where}.answers")
        if has_answers or has_set:
            self.add(where, f"A question of type '{q['type']}' has no answer list; remove it.")
        return set()

    def fhir_rule(self, q: Mapping[str, Any], where: str) -> None:
        """'event' answers are codes (AdverseEvent.event); a 'date' answer is a date or a date-time."""
        fits = {"event": CHOICE_TYPES, "date": {"date", "datetime"}}.get(q.get("fhir", ""))
        if fits is not None and q["type"] not in fits:
            self.add(
                f"{where}.fhir",
                "'event' fits a choice or multi question, 'date' a date or datetime question; change one of them.",
            )

    def number_rules(self, q: Mapping[str, Any], where: str) -> None:
        numeric = ("unit", "min", "max", "decimals")
        if q["type"] != "number":
            for name in numeric:
                if name in q:
                    self.add(_join(where, name), "Only a question of type 'number' has this.")
            return
        low, high = q.get("min"), q.get("max")
        for name, value in (("min", low), ("max", high)):
            if value is not None and not _sensible_number(value):
                self.add(_join(where, name), "Is too large to be a range bound: write at most 15 digits.")
                return
        if low is not None and high is not None and low > high:
            self.add(f"{where}.min", "Is larger than 'max': no number could answer the question.")

    def condition(
        self,
        cond: Mapping[str, Any],
        where: str,
        before: Mapping[str, Mapping[str, Any]],
        ids: set[str],
        events: set[str],
        module: str,
        reachable: Mapping[str, bool],
    ) -> bool:
        """Checks one clause; returns whether it can hold (False makes its question unreachable)."""
        can_hold = True
        wanted = cond.get("event_type")
        if wanted is not None:
            for k, event in enumerate(wanted):
                if event not in self.event_types:
                    self.add(f"{where}.event_type[{k}]", "Is not one of the catalogue's event types.")
            if not set(wanted) & events:
                can_hold = False
        targets = [name for name in ("question", "field") if name in cond]
        listed = [name for name in ("in", "not_in") if name in cond]
        if len(targets) > 1:
            self.add(where, "Name either 'question' or 'field', not both.")
        if len(listed) > 1:
            self.add(where, "Give either 'in' or 'not_in', not both.")
        if targets and not listed:
            self.add(where, "Say which answers the condition needs ('in' or 'not_in').")
        if listed and not targets:
            self.add(where, "Unknown condition target: name the 'question' or 'field' whose answers it lists.")
        if not targets and wanted is None:
            self.add(where, "An empty condition: name a question, a field or event types.")
        codes: list[str] = list(cond.get(listed[0], ())) if listed else []
        negate = listed == ["not_in"]
        known: set[str] | None = None
        if "question" in cond:
            target = cond["question"]
            if target in before:
                known = set(before[target]["_codes"]) if before[target]["type"] in CHOICE_TYPES else None
                if known is None:
                    self.add(f"{where}.question", "Its target is not a choice question: it has no answer codes.")
                can_hold = can_hold and reachable.get(target, True)
            elif target in ids:
                self.add(
                    f"{where}.question", "Refers to a later question: a condition may name only earlier ones."
                )
            else:
                self.add(f"{where}.question", "Unknown condition target: no question of this id in this list.")
        elif "field" in cond:
            known, exists = self.field_codes(str(cond["field"]), module)
            if not exists:
                self.add(f"{where}.field", "Unknown condition target: no field or module question at this path.")
        if known is not None:
            for k, code in enumerate(codes):
                if code not in known:
                    self.add(f"{where}.{listed[0]}[{k}]", "Is not an answer of the question the condition names.")
            if not negate and listed and not set(codes) & known:
                can_hold = False
            if negate and known <= set(codes):
                can_hold = False
        if listed and not negate and not codes:
            can_hold = False
        return can_hold

    def field_codes(self, path: str, module: str) -> tuple[set[str] | None, bool]:
        """The answer codes of the field at ``path`` (None when it has none) and whether the path exists."""
        if path == "event_type":
            return set(self.event_types), True
        if path == "categories":
            return set(self.categories), True
        head, _, rest = path.partition(".")
        if head == "modules":
            key, _, qid = rest.partition(".")
            found = self.data["modules"].get(key)
            if found is None:
                return None, False
            question = next((q for q in found["questions"] if q["id"] == qid), None)
            if question is None:
                return None, False
            if question["type"] not in CHOICE_TYPES:
                return None, True
            if "answer_set" in question:
                return {a["code"] for a in self.sets.get(question["answer_set"], ())}, True
            return {a["code"] for a in question.get("answers", ())}, True
        if path not in self.fields:
            return None, False
        name = path.rpartition(".")[2]
        return ({a["code"] for a in self.sets[name]} if name in self.sets else None), True


def _key(name: str) -> str:
    return _join("", name)


def summary(data: Any) -> str:
    """One line for a clean catalogue: its version and how much it holds."""
    modules = data["modules"]
    questions = sum(_count(m["questions"]) for m in modules.values())
    return f"catalogue {data['version']}: no problems ({len(modules)} modules, {questions} questions)"


def _count(questions: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 + _count(q.get("questions", ())) for q in questions)
