"""Workstation use cases against real SQLCipher and keys: failures are clear and never touch the database."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pso_desktop.domain import ReportInvalid, validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.security.errors import (
    BackendChangedError,
    KeyEntryMissingError,
    KeyringUnavailableError,
    WrongSecretError,
)
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services.workstation import ExportFailed, Workstation
from pso_desktop.storage.database import open_database
from pso_desktop.storage.errors import DatabaseMissingError, DatabaseTamperedError, StorageError
from tests.support.kdf import CHEAP_KDF
from tests.support.memory_keyring import MemoryKeyring

SECRET = "a long enough secret"


def files_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("reports.db*")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def workstation(pso_home: Path, memory_keyring: MemoryKeyring) -> Workstation:
    ws = Workstation(pso_home, keys=ProfileKeys(pso_home, backend=memory_keyring, kdf=CHEAP_KDF))
    ws.create_profile("alice", SECRET)
    with ws.session("alice", SECRET) as session:
        rng = random.Random(1)  # one generator: a fresh one per report would repeat the same report ID
        session.add_reports([validate_report(sample_report(rng, i)).export() for i in range(5)])
    return ws


def test_wrong_secret_leaves_database_untouched(workstation: Workstation, pso_home: Path):
    folder = pso_home / "profiles" / "alice"
    before = files_hash(folder)
    with pytest.raises(WrongSecretError):
        workstation.open("alice", "not the right secret")
    assert files_hash(folder) == before


def test_missing_keyring_entry(workstation: Workstation, pso_home: Path, memory_keyring: MemoryKeyring):
    folder = pso_home / "profiles" / "alice"
    before = files_hash(folder)
    memory_keyring.entries.clear()
    with pytest.raises(KeyEntryMissingError) as info:
        workstation.open("alice", SECRET)
    assert "alice" in str(info.value) or "key" in str(info.value).lower()
    assert files_hash(folder) == before
    assert not workstation.keys.exists("alice") or (folder / "reports.db").exists()


def test_locked_keyring(workstation: Workstation, pso_home: Path, memory_keyring: MemoryKeyring):
    folder = pso_home / "profiles" / "alice"
    before = files_hash(folder)
    memory_keyring.locked = True
    with pytest.raises(KeyringUnavailableError):
        workstation.open("alice", SECRET)
    assert files_hash(folder) == before


def test_changed_to_weak_backend(workstation: Workstation, pso_home: Path):
    import keyring.backends.null

    folder = pso_home / "profiles" / "alice"
    before = files_hash(folder)
    weak = Workstation(
        pso_home, keys=ProfileKeys(pso_home, backend=keyring.backends.null.Keyring(), kdf=CHEAP_KDF)
    )
    assert weak.keys.warning
    with pytest.raises(BackendChangedError):
        weak.open("alice", SECRET)
    assert files_hash(folder) == before


def test_two_clinicians_stay_apart(pso_home: Path, memory_keyring: MemoryKeyring):
    ws = Workstation(pso_home, keys=ProfileKeys(pso_home, backend=memory_keyring, kdf=CHEAP_KDF))
    ws.create_profile("alice", SECRET)
    ws.create_profile("bob", "bob's different secret")
    with pytest.raises(WrongSecretError):
        ws.open("bob", SECRET)
    with pytest.raises(WrongSecretError):
        ws.open("alice", "bob's different secret")
    alice_key = ws.keys.unlock("alice", SECRET)
    bob_key = ws.keys.unlock("bob", "bob's different secret")
    assert alice_key != bob_key


def test_audit_records_the_session(workstation: Workstation, tmp_path: Path):
    with workstation.session("alice", SECRET) as session:
        assert len(list(session.store.export_all())) == 5
        session.export_json(tmp_path / "out.json")
        entries = session.audit.entries()
        assert session.audit.verify()
        reports = list(session.store.export_all())
    actions = [e.action for e in entries]
    assert actions[:2] == ["profile_create", "unlock"]
    assert "export" in actions and "create" in actions
    audit_text = json.dumps([vars(e) for e in entries], default=str)
    for report in reports:
        if "patient" in report:
            assert report["patient"]["mrn"] not in audit_text
        assert report["narrative"][:30] not in audit_text


def test_profile_access_opens_the_profile_until_the_session_closes(workstation: Workstation):
    """What another thread is handed at unlock opens connections of its own, and nothing once the profile locks."""
    session = workstation.open("alice", SECRET)
    access = session.access()
    second = access.second_connection()
    try:
        assert len(list(second.store.export_all())) == 5
    finally:
        second.close()
    assert session.audit.verify()  # the second connection's closing is not a lock
    session.close()
    with pytest.raises(RuntimeError):
        access.second_connection()


@pytest.fixture(scope="module")
def shared_session(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    ws = Workstation(root, keys=ProfileKeys(root, backend=MemoryKeyring(), kdf=CHEAP_KDF))
    ws.create_profile("prop", SECRET)
    session = ws.open("prop", SECRET)
    yield session
    session.close()


BASE = validate_report(sample_report(random.Random(3), 0)).export()
text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        ["\u202eRTL", "=cmd|' /C calc'!A0", "\ufeff", "𝕏" * 3000, "a\ud800", "nul\x00", "x" * 1_000_000]
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(narrative=text, unit_text=text)
def test_text_round_trips_through_the_encrypted_store_or_is_refused(
    shared_session, narrative, unit_text, tmp_path_factory
):
    data = json.loads(json.dumps(BASE))
    data["narrative"] = narrative
    data["location"]["description"] = unit_text
    data["id"] = f"00000000-0000-4000-8000-{abs(hash((narrative, unit_text))) % 10**12:012d}"
    try:
        wire = validate_report(data).export()
    except ReportInvalid as exc:
        assert exc.errors and all(e.message for e in exc.errors)
        return
    shared_session.store.save_draft(wire)
    stored = shared_session.store.get(wire["id"])
    assert stored["narrative"] == narrative
    assert stored["location"]["description"] == unit_text
    out = tmp_path_factory.mktemp("export") / "e.json"
    shared_session.export_json(out)
    exported = {r["id"]: r for r in json.loads(out.read_text(encoding="utf-8"))["reports"]}
    assert exported[wire["id"]]["narrative"] == narrative


def test_full_check_detects_a_tampered_page_a_quick_open_leaves_unread(workstation: Workstation, pso_home: Path):
    with workstation.session("alice", SECRET) as session:  # enough pages that open() reads only a few of them
        rng = random.Random(2)
        session.add_reports([validate_report(sample_report(rng, i)).export() for i in range(400)])
    path = workstation.keys.database_path("alice")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    key = workstation.keys.unlock("alice", SECRET)
    open_database(path, key, full_check=False).close()  # a quick open reads only a few pages and passes
    before = path.read_bytes()
    with pytest.raises(DatabaseTamperedError):
        workstation.open("alice", SECRET, full_check=True)
    assert path.read_bytes() == before


def test_submit_and_delete_are_audited_by_report_id_only(workstation: Workstation):
    with workstation.session("alice", SECRET) as session:
        ids = [r["id"] for r in session.store.export_all()]
        session.submit(ids[:1])
        session.delete_draft(ids[1])
        session.delete_draft(str(uuid.uuid4()))  # unknown: nothing deleted, nothing audited
        with pytest.raises(StorageError):
            session.delete_draft(ids[0])  # submitted reports are part of the record
        assert session.store.get(ids[1]) is None and session.store.get(ids[0]) is not None
        entries = session.audit.entries()
        assert session.audit.verify()
    audited = [(e.action, e.report_id) for e in entries if e.action in ("submit", "delete")]
    assert audited == [("submit", ids[0]), ("delete", ids[1])]


def test_failed_export_leaves_no_audit_entry(workstation: Workstation, tmp_path: Path):
    with workstation.session("alice", SECRET) as session:
        with pytest.raises(ExportFailed, match="does not exist"):
            session.export_json(tmp_path / "missing" / "out.json")
        assert "export" not in [e.action for e in session.audit.entries()]
        session.export_json(tmp_path / "out.json")
        assert [e.action for e in session.audit.entries()].count("export") == 1


def test_missing_database_of_an_existing_profile_is_never_recreated(workstation: Workstation, pso_home: Path):
    # The key unlocks fine; only the database is gone (moved, restored badly): no new empty one may appear.
    path = workstation.keys.database_path("alice")
    for leftover in path.parent.glob("reports.db*"):
        leftover.unlink()
    with pytest.raises(DatabaseMissingError):
        workstation.open("alice", SECRET)
    assert list(path.parent.glob("reports.db*")) == []


def test_autosave_creates_once_in_the_audit_log_and_keeps_half_filled_drafts(workstation: Workstation):
    report_id = str(uuid.uuid4())
    half_filled = {"id": report_id, "revision": 1, "event_type": "incident", "narrative": "Started typing"}
    with workstation.session("alice", SECRET) as session:
        assert session.save_draft(half_filled) == 1
        assert session.save_draft({**half_filled, "narrative": "Started typing, then more"}) == 1
        assert session.get_report(report_id)["narrative"] == "Started typing, then more"
        with pytest.raises(ValueError):
            session.save_draft({"revision": 1})  # no id: refused, nothing written
        entries = session.audit.entries()
    created = [(e.action, e.report_id) for e in entries if e.action == "create"]
    assert created[-1] == ("create", report_id)
    assert sum(1 for e in entries if e.report_id == report_id) == 1
    with workstation.session("alice", SECRET) as session:  # it survives closing the database
        assert session.get_report(report_id)["narrative"] == "Started typing, then more"


def test_submit_report_keeps_an_incomplete_report_as_a_draft_and_queues_a_complete_one(workstation: Workstation):
    """The form's Submit: the draft is saved either way; only a valid report is queued, with an audit entry."""
    complete = validate_report(sample_report(random.Random(7), 0)).export()
    incomplete = {**complete, "id": str(uuid.uuid4()), "narrative": "   "}
    with workstation.session("alice", SECRET) as session:
        before = session.status_counts()
        with pytest.raises(ReportInvalid) as caught:
            session.submit_report(incomplete)
        assert [e.field for e in caught.value.errors] == ["narrative"]
        assert session.get_report(incomplete["id"]) == incomplete  # nothing typed is lost
        assert session.status_counts()["queued"] == before["queued"]

        assert session.submit_report(complete) == complete["revision"]
        counts = session.status_counts()
        submits = [e.report_id for e in session.audit.entries() if e.action == "submit"]
    assert counts["queued"] == before["queued"] + 1
    assert counts["draft"] == before["draft"] + 1  # the incomplete one
    assert submits[-1] == complete["id"]


