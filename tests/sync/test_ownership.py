"""Issue 9, item 2: a report belongs to whoever first sent it. Two real accounts of one facility, each with its
own profile and the real client, against the real reference server over TLS.

The attack: reporter B, knowing the UUID of A's anonymous report, sends revision 2 of it as a named report.
Before the fix the server answered ``updated``, B became its submitter and A's status lookup returned nothing.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.services import syncing
from pso_desktop.services.workstation import Session
from pso_desktop.sync.errors import SyncError
from pso_desktop.sync.transport import ServerSettings
from pso_server import store
from pso_server.practice import RunningServer
from tests.support.memory_keyring import MemoryKeyring
from tests.support.sync import PASSWORD, open_session

OTHER_PASSWORD = "nurse2 password"


@pytest.fixture
def other(pso_home: Path, memory_keyring: MemoryKeyring, server: RunningServer) -> Iterator[Session]:
    """Reporter B: another account of the same facility, on its own profile, signed in."""
    server.add_user("nurse2", OTHER_PASSWORD)
    with open_session(pso_home, memory_keyring, "nurse2") as opened:
        syncing.login(opened, _settings(server), "nurse2", OTHER_PASSWORD)
        yield opened


def _settings(server: RunningServer) -> ServerSettings:
    return ServerSettings(server.base_url, ca_file=str(server.ca_path))


def _report(seed: int, *, anonymous: bool) -> dict[str, Any]:
    rng = random.Random(seed)
    for i in range(1000):
        report = validate_report(sample_report(rng, i)).export()
        if bool(report["reporter"].get("anonymous")) == anonymous:
            return report
    raise AssertionError("no sample of that kind")


def _named_by(report: dict[str, Any], revision: int) -> dict[str, Any]:
    """What B sends: A's report as its own, named, next revision."""
    taken = copy.deepcopy(report)
    taken["revision"] = revision
    named = _report(99, anonymous=False)
    taken["reporter"] = named["reporter"]
    taken["narrative"] = "Taken over by another reporter."
    return validate_report(taken).export()


def _held(server: RunningServer, report_id: str) -> store.StoredReport:
    with server.db.reader() as tx:
        return store.get_report(tx, report_id)


def _sent_by_a(session: Session, server: RunningServer, report: dict[str, Any]) -> None:
    session.add_reports([report], submit=True)
    syncing.login(session, _settings(server), "nurse1", PASSWORD)
    summary = syncing.sync(session)
    assert (summary.submitted, summary.needs_attention) == (1, 0)


def _refused(session: Session, report_id: str) -> str:
    summary = session.store.summary(report_id)
    assert summary is not None and summary.state == "needs_attention"
    attention = session.store.attention(report_id)
    assert attention is not None
    outcome, errors = attention
    assert outcome == "rejected"
    return " ".join(str(e.get("message")) for e in errors)


def test_another_reporter_cannot_take_over_an_anonymous_report(
    session: Session, other: Session, server: RunningServer
) -> None:
    report = _report(1, anonymous=True)
    _sent_by_a(session, server, report)
    server.set_status(report["id"], "more_info_requested", note="Which pump model?")

    # B knows the UUID and sends revision 2 as a named report, through the real client.
    other.add_reports([_named_by(report, 2)], submit=True)
    summary = syncing.sync(other)
    assert (summary.submitted, summary.needs_attention) == (0, 1)
    reason = _refused(other, report["id"])
    assert "Taken over" not in reason and report["id"] not in reason  # no input repeated

    held = _held(server, report["id"])
    assert (held.latest_revision, held.is_anonymous, held.submitter_id) == (1, True, None)
    # B cannot read A's status (nor the PSO's note) by the UUID either.
    assert other.account.server_status(report["id"]) is None

    # A still follows its report, and A alone can revise it.
    syncing.sync(session)
    followed = session.account.server_status(report["id"])
    assert followed is not None and (followed.status, followed.note) == (
        "more_info_requested",
        "Which pump model?",
    )
    revised = dict(report, revision=2, narrative=report["narrative"] + " The pump was a model X.")
    session.add_reports([validate_report(revised).export()], submit=True)
    summary = syncing.sync(session)
    assert (summary.submitted, summary.needs_attention) == (1, 0)
    assert _held(server, report["id"]).latest_revision == 2
    server.set_status(report["id"], "under_review")
    syncing.sync(session)
    assert session.account.server_status(report["id"]).status == "under_review"  # type: ignore[union-attr]


