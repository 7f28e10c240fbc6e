"""The facility repository (issue 12) on a real SQLCipher file: the feed pages are kept all or nothing and a
replay changes nothing; unsent changes of one field are sent as one; conflicts are derived as the server decided
them; the list's review state follows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.storage.account import Account, AccountStore
from pso_desktop.storage.database import open_database
from pso_desktop.storage.facility import FacilityStore
from pso_desktop.storage.reports import ReportStore


@pytest.fixture
def conn(db_path: Path, key: bytes) -> Iterator[Any]:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    opened = open_database(db_path, key, create=True)
    AccountStore(opened).link(Account("https://pso.example", "rm1", "pc"))
    yield opened
    opened.close()


def _item(report: dict[str, Any], revision: int = 1) -> dict[str, Any]:
    return {
        "id": report["id"],
        "revision": revision,
        "server_ref": "PSO-2026-000001",
        "received_at": "2026-12-01T10:00:00Z",
        "report": {**report, "revision": revision},
    }


def _reports(count: int) -> list[dict[str, Any]]:
    rng = random.Random(44)
    return [validate_report(sample_report(rng, i)).export() for i in range(count)]


def _record(event_id: str, seq: int, report_id: str, outcome: str, value: Any, version: int, author: str) -> Any:
    return {
        "seq": seq,
        "event_id": event_id,
        "report_id": report_id,
        "kind": "field",
        "field": "state",
        "value": value,
        "base_version": 0,
        "version": version,
        "outcome": outcome,
        "author": author,
        "created_at": "2026-12-02T09:00:00Z",
    }


def test_a_page_is_kept_whole_and_a_replay_changes_nothing(conn: Any) -> None:
    facility, store = FacilityStore(conn), ReportStore(conn)
    first, second = _reports(2)
    broken = {**_item(second), "report": {**second, "id": first["id"]}}  # content of another id: skipped
    assert facility.save_reports([_item(first), broken, {"id": "x"}], "c1") == 1
    assert facility.cursors() == ("c1", None)
    assert facility.save_reports([_item(first)], "c1") == 0  # a replay
    assert facility.save_reports([_item(first, 2)], "c2") == 1  # a later revision replaces the copy
    assert store.get(first["id"])["revision"] == 2  # type: ignore[index]
    assert facility.save_reports([_item(first, 1)], "c3") == 0  # an older one never does
    assert store.get(first["id"])["revision"] == 2  # type: ignore[index]
    # The profile's own report is never replaced by a copy.
    store.add_reports([second], submit=True)
    assert facility.save_reports([_item(second, 5)], "c4") == 0
    assert store.get(second["id"]) == second and not facility.is_facility_copy(second["id"])


def test_unsent_changes_of_one_field_go_as_one_and_conflicts_follow_the_server(conn: Any) -> None:
    facility = FacilityStore(conn)
    (report,) = _reports(1)
    facility.save_reports([_item(report)], "c1")
    rid = report["id"]
    facility.change_field(rid, "state", "in_review", "rm1")
    facility.change_field(rid, "state", "waiting_for_information", "rm1")
    facility.change_field(rid, "assignee", "rm1", "rm1")
    unsent = facility.unsent()
    assert [(r["field"], r["value"], r["base_version"]) for r in unsent] == [
        ("state", "waiting_for_information", 0),
        ("assignee", "rm1", 0),
    ]
    row = conn.execute("SELECT review_state FROM reports WHERE id = ?", (rid,)).fetchone()
    assert row[0] == "waiting_for_information"  # the list follows the unsent change too

    # The server took rm2's change first; ours was kept as a conflict beside it.
    other = _record("e-rm2", 1, rid, "accepted", "closed", 1, "rm2")
    ours = _record(unsent[0]["event_id"], 2, rid, "conflict", "waiting_for_information", 2, "rm1")
    assert facility.record_sent([{"event_id": ours["event_id"], "outcome": "conflict", "record": ours}]) == 0
    assert facility.save_review_page([other, ours], "r1") == 1  # ours was held already
    state = facility.review(rid).fields["state"]
    assert (state.value, state.version, state.pending) == ("closed", 2, False)
    assert [(c.value, c.author) for c in state.conflicts] == [("waiting_for_information", "rm1")]
    # A change made now is made on version 2, which holds the conflict: accepted, it resolves it.
    facility.change_field(rid, "state", "closed", "rm1")
    assert facility.unsent()[-1]["base_version"] == 2
    resolved = _record(facility.unsent()[-1]["event_id"], 3, rid, "accepted", "closed", 3, "rm1")
    facility.save_review_page([resolved], "r2")
    assert facility.review(rid).fields["state"].conflicts == ()
    # A rejected record (the report is not the facility's any more) is dropped, not sent again.
    rejected = facility.unsent()[0]["event_id"]  # the assignee
    assert facility.record_sent([{"event_id": rejected, "outcome": "rejected"}]) == 1
    assert facility.unsent() == []
    with pytest.raises(ValueError, match="unknown review state"):
        facility.change_field(rid, "state", "finished", "rm1")


def test_purge_removes_the_copies_and_the_review_of_the_profiles_own_reports(conn: Any) -> None:
    facility, store = FacilityStore(conn), ReportStore(conn)
    own, copy = _reports(2)
    store.add_reports([own], submit=True)
    conn.execute("UPDATE reports SET server_ref = 'PSO-2026-000002' WHERE id = ?", (own["id"],))
    facility.save_reports([_item(copy)], "c1")
    facility.change_field(own["id"], "state", "in_review", "rm1")  # a risk manager reviews its own report too
    assert store.summary(own["id"]).review_state == "in_review"  # type: ignore[union-attr]
    assert facility.purge() == 1
    assert store.summary(own["id"]).review_state is None  # type: ignore[union-attr]
    assert store.get(copy["id"]) is None and store.get(own["id"]) == own
    assert (facility.unsent(), facility.cursors()) == ([], (None, None))
    # Nothing held any more (a reporter's profile at every sync): nothing is written.
    before = conn.total_changes
    assert facility.purge() == 0
    assert conn.total_changes == before
