"""The CSV form of reports: ONE column mapping, used both to export and to import, so an export imports back.

One row per report under a header row of stable column names (docs/import-export.md lists them):

- ``confidentiality`` comes first and holds the PSWP label in every row, so any rows copied out of the file
  still carry it (a label line above the header would break CSV readers); import ignores its contents.
- The generic form's fields have fixed names (``event_type``, ``discovery_date``, ``patient_mrn`` ...).
- Category module answers are ``module.<module>.<question>`` columns derived from the form catalogue: lists
  of free text (``module.medication.compounded_ingredients.1``) and repeating groups
  (``module.medication.products.1.generic_name``) get one numbered column per entry, up to the catalogue's
  ``max_items``; a "please specify" text is ``module.<module>.<question>_specify``.
- Lists of codes are joined with ``;``. Booleans are ``true`` / ``false``. An empty cell means "not given".
- Spreadsheet formula injection: a cell starting with ``=``, ``+``, ``-``, ``@``, tab, carriage return or
  ``'`` is exported with one more ``'`` in front; import removes exactly that one ``'`` (only when the next
  character is one of those), so the round trip is exact and a spreadsheet shows text, never a formula.

Pure and Qt-free. No message repeats a cell's contents (they hold PHI): column names, rows and lines only.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pso_desktop.domain.catalogue import (
    CHOICE_TYPES,
    CURRENT_FORM_VERSION,
    GENERIC_ANSWER_SETS,
    Answer,
    Catalogue,
    Question,
    known_versions,
    load_catalogue,
)
from pso_desktop.errors import ExpectedError
from pso_desktop.services.reports_input import InputProblem, InputRejected
from pso_desktop.storage.reports import ExportedReport
from pso_desktop.texts import PSO_STATUS_LABELS, STATE_LABELS

Kind = Literal["text", "code", "codes", "int", "number", "bool"]
WirePath = tuple[str | int, ...]

LABEL_COLUMN = "confidentiality"
LIST_SEPARATOR = ";"
# OWASP's list of characters that make a spreadsheet read a cell as a formula, plus the quote itself so that
# a value that really starts with a quote survives the round trip.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")

# The generic form, in the order a reader of the form expects. A test checks that every field of the
# Report model has a column here, so a new field cannot be silently missing from exports.
GENERIC_COLUMNS: tuple[tuple[str, str, Kind], ...] = (
    ("id", "id", "code"),
    ("revision", "revision", "int"),
    ("form_version", "form_version", "code"),
    ("event_type", "event_type", "code"),
    ("report_date", "report_date", "code"),
    ("initial_report_date", "initial_report_date", "code"),
    ("categories", "categories", "codes"),
    ("categories_other", "categories_other", "text"),
    ("discovery_date", "discovery.date", "code"),
    ("discovery_date_unknown", "discovery.date_unknown", "bool"),
    ("discovery_time", "discovery.time", "code"),
    ("discovery_time_unknown", "discovery.time_unknown", "bool"),
    ("location_unit", "location.unit", "text"),
    ("location_description", "location.description", "text"),
    ("narrative", "narrative", "text"),
    ("patient_name", "patient.name", "text"),
    ("patient_date_of_birth", "patient.date_of_birth", "code"),
    ("patient_mrn", "patient.mrn", "text"),
    ("patient_gender", "patient.gender", "code"),
    ("patient_age_years", "patient.age_years", "int"),
    ("patient_ethnicity", "patient.ethnicity", "code"),
    ("patient_race", "patient.race", "codes"),
    ("patient_diagnosis_icd10", "patient.diagnosis_icd10", "code"),
    ("harm_evidence_of_harm", "harm.evidence_of_harm", "code"),
    ("harm_level", "harm.level", "code"),
    ("harm_duration", "harm.duration", "code"),
    ("harm_assessed_at", "harm.assessed_at", "code"),
    ("harm_increased_length_of_stay", "harm.increased_length_of_stay", "code"),
    ("harm_patients_reached", "harm.patients_reached", "int"),
    ("rescue_attempted", "rescue.attempted", "code"),
    ("rescue_intervention_types", "rescue.intervention_types", "codes"),
    ("rescue_interventions", "rescue.interventions", "text"),
    ("contributing_factors", "contributing_factors", "codes"),
    ("contributing_factors_other", "contributing_factors_other", "text"),
    ("handover_involved", "handover_involved", "code"),
    ("preventability", "preventability", "code"),
    ("near_miss_reason", "near_miss_reason", "code"),
    ("near_miss_reason_other", "near_miss_reason_other", "text"),
    ("serious_reportable_event", "serious_reportable_event", "code"),
    ("family_notified", "family_notified", "code"),
    ("reporter_anonymous", "reporter.anonymous", "bool"),
    ("reporter_name", "reporter.name", "text"),
    ("reporter_telephone", "reporter.telephone", "text"),
    ("reporter_email", "reporter.email", "text"),
    ("reporter_job", "reporter.job", "text"),
    ("reporter_first_reported_by", "reporter.first_reported_by", "code"),
    ("reporter_professional_type", "reporter.professional_type", "code"),
)
# Sections that every report has: built even when all their cells are empty, so validation names the
# missing field (location_unit) rather than the section.
_REQUIRED_SECTIONS = ("discovery", "location", "reporter")
_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
_DIGITS = re.compile(r"[0-9]{1,9}")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?(e[-+]?[0-9]{1,3})?")


@dataclass(frozen=True)
class Column:
    name: str
    path: WirePath  # where the value sits in the wire form; an int indexes a list (numbered columns)
    kind: Kind


@dataclass(frozen=True)
class ColumnMapping:
    columns: tuple[Column, ...]
    by_name: Mapping[str, Column]
    by_path: Mapping[WirePath, Column]


@dataclass(frozen=True)
class CsvRow:
    """One report read from a CSV file: its spreadsheet row (the header is row 1) and the line it starts on."""

    row: int
    line: int
    report: dict[str, Any]


@dataclass(frozen=True)
class RowProblem(InputProblem):
    """An InputProblem located the way a spreadsheet user finds it: row number, and the file line."""

    def __str__(self) -> str:
        if self.report_number is None:
            place = f"line {self.line}" if self.line is not None else "file"
        else:
            place = f"row {self.report_number} (line {self.line})"
        field = f" {self.field}:" if self.field else ""
        return f"{place}:{field} {self.message}"


class CsvExportFailed(ExpectedError):
    """A stored report holds a value the CSV columns cannot carry (an unusual draft): nothing was written."""


def _module_columns(version: str) -> Iterator[Column]:
    catalogue = load_catalogue(version)
    for key, module in catalogue.modules.items():
        yield from _question_columns(f"module.{key}", ("modules", key), module.questions)


def _question_columns(prefix: str, path: WirePath, questions: Iterable[Question]) -> Iterator[Column]:
    for q in questions:
        name, where = f"{prefix}.{q.id}", (*path, q.id)
        if q.type == "group":
            for n in range(q.max_items):
                yield from _question_columns(f"{name}.{n + 1}", (*where, n), q.questions)
        elif q.type == "text_list":
            for n in range(q.max_items):
                yield Column(f"{name}.{n + 1}", (*where, n), "text")
        else:
            kind: Kind = (
                "codes"
                if q.type == "multi"
                else "text"
                if q.type == "text"
                else "number"
                if q.type == "number"
                else "code"
            )
            yield Column(name, where, kind)
        if q.specify_codes:
            yield Column(f"{prefix}.{q.specify_key}", (*path, q.specify_key), "text")


@cache
def column_mapping(version: str = CURRENT_FORM_VERSION) -> ColumnMapping:
    """Every column of the CSV format, in file order (after the label column)."""
    generic = [Column(name, tuple(path.split(".")), kind) for name, path, kind in GENERIC_COLUMNS]
    columns = (*generic, *_module_columns(version))
    return ColumnMapping(columns, {c.name: c for c in columns}, {c.path: c for c in columns})


def header() -> list[str]:
    return [LABEL_COLUMN, *(c.name for c in column_mapping().columns)]


# --- export ------------------------------------------------------------------------------------------------


def neutralise(cell: str) -> str:
    """The cell as written to the file: a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def write_csv(reports: Iterable[Mapping[str, Any]], label: str) -> tuple[bytes, int]:
    """The CSV file (UTF-8 with a BOM, which spreadsheets need to read UTF-8) and the number of reports.

    The columns are the current form version's; reports written on another version this client knows (a
    Hospital V1.2 report, a version the PSO published) add that version's module columns after them."""
    reports = list(reports)
    mapping = _union_mapping(_versions_of(report.get("form_version") for report in reports))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([LABEL_COLUMN, *(c.name for c in mapping.columns)])
    count = 0
    for report in reports:
        cells = _cells(report, mapping)
        writer.writerow([label, *(neutralise(cells.get(c.name, "")) for c in mapping.columns)])
        count += 1
    return ("\ufeff" + buffer.getvalue()).encode("utf-8"), count


