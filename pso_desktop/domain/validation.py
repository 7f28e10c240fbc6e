"""Turning untrusted input into a valid ``Report``, with errors a nurse can act on.

``validate_report`` is the single entry point used by the form, the CLI, imports and the reference server, so
every one of them shows the same words for the same mistake.

No message (and no field path) repeats what was typed: not a value, and not a field name or form version the
form does not know (a field named after a patient would show the name). Unknown names are located by their
position in their JSON object ("Field 14 at the top level ...", "Answer 3 of the Fall form ..."); everything
else a message names comes from the models and the catalogue.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from pydantic import ValidationError

from pso_desktop.domain.catalogue import (
    CURRENT_FORM_VERSION,
    Catalogue,
    Lookup,
    Question,
    QuestionIndex,
    choices_text,
    load_catalogue,
)
from pso_desktop.domain.models import _FORBIDDEN, Report
from pso_desktop.errors import ExpectedError

YES, NO, UNKNOWN = "A15", "A18", "UNK"
NO_HARM = "LA21151-8"
FUTURE_TOLERANCE = dt.timedelta(days=1)  # clocks and time zones differ between wards and the PSO


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path, e.g. "patient.mrn" or "modules.fall.DE213"
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ReportInvalid(ExpectedError, ValueError):
    """The input is not a valid report; ``errors`` lists every problem found, each with what to fix."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        count = len(errors)
        first = f"{errors[0].field}: {errors[0].message}" if errors else "unknown problem"
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"The report is not complete: {first}{more}")

    def as_json(self) -> list[dict[str, str]]:
        return [e.as_dict() for e in self.errors]


def validate_report(
    data: Mapping[str, Any],
    *,
    today: dt.date | None = None,
    catalogues: Callable[[str], Catalogue | None] | None = None,
) -> Report:
    """Validate a wire-form report against its models and its form catalogue; raise ReportInvalid if not valid.

    ``catalogues`` resolves a form version to its catalogue (None: not one the caller accepts); by default the
    catalogues this build bundles and those installed from the PSO (``install_catalogue``). The server passes
    the versions it has published, and answers a version it never published with ``UNPUBLISHED``.

    Pure and thread-safe: safe to call from any thread, the server included.
    """
    if not isinstance(data, Mapping):
        raise ReportInvalid([FieldError("report", "A report must be a JSON object with the report's fields.")])
    version = data.get("form_version", None)
    catalogue = _catalogue_for(version) if catalogues is None else _resolve(catalogues, version)
    if catalogue is None and catalogues is not None:
        raise ReportInvalid([FieldError("form_version", UNPUBLISHED)])
    if catalogue is None:
        raise ReportInvalid(
            [
                FieldError(
                    "form_version",
                    "This app does not know the report's form version; sync with the PSO (which may have "
                    "published it since), update PSO Desktop, or use form version 'hospital-2.0'.",
                )
            ]
        )
    try:
        report = Report.model_validate(dict(data))
    except ValidationError as exc:
        raise ReportInvalid(_translate(exc, catalogue, data)) from None
    errors = _rules(report, catalogue, today or dt.date.today())
    if errors:
        raise ReportInvalid(errors)
    return report


# Names no input: the version a report claims may be anything a client typed.
UNPUBLISHED = (
    "The PSO has not published the form version this report was written on, so it cannot be checked; "
    "open the report in PSO Desktop after a sync, move it to the current form and submit it again."
)


def _resolve(catalogues: Callable[[str], Catalogue | None], version: object) -> Catalogue | None:
    if version is None:
        version = CURRENT_FORM_VERSION
    if not isinstance(version, str):
        return None
    return catalogues(version)


def _catalogue_for(version: object) -> Catalogue | None:
    if version is None:
        return load_catalogue()
    if not isinstance(version, str):
        return None
    try:
        return load_catalogue(version)
    except (KeyError, ValueError, OSError):
        return None


# --- structural errors, in words -------------------------------------------------------------------------------

