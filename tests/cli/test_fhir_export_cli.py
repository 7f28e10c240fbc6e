"""`pso-desktop export --format fhir`, run for real in a subprocess against real SQLCipher."""

from __future__ import annotations

import json
from pathlib import Path

import keyring.backends.null
from fhir.resources.R4B.bundle import Bundle

from pso_desktop.paths import resources_dir
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services import fhir_export
from pso_desktop.services.workstation import PSWP_LABEL, Workstation
from tests.support.cli import SECRET, Result, run_cli

EXAMPLES = sorted((resources_dir() / "examples").glob("*.json"))


def cli(home: Path, *args: str) -> Result:
    return run_cli(home, *args, "--profile", "alice", "--password-stdin", stdin=SECRET + "\n")


def test_fhir_export_writes_a_private_labelled_bundle_and_audits_it(pso_home: Path, tmp_path: Path):
    created = run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n")
    assert created.code == 0, created.err
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES]
    source = tmp_path / "reports.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in reports), encoding="utf-8")
    assert cli(pso_home, "report", "add", str(source)).code == 0

    out = tmp_path / "reports.fhir.json"
    result = cli(pso_home, "export", "--format", "fhir", "--out", str(out))
    assert result.code == 0, result.err
    assert f"Exported {len(reports)} report(s)" in result.out
    assert out.stat().st_mode & 0o777 == 0o600
    document = json.loads(out.read_text(encoding="utf-8"))
    Bundle.model_validate(document)
    assert document["resourceType"] == "Bundle" and document["type"] == "collection"
    assert len(document["entry"]) == len(reports)
    assert {e["resource"]["id"] for e in document["entry"]} == {r["id"] for r in reports}
    assert [t["display"] for t in document["meta"]["tag"] if t["system"] == fhir_export.PSWP_TAG_SYSTEM] == [
        PSWP_LABEL
    ]
    assert {"system": fhir_export.CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"} in document[
        "meta"
    ]["security"]
    for report in reports:  # PHI and narratives stay in the file: none on the terminal
        assert report["narrative"][:30] not in result.out + result.err

    workstation = Workstation(pso_home, keys=ProfileKeys(pso_home, backend=keyring.backends.null.Keyring()))
    with workstation.session("alice", SECRET) as session:
        assert session.audit.verify()
        exports = [e.detail for e in session.audit.entries() if e.action == "export"]
    assert exports == [f"fhir, {len(reports)} report(s)"]


def test_unknown_export_format_is_a_usage_error(pso_home: Path, tmp_path: Path):
    result = cli(pso_home, "export", "--format", "xml", "--out", str(tmp_path / "x"))
    assert result.code == 2 and "fhir" in result.err and "Traceback" not in result.err