def _cells(report: Mapping[str, Any], mapping: ColumnMapping) -> dict[str, str]:
    cells: dict[str, str] = {}
    for path, value in _leaves(report, (), mapping):
        if value is None or value == "" or value == [] or value == {}:
            continue  # nothing to carry: an empty cell means "not given"
        column = mapping.by_path.get(path)
        cell = _format(value, column.kind) if column is not None else None
        if column is None or cell is None:
            where = column.name if column is not None else ".".join(str(p) for p in path)
            raise CsvExportFailed(
                f"Report {str(report.get('id'))[:40]} holds a value in {where[:80]} that the CSV format cannot "
                "carry (an unfinished draft?); export as JSON (--format json) instead."
            )
        cells[column.name] = cell
    return cells


def _leaves(value: Any, path: WirePath, mapping: ColumnMapping) -> Iterator[tuple[WirePath, Any]]:
    """(path, value) of every value in the wire form, stopping at the paths that have a column."""
    if path in mapping.by_path:
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)), mapping)
    elif isinstance(value, list) and path:
        for n, item in enumerate(value):
            yield from _leaves(item, (*path, n), mapping)
    else:
        yield path, value


def _format(value: Any, kind: Kind) -> str | None:
    """The cell for ``value``, or None when this column cannot carry it exactly."""
    if kind == "bool":
        return ("true" if value else "false") if isinstance(value, bool) else None
    if kind == "int":
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "number":  # repr: the shortest text that reads back as the same float (38.5, 4120.0)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return repr(value) if ok else None
    if kind == "codes":
        ok = isinstance(value, list) and all(
            isinstance(v, str) and v.strip() == v and v and LIST_SEPARATOR not in v for v in value
        )
        return LIST_SEPARATOR.join(value) if ok else None
    if not isinstance(value, str):
        return None
    # Codes are read back stripped; text is kept exactly as it is.
    return value if kind == "text" or value.strip() == value else None


