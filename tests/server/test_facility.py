"""The facility endpoints (issue 12) on each backend (SQLite; PostgreSQL when PSO_TEST_POSTGRES_URL is set):
who gets which reports, review records accepted, kept as conflicts or appended, and concurrent writers."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_server.store import Database
from tests.server.support import Api, ServerFactory
from tests.support.clock import FakeClock


def _report(seed: int, *, anonymous: bool | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    for i in range(1000):
        report = validate_report(sample_report(rng, i)).export()
        if anonymous is None or bool(report["reporter"].get("anonymous")) == anonymous:
            return report
    raise AssertionError("no sample of that kind")


def _all(api: Api, token: str, path: str, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = api.get(path, token, params={"since": cursor} if cursor else None)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += page[key]
        cursor = page["cursor"]
        if not page["has_more"]:
            return found


def _field(report_id: str, field: str, value: Any, base: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "report_id": report_id,
        "kind": "field",
        "field": field,
        "value": value,
        "base_version": base,
    }


def test_risk_managers_get_their_facility_only(api: Api) -> None:
    north = api.user("rm-north", role="risk_manager", facility="North")
    south = api.user("rm-south", role="risk_manager", facility="South")
    nurse_n = api.user("nurse-n", facility="North")
    nurse_s = api.user("nurse-s", facility="South")
    mine = [_report(1), _report(2, anonymous=True)]
    theirs = [_report(3)]
    assert [r["status"] for r in api.batch(nurse_n, mine)] == ["created", "created"]
    assert [r["status"] for r in api.batch(nurse_s, theirs)] == ["created"]
    got = _all(api, north, "/api/v1/facility/reports", "reports")
    assert {r["id"] for r in got} == {r["id"] for r in mine}
    anonymous = next(r for r in got if r["id"] == mine[1]["id"])
    assert set(anonymous["report"]["reporter"]) & {"name", "telephone", "email", "job"} == set()
    assert {r["id"] for r in _all(api, south, "/api/v1/facility/reports", "reports")} == {theirs[0]["id"]}
    for path in ("/api/v1/facility/reports", "/api/v1/facility/reviews"):
        assert api.get(path, nurse_n).status_code == 403
    refused = api.post(
        "/api/v1/facility/reviews", nurse_n, json={"records": [_field(mine[0]["id"], "state", "new", 0)]}
    )
    assert refused.status_code == 403
    # Another facility's report cannot be reviewed, and says nothing about it.
    answer = api.post(
        "/api/v1/facility/reviews", south, json={"records": [_field(mine[0]["id"], "state", "closed", 0)]}
    ).json()
    assert answer["results"][0]["outcome"] == "rejected"
    assert _all(api, north, "/api/v1/facility/reviews", "records") == []


def test_concurrent_changes_of_one_field_all_kept(api: Api) -> None:
    """Eight risk managers change the same field from version 0 at once: one is accepted, seven are kept as
    conflicts; the versions are 1..8 with no gap or repeat (the check and the update are one step)."""
    tokens = [api.user(f"rm{i}", role="risk_manager", facility="North") for i in range(8)]
    nurse = api.user("nurse", facility="North")
    report = _report(7)
    assert [r["status"] for r in api.batch(nurse, [report])] == ["created"]
    states = ["in_review", "waiting_for_information", "closed", "new"] * 2
    answers: list[dict[str, Any]] = []

    def send(token: str, state: str) -> None:
        body = {"records": [_field(report["id"], "state", state, 0)]}
        answers.append(api.post("/api/v1/facility/reviews", token, json=body).json()["results"][0])

    threads = [threading.Thread(target=send, args=pair) for pair in zip(tokens, states, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a["outcome"] for a in answers) == ["accepted"] + ["conflict"] * 7
    assert sorted(a["record"]["version"] for a in answers) == list(range(1, 9))
    feed = _all(api, tokens[0], "/api/v1/facility/reviews", "records")
    assert sorted(r["event_id"] for r in feed) == sorted(a["event_id"] for a in answers)
    # Re-sent (a lost answer): answered as held, nothing added.
    again = api.post("/api/v1/facility/reviews", tokens[0], json={"records": [answers[0]["record"]]})
    assert again.status_code == 422  # the held record's shape is not a request; send the request itself
    first = answers[0]["record"]
    resend = {k: first[k] for k in ("event_id", "report_id", "kind", "field", "value", "base_version")}
    held = api.post("/api/v1/facility/reviews", tokens[0], json={"records": [resend]}).json()["results"][0]
    assert (held["outcome"], held["record"]["seq"]) == (first["outcome"], first["seq"])
    assert len(_all(api, tokens[0], "/api/v1/facility/reviews", "records")) == 8
    # Notes and actions append; a bad value is refused with a sentence.
    note = {"event_id": str(uuid.uuid4()), "report_id": report["id"], "kind": "note", "value": {"text": "Seen."}}
    bad = {**_field(report["id"], "state", "finished", 8)}
    results = api.post("/api/v1/facility/reviews", tokens[1], json={"records": [note, bad]}).json()["results"]
    assert [r["outcome"] for r in results] == ["appended", "rejected"]
    assert "review state" in results[1]["message"]


def test_a_database_from_before_the_facility_feed_is_upgraded_with_its_reports_in_it(
    make_server: ServerFactory, db_url: str, clock: FakeClock
) -> None:
    """Schema version 6: the revisions held before it enter the facility feed, once."""
    reports = [_report(40), _report(41), _report(42)]
    with make_server() as server, Api(server) as api:
        nurse = api.user("nurse", facility="North")
        for report in reports:  # one batch each: three arrival times
            clock.advance(60)
            api.batch(nurse, [report])
    db = Database.open(db_url)
    with db.transaction() as tx:  # back to schema version 5 exactly
        for table in ("revision_feed", "review_events", "review_fields"):
            tx.execute(f"DROP TABLE {table}")
        tx.execute("UPDATE schema_meta SET value = '5' WHERE key = 'version'")
    db.close()
    with make_server() as server, Api(server) as api:
        manager = api.user("rm", role="risk_manager", facility="North")
        got = _all(api, manager, "/api/v1/facility/reports", "reports")
        # (in arrival order; an anonymous report keeps only its arrival day, so it comes before that day's others)
        assert sorted(r["id"] for r in got) == sorted(r["id"] for r in reports)
    db = Database.open(db_url)  # opened again: nothing is added twice
    with db.reader() as tx:
        assert tx.one("SELECT COUNT(*) FROM revision_feed") == (3,)
    db.close()
