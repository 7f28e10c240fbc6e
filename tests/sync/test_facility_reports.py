"""Issue 12, items 1 and 2: a risk manager's profile copies the facility's reports at sync and shares a review
with the facility's other risk managers. Real profiles (real SQLCipher), the real client and the real reference
server over TLS on loopback; two facilities, each with its risk manager, and three reporters.

The server pages its feeds by two here, so every feed is read over several pages.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.domain import load_catalogue, validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services import printout, review, syncing
from pso_desktop.services.workstation import Session, Workstation
from pso_desktop.storage import backup
from pso_desktop.storage.database import open_database
from pso_desktop.storage.errors import StorageError
from pso_desktop.storage.facility import Review
from pso_desktop.sync.errors import SignInRequired
from pso_desktop.sync.transport import ServerSettings
from pso_desktop.ui.reports_model import display_text
from pso_server.practice import RunningServer
from tests.support.fault_proxy import LOSE_RESPONSE, PASS, FaultProxy
from tests.support.kdf import CHEAP_KDF
from tests.support.memory_keyring import MemoryKeyring
from tests.support.sync import Account, make_client, make_engine, practice_server

SECRET = "ward pc secret 123"
NORTH, SOUTH = "North General", "South Valley"
ACCOUNTS = {
    "rm_north": ("risk_manager", NORTH),
    "rm_south": ("risk_manager", SOUTH),
    "nurse_a": ("reporter", NORTH),
    "nurse_b": ("reporter", NORTH),
    "nurse_c": ("reporter", SOUTH),
}


def _password(name: str) -> str:
    return f"{name} password 1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    accounts = {name: Account(_password(name), role, facility) for name, (role, facility) in ACCOUNTS.items()}
    with practice_server(tmp_path / "server", accounts, status_page_size=2) as running:
        yield running


class Profiles:
    """One profile per account on one workstation, each signed in to its account."""

    def __init__(self, workstation: Workstation, server: RunningServer, stack: ExitStack) -> None:
        self._workstation = workstation
        self._server = server
        self._stack = stack
        self.sessions: dict[str, Session] = {}

    def __getitem__(self, name: str) -> Session:
        if name not in self.sessions:
            self._workstation.create_profile(name, SECRET)
            session = self._stack.enter_context(self._workstation.session(name, SECRET))
            settings = ServerSettings(self._server.base_url, ca_file=str(self._server.ca_path))
            syncing.login(session, settings, name, _password(name))
            self.sessions[name] = session
        return self.sessions[name]


@pytest.fixture
def profiles(pso_home: Path, memory_keyring: MemoryKeyring, server: RunningServer) -> Iterator[Profiles]:
    workstation = Workstation(pso_home, keys=ProfileKeys(pso_home, backend=memory_keyring, kdf=CHEAP_KDF))
    with ExitStack() as stack:
        yield Profiles(workstation, server, stack)


_rng = random.Random(1212)


def _report(*, anonymous: bool = False) -> dict[str, Any]:
    while True:
        report = validate_report(sample_report(_rng, _rng.randrange(10_000))).export()
        if bool(report["reporter"].get("anonymous")) == anonymous:
            return report


def _send(session: Session, reports: list[dict[str, Any]]) -> None:
    session.add_reports(reports, submit=True)
    summary = syncing.sync(session)
    assert (summary.submitted, summary.remaining, summary.problem) == (len(reports), 0, None)


def _ids(session: Session, origin: str) -> set[str]:
    rows = session._conn.execute("SELECT id FROM reports WHERE origin = ?", (origin,)).fetchall()
    return {str(r[0]) for r in rows}


@pytest.fixture
def sent(profiles: Profiles) -> dict[str, list[dict[str, Any]]]:
    """Each reporter's reports, sent: nurse_a two (one anonymous), nurse_b one, nurse_c two; rm_north one of its
    own."""
    made = {
        "nurse_a": [_report(), _report(anonymous=True)],
        "nurse_b": [_report()],
        "nurse_c": [_report(), _report(anonymous=True)],
        "rm_north": [_report()],
    }
    for name, reports in made.items():
        _send(profiles[name], reports)
    return made


def _ids_of(sent: dict[str, list[dict[str, Any]]], *names: str) -> set[str]:
    return {r["id"] for name in names for r in sent[name]}


def test_each_risk_manager_gets_exactly_their_facility_and_reporters_get_nobody_elses(
    profiles: Profiles, sent: dict[str, list[dict[str, Any]]]
) -> None:
    north = profiles["rm_north"]
    summary = syncing.sync(north)
    assert summary.problem is None
    assert _ids(north, "facility") == _ids_of(sent, "nurse_a", "nurse_b")
    assert _ids(north, "mine") == _ids_of(sent, "rm_north")  # its own report stays its own, not a copy
    south = profiles["rm_south"]
    syncing.sync(south)
    assert _ids(south, "facility") == _ids_of(sent, "nurse_c")
    assert _ids(south, "mine") == set()
    for name in ("nurse_a", "nurse_b", "nurse_c"):
        reporter = profiles[name]
        again = syncing.sync(reporter)
        assert (again.problem, again.facility_reports) == (None, 0)
        assert _ids(reporter, "facility") == set()
        assert _ids(reporter, "mine") == _ids_of(sent, name)

    # The copies hold the content as sent; the anonymous one carries no identity; the PSO's status came too.
    for original in sent["nurse_a"] + sent["nurse_b"]:
        copy = north.store.get(original["id"])
        assert copy == original
        assert north.store.summary(original["id"]).server_ref.startswith("PSO-")  # type: ignore[union-attr]
    anonymous = north.store.get(sent["nurse_a"][1]["id"])
    assert anonymous is not None
    assert set(anonymous["reporter"]) & {"name", "telephone", "email", "job"} == set()
    assert north.store.summary(sent["nurse_a"][0]["id"]).pso_status == "received"  # type: ignore[union-attr]
    # The list marks the copies (and says their review state); its own report keeps its state.
    listed = {r.id: r for r in north.store.list_summaries(limit=100)}
    assert {i for i, r in listed.items() if r.origin == "facility"} == _ids_of(sent, "nurse_a", "nurse_b")
    assert {r.review_state for r in listed.values() if r.origin == "facility"} == {"new"}
    copy_row = listed[sent["nurse_b"][0]["id"]]
    assert display_text(copy_row, 0) == "Facility: New"
    assert display_text(listed[sent["rm_north"][0]["id"]], 0) == "Submitted"

    # Read-only: a copy cannot be edited, submitted or deleted, and is not counted in the outbox.
    copy_id = sent["nurse_b"][0]["id"]
    edited = {**sent["nurse_b"][0], "narrative": "Changed by the risk manager."}
    for attempt in (
        lambda: north.save_draft(edited),
        lambda: north.submit([copy_id]),
        lambda: north.store.delete(copy_id),
    ):
        with pytest.raises(StorageError, match="only its reporter can send a new version"):
            attempt()
    assert north.store.get(copy_id) == sent["nurse_b"][0]
    assert north.status_counts()["submitted"] == 1  # its own report only

    # Incremental: only what changed comes at the next sync; a reporter's new revision replaces the copy.
    assert syncing.sync(north).facility_reports == 0
    revised = {**sent["nurse_b"][0], "narrative": "A later revision with more detail."}
    nurse_b = profiles["nurse_b"]
    nurse_b.save_draft(revised)
    nurse_b.submit([copy_id])
    assert syncing.sync(nurse_b).submitted == 1
    assert syncing.sync(north).facility_reports == 1
    copy = north.store.get(copy_id)
    assert copy is not None
    assert (copy["revision"], copy["narrative"]) == (2, "A later revision with more detail.")
    assert _ids(north, "facility") == _ids_of(sent, "nurse_a", "nurse_b")


def _review_in(session: Session, report_id: str) -> Review:
    return review.review(session, report_id)


def test_concurrent_review_edits_keep_both_or_show_the_conflict(
    profiles: Profiles, server: RunningServer, sent: dict[str, list[dict[str, Any]]]
) -> None:
    server.add_user("rm_north2", _password("rm_north2"), role="risk_manager", facility=NORTH)
    one, two = profiles["rm_north"], profiles["rm_north2"]
    syncing.sync(one)
    syncing.sync(two)
    target = sent["nurse_a"][0]["id"]

    # Both edit offline, each on the version they saw (never set): the same field, and different ones.
    review.change_field(one, target, "state", "in_review")
    review.change_field(two, target, "state", "waiting_for_information")
    review.change_field(one, target, "assignee", "rm_north")
    review.change_field(two, target, "harm", "moderate")
    review.add_note(one, target, "Called the unit manager.")
    review.add_note(two, target, "Pharmacy to check the pump log.")
    review.add_action(one, target, "Re-train on the pump", "educator", dt.date(2027, 1, 15))
    review.add_action(two, target, "Check the pump firmware", None, None)
    assert _review_in(one, target).fields["state"].pending

    syncing.sync(one)
    syncing.sync(two)
    syncing.sync(one)

    for session in (one, two):
        seen = _review_in(session, target)
        state = seen.fields["state"]
        assert state.value == "in_review"  # the first to reach the server
        assert [(c.value, c.author) for c in state.conflicts] == [("waiting_for_information", "rm_north2")]
        assert seen.fields["assignee"].value == "rm_north"
        assert seen.fields["assignee"].conflicts == ()
        assert seen.fields["harm"].value == "moderate"
        assert sorted(n.text for n in seen.notes) == [
            "Called the unit manager.",
            "Pharmacy to check the pump log.",
        ]
        assert sorted((a.text, a.owner, a.due) for a in seen.actions) == [
            ("Check the pump firmware", None, None),
            ("Re-train on the pump", "educator", "2027-01-15"),
        ]
        assert not any(n.pending for n in seen.notes)
        assert session.store.summary(target) is not None
        row = session._conn.execute("SELECT review_state FROM reports WHERE id = ?", (target,)).fetchone()
        assert row[0] == "in_review"

    # The second one resolves the conflict, having seen it: accepted, and the conflict is gone for both.
    review.change_field(two, target, "state", "closed")
    syncing.sync(two)
    syncing.sync(one)
    for session in (one, two):
        state = _review_in(session, target).fields["state"]
        assert (state.value, state.conflicts, state.pending) == ("closed", (), False)

    # Every review change was audited, naming the report and the kind of change only.
    entries = [e for e in two.audit.entries() if e.action == "review"]
    assert [e.detail for e in entries] == [
        "state changed",
        "harm changed",
        "note added",
        "action added",
        "state changed",
    ]
    assert all(e.report_id == target for e in entries)
    assert two.audit.verify()


def test_a_former_risk_manager_has_the_copies_purged_at_its_next_sync(
    profiles: Profiles, server: RunningServer, sent: dict[str, list[dict[str, Any]]]
) -> None:
    north = profiles["rm_north"]
    syncing.sync(north)
    target = sent["nurse_a"][0]["id"]
    review.change_field(north, target, "state", "in_review")
    review.add_note(north, target, "Spoke to the family.")
    syncing.sync(north)
    assert len(_ids(north, "facility")) == 3

    server.set_role("rm_north", "reporter")
    summary = syncing.sync(north)
    assert (summary.problem, summary.facility_purged) == (None, 3)
    assert _ids(north, "facility") == set()
    assert _ids(north, "mine") == _ids_of(sent, "rm_north")
    assert north._conn.execute("SELECT count(*) FROM review_records").fetchone()[0] == 0
    assert north._conn.execute("SELECT count(*) FROM server_status").fetchone()[0] == 1  # its own report's
    assert north.store.list_summaries(text="family") == []

    # A risk manager again: the feeds are read from their start, the review comes back too.
    server.set_role("rm_north", "risk_manager")
    assert syncing.sync(north).facility_reports == 3
    assert _review_in(north, target).fields["state"].value == "in_review"


def test_a_disabled_account_has_the_copies_purged_at_its_next_sync(
    profiles: Profiles, server: RunningServer, sent: dict[str, list[dict[str, Any]]]
) -> None:
    north = profiles["rm_north"]
    syncing.sync(north)
    assert len(_ids(north, "facility")) == 3
    server.set_disabled("rm_north")
    with pytest.raises(SignInRequired):
        syncing.sync(north)
    assert _ids(north, "facility") == set()
    assert _ids(north, "mine") == _ids_of(sent, "rm_north")


def _facility_ids_in_backups(profiles: Profiles, name: str) -> list[set[str]]:
    """The facility copies each of the profile's backups holds, newest backup first (opened with its key)."""
    keys = profiles._workstation.keys
    key, db_path = keys.unlock(name, SECRET), keys.database_path(name)
    held = []
    for taken in backup.list_backups(db_path):
        conn = open_database(taken.path, key, create=False, full_check=True)
        try:
            rows = conn.execute("SELECT id FROM reports WHERE origin = 'facility'").fetchall()
            held.append({str(r[0]) for r in rows})
        finally:
            conn.close()
    return held