# --- the readable variant (export only) ----------------------------------------------------------------------

READABLE_STATUS_COLUMNS = ("case_number", "state", "pso_status")
LABEL_SUFFIX = "_label"
READABLE_REFUSED = (
    "this is the readable CSV export (the answers' words beside their codes), which cannot be imported; import a "
    "CSV exported with --format csv (in the window: 'CSV spreadsheet') instead"
)


def write_readable_csv(rows: Iterable[ExportedReport], label: str) -> tuple[bytes, int]:
    """The readable CSV (docs/import-export.md): the round-trip columns, each coded one followed by
    ``<column>_label`` with the answers' words from the report's own catalogue version, and after ``id`` the
    report's case number, state and status at the PSO, in words. For people and spreadsheets; not imported."""
    rows = list(rows)
    versions = _versions_of(row.report.get("form_version") for row in rows)
    mapping = _union_mapping(versions)
    catalogues = [load_catalogue(v) for v in versions]
    coded = {c.name for c in mapping.columns if _coded(c, catalogues)}
    names: list[str] = [LABEL_COLUMN]
    for column in mapping.columns:
        names.append(column.name)
        if column.name == "id":
            names.extend(READABLE_STATUS_COLUMNS)
        elif column.name in coded:
            names.append(column.name + LABEL_SUFFIX)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(names)
    for row in rows:
        cells = _cells(row.report, mapping)
        version = row.report.get("form_version", CURRENT_FORM_VERSION)
        catalogue = load_catalogue(version) if isinstance(version, str) and _known_version(version) else None
        out = [label]
        for column in mapping.columns:
            out.append(cells.get(column.name, ""))
            if column.name == "id":
                out.extend(
                    (
                        row.server_ref or "",
                        STATE_LABELS.get(row.state, row.state),
                        PSO_STATUS_LABELS.get(row.pso_status, row.pso_status) if row.pso_status else "",
                    )
                )
            elif column.name in coded:
                out.append(_labels(_value_at(row.report, column.path), column, catalogue))
        writer.writerow([neutralise(cell) for cell in out])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8"), len(rows)