_TYPE_WORDS = {
    "missing": "is required; fill it in",
    "extra_forbidden": "is not part of the report form; remove it",
    "uuid_parsing": "must be a report ID like 3f2b6c1e-8a4d-4f0e-9c1b-2d7e5a6f8b90",
    "uuid_type": "must be a report ID like 3f2b6c1e-8a4d-4f0e-9c1b-2d7e5a6f8b90",
    "date_parsing": "must be a date written like 2026-11-27",
    "date_from_datetime_parsing": "must be a date written like 2026-11-27",
    "date_type": "must be a date written like 2026-11-27",
    "date_from_datetime_inexact": "must be a date without a time of day, written like 2026-11-27",
    "time_parsing": "must be a time written like 14:30",
    "time_type": "must be a time written like 14:30",
    "datetime_parsing": "must be a date and time written like 2026-11-27T14:30:00",
    "datetime_from_date_parsing": "must be a date and time written like 2026-11-27T14:30:00",
    "datetime_type": "must be a date and time written like 2026-11-27T14:30:00",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be a group of answers (a JSON object)",
    "model_type": "must be a group of fields (a JSON object)",
    "model_attributes_type": "must be a group of fields (a JSON object)",
}


def _model_names(model: Any) -> set[str]:
    """Every field name of ``model`` and of the models inside it: the names a path may show as they are."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for inner in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(inner, type) and hasattr(inner, "model_fields"):
                names |= _model_names(inner)
    return names


_MODEL_NAMES = frozenset(_model_names(Report))


def _known_part(loc: tuple[Any, ...], catalogue: Catalogue) -> int:
    """How many leading parts of a pydantic error location are the form's own names (or list positions); the
    part after them, if any, is a name that was typed (an unknown field, a module key)."""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        if part in _MODEL_NAMES and not (i == 1 and loc[0] == "modules"):
            continue
        if i == 1 and loc[0] == "modules" and part in catalogue.modules:
            continue
        return i
    return len(loc)


def _position(data: Any, parents: tuple[Any, ...], key: Any) -> int | None:
    """The 1-based position of ``key`` among the keys of the object at ``parents`` in the input, as written."""
    node = data
    for part in parents:
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    if not isinstance(node, Mapping):
        return None
    for number, name in enumerate(node, start=1):
        if name == key:
            return number
    return None


def _translate(exc: ValidationError, catalogue: Catalogue, data: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    # The input is read only to tell text from lists and to count positions; it never goes into a message.
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        known = _known_part(loc, catalogue)
        if kind == "extra_forbidden":
            known = min(known, len(loc) - 1)  # the unknown name itself, even if it is a name used elsewhere
        parents = loc[:known]
        path = ".".join(str(p) for p in parents) or "report"
        if kind in ("too_short", "too_long") and isinstance(err.get("input"), str):
            kind = f"string_{kind}"
        ctx = err.get("ctx") or {}
        label = _label(catalogue, parents)
        if known < len(loc):  # a name that was typed: said by its position in its object, never repeated
            number = _position(data, parents, loc[known])
            field = f"Field {number}" if number else "A field"
            label = f"{field} at the top level" if not parents else f"{field} of {label}"
        if kind in _TYPE_WORDS:
            words = _TYPE_WORDS[kind]
        elif kind == "string_too_long":
            words = f"is too long: at most {ctx.get('max_length')} characters"
        elif kind == "string_too_short":
            words = (
                "is empty; fill it in"
                if ctx.get("min_length") == 1
                else (f"is too short: at least {ctx.get('min_length')} characters")
            )
        elif kind == "too_short":
            least = ctx.get("min_length")
            words = "is empty; choose at least one" if least == 1 else f"needs at least {least} choices"
        elif kind == "too_long":
            words = f"has too many choices: at most {ctx.get('max_length')}"
        elif kind == "string_pattern_mismatch":
            words = _pattern_words(path)
        elif kind == "greater_than_equal":
            words = f"must be at least {ctx.get('ge')}"
        elif kind == "less_than_equal":
            words = f"must be at most {ctx.get('le')}"
        elif kind in ("greater_than", "less_than"):
            bound = ctx.get("gt", ctx.get("lt"))
            words = f"must be {'more' if kind == 'greater_than' else 'less'} than {bound}"
        elif kind == "literal_error":
            words = "must be one of: " + choices_text(catalogue.event_types)
        elif kind == "value_error":
            words = str(ctx.get("error", err["msg"]))
        else:
            words = "is not valid here; check the value"
        errors.append(FieldError(path, f"{label} {words}."))
    return errors


def _pattern_words(path: str) -> str:
    if path.endswith("diagnosis_icd10"):
        return "must be an ICD-10-CM code like S72.001A"
    return "may contain only letters, digits, '.', '-' and '_'"


def _label(catalogue: Catalogue, loc: Iterable[Any]) -> str:
    named = [str(p) for p in loc if not isinstance(p, int)]
    key = ".".join(named)
    while key and key not in catalogue.labels:
        key = key.rpartition(".")[0]
    if key:
        return f"'{catalogue.labels[key]}'"
    return f"'{'.'.join(named)[:80]}'" if named else "The report"  # named: the form's own names only


# --- catalogue rules ---------------------------------------------------------------------------------------------
# Each rule appends what it finds to ``errors``, in the order of the form. Appending to one list rather than
# yielding keeps the common case (a valid report: nothing found) cheap, which is what bounds server intake.


def _rules(r: Report, cat: Catalogue, today: dt.date) -> list[FieldError]:
    errors: list[FieldError] = []
    _category_rules(r, cat, errors)
    _date_rules(r, today, errors)
    _patient_rules(r, cat, errors)
    _harm_rules(r, cat, errors)
    _circumstance_rules(r, cat, errors)
    _reporter_rules(r, cat, errors)
    _module_rules(r, cat, errors)
    return errors


def _event_words(cat: Catalogue, code: str) -> str:
    return next((e.display for e in cat.event_types if e.code == code), code)


def _category_rules(r: Report, cat: Catalogue, errors: list[FieldError]) -> None:
    if len(set(r.categories)) != len(r.categories):
        errors.append(
            FieldError("categories", "Each event category may be chosen only once; remove the repeated one.")
        )
    wants_other = False
    for i, code in enumerate(r.categories):
        category = cat.category(code)
        if category is None:
            # The unknown code is not repeated: whatever was typed there may be patient details.
            errors.append(
                FieldError(
                    f"categories.{i}",
                    f"Event category {i + 1} is not a category of this form; choose one of: "
                    + ", ".join(f"{c.display} ({c.code})" for c in cat.categories)
                    + ".",
                )
            )
            continue
        wants_other = wants_other or category.specify
        if r.event_type not in category.event_types:
            allowed = " or ".join(_event_words(cat, e) for e in sorted(category.event_types))
            errors.append(
                FieldError(
                    f"categories.{i}",
                    f"A {category.display} event is always reported as {allowed}: change 'What is being "
                    f"reported' or remove {category.display}.",
                )
            )
    if wants_other and not (r.categories_other or "").strip():
        errors.append(
            FieldError("categories_other", "You chose 'Other' as a category: say what kind of event it was.")
        )
    if r.categories_other and not wants_other:
        errors.append(
            FieldError("categories_other", "Remove the 'other category' text, or choose the category 'Other'.")
        )


def _date_rules(r: Report, today: dt.date, errors: list[FieldError]) -> None:
    d = r.discovery
    if d.date is None and not d.date_unknown:
        errors.append(FieldError("discovery.date", "Enter the date the event was discovered, or tick 'Unknown'."))
    if d.date is not None and d.date_unknown:
        errors.append(
            FieldError("discovery.date_unknown", "Either enter the discovery date or tick 'Unknown', not both.")
        )
    if d.time is not None and d.time_unknown:
        errors.append(
            FieldError("discovery.time_unknown", "Either enter the discovery time or tick 'Unknown', not both.")
        )
    if d.time is None and not d.time_unknown:
        errors.append(FieldError("discovery.time", "Enter the time the event was discovered, or tick 'Unknown'."))
    limit = today + FUTURE_TOLERANCE
    if d.date is not None and d.date > limit:
        errors.append(FieldError("discovery.date", "The discovery date is in the future; check the date."))
    elif d.date is not None and d.date > r.report_date:
        errors.append(
            FieldError(
                "discovery.date",
                "The event cannot be discovered after the date of the report; check both dates.",
            )
        )
    if r.report_date > limit:
        errors.append(FieldError("report_date", "The report date is in the future; check the date."))
    if r.initial_report_date is not None and r.initial_report_date > r.report_date:
        errors.append(
            FieldError("initial_report_date", "The initial report date cannot be later than the report date.")
        )


def _check_code(path: str, value: str | None, cat: Catalogue, set_name: str, errors: list[FieldError]) -> None:
    if value is not None and value not in cat.codes(set_name):
        choices = choices_text(cat.answer_set(set_name))
        errors.append(
            FieldError(
                path, f"{cat.label(path)!r} has an answer this form does not know; choose one of: {choices}."
            )
        )


def _patient_rules(r: Report, cat: Catalogue, errors: list[FieldError]) -> None:
    p = r.patient
    if r.event_type == "unsafe_condition":
        if p is not None:
            errors.append(
                FieldError(
                    "patient",
                    "An unsafe condition does not involve a patient: remove the patient "
                    "details, or report it as an incident or near miss.",
                )
            )
        return
    if p is None:
        if r.event_type == "incident":
            errors.append(FieldError("patient", "An incident reached a patient: enter the patient's details."))
        return
    if r.event_type == "incident":
        if not ((p.mrn or "").strip() or (p.name or "").strip()):
            errors.append(
                FieldError("patient.mrn", "Enter the patient's medical record number (or name if it has none).")
            )
        if p.gender is None:
            errors.append(FieldError("patient.gender", "Choose the patient's gender (Unknown is allowed)."))
        if p.age_years is None and p.date_of_birth is None:
            errors.append(
                FieldError("patient.age_years", "Enter the patient's age at the event or date of birth.")
            )
    _check_code("patient.gender", p.gender, cat, "gender", errors)
    _check_code("patient.ethnicity", p.ethnicity, cat, "ethnicity", errors)
    for i, race in enumerate(p.race):
        _check_code(f"patient.race.{i}", race, cat, "race", errors)
    if p.date_of_birth is not None:
        if p.date_of_birth > r.report_date:
            errors.append(
                FieldError("patient.date_of_birth", "The date of birth is after the report date; check it.")
            )
        elif r.discovery.date is not None and p.date_of_birth > r.discovery.date:
            errors.append(FieldError("patient.date_of_birth", "The date of birth is after the event; check it."))


def _harm_rules(r: Report, cat: Catalogue, errors: list[FieldError]) -> None:
    h = r.harm
    if r.event_type != "incident":
        if h is not None:
            errors.append(
                FieldError(
                    "harm",
                    f"A {_event_words(cat, r.event_type).lower()} did not reach a patient, so it "
                    "has no harm: remove the harm answers or report it as an incident.",
                )
            )
        return
    if h is None or h.evidence_of_harm is None:
        errors.append(
            FieldError(
                "harm.evidence_of_harm",
                "Answer 'Was there any evidence of harm at the time of this report?' (Yes, No or Unknown).",
            )
        )
        return
    _check_code("harm.evidence_of_harm", h.evidence_of_harm, cat, "yes_no_unknown", errors)
    if h.level is not None and h.level not in cat.harm_level_codes:
        errors.append(
            FieldError(
                "harm.level",
                "Choose a level from the AHRQ Harm Scale (Death, Severe, Moderate, Mild, No harm or Unknown).",
            )
        )
    if h.evidence_of_harm == YES and h.level is None:
        errors.append(
            FieldError(
                "harm.level",
                "There was evidence of harm: choose the level of harm. If torn between two "
                "levels, choose the more severe.",
            )
        )
    if h.evidence_of_harm == YES and h.level == NO_HARM:
        errors.append(
            FieldError("harm.level", "'No harm' contradicts 'evidence of harm: Yes'; change one of them.")
        )
    if h.evidence_of_harm == NO and h.level not in (None, NO_HARM):
        errors.append(
            FieldError(
                "harm.level",
                "A harm level other than 'No harm' needs 'evidence of harm: Yes'; change one of them.",
            )
        )
    _check_code("harm.duration", h.duration, cat, "harm_duration", errors)
    _check_code("harm.increased_length_of_stay", h.increased_length_of_stay, cat, "yes_no_unknown", errors)


def _intervention_rules(codes: list[str], attempted: str, cat: Catalogue, errors: list[FieldError]) -> None:
    """The coded rescue interventions: only when one was attempted, and only on a form version that asks."""
    if not codes:
        return
    if "rescue_interventions" not in cat.answer_sets:
        errors.append(
            FieldError(
                "rescue.intervention_types",
                "This form version does not ask which interventions were documented; describe them in words.",
            )
        )
    elif attempted != YES:
        errors.append(
            FieldError(
                "rescue.intervention_types",
                "Interventions are ticked only when one was attempted: answer 'Yes' or untick them.",
            )
        )
    else:
        for i, code in enumerate(codes):
            _check_code(f"rescue.intervention_types.{i}", code, cat, "rescue_interventions", errors)


def _circumstance_rules(r: Report, cat: Catalogue, errors: list[FieldError]) -> None:
    _check_code("handover_involved", r.handover_involved, cat, "yes_no_unknown", errors)
    _check_code("serious_reportable_event", r.serious_reportable_event, cat, "yes_no_unknown", errors)
    _check_code("family_notified", r.family_notified, cat, "yes_no_unknown", errors)
    if r.rescue is not None:
        _check_code("rescue.attempted", r.rescue.attempted, cat, "yes_no_unknown", errors)
        if r.rescue.interventions and r.rescue.attempted != YES:
            errors.append(
                FieldError(
                    "rescue.interventions",
                    "Interventions are listed only when one was attempted: answer 'Yes' or clear the list.",
                )
            )
        _intervention_rules(r.rescue.intervention_types or [], r.rescue.attempted, cat, errors)
    _check_code("preventability", r.preventability, cat, "preventability", errors)
    for i, code in enumerate(r.contributing_factors):
        _check_code(f"contributing_factors.{i}", code, cat, "contributing_factors", errors)
    _specify(
        "contributing_factors_other",
        "A66" in r.contributing_factors,
        r.contributing_factors_other,
        "contributing factor",
        errors,
    )
    if r.event_type != "near_miss" and (r.near_miss_reason or r.near_miss_reason_other):
        errors.append(
            FieldError(
                "near_miss_reason",
                "Only a near miss has a reason it did not reach the patient: clear it or report a near miss.",
            )
        )
    else:
        _check_code("near_miss_reason", r.near_miss_reason, cat, "near_miss_reason", errors)
        _specify("near_miss_reason_other", r.near_miss_reason == "A66", r.near_miss_reason_other, "reason", errors)


def _specify(path: str, wanted: bool, text: str | None, what: str, errors: list[FieldError]) -> None:
    if wanted and not (text or "").strip():
        errors.append(FieldError(path, f"You chose 'Other': describe the {what}."))
    if text and not wanted:
        errors.append(FieldError(path, f"Remove the 'other {what}' text, or choose 'Other'."))


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_IDENTITY = ("name", "telephone", "email", "job")


def _reporter_rules(r: Report, cat: Catalogue, errors: list[FieldError]) -> None:
    rep = r.reporter
    if rep.anonymous:
        for name in _IDENTITY:
            if getattr(rep, name) is not None:
                errors.append(
                    FieldError(
                        f"reporter.{name}",
                        "An anonymous report carries no reporter identity: clear the "
                        "reporter's name, telephone, email and job, or untick 'Report anonymously'.",
                    )
                )
    elif not (rep.name or "").strip():
        errors.append(FieldError("reporter.name", "Enter your name, or tick 'Report anonymously'."))
    if rep.email and not _EMAIL.match(rep.email):
        errors.append(
            FieldError("reporter.email", "The email address looks wrong; write it like name@hospital.org.")
        )
    _check_code("reporter.first_reported_by", rep.first_reported_by, cat, "first_reported_by", errors)
    _check_code("reporter.professional_type", rep.professional_type, cat, "professional_type", errors)
    _field_condition_errors(r, cat, errors)


def _field_condition_errors(r: Report, cat: Catalogue, errors: list[FieldError]) -> None:
    """Generic-form fields that apply only after a given answer elsewhere (the catalogue's field_conditions),
    e.g. the type of professional (DE84) only when a healthcare professional first reported (DE81)."""
    for path, cond in cat.field_conditions.items():
        source = cond.field
        given = _field_value(r, source)
        if given is None:
            continue  # not answered there: nothing to contradict
        known = cond.answer_set in cat.answer_sets
        if known and given not in cat.codes(cond.answer_set):
            continue  # an unknown answer there has its own error; this one would only repeat it
        if _field_value(r, path) is not None and given not in cond.answers:
            names = [cat.display(cond.answer_set, c) if known else c for c in sorted(cond.answers)]
            shown = " or ".join(f"'{name}'" for name in names)
            errors.append(
                FieldError(
                    path,
                    f"{cat.label(path)!r} applies only when {cat.label(source)!r} is {shown}: clear it or "
                    "change that answer.",
                )
            )


@cache
def _path_parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))  # paths come from the catalogue's field_conditions: a handful, reused


def _field_value(r: Report, path: str) -> Any:
    value: Any = r
    for part in _path_parts(path):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _report_value(r: Report, path: str) -> Any:
    """A value of the report by wire path, for conditions that look outside their module: module answers as
    sent ("modules.medication.characterisation"), other fields as validated ("categories", "patient.gender")."""
    parts = _path_parts(path)
    if parts[0] == "modules":
        value: Any = r.modules
        for part in parts[1:]:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value
    return _field_value(r, path)


def _module_rules(r: Report, cat: Catalogue, errors: list[FieldError]) -> None:
    chosen = {c.module: c for code in r.categories if (c := cat.category(code)) is not None and c.module}
    lookup: Lookup = partial(_report_value, r)
    for number, key in enumerate(r.modules, start=1):
        if key not in cat.modules:
            # Located by position: a key that was typed may be anything, a patient's name included.
            errors.append(
                FieldError("modules", f"Category form {number} is not a category form of this report; remove it.")
            )
        elif key not in chosen:
            errors.append(
                FieldError(
                    f"modules.{key}",
                    f"The {cat.modules[key].title} details belong to the category "
                    f"{cat.modules[key].title}: choose that category or remove the details.",
                )
            )
    for key, category in chosen.items():
        module = cat.modules.get(key)
        if module is None:
            continue
        answers = r.modules.get(key)
        if answers is None:
            if module.required:
                errors.append(FieldError(f"modules.{key}", f"You chose {category.display}: answer its questions."))
            continue
        _module_answers(f"modules.{key}", module.title, module.index, answers, r.event_type, errors, lookup, cat)


def _module_answers(
    prefix: str,
    title: str,
    index: QuestionIndex,
    answers: Mapping[str, Any],
    event_type: str,
    errors: list[FieldError],
    lookup: Lookup | None = None,
    cat: Catalogue | None = None,
) -> None:
    known = index.known_keys
    for number, key in enumerate(answers, start=1):
        if key not in known:
            # Located by position: a key that was typed may be anything, a patient's name included.
            errors.append(
                FieldError(prefix, f"Answer {number} of the {title} form is not one of its questions; remove it.")
            )
    for q in index.questions:
        value = answers.get(q.id)
        if value is None and not q.required:
            continue  # unanswered optional question: nothing can be wrong with it (the common case)
        if q.enable_when and not q.applies(event_type, answers, lookup):
            if value is not None:
                where = q.describe_condition(index.by_id, cat.question_at if cat is not None else None)
                errors.append(
                    FieldError(
                        f"{prefix}.{q.id}",
                        f"'{q.text}' applies only when {where}: clear this answer or change that one.",
                    )
                )
            continue
        if value is None or value == [] or value == "":
            if q.required:
                hint = " (Unknown is allowed)" if q.answer("UNK") else ""
                errors.append(FieldError(f"{prefix}.{q.id}", f"Answer '{q.text}'{hint}."))
            continue
        _answer_errors(prefix, q, value, event_type, errors, lookup, cat)
        text = answers.get(q.specify_key)
        if text is not None or q.specify_codes:  # most questions have no 'Other' answer and no text beside
            _specify_text_errors(prefix, q, value, text, errors)


def _specify_text_errors(prefix: str, q: Question, value: Any, text: Any, errors: list[FieldError]) -> None:
    """The "please specify" text beside an answer: needed with an 'Other' code, refused without one."""
    chosen = value if isinstance(value, list) else (value,)
    needs_text = any(str(code) in q.specify_codes for code in chosen)
    path = f"{prefix}.{q.specify_key}"
    if needs_text and not (isinstance(text, str) and text.strip()):
        errors.append(FieldError(path, f"You chose 'Other' for '{q.text}': please specify."))
    elif text is not None and not needs_text:
        errors.append(FieldError(path, f"Remove the 'please specify' text of '{q.text}', or choose 'Other'."))
    elif text is not None and (problem := _text_problem(q.text, text, 2000, None)):
        errors.append(FieldError(path, problem))


def _answer_errors(
    prefix: str,
    q: Question,
    value: Any,
    event_type: str,
    errors: list[FieldError],
    lookup: Lookup | None = None,
    cat: Catalogue | None = None,
) -> None:
    """An answer given to a question that applies: its type, codes and limits. Paths are built only for errors."""
    kind = q.type
    if kind == "choice":
        if not isinstance(value, str) or value not in q.codes:
            errors.append(FieldError(f"{prefix}.{q.id}", f"'{q.text}' needs one of: {q.choices_text}."))
    elif kind == "text":
        if problem := _text_problem(q.text, value, q.max_length, q.compiled_pattern):
            errors.append(FieldError(f"{prefix}.{q.id}", problem))
    elif kind == "multi":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            errors.append(
                FieldError(f"{prefix}.{q.id}", f"'{q.text}' needs a list of one or more of: {q.choices_text}.")
            )
        elif len(set(value)) != len(value):
            errors.append(
                FieldError(f"{prefix}.{q.id}", f"'{q.text}' lists the same answer twice; remove the repeat.")
            )
        else:
            for i, v in enumerate(value):
                if v not in q.codes:
                    # Not repeating the value: free text in a list of codes may be patient details.
                    errors.append(
                        FieldError(
                            f"{prefix}.{q.id}.{i}",
                            f"Answer {i + 1} to '{q.text}' is not one of its answers; choose from: "
                            f"{q.choices_text}.",
                        )
                    )
    elif kind == "text_list":
        if not isinstance(value, list) or len(value) > q.max_items:
            errors.append(
                FieldError(f"{prefix}.{q.id}", f"'{q.text}' needs a list of at most {q.max_items} entries.")
            )
        else:
            for i, item in enumerate(value):
                if problem := _text_problem(q.text, item, q.max_length, None):
                    errors.append(FieldError(f"{prefix}.{q.id}.{i}", problem))
    elif kind == "date":
        if not isinstance(value, str) or not _is_iso_date(value):
            errors.append(FieldError(f"{prefix}.{q.id}", f"'{q.text}' must be a date written like 2026-11-27."))
    elif kind == "datetime":
        if not isinstance(value, str) or not _is_iso_datetime(value):
            errors.append(
                FieldError(
                    f"{prefix}.{q.id}", f"'{q.text}' must be a date and time written like 2026-11-27T14:30:00."
                )
            )
    elif kind == "number":
        if problem := _number_problem(q, value):
            errors.append(FieldError(f"{prefix}.{q.id}", problem))
    elif kind == "group":
        if not isinstance(value, list) or len(value) > q.max_items:
            errors.append(FieldError(f"{prefix}.{q.id}", f"'{q.text}': list at most {q.max_items} entries."))
            return
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                errors.append(
                    FieldError(f"{prefix}.{q.id}.{i}", f"Each entry of '{q.text}' must be a group of answers.")
                )
                continue
            _module_answers(f"{prefix}.{q.id}.{i}", q.text, q.children, item, event_type, errors, lookup, cat)


def _text_problem(question: str, value: Any, max_length: int, pattern: re.Pattern[str] | None) -> str | None:
    """What is wrong with a free-text answer, or None."""
    if not isinstance(value, str):
        return f"'{question}' must be text."
    if len(value) > max_length:
        return f"'{question}' is too long: at most {max_length} characters."
    if _FORBIDDEN.search(value):
        return f"'{question}' contains an invisible control character; delete it or retype the text."
    if pattern is not None and not pattern.match(value):
        return f"'{question}' must be digits only."
    return None


def _number_problem(q: Question, value: Any) -> str | None:
    """What is wrong with a numeric answer (a JSON number, in the question's unit), or None."""
    unit = f" {q.unit}" if q.unit else ""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN is not a number
        return f"'{q.text}' must be a number{' in' + unit if unit else ''}."
    if q.decimals == 0 and not (isinstance(value, int) or value.is_integer()):
        return f"'{q.text}' must be a whole number{' of' + unit if unit else ''}."
    if q.decimals and isinstance(value, float) and round(value, q.decimals) != value:
        return f"'{q.text}' may have at most {q.decimals} digits after the decimal point."
    if q.minimum is not None and value < q.minimum:
        return f"'{q.text}' must be at least {q.minimum:g}{unit}."
    if q.maximum is not None and value > q.maximum:
        return f"'{q.text}' must be at most {q.maximum:g}{unit}."
    return None


def _is_iso_datetime(value: str) -> bool:
    """``YYYY-MM-DDTHH:MM:SS`` (local time of the ward, as the form's other times; no zone)."""
    if len(value) != 19 or value[10] != "T":
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_iso_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10