@pytest.mark.parametrize("how", ["role removed", "account disabled"])
def test_a_purge_leaves_no_backup_holding_the_facility_copies(
    profiles: Profiles, server: RunningServer, sent: dict[str, list[dict[str, Any]]], how: str
) -> None:
    north = profiles["rm_north"]
    syncing.sync(north)
    facility_ids = _ids_of(sent, "nurse_a", "nurse_b")
    for _ in range(2):  # two rotating backups, both taken while the copies are held
        assert north.back_up_if_due(max_age=dt.timedelta(0)) is not None
    assert _facility_ids_in_backups(profiles, "rm_north") == [facility_ids, facility_ids]

    if how == "role removed":
        server.set_role("rm_north", "reporter")
        assert syncing.sync(north).facility_purged == 3
    else:
        server.set_disabled("rm_north")
        with pytest.raises(SignInRequired):
            syncing.sync(north)

    # One fresh backup, without them, is all that is left; it still holds the profile's own report.
    assert _facility_ids_in_backups(profiles, "rm_north") == [set()]
    keys = profiles._workstation.keys
    (only,) = backup.list_backups(keys.database_path("rm_north"))
    conn = open_database(only.path, keys.unlock("rm_north", SECRET), create=False, full_check=True)
    try:
        own = {str(r[0]) for r in conn.execute("SELECT id FROM reports WHERE origin = 'mine'").fetchall()}
    finally:
        conn.close()
    assert own == _ids_of(sent, "rm_north")
    assert [e.detail for e in north.audit.entries() if e.action == "backup"][-1] == "replaced after purge"