def _versions_of(named: Iterable[object]) -> tuple[str, ...]:
    """The current version, then every other known version among ``named`` in the order first met."""
    versions = [CURRENT_FORM_VERSION]
    for version in named:
        if isinstance(version, str) and version not in versions and _known_version(version):
            versions.append(version)
    return tuple(versions)


def import_mapping() -> ColumnMapping:
    """The columns an imported file may have: the current version's, then those of every other version this
    client knows (validation then refuses a module its report's version does not have)."""
    return _union_mapping(_versions_of(known_versions()))


def _known_version(version: str) -> bool:
    try:
        load_catalogue(version)
    except KeyError:
        return False
    return True


@cache
def _union_mapping(versions: tuple[str, ...]) -> ColumnMapping:
    """Every column of these catalogue versions, the first version's order first (a report on a published or
    older version has its own modules' columns)."""
    seen: dict[str, Column] = {}
    for version in versions:
        for column in column_mapping(version).columns:
            seen.setdefault(column.name, column)
    columns = tuple(seen.values())
    return ColumnMapping(columns, {c.name: c for c in columns}, {c.path: c for c in columns})


def _coded(column: Column, catalogues: Iterable[Catalogue]) -> bool:
    """Whether the column holds answer codes that have words (not dates and ids, which are also 'code')."""
    path = ".".join(str(p) for p in column.path)
    if path in ("event_type", "categories", "harm.level") or path in GENERIC_ANSWER_SETS:
        return True
    if column.path[0] != "modules":
        return False
    for catalogue in catalogues:
        question = _module_question(catalogue, column.path)
        if question is not None:
            return question.type in CHOICE_TYPES
    return False


def _value_at(report: Mapping[str, Any], path: WirePath) -> Any:
    value: Any = report
    for part in path:
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and part < len(value) else None
        else:
            value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _labels(value: Any, column: Column, catalogue: Catalogue | None) -> str:
    """The words of the code(s) in a cell, from the report's catalogue ('' for a code it does not know)."""
    if catalogue is None or value is None:
        return ""
    codes = value if isinstance(value, list) else [value]
    path = ".".join(str(p) for p in column.path)
    answers: tuple[Answer, ...] = ()
    if path == "event_type":
        answers = catalogue.event_types
    elif path == "harm.level":
        answers = catalogue.harm_levels
    elif path in GENERIC_ANSWER_SETS:
        answers = catalogue.answer_sets.get(GENERIC_ANSWER_SETS[path], ())
    elif column.path[0] == "modules":
        question = _module_question(catalogue, column.path)
        answers = question.answers if question is not None else ()
    words = []
    for code in codes:
        if path == "categories":
            category = catalogue.category(code) if isinstance(code, str) else None
            words.append(category.display if category else "")
        else:
            found = next((a for a in answers if a.code == code), None)
            words.append(found.display if found else "")
    return "; ".join(words)


def _module_question(catalogue: Catalogue, path: WirePath) -> Question | None:
    module = catalogue.modules.get(str(path[1]))
    question = module.by_id.get(str(path[2])) if module is not None else None
    if question is not None and question.type == "group" and len(path) == 5:
        return question.children.by_id.get(str(path[4]))
    return question if len(path) == 3 else None


# --- import ------------------------------------------------------------------------------------------------


