"""Nothing the user typed is repeated on stderr (issue 9, item 3): an unknown field name (a field named after a
patient) or form version given to ``report add`` or ``import`` is located by position, never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import SECRET, assert_clean_failure, run_cli

PATIENT = "Jane Roe MRN 99887766"
EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "examples" / "fall-incident.json"


@pytest.fixture
def profile(pso_home: Path) -> Path:
    assert run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n").code == 0
    return pso_home


def _reports() -> list[dict[str, object]]:
    base = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    unknown_field = base | {PATIENT: "x"}
    nested = json.loads(json.dumps(base))
    nested["patient"][PATIENT] = 1
    answer = json.loads(json.dumps(base))
    answer["modules"]["fall"][PATIENT] = "A15"
    version = base | {"form_version": PATIENT}
    return [unknown_field, nested, version, answer]


def test_report_add_and_import_never_repeat_typed_names(profile: Path, tmp_path: Path) -> None:
    lines = "\n".join(json.dumps(r) for r in _reports()) + "\n"
    added = run_cli(profile, "report", "add", "-", "--password-stdin", stdin=f"{SECRET}\n{lines}")
    jsonl = tmp_path / "backlog.jsonl"
    jsonl.write_text(lines, encoding="utf-8")
    imported = run_cli(profile, "import", str(jsonl), "--password-stdin", stdin=SECRET + "\n")
    header = "event_type,report_date,Jane Roe,narrative\nincident,2026-11-20,x,fell\n"
    csv = tmp_path / "backlog.csv"
    csv.write_text(header, encoding="utf-8")
    imported_csv = run_cli(profile, "import", str(csv), "--password-stdin", stdin=SECRET + "\n")
    for result in (added, imported, imported_csv):
        assert_clean_failure(result)
        assert "Jane" not in result.err and "99887766" not in result.err, result.err
    top = list(_reports()[0]).index(PATIENT) + 1
    assert f"report 1 line 1: report: Field {top} at the top level is not part of the report form" in added.err
    assert "report 2 line 2: patient: Field" in added.err
    answer = list(_reports()[3]["modules"]["fall"]).index(PATIENT) + 1  # type: ignore[index]
    assert (
        f"report 4 line 4: modules.fall: Answer {answer} of the Fall form is not one of its questions" in added.err
    )
    assert "report 3 line 3: form_version: This app does not know the report's form version" in added.err
    assert "column 3: is not a column" in imported_csv.err