def test_it_policy_keeps_closed_facility_reports_only_so_long(
    profiles: Profiles, sent: dict[str, list[dict[str, Any]]]
) -> None:
    north = profiles["rm_north"]
    syncing.sync(north)
    closed, still_open = sent["nurse_a"][0]["id"], sent["nurse_b"][0]["id"]
    review.change_field(north, closed, "state", "closed")
    review.change_field(north, still_open, "state", "in_review")
    assert syncing.sync(north, keep_closed_days=30).facility_purged == 0  # closed today: kept
    assert closed in _ids(north, "facility")
    summary = syncing.sync(north, keep_closed_days=0)
    assert summary.facility_purged == 1
    assert _ids(north, "facility") == _ids_of(sent, "nurse_a", "nurse_b") - {closed}
    assert _review_in(north, closed).notes == () and _review_in(north, closed).fields["state"].value is None


def test_a_review_record_whose_answer_is_lost_is_held_once(
    profiles: Profiles, server: RunningServer, sent: dict[str, list[dict[str, Any]]]
) -> None:
    """The server stores a note, then the answer is lost on the way back (a proxy drops the connection): the
    next try sends the same record, which the server answers as held. One note, everywhere."""
    north = profiles["rm_north"]
    syncing.sync(north)
    target = sent["nurse_b"][0]["id"]
    review.add_note(north, target, "Checked the bed alarm log.")
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        # The session renewal, the status feed and the facility feed pass; the review records' answer is lost.
        proxy.plan(PASS, PASS, PASS, LOSE_RESPONSE)
        with make_client(proxy.url, proxy.ca_path) as api:
            summary = make_engine(north, api, facility=north.facility).run()
        lost = [(s.method, s.path.split("?")[0]) for s in proxy.seen if s.fault == "lose_response"]
        assert lost == [("POST", "/api/v1/facility/reviews")]
    assert summary.problem is None
    assert north.facility.unsent() == []
    with server.db.reader() as tx:
        assert tx.one("SELECT COUNT(*) FROM review_events WHERE report_id = ?", (target,)) == (1,)
    assert [n.text for n in _review_in(north, target).notes] == ["Checked the bed alarm log."]


