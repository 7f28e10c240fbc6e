"""Hospital V1.2 reports (the PSOPPC still accepts them): imported with the real ``pso-desktop`` in a subprocess
against real SQLCipher, and exported as JSON, CSV and FHIR keeping their version (``hospital-1.2``)."""

from __future__ import annotations

import csv
import io
import json
import typing
from pathlib import Path

import pytest

from pso_desktop.domain import ReportInvalid, load_catalogue, validate_report
from pso_desktop.domain.catalogue import catalogue_path
from pso_desktop.domain.catalogue_check import check_catalogue
from pso_desktop.paths import resources_dir
from pso_desktop.services import fhir_export
from tests.support.cli import SECRET, Result, run_cli

V12 = {
    p.stem: json.loads(p.read_text(encoding="utf-8"))
    for p in sorted((resources_dir() / "examples" / "hospital-1.2").glob("*.json"))
}
V20_FALL = json.loads((resources_dir() / "examples" / "fall-incident.json").read_text(encoding="utf-8"))
Json = dict[str, typing.Any]


def cli(home: Path, *args: str, profile: str = "alice") -> Result:
    return run_cli(home, *args, "--profile", profile, "--password-stdin", stdin=SECRET + "\n")


def ahrq_codes(data: typing.Any) -> set[str]:
    """Every AHRQ code a catalogue file holds (answers, categories and codings whose system is 'ahrq')."""
    found: set[str] = set()
    if isinstance(data, dict):
        code = data.get("code")
        if (
            data.get("system", "ahrq") == "ahrq"
            and isinstance(code, str)
            and code[:1] == "A"
            and code[1:].isdigit()
        ):
            found.add(code)
        for value in data.values():
            found |= ahrq_codes(value)
    elif isinstance(data, list):
        for item in data:
            found |= ahrq_codes(item)
    return found


def test_the_v12_catalogue_is_clean_and_invents_no_ahrq_code():
    raw = json.loads(catalogue_path("hospital-1.2").read_text(encoding="utf-8"))
    assert check_catalogue(raw) == []
    v20 = json.loads(catalogue_path("hospital-2.0").read_text(encoding="utf-8"))
    # The only AHRQ codes hospital-2.0 does not have are V1.2's own categories (the HL7 SDC copy of the V1.2
    # HERF, S10), each flagged unverified; A51 (HAI) is in both, with a module only in V1.2.
    assert ahrq_codes(raw) - ahrq_codes(v20) == {"A44", "A63"}
    hai_v20 = load_catalogue().category("A51")
    assert hai_v20 is not None and hai_v20.module is None
    catalogue = load_catalogue("hospital-1.2")
    for code in ("A44", "A51", "A63"):
        category = catalogue.category(code)
        assert category is not None and category.verified is False and category.module is not None
    assert {c.code for c in catalogue.categories}.isdisjoint({"A45", "A61", "A41"})  # V2.0's codes
    # Medication is the V1.2 LOINC panel, as in hospital-2.0.
    assert catalogue.modules["medication"].loinc_panel == "74080-3"
    assert catalogue.modules["medication"].questions == load_catalogue().modules["medication"].questions
    assert catalogue.modules["device"].loinc_panel == "74725-3"
    # Everything V1.2 has that no public text gave is flagged for the PSO to replace.
    for key in ("hai", "surgery_anesthesia"):
        module = catalogue.modules[key]
        assert module.verified is False and module.required is False
    assert catalogue.modules["hai"].by_id["hai_type"].verified is False


def test_every_v12_example_validates_on_its_own_version_and_not_on_v20():
    assert len(V12) == 5
    for name, report in V12.items():
        assert report["form_version"] == "hospital-1.2"
        assert validate_report(report).export() == report, name
        on_v20 = dict(report, form_version="hospital-2.0")
        if name == "medication-near-miss":  # the same V1.2 LOINC panel in both versions
            assert validate_report(on_v20).export() == on_v20
            continue
        with pytest.raises(ReportInvalid):  # V1.2's categories and modules are not V2.0's
            validate_report(on_v20)


def test_surgery_or_anesthesia_asks_its_branch_and_leaves_the_other_out():
    report = json.loads(json.dumps(V12["surgery-or-anesthesia-surgical"]))
    # The anesthesia questions appear only for an anesthesia event: an answer to one is refused here...
    report["modules"]["surgery_anesthesia"]["anesthesia_type"] = "general"
    with pytest.raises(ReportInvalid) as refused:
        validate_report(report)
    assert [e.field for e in refused.value.errors] == ["modules.surgery_anesthesia.anesthesia_type"]
    # ...and the surgical event's own question is required once the branch applies.
    del report["modules"]["surgery_anesthesia"]["anesthesia_type"]
    del report["modules"]["surgery_anesthesia"]["DE513"]
    with pytest.raises(ReportInvalid) as missing:
        validate_report(report)
    assert [e.field for e in missing.value.errors] == ["modules.surgery_anesthesia.DE513"]