def test_another_reporter_cannot_revise_a_named_report_nor_replay_its_revisions(
    session: Session, other: Session, server: RunningServer
) -> None:
    report = _report(2, anonymous=False)
    _sent_by_a(session, server, report)
    # B replays A's exact revision 1, and sends a revision 2 of its own.
    other.add_reports([report], submit=True)
    syncing.sync(other)
    _refused(other, report["id"])
    other_revision = dict(copy.deepcopy(report), revision=3, narrative="Changed by another reporter.")
    other.add_reports([validate_report(other_revision).export()], submit=True)
    syncing.sync(other)
    held = _held(server, report["id"])
    assert held.latest_revision == 1 and held.submitter_id is not None
    syncing.sync(session)
    assert session.account.server_status(report["id"]) is not None
    assert other.account.server_status(report["id"]) is None


def test_a_risk_manager_does_not_revise_someone_elses_report(
    session: Session, pso_home: Path, memory_keyring: MemoryKeyring, server: RunningServer
) -> None:
    report = _report(3, anonymous=False)
    _sent_by_a(session, server, report)
    server.add_user("manager", OTHER_PASSWORD, role="risk_manager")
    with open_session(pso_home, memory_keyring, "manager") as manager:
        syncing.login(manager, _settings(server), "manager", OTHER_PASSWORD)
        manager.add_reports([_named_by(report, 2)], submit=True)
        syncing.sync(manager)
        _refused(manager, report["id"])
        # The manager still sees the report's status: review goes through review records, not new versions.
        assert manager.account.server_status(report["id"]) is not None
    assert _held(server, report["id"]).latest_revision == 1


def test_the_owner_cannot_change_whether_a_report_is_anonymous(session: Session, server: RunningServer) -> None:
    anonymous = _report(4, anonymous=True)
    named = _report(5, anonymous=False)
    _sent_by_a(session, server, anonymous)
    session.add_reports([named], submit=True)
    syncing.sync(session)
    session.add_reports([_named_by(anonymous, 2)], submit=True)
    unnamed = dict(copy.deepcopy(named), revision=2, reporter={"anonymous": True})
    session.add_reports([validate_report(unnamed).export()], submit=True)
    syncing.sync(session)
    assert "anonymous" in _refused(session, anonymous["id"])
    assert "named" in _refused(session, named["id"])
    assert _held(server, anonymous["id"]).is_anonymous and not _held(server, named["id"]).is_anonymous


def test_the_key_is_kept_only_in_the_profile_and_only_hashed_on_the_server(
    session: Session, server: RunningServer
) -> None:
    report = _report(6, anonymous=True)
    _sent_by_a(session, server, report)
    key = session.store.owner_keys([report["id"]])[report["id"]]
    assert len(key) >= 43
    with server.db.reader() as tx:
        (stored,) = tx.one("SELECT owner_key_hash FROM reports WHERE id = ?", (report["id"],))
        bodies = tx.all("SELECT body FROM report_revisions WHERE report_id = ?", (report["id"],))
    assert stored and key not in stored and all(key not in body for (body,) in bodies)


# --- issue 9, item 7: one person cannot lock out a hospital (the real client's sign-in) ----------------------


def test_made_up_sign_ins_from_the_same_address_do_not_lock_out_a_known_device(
    session: Session, server: RunningServer, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    import requests

    syncing.login(session, _settings(server), "nurse1", PASSWORD)  # this device signs in once: now it is known
    device = session.account.device_token(server.base_url)
    assert device and device not in repr(session.account.get())
    with requests.Session() as attacker:  # the same address (the hospital's NAT): loopback here
        attacker.trust_env = False
        attacker.verify = str(server.ca_path)
        codes = [
            attacker.post(
                f"{server.base_url}/api/v1/auth/login",
                json={"username": f"made-up-{n}", "password": "not the password"},
                timeout=30,
            ).status_code
            for n in range(25)
        ]
    assert codes.count(401) == 20 and codes.count(429) == 5
    # The known account on its known device signs in at once, through the real client; the token stays.
    syncing.login(session, _settings(server), "nurse1", PASSWORD)
    assert session.account.device_token(server.base_url) == device
    assert syncing.sync(session).problem is None
    # An unknown device (a new profile, another account) behind that address is held back.
    server.add_user("nurse3", OTHER_PASSWORD)
    with open_session(pso_home, memory_keyring, "nurse3") as newcomer, pytest.raises(SyncError) as refused:
        syncing.login(newcomer, _settings(server), "nurse3", OTHER_PASSWORD)
    assert "Too many failed sign-ins" in str(refused.value)