def test_the_printout_of_a_facility_report_carries_its_review(
    profiles: Profiles, sent: dict[str, list[dict[str, Any]]]
) -> None:
    """Outside test: the one-report printout of a facility report left the review out."""
    north, other = profiles["rm_north"], profiles["nurse_a"]
    syncing.sync(north)
    target = sent["nurse_b"][0]["id"]
    harm = load_catalogue().harm_levels[-1]
    review.change_field(north, target, "state", "in_review")
    review.change_field(north, target, "assignee", "rm_north")
    review.add_note(north, target, "Spoke to the family.")
    syncing.sync(north)  # these sent; the next ones still wait
    review.change_field(north, target, "harm", harm.code)
    review.add_action(north, target, "Check the bed alarms", "biomed", dt.date(2027, 1, 31))

    printed = printout.report_printout(north, target)
    sections = {s.heading: dict(s.rows) for s in printed.sections}
    assert sections["Where the report stands"]["State"] == "The facility's report (a read-only copy)"
    rows = sections["Facility review"]
    assert rows["Review state"] == "In review" and rows["Assignee"] == "rm_north"
    assert rows["Harm after review"] == f"{harm.display} (not sent yet)"
    (note,) = [v for k, v in rows.items() if k.startswith("Note by rm_north, ")]
    assert note == "Spoke to the family."
    assert rows["Action by rm_north"] == "Check the bed alarms (biomed, due 2027-01-31) (not sent yet)"

    # A reporter's own report has no review section.
    own = printout.report_printout(other, sent["nurse_a"][0]["id"])
    assert "Facility review" not in [s.heading for s in own.sections]
