"""`pso-desktop import` and `export --format csv`, run for real in a subprocess against real SQLCipher."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import keyring.backends.null
import pytest

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.paths import resources_dir
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services.workstation import PSWP_LABEL, Workstation
from tests.support.cli import SECRET, Result, run_cli

EXAMPLES = sorted((resources_dir() / "examples").glob("*.json"))
HEADER = (
    "event_type,report_date,categories,discovery_date,discovery_time_unknown,location_unit,narrative,"
    "reporter_anonymous"
)


def create(home: Path, name: str) -> None:
    result = run_cli(home, "profile", "create", name, "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err


@pytest.fixture
def home(pso_home: Path) -> Path:
    create(pso_home, "alice")
    create(pso_home, "bob")
    return pso_home


def cli(home: Path, profile: str, *args: str) -> Result:
    return run_cli(home, *args, "--profile", profile, "--password-stdin", stdin=SECRET + "\n")


def status(home: Path, profile: str = "alice") -> dict[str, int]:
    result = cli(home, profile, "status", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def exported(home: Path, profile: str, out: Path) -> dict[str, dict]:
    result = cli(home, profile, "export", "--format", "json", "--out", str(out))
    assert result.code == 0, result.err
    return {r["id"]: r for r in json.loads(out.read_text(encoding="utf-8"))["reports"]}


def stored(home: Path, profile: str = "alice") -> tuple[dict[str, int], int]:
    """The outbox counts and the number of imports audited: what a failed import must leave as it was."""
    imports = sum(action == "import" for action, _ in audit_entries(home, profile))
    return status(home, profile), imports


def audit_entries(home: Path, profile: str = "alice") -> list[tuple[str, str]]:
    workstation = Workstation(home, keys=ProfileKeys(home, backend=keyring.backends.null.Keyring()))
    with workstation.session(profile, SECRET) as session:
        assert session.audit.verify()
        return [(e.action, e.detail) for e in session.audit.entries()]


def assert_clean_failure(result: Result) -> list[str]:
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    lines = [line for line in result.err.strip().splitlines() if "warning:" not in line]
    assert lines[-1].startswith("pso-desktop: Nothing was stored") or lines[-1].startswith("pso-desktop:")
    return [line.strip() for line in lines[:-1]]


def sheet(tmp_path: Path, rows: list[str], *, name: str = "backlog.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))
    return path


def test_import_a_spreadsheet_then_submit_another(home: Path, tmp_path: Path):
    rows = [
        f"unsafe_condition,2026-11-{10 + i},A45,2026-11-{10 + i},true,ICU-2,Bed alarm {i} broken,true"
        for i in range(4)
    ]
    result = cli(home, "alice", "import", str(sheet(tmp_path, rows)))
    assert result.code == 0, result.err
    assert "4 report(s) imported." in result.out
    assert status(home)["draft"] == 4

    result = cli(home, "alice", "import", str(sheet(tmp_path, rows[:2], name="more.csv")), "--submit")
    assert result.code == 0, result.err
    assert "2 report(s) imported and queued for submission." in result.out
    assert status(home)["queued"] == 2
    imports = [detail for action, detail in audit_entries(home) if action == "import"]
    assert imports == ["csv, 4 report(s)", "csv, 2 report(s)"]


def test_import_json_lines_with_submit(home: Path, tmp_path: Path):
    rng = random.Random(8)
    reports = [sample_report(rng, i) for i in range(6)]
    del reports[0]["id"]  # gets a new UUID, as with `report add`
    path = tmp_path / "backlog.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in reports) + "\n", encoding="utf-8")
    result = cli(home, "alice", "import", str(path), "--submit")
    assert result.code == 0, result.err
    assert "6 report(s) imported and queued" in result.out
    assert status(home)["queued"] == 6
    assert ("import", "jsonl, 6 report(s)") in audit_entries(home)


def test_bad_rows_store_nothing_and_are_all_listed(home: Path, tmp_path: Path):
    cli(
        home,
        "alice",
        "import",
        str(sheet(tmp_path, ["unsafe_condition,2026-11-01,A45,2026-11-01,true,ED,ok,true"])),
    )
    before = stored(home)
    rows = [
        "unsafe_condition,2026-11-02,A45,2026-11-02,true,ED,fine,true",
        "unsafe_condition,SECRET-DATE,A45,2026-11-02,true,ED,SECRET-NARRATIVE,true",
        "unsafe_condition,2026-11-02,A45,2026-11-02,true,,SECRET-NARRATIVE,true",
        "incident,2026-11-02,A99,2026-11-02,true,ED,SECRET-NARRATIVE,true",
    ]
    result = cli(home, "alice", "import", str(sheet(tmp_path, rows, name="bad.csv")))
    problems = assert_clean_failure(result)
    assert problems[0].startswith("row 3 (line 3): report_date:")
    assert any(p.startswith("row 4 (line 4): location_unit:") for p in problems)
    assert any(p.startswith("row 5 (line 5): categories") for p in problems)
    assert not any(p.startswith("row 2 ") for p in problems)
    assert "SECRET" not in result.err
    assert stored(home) == before
    assert status(home)["draft"] == 1


def test_bom_unknown_column_and_multi_line_narrative(home: Path, tmp_path: Path):
    narrative = 'Found on the floor.\r\nSaid "I slipped", then:\nasked for water'
    quoted = '"' + narrative.replace('"', '""') + '"'
    path = tmp_path / "bom.csv"
    row = f"unsafe_condition,2026-11-03,A45,2026-11-03,true,ED,{quoted},true"
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + row + "\r\n" + row.replace("ED", "ICU") + "\r\n").encode())
    result = cli(home, "alice", "import", str(path))
    assert result.code == 0, result.err
    narratives = [r["narrative"] for r in exported(home, "alice", tmp_path / "a.json").values()]
    assert narratives == [narrative, narrative]

    before = stored(home)
    bad = sheet(tmp_path, [row + ",x", row + ",y"], name="extra.csv", header=HEADER + ",Ward Notes")
    problems = assert_clean_failure(cli(home, "alice", "import", str(bad)))
    assert problems == [
        f"line 1: column {HEADER.count(',') + 2}: is not a column of the PSO Desktop CSV format; rename or remove it "
        "(docs/import-export.md lists the columns)"
    ]
    assert stored(home) == before


def test_non_utf8_file_is_refused_plainly(home: Path, tmp_path: Path):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        (HEADER + "\r\nunsafe_condition,2026-11-03,A45,2026-11-03,true,ED,Caf\u00e9,true\r\n").encode("cp1252")
    )
    before = stored(home)
    problems = assert_clean_failure(cli(home, "alice", "import", str(path)))
    assert problems == [
        "line 2: the file is not UTF-8 text (perhaps Windows-1252 or Latin-1); save it as UTF-8 (in a "
        "spreadsheet: 'CSV UTF-8')"
    ]
    assert stored(home) == before


def test_other_file_kinds_and_missing_files(home: Path, tmp_path: Path):
    path = tmp_path / "reports.xlsx"
    path.write_bytes(b"PK\x03\x04")
    result = cli(home, "alice", "import", str(path))
    assert result.code == 1 and "not a .csv or .jsonl file" in result.err and "Traceback" not in result.err
    result = cli(home, "alice", "import", str(tmp_path / "gone.csv"))
    assert result.code == 1 and "File not found" in result.err and "Traceback" not in result.err


def test_csv_export_imports_into_another_profile_unchanged(home: Path, tmp_path: Path):
    rng = random.Random(11)
    reports = [validate_report(sample_report(rng, i)).export() for i in range(40)]
    reports += [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES]
    reports[0]["narrative"] = '=HYPERLINK("http://x")\nsecond line'
    reports[1]["location"]["description"] = "-2 beds, +1 chair, @desk"
    reports[2]["narrative"] = "'quoted on purpose"
    source = tmp_path / "source.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in reports), encoding="utf-8")
    assert cli(home, "alice", "import", str(source)).code == 0

    out = tmp_path / "reports.csv"
    result = cli(home, "alice", "export", "--format", "csv", "--out", str(out))
    assert result.code == 0, result.err
    assert f"Exported {len(reports)} report(s)" in result.out
    assert out.stat().st_mode & 0o777 == 0o600
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    assert all(row["confidentiality"] == PSWP_LABEL for row in rows)
    by_id = {row["id"]: row for row in rows}
    assert by_id[reports[0]["id"]]["narrative"].startswith("'=HYPERLINK")
    assert by_id[reports[1]["id"]]["location_description"].startswith("'-2")
    assert by_id[reports[2]["id"]]["narrative"] == "''quoted on purpose"
    assert ("export", f"csv, {len(reports)} report(s)") in audit_entries(home)

    result = cli(home, "bob", "import", str(out))
    assert result.code == 0, result.err
    assert exported(home, "bob", tmp_path / "b.json") == exported(home, "alice", tmp_path / "a.json")