def test_pso_problems_say_why_the_pso_did_not_take_the_last_revision(workstation: Workstation):
    """The server's own reasons as they came back; a conflict (which carries none) gets a sentence that says
    what to do; an accepted or never-sent report has none."""
    with workstation.session("alice", SECRET) as session:
        ids = [s.id for s in session.store.list_summaries(limit=3)]
        session.submit(ids)
        claimed = session.store.claim_batch(3, 10_000_000)
        by_id = {item.report_id: item.revision for item in claimed}
        session.store.record_results(
            [
                {
                    "id": ids[0],
                    "revision": by_id[ids[0]],
                    "status": "rejected",
                    "errors": [{"field": "patient.mrn", "message": "Enter the patient's medical record number."}],
                },
                {"id": ids[1], "revision": by_id[ids[1]], "status": "conflict", "errors": []},
                {"id": ids[2], "revision": by_id[ids[2]], "status": "created", "server_ref": "PSO-1"},
            ]
        )
        rejected, conflict, accepted = (session.pso_problems(report_id) for report_id in ids)
        never_sent = session.pso_problems(str(uuid.uuid4()))
    assert [(p.field, p.message) for p in rejected] == [
        ("patient.mrn", "Enter the patient's medical record number.")
    ]
    assert [p.field for p in conflict] == ["report"] and "new revision" in conflict[0].message
    assert accepted == [] and never_sent == []