def restore(cell: str) -> str:
    """The value of a cell as ``neutralise`` wrote it: exactly the one added ``'`` removed."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def read_csv(text: str) -> tuple[list[CsvRow], list[InputProblem]]:
    """The reports in a CSV file (header row first), not yet validated, and the file's problems (unknown
    columns, extra cells), so that they are listed together with the rows' validation problems.

    InputRejected when nothing can be read: an empty file, broken quoting, a header and no rows.
    """
    mapping = import_mapping()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[CsvRow] = []
    problems: list[InputProblem] = []
    names: list[str] = []
    row_number, line = 0, 1
    try:
        for record in reader:
            row_number += 1
            start, line = line, reader.line_num + 1
            if row_number == 1:
                names = [name.strip() for name in record]
                if set(READABLE_STATUS_COLUMNS) <= set(names) and any(n.endswith(LABEL_SUFFIX) for n in names):
                    # The readable export imported back: one sentence, not a line per column it adds or per
                    # row its columns leave incomplete.
                    raise InputRejected([RowProblem(None, 1, "", READABLE_REFUSED)])
                problems.extend(_header_problems(names, mapping))
                continue
            if not any(cell.strip() for cell in record):
                continue  # a blank row, as spreadsheets leave them
            if len(record) > len(names):
                problems.append(
                    RowProblem(
                        row_number,
                        start,
                        "",
                        f"has {len(record)} cells but the header has {len(names)} columns; remove the extra "
                        "cells or add their column names",
                    )
                )
                continue
            report: dict[str, Any] = {}
            for n, cell in enumerate(record):
                if not cell:
                    continue
                if not names[n]:
                    problems.append(
                        RowProblem(row_number, start, f"column {n + 1}", "has a value but no column name")
                    )
                    continue
                column = mapping.by_name.get(names[n])
                if column is not None:  # an unknown column is a problem of the header, reported once
                    _put(report, column.path, _parse(restore(cell), column.kind))
            rows.append(CsvRow(row_number, start, _finish(report)))
    except csv.Error:
        problems.append(
            RowProblem(
                row_number + 1,
                line,
                "",
                "a quoted cell is not closed, has text after its closing quote, or is far too long; check the "
                "quotes of this row",
            )
        )
        raise InputRejected(problems) from None
    if not names:
        problems.append(RowProblem(None, None, "", "the file is empty; give a header row and one row per report"))
    elif not rows and not problems:
        problems.append(RowProblem(None, None, "", "the file has a header row but no reports"))
    if not rows:
        raise InputRejected(problems)
    return rows, problems


def _header_problems(names: list[str], mapping: ColumnMapping) -> Iterator[InputProblem]:
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        yield RowProblem(
            None, 1, "", "the columns are separated by ';' or tabs; save the file as CSV with commas (CSV UTF-8)"
        )
        return
    seen: set[str] = set()
    for number, name in enumerate(names, start=1):
        if not name:
            continue
        known = name == LABEL_COLUMN or name in mapping.by_name
        # An unknown name is located by its position, never repeated: a file without a header row has a
        # report's cells (a patient's name) where the column names should be.
        if not known:
            yield RowProblem(
                None,
                1,
                f"column {number}",
                "is not a column of the PSO Desktop CSV format; rename or remove it (docs/import-export.md "
                "lists the columns)",
            )
        elif name in seen:
            yield RowProblem(None, 1, name, "this column appears twice; keep one")
        seen.add(name)


def _parse(cell: str, kind: Kind) -> Any:
    """The wire value of a cell; a value of the wrong shape is passed on as text for validation to refuse."""
    if kind == "text":
        return cell
    value = cell.strip()
    if kind == "codes":
        return [code.strip() for code in value.split(LIST_SEPARATOR) if code.strip()]
    if kind == "int" and _DIGITS.fullmatch(value):
        return int(value)
    if kind == "number" and _NUMBER.fullmatch(value):
        return int(value) if _INTEGER.fullmatch(value) else float(value)
    if kind == "bool":
        return _BOOLEANS.get(value.lower(), value)
    return value


def _put(report: dict[str, Any], path: WirePath, value: Any) -> None:
    node: dict[Any, Any] = report
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _finish(report: dict[str, Any]) -> dict[str, Any]:
    """Numbered entries (int keys) become lists, in order and without gaps; required sections exist."""
    for section in _REQUIRED_SECTIONS:
        report.setdefault(section, {})
    finished: dict[str, Any] = _lists(report)
    return finished


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(isinstance(key, int) for key in node):
            return [_lists(node[key]) for key in sorted(node)]
        return {key: _lists(value) for key, value in node.items()}
    return node


def column_for(field: str) -> str:
    """The CSV column of a validation error's wire path (``modules.fall.DE192`` -> ``module.fall.DE192``)."""
    by_path = import_mapping().by_path
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in field.split(".")]
    # A list index in a path may be an entry of a numbered column or an item of a ';' list: try both.
    for end in range(len(parts), 0, -1):
        column = by_path.get(tuple(parts[:end]))
        if column is not None:
            return column.name
    if parts and parts[0] == "modules":
        return ".".join(["module", *(str(p + 1 if isinstance(p, int) else p) for p in parts[1:])])
    return field
