"""Reading reports from files a user hands us: one JSON report, a JSON array, JSON lines, or our own export.

Parsing only: validation is the domain's job. Every problem is located (report number and line) so the user
can fix the file; no message repeats the file's contents, which hold PHI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pso_desktop.domain import FieldError, ReportInvalid, validate_report
from pso_desktop.errors import ExpectedError


@dataclass(frozen=True)
class InputProblem:
    """One problem in an input file: which report (1-based), where, and what to fix."""

    report_number: int | None
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = []
        if self.report_number is not None:
            where.append(f"report {self.report_number}")
        if self.line is not None:
            where.append(f"line {self.line}")
        place = " ".join(where) or "file"
        field = f" {self.field}:" if self.field else ""
        return f"{place}:{field} {self.message}"


class InputRejected(ExpectedError, ValueError):
    """The input cannot be stored as it is; nothing was stored. ``problems`` says what to fix."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__(f"Nothing was stored: {len(problems)} problem(s) to fix in the input.")


def decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputRejected(
            [
                InputProblem(
                    None,
                    None,
                    "",
                    f"the file is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8",
                )
            ]
        ) from None


def parse_reports(text: str) -> list[tuple[int, Any]]:
    """The raw report objects in ``text`` with the line each starts on; raises InputRejected on bad JSON."""
    stripped = text.strip()
    if not stripped:
        raise InputRejected(
            [InputProblem(None, None, "", "the input is empty; give one report, a JSON array or JSON lines")]
        )
    try:
        whole = _loads(stripped)
    except json.JSONDecodeError as exc:
        if stripped.startswith("{") and exc.msg == "Extra data":
            return _json_lines(text)
        raise InputRejected(
            [InputProblem(None, exc.lineno, "", f"not valid JSON at column {exc.colno} ({exc.msg})")]
        ) from None
    if isinstance(whole, Mapping) and isinstance(whole.get("reports"), list):
        whole = whole["reports"]  # our own export envelope, so an export can be added back
    if isinstance(whole, list):
        return [(0, item) for item in whole]
    return [(1, whole)]


def _json_lines(text: str) -> list[tuple[int, Any]]:
    items: list[tuple[int, Any]] = []
    problems: list[InputProblem] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((lineno, _loads(line, lineno)))
        except json.JSONDecodeError as exc:
            if not items and not problems and _is_json_sequence(text):
                # Not JSON lines: several pretty-printed reports one after another (e.g. files joined by cat).
                raise InputRejected(
                    [
                        InputProblem(
                            None,
                            lineno,
                            "",
                            "the input holds several JSON values that are not one per line; put the reports "
                            "in a JSON array ([ ... , ... ]) or write each report on a line of its own",
                        )
                    ]
                ) from None
            problems.append(
                InputProblem(len(items) + len(problems) + 1, lineno, "", f"not valid JSON ({exc.msg})")
            )
    if problems:
        raise InputRejected(problems)
    return items


def _loads(text: str, line: int | None = None) -> Any:
    """``json.loads``, with the inputs no report can be (nesting deeper than Python's recursion limit, a
    number of thousands of digits) refused as InputRejected instead of escaping as RecursionError or
    ValueError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        reason = "the JSON is nested far too deeply to be a report"
    except ValueError:  # int_max_str_digits: a number longer than any report field allows
        reason = "the JSON holds a number far too long to be part of a report"
    raise InputRejected([InputProblem(None, line, "", f"{reason}; check that this is a report file")])


def _is_json_sequence(text: str) -> bool:
    """True when ``text`` is two or more complete JSON values one after another, whatever the line breaks."""
    decoder = json.JSONDecoder()
    position, count = 0, 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return count > 1
        try:
            _, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
            return False
        count += 1


def validate_all(items: list[tuple[int, Any]]) -> list[dict[str, Any]]:
    """Every report validated and exported in canonical form, or InputRejected listing every problem."""
    problems: list[InputProblem] = []
    exported: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, (line, raw) in enumerate(items, start=1):
        try:
            report = validate_report(raw)
        except ReportInvalid as exc:
            problems.extend(_located(number, line or None, exc.errors))
            continue
        wire = report.export()
        if wire["id"] in seen:
            problems.append(
                InputProblem(
                    number,
                    line or None,
                    "id",
                    "the same report ID appears twice in the input; give each report its own ID",
                )
            )
        seen.add(wire["id"])
        exported.append(wire)
    if problems:
        raise InputRejected(problems)
    return exported


def _located(number: int, line: int | None, errors: list[FieldError]) -> list[InputProblem]:
    return [InputProblem(number, line, e.field, e.message) for e in errors]