def test_v12_reports_import_and_export_keeping_their_version(pso_home: Path, tmp_path: Path):
    assert run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n").code == 0
    source = tmp_path / "v12.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in [*V12.values(), V20_FALL]]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli(pso_home, "import", str(source))
    assert result.code == 0, result.err

    out = tmp_path / "out.json"
    assert cli(pso_home, "export", "--format", "json", "--out", str(out)).code == 0
    back = {r["id"]: r for r in json.loads(out.read_text(encoding="utf-8"))["reports"]}
    for report in V12.values():
        assert back[report["id"]] == report  # the version, and every answer, as imported

    # CSV: the V1.2 modules' columns come after the current ones, and the file imports back unchanged.
    sheet = tmp_path / "out.csv"
    assert cli(pso_home, "export", "--format", "csv", "--out", str(sheet)).code == 0
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8-sig"), newline=""))}
    hai = rows[V12["hai-cauti"]["id"]]
    assert (hai["form_version"], hai["categories"], hai["module.hai.hai_type"]) == ("hospital-1.2", "A51", "cauti")
    assert (
        rows[V20_FALL["id"]]["form_version"] == "hospital-2.0"
        and rows[V20_FALL["id"]]["module.hai.hai_type"] == ""
    )
    assert run_cli(pso_home, "profile", "create", "bob", "--password-stdin", stdin=SECRET + "\n").code == 0
    again = cli(pso_home, "import", str(sheet), profile="bob")
    assert again.code == 0, again.err
    out_bob = tmp_path / "bob.json"
    exported = cli(pso_home, "export", "--format", "json", "--out", str(out_bob), profile="bob")
    assert exported.code == 0, exported.err
    assert {r["id"]: r for r in json.loads(out_bob.read_text(encoding="utf-8"))["reports"]} == back

    # FHIR: local codes under the V1.2 catalogue's own system, V1.2's unverified category under a local one.
    fhir = tmp_path / "out.fhir.json"
    assert cli(pso_home, "export", "--format", "fhir", "--out", str(fhir)).code == 0
    resources = {e["resource"]["id"]: e["resource"] for e in json.loads(fhir.read_text(encoding="utf-8"))["entry"]}
    hai_event = resources[V12["hai-cauti"]["id"]]
    assert hai_event["actuality"] == "actual" and hai_event["date"] == "2026-11-20"
    assert [(c["system"], c["code"]) for c in hai_event["event"]["coding"]] == [
        (fhir_export.unverified_system("hospital-1.2", "ahrq"), "A51"),
        (fhir_export.local_system("hospital-1.2"), "cauti"),
    ]
    surgical = resources[V12["surgery-or-anesthesia-surgical"]["id"]]
    assert [(c["system"], c["code"]) for c in surgical["event"]["coding"]] == [
        (fhir_export.unverified_system("hospital-1.2", "ahrq"), "A63"),
        (fhir_export.AHRQ_SYSTEM, "A2187"),  # DE513's codes are in USHIK (V1.1)
    ]
    version_answer = [
        ext
        for ext in surgical["extension"]
        if {"url": "question", "valueString": "form_version"} in ext["extension"]
    ]
    assert version_answer and {"url": "answer", "valueString": "hospital-1.2"} in version_answer[0]["extension"]


def test_readable_csv_of_v12_and_v20_reports_gives_each_its_own_words(pso_home: Path, tmp_path: Path):
    assert run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n").code == 0
    source = tmp_path / "mixed.jsonl"
    source.write_text(
        "\n".join(json.dumps(r) for r in [V12["surgery-or-anesthesia-sedation"], V20_FALL]) + "\n",
        encoding="utf-8",
    )
    assert cli(pso_home, "import", str(source)).code == 0
    out = tmp_path / "mixed.readable.csv"
    result = cli(pso_home, "export", "--format", "csv-readable", "--out", str(out))
    assert result.code == 0, result.err
    assert "Exported 2 report(s)" in result.out
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline=""))}
    sedation = rows[V12["surgery-or-anesthesia-sedation"]["id"]]
    assert sedation["categories_label"] == "Surgery or Anesthesia (includes invasive procedure)"
    assert sedation["module.surgery_anesthesia.event_kind_label"] == "Anesthesia event"
    assert (sedation["state"], sedation["case_number"], sedation["pso_status"]) == ("Draft", "", "")
    fall = rows[V20_FALL["id"]]
    assert fall["categories_label"] == "Fall" and fall["module.surgery_anesthesia.event_kind_label"] == ""
    # The readable file is for reading: import refuses its extra columns, naming them by position only.
    refused = cli(pso_home, "import", str(out))
    assert (
        refused.code == 1 and "Traceback" not in refused.err and "this is the readable CSV export" in refused.err
    )
