"""The readable CSV (``export --format csv-readable``): the CSV columns with the answers' words beside their codes,
and each report's case number, state and status at the PSO; the round-trip CSV stays byte for byte as it was."""

from __future__ import annotations

import csv
import io
import json
import typing
from pathlib import Path

import pytest

from pso_desktop.domain import load_catalogue
from pso_desktop.paths import resources_dir
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services import csv_format, importing
from pso_desktop.services.workstation import PSWP_LABEL, Workstation
from tests.support.kdf import CHEAP_KDF
from tests.support.memory_keyring import MemoryKeyring

EXAMPLES = {
    p.stem: json.loads(p.read_text(encoding="utf-8"))
    for p in sorted((resources_dir() / "examples").glob("*.json"))
}
SECRET = "a long enough secret"


def table(data: bytes) -> list[dict[str, str]]:
    assert data.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.fixture
def exported(pso_home: Path, memory_keyring: MemoryKeyring, tmp_path: Path) -> dict[str, typing.Any]:
    """Every example in a real encrypted profile: the fall sent and accepted (case number PSO-17) and under
    review at the PSO, the medication near miss queued, the rest drafts; exported both ways."""
    ws = Workstation(pso_home, keys=ProfileKeys(pso_home, backend=memory_keyring, kdf=CHEAP_KDF))
    ws.create_profile("alice", SECRET)
    fall, medication = EXAMPLES["fall-incident"], EXAMPLES["medication-near-miss"]
    with ws.session("alice", SECRET) as session:
        session.add_reports(list(EXAMPLES.values()))
        session.submit([fall["id"], medication["id"]])
        claimed = {item.report_id: item for item in session.store.claim_batch(1, 10_000_000)}
        assert list(claimed) == [fall["id"]]  # the first queued
        session.store.record_results(
            [
                {
                    "id": fall["id"],
                    "revision": claimed[fall["id"]].revision,
                    "status": "created",
                    "server_ref": "PSO-17",
                }
            ]
        )
        change = {
            "id": fall["id"],
            "server_ref": "PSO-17",
            "status": "under_review",
            "changed_at": "2026-11-21T09:00:00Z",
        }
        assert session.account.record_statuses([change], None) == 1
        readable, plain = tmp_path / "reports.readable.csv", tmp_path / "reports.csv"
        assert session.export_csv_readable(readable) == len(EXAMPLES)
        assert session.export_csv(plain) == len(EXAMPLES)
        audit = [e.detail for e in session.audit.entries() if e.action == "export"]
    return {
        "readable": readable.read_bytes(),
        "plain": plain.read_bytes(),
        "audit": audit,
        "mode": readable.stat(),
    }


def test_readable_rows_carry_case_number_state_pso_status_and_words(exported: dict[str, typing.Any]):
    rows = {row["id"]: row for row in table(exported["readable"])}
    assert set(rows) == {r["id"] for r in EXAMPLES.values()}
    fall = rows[EXAMPLES["fall-incident"]["id"]]
    assert (fall["case_number"], fall["state"], fall["pso_status"]) == ("PSO-17", "Submitted", "Under review")
    medication = rows[EXAMPLES["medication-near-miss"]["id"]]
    assert (medication["case_number"], medication["state"], medication["pso_status"]) == ("", "Queued", "")
    vte = rows[EXAMPLES["vte-dvt"]["id"]]
    assert (vte["case_number"], vte["state"], vte["pso_status"]) == ("", "Draft", "")
    # Codes stay, with the catalogue's words beside them.
    assert (fall["event_type"], fall["event_type_label"]) == ("incident", "Incident")
    assert (fall["categories"], fall["categories_label"]) == ("A48", "Fall")
    assert (fall["harm_level"], fall["harm_level_label"]) == ("LA21150-0", "Mild harm")
    assert (fall["patient_gender"], fall["patient_gender_label"]) == ("F", "Female")
    assert fall["module.fall.DE192"] == "A867" and fall["module.fall.DE192_label"] == "Unassisted"
    # A multi-select answer: every code's words, in the same order.
    catalogue = load_catalogue()
    question = catalogue.modules["medication"].by_id["incorrect_actions"]
    codes = EXAMPLES["medication-near-miss"]["modules"]["medication"]["incorrect_actions"]
    assert medication["module.medication.incorrect_actions"] == ";".join(codes)
    assert medication["module.medication.incorrect_actions_label"] == "; ".join(
        question.answer(c).display
        for c in codes  # type: ignore[union-attr]
    )
    # A group entry's coded answer has its words too; dates and free text get no label column.
    header = next(csv.reader(io.StringIO(exported["readable"].decode("utf-8-sig"))))
    assert "report_date_label" not in header and "narrative_label" not in header and "id_label" not in header
    assert header[:5] == ["confidentiality", "id", "case_number", "state", "pso_status"]
    for name in header:
        if name.endswith("_label"):
            assert header[header.index(name) - 1] == name.removesuffix("_label")  # beside its code
    assert all(row["confidentiality"] == PSWP_LABEL for row in rows.values())


def test_every_coded_example_answer_has_its_words(exported: dict[str, typing.Any]):
    for row in table(exported["readable"]):
        for name, cell in row.items():
            if name.endswith("_label"):
                assert bool(cell) == bool(row[name.removesuffix("_label")]), (row["id"], name)


def test_round_trip_csv_is_unchanged_and_audits_say_which(exported: dict[str, typing.Any]):
    reports = list(EXAMPLES.values())
    # The round-trip CSV is write_csv's file, with no readable column in it, and imports back.
    expected, _count = csv_format.write_csv(reports, PSWP_LABEL)
    assert exported["plain"] == expected
    assert "_label" not in exported["plain"].split(b"\r\n")[0].decode("utf-8-sig")
    assert [r["id"] for r in importing.read_reports(exported["plain"], "csv")] == [r["id"] for r in reports]
    assert exported["audit"] == [f"csv-readable, {len(EXAMPLES)} report(s)", f"csv, {len(EXAMPLES)} report(s)"]
    assert exported["mode"].st_mode & 0o777 == 0o600


def test_a_printout_names_coded_rescue_interventions_in_their_own_list_words(
    pso_home: Path, memory_keyring: MemoryKeyring
):
    """'monitoring' is also a Medication stage ('Monitoring'): the rescue field's own list gives its words."""
    from pso_desktop.services.printout import report_printout

    ws = Workstation(pso_home, keys=ProfileKeys(pso_home, backend=memory_keyring, kdf=CHEAP_KDF))
    ws.create_profile("alice", SECRET)
    report = json.loads(json.dumps(EXAMPLES["hai-urinary"]))
    report["rescue"]["intervention_types"] = ["monitoring", "medication"]
    with ws.session("alice", SECRET) as session:
        session.add_reports([report])
        printout = report_printout(session, report["id"])
    rows = {label: value for section in printout.sections for label, value in section.rows}
    assert rows["Which interventions were documented?"] == (
        "Additional monitoring or observation; Medication, antidote or reversal agent"
    )
    assert rows["State"] == "Draft"
