"""What an outside tester of issue 11 found, as a user meets it through the real ``pso-desktop`` command: a report
file whose revision no database column holds is refused with a sentence (it was a traceback), and HL7's
Unknown keeps its own code system in the FHIR export even in a question the catalogue marks unverified."""

from __future__ import annotations

import json
from pathlib import Path

from pso_desktop.paths import resources_dir
from tests.support.cli import SECRET, Result, run_cli

EXAMPLES = resources_dir() / "examples"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"


def _as(home: Path, *args: str) -> Result:
    return run_cli(home, *args, "--profile", "nurse", "--password-stdin", stdin=SECRET + "\n")


def _new_profile(home: Path) -> None:
    assert run_cli(home, "profile", "create", "nurse", "--password-stdin", stdin=SECRET + "\n").code == 0


def test_a_revision_beyond_the_database_column_is_one_sentence_and_nothing_is_stored(
    pso_home: Path, tmp_path: Path
) -> None:
    _new_profile(pso_home)
    good = json.loads((EXAMPLES / "surgery-laceration.json").read_text(encoding="utf-8"))
    huge = dict(good, id="99999999-9999-4999-8999-999999999999", revision=10**30)
    lines = tmp_path / "backlog.jsonl"
    lines.write_text(json.dumps(good) + "\n" + json.dumps(huge) + "\n", encoding="utf-8")

    result = _as(pso_home, "import", str(lines))

    assert result.code == 1
    assert "Traceback" not in result.err
    assert "report 2 line 2: revision: 'Revision' must be at most 2147483647." in result.err
    assert "Nothing was stored" in result.err
    status = _as(pso_home, "status")
    assert status.code == 0
    counts = dict(line.rsplit(maxsplit=1) for line in status.out.splitlines() if line.strip())
    assert counts["draft"] == "0" and counts["queued"] == "0"  # the good report was not stored either


def test_unknown_in_an_unverified_question_is_exported_as_hl7_unknown(pso_home: Path, tmp_path: Path) -> None:
    _new_profile(pso_home)
    # The VTE PE example answers the local (unverified) mechanical prophylaxis question with Unknown.
    report = json.loads((EXAMPLES / "vte-pe.json").read_text(encoding="utf-8"))
    assert report["modules"]["vte"]["mechanical_prophylaxis"] == "UNK"
    assert _as(pso_home, "report", "add", str(EXAMPLES / "vte-pe.json")).code == 0
    out = tmp_path / "reports.fhir.json"

    assert _as(pso_home, "export", "--format", "fhir", "--out", str(out)).code == 0

    bundle = json.loads(out.read_text(encoding="utf-8"))
    (event,) = [entry["resource"] for entry in bundle["entry"]]
    answers = {}
    for extension in event["extension"]:
        parts = {part["url"]: part for part in extension["extension"]}
        if parts.get("module", {}).get("valueString") == "vte":
            answers[parts["question"]["valueString"]] = parts["answer"]
    unknown = answers["mechanical_prophylaxis"]["valueCoding"]
    assert unknown == {"system": NULL_FLAVOR, "code": "UNK", "display": "Unknown"}
    # The unverified question's own local answers stay under the local system; no code says "unverified
    # NullFlavor" anywhere.
    assert "unverified:nullflavor" not in out.read_text(encoding="utf-8")


def test_importing_the_readable_csv_back_is_one_sentence(pso_home: Path, tmp_path: Path) -> None:
    """A nurse exports the readable CSV and imports it into another profile: one sentence naming the export to
    use, not a line per column it adds (there were over a hundred), and nothing stored."""
    _new_profile(pso_home)
    for name in ("fall-incident.json", "hospital-1.2/surgery-or-anesthesia-surgical.json"):
        assert _as(pso_home, "report", "add", str(EXAMPLES / name)).code == 0
    readable = tmp_path / "reports.readable.csv"
    assert _as(pso_home, "export", "--format", "csv-readable", "--out", str(readable)).code == 0
    assert run_cli(pso_home, "profile", "create", "other", "--password-stdin", stdin=SECRET + "\n").code == 0

    result = run_cli(
        pso_home, "import", str(readable), "--profile", "other", "--password-stdin", stdin=SECRET + "\n"
    )

    assert result.code == 1
    problems = [line for line in result.err.splitlines() if line.startswith("  ")]
    assert problems == [
        "  line 1: this is the readable CSV export (the answers' words beside their codes), which cannot be "
        "imported; import a CSV exported with --format csv (in the window: 'CSV spreadsheet') instead"
    ]
    assert "Nothing was stored: 1 problem(s)" in result.err
    # The round-trip CSV of the same reports imports.
    plain = tmp_path / "reports.csv"
    assert _as(pso_home, "export", "--format", "csv", "--out", str(plain)).code == 0
    imported = run_cli(
        pso_home, "import", str(plain), "--profile", "other", "--password-stdin", stdin=SECRET + "\n"
    )
    assert imported.code == 0 and "2 report(s) imported." in imported.out


def test_a_report_on_a_version_not_fetched_yet_says_to_sync(pso_home: Path, tmp_path: Path) -> None:
    """A colleague's report written on the PSO's newer form, added before this profile synced: the sentence
    says a sync may bring the form (it said only "update PSO Desktop", though forms now come from the PSO)."""
    _new_profile(pso_home)
    report = json.loads((EXAMPLES / "surgery-laceration.json").read_text(encoding="utf-8"))
    report["form_version"] = "hospital-2.1"
    path = tmp_path / "colleague.json"
    path.write_text(json.dumps(report), encoding="utf-8")

    result = _as(pso_home, "report", "add", str(path))

    assert result.code == 1 and "Traceback" not in result.err
    assert (
        "form_version: This app does not know the report's form version; sync with the PSO (which may have "
        "published it since), update PSO Desktop, or use form version 'hospital-2.0'." in result.err
    )


def test_the_json_export_names_the_versions_its_reports_were_written_on(pso_home: Path, tmp_path: Path) -> None:
    """The JSON export's header said form version hospital-2.0 whatever its reports were written on; now it
    lists their versions, and each report keeps its own; the file imports back."""
    _new_profile(pso_home)
    for name in ("fall-incident.json", "hospital-1.2/hai-cauti.json"):
        assert _as(pso_home, "report", "add", str(EXAMPLES / name)).code == 0
    out = tmp_path / "reports.json"

    assert _as(pso_home, "export", "--format", "json", "--out", str(out)).code == 0

    document = json.loads(out.read_text(encoding="utf-8"))
    assert "form_version" not in document
    assert document["form_versions"] == ["hospital-1.2", "hospital-2.0"] and document["count"] == 2
    assert sorted(r["form_version"] for r in document["reports"]) == ["hospital-1.2", "hospital-2.0"]
    assert run_cli(pso_home, "profile", "create", "other", "--password-stdin", stdin=SECRET + "\n").code == 0
    back = run_cli(pso_home, "import", str(out), "--profile", "other", "--password-stdin", stdin=SECRET + "\n")
    assert back.code == 0 and "2 report(s) imported." in back.out
