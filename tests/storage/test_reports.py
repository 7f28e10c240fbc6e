"""ReportStore: drafts, revisions, atomic bulk add and submit, search, export."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from typing import Any

import pytest
import sqlcipher3.dbapi2 as sqlcipher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pso_desktop.domain.wire import content_hash
from pso_desktop.storage.errors import StorageError
from pso_desktop.storage.reports import ReportStore, ReportSummary


def _draft(narrative: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "revision": 1,
        "event_type": "incident",
        "categories": ["A48"],
        "narrative": narrative,
        "discovery": {"date": "2026-11-20"},
        "location": {"unit": "ICU-2", "description": "Room 4"},
        **extra,
    }


def _rows(conn: sqlcipher.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_draft_save_get_list_delete(store: ReportStore) -> None:
    report = _draft("Patient found on the floor.")
    assert store.save_draft(report) == 1
    assert store.get(report["id"]) == report
    [summary] = store.list_summaries()
    assert summary == ReportSummary(
        id=report["id"],
        revision=1,
        state="draft",
        event_type="incident",
        categories=("A48",),
        unit="ICU-2",
        discovered_on="2026-11-20",
        updated_at=summary.updated_at,
        server_ref=None,
    )
    edited = {**report, "narrative": "Patient found on the floor beside the bed."}
    assert store.save_draft(edited) == 1  # still the same unsubmitted revision
    assert store.get(report["id"]) == edited
    store.delete(report["id"])
    assert store.get(report["id"]) is None
    assert store.list_summaries() == []
    store.delete(report["id"])  # deleting twice is harmless


def test_summaries_carry_no_narrative_or_patient_fields() -> None:
    names = {field.name for field in dataclasses.fields(ReportSummary)}
    assert not names & {"narrative", "patient", "reporter", "wire"}


def test_list_is_newest_first_with_state_filter_and_paging(store: ReportStore) -> None:
    drafts = [_draft(f"event number {i}") for i in range(5)]
    for report in drafts:
        store.save_draft(report)
    store.submit([drafts[1]["id"], drafts[3]["id"]])
    assert [s.id for s in store.list_summaries()] == [r["id"] for r in reversed(drafts)]
    assert {s.id for s in store.list_summaries(state="queued")} == {drafts[1]["id"], drafts[3]["id"]}
    assert [s.id for s in store.list_summaries(limit=2, offset=1)] == [drafts[3]["id"], drafts[2]["id"]]
    with pytest.raises(ValueError):
        store.list_summaries(state="archived")


def test_submit_writes_revision_and_outbox_atomically(store: ReportStore, conn: sqlcipher.Connection) -> None:
    report = _draft("Wrong rate programmed on the pump.")
    store.save_draft(report)
    store.submit([report["id"]])
    frozen = conn.execute("SELECT revision, sha256, wire FROM report_revisions").fetchall()
    outbox = conn.execute("SELECT report_id, revision, state FROM outbox").fetchall()
    assert [(r, s) for r, s, _ in frozen] == [(1, content_hash(report))]
    assert outbox == [(report["id"], 1, "queued")]
    assert store.outbox_counts() == {"draft": 0, "queued": 1, "sending": 0, "submitted": 0, "needs_attention": 0}

    # An unknown id in the list: nothing at all is submitted.
    other = _draft("Second report.")
    store.save_draft(other)
    with pytest.raises(StorageError):
        store.submit([other["id"], str(uuid.uuid4())])
    assert _rows(conn, "report_revisions") == 1 and _rows(conn, "outbox") == 1
    assert store.list_summaries(state="draft")[0].id == other["id"]


def test_submit_failing_at_the_outbox_write_leaves_no_frozen_revision(
    store: ReportStore, conn: sqlcipher.Connection
) -> None:
    report = _draft("Medication stored in the wrong bin.")
    store.save_draft(report)
    conn.execute("CREATE TEMP TRIGGER fail_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'x'); END")
    with pytest.raises(sqlcipher.IntegrityError):
        store.submit([report["id"]])
    assert _rows(conn, "report_revisions") == 0
    assert store.list_summaries()[0].state == "draft"


def test_editing_a_submitted_report_makes_a_new_revision(store: ReportStore, conn: sqlcipher.Connection) -> None:
    report = _draft("First version.")
    store.save_draft(report)
    store.submit([report["id"]])
    assert store.save_draft(copy.deepcopy(report)) == 1  # saved unchanged: no new revision
    assert store.list_summaries()[0].state == "queued"

    assert store.save_draft({**report, "narrative": "Second version."}) == 2
    assert (store.get(report["id"]) or {})["revision"] == 2
    assert store.get_revision(report["id"], 1) == report  # what was queued never changes
    assert store.outbox_counts()["draft"] == 1 and store.outbox_counts()["queued"] == 1
    store.submit([report["id"]])
    assert [tuple(r) for r in conn.execute("SELECT revision, state FROM outbox ORDER BY seq")] == [
        (1, "queued"),
        (2, "queued"),
    ]
    with pytest.raises(sqlcipher.IntegrityError, match="cannot be changed"):
        conn.execute("UPDATE report_revisions SET wire = '{}'")
    with pytest.raises(StorageError, match="never submitted"):
        store.delete(report["id"])


def test_add_reports_is_all_or_nothing(
    store: ReportStore, conn: sqlcipher.Connection, reports: list[dict[str, Any]]
) -> None:
    # A failure in the middle of the transaction, raised by the database itself.
    conn.execute(
        "CREATE TEMP TRIGGER fail_sixth BEFORE INSERT ON reports WHEN (SELECT count(*) FROM reports) >= 5 "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )
    with pytest.raises(sqlcipher.IntegrityError, match="injected"):
        store.add_reports(reports, submit=True)
    assert _rows(conn, "reports") == 0 and _rows(conn, "outbox") == 0 and _rows(conn, "report_revisions") == 0
    assert store.list_summaries(text="patient") == []  # the search index rolled back too
    conn.execute("DROP TRIGGER temp.fail_sixth")

    # A value that cannot be stored, found while writing the 11th report.
    bad = [*reports[:10], {**reports[10], "narrative": {1, 2}}, *reports[11:]]
    with pytest.raises(ValueError, match="plain JSON"):
        store.add_reports(bad)
    assert _rows(conn, "reports") == 0

    store.add_reports(reports, submit=True)
    assert store.outbox_counts()["queued"] == len(reports)
    assert [store.get(r["id"]) for r in reports] == reports


def test_refuses_reports_without_id_or_revision(store: ReportStore) -> None:
    for bad in ({"revision": 1}, {"id": "not-a-uuid", "revision": 1}, {"id": str(uuid.uuid4()), "revision": 0}):
        with pytest.raises(ValueError):
            store.save_draft(bad)
    assert store.list_summaries() == []


def test_full_text_search(store: ReportStore) -> None:
    fall = _draft("Unwitnessed fall in the bathroom; call light not used.")
    pump = _draft("Infusion pump programmed at the wrong rate for heparin.")
    cafe = _draft("Patient's café order mixed up; allergy band checked.")
    for report in (fall, pump, cafe):
        store.save_draft(report)

    def ids(text: str, **kwargs: Any) -> set[str]:
        return {s.id for s in store.list_summaries(text=text, **kwargs)}

    assert ids("bathroom") == {fall["id"]}
    assert ids("HEPARIN pump") == {pump["id"]}
    assert ids("hep") == {pump["id"]}  # prefix match while typing
    assert ids("cafe") == {cafe["id"]}  # accent-insensitive
    assert ids("heparin bathroom") == set()  # every word must match
    for hostile in ('"', "pump AND", "NEAR(", "*", "')--", "pump OR fall"):
        ids(hostile)  # user text is never query syntax: no error
    assert ids("pump OR fall") == set()  # "OR" is a word to look for, not an operator
    assert ids("   ") == {fall["id"], pump["id"], cafe["id"]}  # blank means no filter
    assert ids("!!!") == set()

    store.save_draft({**pump, "narrative": "Pump alarm silenced."})
    assert ids("heparin") == set() and ids("silenced") == {pump["id"]}
    store.submit([pump["id"]])
    assert ids("silenced", state="queued") == {pump["id"]} and ids("silenced", state="draft") == set()
    store.delete(fall["id"])
    assert ids("bathroom") == set()


def test_text_round_trips_exactly(store: ReportStore) -> None:
    awkward = "NUL\x00 RTL\u202e mark, emoji 🩺, =cmd|' /C calc'!A0, ' OR 1=1 --, \u00e9\u0301 and \n newlines"
    report = _draft(awkward, patient={"name": "Zoë O'Brien-\u05d0"})
    store.save_draft(report)
    assert store.get(report["id"]) == report
    assert [r for r in store.export_all()] == [report]
    with pytest.raises(ValueError, match="surrogates"):
        store.save_draft(_draft("lone \ud800 surrogate"))


def test_export_all_pages_through_everything(store: ReportStore) -> None:
    many = [_draft(f"report {i}") for i in range(1203)]
    store.add_reports(many)
    exported = list(store.export_all())
    assert [r["id"] for r in exported] == [r["id"] for r in many]
    assert exported[600] == many[600]


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)  # surrogates and NUL included


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(narrative=_ANY_TEXT, name=_ANY_TEXT, query=_ANY_TEXT)
def test_arbitrary_text_round_trips_or_is_refused(
    store: ReportStore, narrative: str, name: str, query: str
) -> None:
    report = _draft(narrative, patient={"name": name})
    has_surrogate = any(0xD800 <= ord(ch) <= 0xDFFF for ch in narrative + name)
    if has_surrogate:
        with pytest.raises(ValueError, match="surrogates"):
            store.save_draft(report)
        assert store.get(report["id"]) is None
    else:
        store.save_draft(report)
        assert store.get(report["id"]) == report
    store.list_summaries(text=query)  # any user text is a valid search, never an FTS syntax error


def test_a_one_megabyte_narrative_round_trips(store: ReportStore) -> None:
    report = _draft("Long narrative. " * 65_536)  # 1 MiB
    store.save_draft(report)
    store.submit([report["id"]])
    assert store.get(report["id"]) == report
    assert {s.id for s in store.list_summaries(text="long narrative")} == {report["id"]}
    [item] = store.claim_batch(1, 10)
    assert item.wire == report and item.size_bytes > 1_000_000
