"""Importing a backlog of reports from a CSV or JSON-lines file: every row validated, then all stored, or none.

Qt-free and synchronous: the CLI calls it directly; the GUI calls it on its database worker thread.
Problems name the row (a spreadsheet's row number, the header being row 1) and the file line it starts on,
and the column to fix; never a cell's contents, which hold PHI.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pso_desktop.errors import ExpectedError
from pso_desktop.files import read_user_file
from pso_desktop.services import csv_format
from pso_desktop.services.reports_input import InputProblem, InputRejected, parse_reports, validate_all
from pso_desktop.services.workstation import Session

Format = Literal["csv", "jsonl"]
MAX_IMPORT_BYTES = 100 * 1024 * 1024  # about 30,000 long reports; a bigger file is split, not half-read
_FORMATS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


class ImportFileError(ExpectedError):
    """The file to import cannot be read as one: wrong kind, too large, missing, a folder, no permission."""


@dataclass(frozen=True)
class ImportResult:
    count: int
    submitted: bool


def format_of(path: Path) -> Format | None:
    """The import format named by a file's extension (``.csv``, ``.jsonl``), or None."""
    return _FORMATS.get(path.suffix.lower())


def _file_problem(message: str) -> InputRejected:
    return InputRejected([InputProblem(None, None, "", message)])


def decode(data: bytes) -> str:
    """UTF-8 text, with or without a byte order mark; anything else is refused with what to do instead."""
    if len(data) > MAX_IMPORT_BYTES:
        raise _file_problem(
            f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB; split it into smaller files"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _file_problem("the file is UTF-16 text; save it as UTF-8 (in a spreadsheet: 'CSV UTF-8')")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputRejected(
            [
                InputProblem(
                    None,
                    line,
                    "",
                    "the file is not UTF-8 text (perhaps Windows-1252 or Latin-1); save it as UTF-8 "
                    "(in a spreadsheet: 'CSV UTF-8')",
                )
            ]
        ) from None


def read_reports(data: bytes, fmt: Format) -> list[dict[str, Any]]:
    """Every report in the file, validated and in canonical wire form; InputRejected lists every problem."""
    text = decode(data)
    if fmt == "jsonl":
        items = parse_reports(text)
        for _, raw in items:
            if isinstance(raw, dict):
                raw.setdefault("id", str(uuid.uuid4()))  # as `report add` does
        return validate_all(items)
    rows, problems = csv_format.read_csv(text)
    for row in rows:
        row.report.setdefault("id", str(uuid.uuid4()))
    try:
        reports = validate_all([(row.line, row.report) for row in rows])
    except InputRejected as exc:
        problems += [_at_row(problem, rows) for problem in exc.problems]
    if problems:
        raise InputRejected(problems)
    return reports


def _at_row(problem: InputProblem, rows: list[csv_format.CsvRow]) -> InputProblem:
    """validate_all's problem (report number, wire path) told as the CSV's row, line and column."""
    if problem.report_number is None:
        return problem
    row = rows[problem.report_number - 1]
    field = csv_format.column_for(problem.field) if problem.field else ""
    return csv_format.RowProblem(row.row, row.line, field, problem.message)


def read_import_file(path: Path) -> tuple[bytes, Format]:
    """The bytes and format of a file to import; ImportFileError says plainly what is wrong with it."""
    fmt = format_of(path)
    if fmt is None:
        raise ImportFileError(f"{path} is not a .csv or .jsonl file; give the file one of those extensions.")
    with contextlib.suppress(OSError):  # missing or unreadable: read_user_file says which, plainly
        if path.stat().st_size > MAX_IMPORT_BYTES:  # refused before reading it all into memory
            raise ImportFileError(
                f"{path} is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB; split it into smaller files."
            )
    return read_user_file(path), fmt


def import_file(session: Session, data: bytes, fmt: Format, *, submit: bool = False) -> ImportResult:
    """Validate every report in ``data``, then store all of them in one transaction with an ``import`` audit
    entry (counts only); with ``submit`` they are also queued. InputRejected stores nothing."""
    reports = read_reports(data, fmt)
    session.import_reports(reports, submit=submit, detail=f"{fmt}, {len(reports)} report(s)")
    return ImportResult(len(reports), submit)
