"""Batch intake over real TLS: every outcome, permanent dedupe under concurrency, no mutation on conflict,
one transaction per batch, and anonymous reports stored without their reporter."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pso_desktop.domain import ReportInvalid, content_hash, validate_report
from pso_desktop.domain.samples import sample_report
from pso_server import store
from pso_server.practice import RunningServer
from pso_server.store import Database
from tests.server.support import Api, ServerFactory


def _named(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    while True:
        report = sample_report(rng, seed)
        if not report["reporter"].get("anonymous"):
            return report


def _anonymous(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    while True:
        report = sample_report(rng, seed)
        if report["reporter"].get("anonymous"):
            return report


def _revised(report: dict[str, Any], revision: int, narrative: str | None = None) -> dict[str, Any]:
    changed = copy.deepcopy(report)
    changed["revision"] = revision
    changed["narrative"] = narrative or f"{report['narrative']} Revision {revision}."
    return changed


def _stored(server: RunningServer, report_id: str, revision: int) -> dict[str, Any] | None:
    with server.db.reader() as tx:
        body = store.report_body(tx, report_id, revision)
    return None if body is None else json.loads(body)


def test_first_send_creates_and_resend_is_a_duplicate(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    report = _named(1)
    (created,) = api.batch(token, [report])
    assert created["status"] == "created" and created["errors"] == []
    assert created["id"] == report["id"] and created["revision"] == 1
    assert created["server_ref"].startswith("PSO-")
    (again,) = api.batch(token, [report])
    assert again == {**created, "status": "duplicate"}
    stats = server.stats()
    assert (stats["reports"], stats["revisions"], stats["duplicates_refused"]) == (1, 1, 1)


def test_the_stored_body_is_the_validated_canonical_report(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    report = _named(2)
    api.batch(token, [report])
    wire = validate_report(report).export()
    assert _stored(server, report["id"], 1) == wire
    with server.db.reader() as tx:
        stored_hash = tx.one("SELECT content_hash FROM report_revisions WHERE report_id = ?", (report["id"],))
    assert stored_hash == (content_hash(wire),)


def test_same_report_sent_ten_times_at_once_is_stored_once(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    report = _named(3)

    def send(_: int) -> dict[str, Any]:
        with Api(server) as own:
            return own.batch(token, [report])[0]

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(send, range(10)))
    assert sorted(r["status"] for r in results) == ["created"] + ["duplicate"] * 9
    assert len({r["server_ref"] for r in results}) == 1
    stats = server.stats()
    assert (stats["reports"], stats["revisions"], stats["duplicates_refused"]) == (1, 1, 9)


def test_changed_body_with_the_same_revision_is_a_conflict_and_changes_nothing(
    api: Api, server: RunningServer
) -> None:
    token = api.user("nurse1")
    report = _named(4)
    (created,) = api.batch(token, [report])
    tampered = _revised(report, 1, "A different account of the event, sent under the same revision.")
    (conflict,) = api.batch(token, [tampered])
    assert conflict["status"] == "conflict"
    assert conflict["server_ref"] == created["server_ref"]
    assert _stored(server, report["id"], 1) == validate_report(report).export()
    assert server.stats()["conflicts"] == 1
    assert server.stats()["revisions"] == 1


def test_newer_revision_updates_and_keeps_the_case_reference(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    report = _named(5)
    (created,) = api.batch(token, [report])
    (updated,) = api.batch(token, [_revised(report, 2)])
    assert updated["status"] == "updated"
    assert updated["server_ref"] == created["server_ref"]
    with server.db.reader() as tx:
        assert store.get_report(tx, report["id"]).latest_revision == 2
        assert store.get_report(tx, created["server_ref"]).id == report["id"]


def test_an_older_revision_never_overwrites_a_newer_one(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    report = _named(6)
    api.batch(token, [_revised(report, 3)])
    (stale,) = api.batch(token, [_revised(report, 2)])
    assert stale["status"] == "stale" and stale["errors"] == []
    assert _stored(server, report["id"], 2) is None
    with server.db.reader() as tx:
        assert store.get_report(tx, report["id"]).latest_revision == 3
    assert _stored(server, report["id"], 3)["narrative"].endswith("Revision 3.")  # type: ignore[index]


def test_racing_revisions_leave_the_newest(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    report = _named(7)
    revisions = [_revised(report, n) for n in range(1, 9)]
    random.Random(7).shuffle(revisions)

    def send(item: dict[str, Any]) -> str:
        with Api(server) as own:
            return str(own.batch(token, [item])[0]["status"])

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, revisions))
    assert statuses.count("created") == 1
    assert set(statuses) <= {"created", "updated", "stale"}
    with server.db.reader() as tx:
        assert store.get_report(tx, report["id"]).latest_revision == 8


def test_a_bad_report_is_rejected_alone_with_the_clients_wording(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    good = _named(8)
    bad = _named(9)
    bad["narrative"] = "   "
    bad["patient"]["mrn"] = "x" * 40
    results = api.batch(token, [good, bad])
    assert [r["status"] for r in results] == ["created", "rejected"]
    with pytest.raises(ReportInvalid) as expected:
        validate_report(bad)
    assert results[1]["errors"] == expected.value.as_json()
    assert results[1]["id"] == bad["id"] and results[1]["server_ref"] is None
    assert server.stats()["reports"] == 1 and server.stats()["rejected"] == 1


def test_an_odd_value_is_rejected_plainly_without_failing_the_batch(
    api: Api, server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = api.user("nurse1")
    rng = random.Random(1)
    odd = next(r for n in range(100) if "medication" in (r := sample_report(rng, n)).get("modules", {}))
    odd["modules"]["medication"]["characterisation"] = {"patient": "Jane Roe"}  # an object where a code belongs
    with pytest.raises(ReportInvalid):
        validate_report(copy.deepcopy(odd))
    results = api.batch(token, [_named(12), odd])
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["id"] == odd["id"] and results[1]["errors"][0]["message"]
    assert "Jane Roe" not in json.dumps(results) and "Jane Roe" not in caplog.text
    assert server.stats()["reports"] == 1


def test_a_bug_in_the_shared_rules_rejects_only_that_report(
    api: Api, server: RunningServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server runs in this process, so the domain's validate_report can be made to fail like a bug would."""
    from pso_server import intake

    real = intake.validate_report

    def buggy(raw: Any, **kwargs: Any) -> Any:
        if raw.get("narrative", "").startswith("TRIGGER"):
            raise TypeError(f"unhashable value near {raw['narrative']}")  # a bug's text may quote content
        return real(raw, **kwargs)

    monkeypatch.setattr(intake, "validate_report", buggy)
    token = api.user("nurse1")
    odd = sample_report(random.Random(2), 0) | {"narrative": "TRIGGER Jane Roe fell"}
    results = api.batch(token, [_named(12), odd])
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["errors"][0]["message"]
    assert "Jane Roe" not in json.dumps(results) and "Jane Roe" not in caplog.text
    assert server.stats()["reports"] == 1


def test_a_malformed_request_is_answered_without_echoing_what_was_sent(api: Api) -> None:
    token = api.user("nurse1")
    phi = "Jane Roe MRN 99887766"
    bodies = [
        {"reports": [], phi: 1},  # an unknown field named by what the client sent
        {"reports": phi},
        {"reports": [phi]},
    ]
    for body in bodies:
        response = api.post("/api/v1/reports/batch", token, json=body)
        assert response.status_code == 422
        assert response.json()["detail"] and phi not in response.text
    truncated = api.post(
        "/api/v1/reports/batch",
        token,
        data=json.dumps({"reports": [{"narrative": phi}]}).encode()[:-3],
        headers={"Content-Type": "application/json"},
    )
    assert truncated.status_code == 422 and "Jane" not in truncated.text


def test_a_report_without_an_id_is_answered_in_its_place(api: Api) -> None:
    token = api.user("nurse1")
    results = api.batch(token, [{"narrative": "no id"}, _named(10)])
    assert results[0]["status"] == "rejected" and results[0]["id"] is None
    assert any(e["field"] == "id" for e in results[0]["errors"])
    assert results[1]["status"] == "created"


def test_results_come_back_in_the_order_sent(api: Api) -> None:
    token = api.user("nurse1")
    rng = random.Random(11)
    reports = [sample_report(rng, n) for n in range(40)]
    results = api.batch(token, reports)
    assert [r["id"] for r in results] == [r["id"] for r in reports]
    assert {r["status"] for r in results} == {"created"}
    assert len({r["server_ref"] for r in results}) == 40


def _run_sql(db_url: str, *statements: str) -> None:
    """Runs DDL straight on the test database, beside the server (for fault injection)."""
    if db_url.startswith("sqlite"):
        with closing(sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)) as conn:
            for statement in statements:
                conn.execute(statement)
    else:
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def _fail_inserts_of(db_url: str, report_id: str) -> None:
    if db_url.startswith("sqlite"):
        _run_sql(
            db_url,
            "CREATE TRIGGER fail_insert BEFORE INSERT ON report_revisions "
            f"WHEN NEW.report_id = '{report_id}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
    else:
        _run_sql(
            db_url,
            "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
            "CREATE TRIGGER fail_insert BEFORE INSERT ON report_revisions FOR EACH ROW "
            f"WHEN (NEW.report_id = '{report_id}') EXECUTE FUNCTION fail_insert()",
        )


def test_one_batch_is_one_transaction(api: Api, server: RunningServer, db_url: str) -> None:
    token = api.user("nurse1")
    reports = [_named(n) for n in (12, 13, 14)]
    _fail_inserts_of(db_url, reports[2]["id"])
    response = api.post("/api/v1/reports/batch", token, json={"reports": reports})
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert server.stats()["reports"] == 0 and server.stats()["revisions"] == 0
    _run_sql(db_url, "DROP TRIGGER fail_insert" + ("" if db_url.startswith("sqlite") else " ON report_revisions"))
    assert {r["status"] for r in api.batch(token, reports)} == {"created"}


def test_anonymous_reports_keep_no_reporter_identity(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    report = _anonymous(15)
    report["reporter"] = {"anonymous": True}
    (created,) = api.batch(token, [report])
    assert created["status"] == "created"
    assert _stored(server, report["id"], 1)["reporter"] == {"anonymous": True}  # type: ignore[index]
    with server.db.reader() as tx:
        submitter, created_at = tx.one(
            "SELECT submitter_id, created_at FROM reports WHERE id = ?", (report["id"],)
        )
        (received_at,) = tx.one("SELECT received_at FROM report_revisions WHERE report_id = ?", (report["id"],))
    assert submitter is None
    # Only the day of arrival is kept, so the arrival cannot be matched to this account's other activity.
    assert created_at % 86400 == 0 and received_at % 86400 == 0


def test_named_reports_record_their_submitter(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    report = _named(16)
    api.batch(token, [report])
    with server.db.reader() as tx:
        (submitter,) = tx.one("SELECT submitter_id FROM reports WHERE id = ?", (report["id"],))
        (user_id,) = tx.one("SELECT id FROM users WHERE username = 'nurse1'")
    assert submitter == user_id


def test_another_account_cannot_revise_my_report(api: Api, server: RunningServer) -> None:
    mine = api.user("nurse1")
    other = api.user("nurse2")
    manager = api.user("manager", role="risk_manager")
    elsewhere = api.user("manager2", role="risk_manager", facility="Other Hospital")
    report = _named(17)
    (created,) = api.batch(mine, [report])
    refusals = []
    for who in (other, elsewhere, manager):  # a facility's risk manager reviews; it does not send new versions
        (refused,) = api.batch(who, [_revised(report, 2)])
        assert refused["status"] == "rejected" and refused["server_ref"] is None
        assert refused["errors"][0]["field"] == "id"
        refusals.append(refused)
        (replayed,) = api.batch(who, [report])  # not even the exact revision 1: no case number, no 'duplicate'
        assert replayed["status"] == "rejected" and replayed["server_ref"] is None
    assert refusals[0] == refusals[1] == refusals[2]  # the same words whatever the reason: nothing to tell apart
    assert _stored(server, report["id"], 2) is None
    (mine_again,) = api.batch(mine, [_revised(report, 2)])
    assert mine_again["status"] == "updated" and mine_again["server_ref"] == created["server_ref"]


KEY = "k" * 43
OTHER_KEY = "o" * 43


def test_an_anonymous_report_is_revised_only_with_the_key_it_was_first_sent_with(
    api: Api, server: RunningServer
) -> None:
    first = api.user("nurse1")
    colleague = api.user("nurse2")
    manager = api.user("manager", role="risk_manager")
    report = _anonymous(18)
    (created,) = api.batch(first, [report], {report["id"]: KEY})
    assert created["status"] == "created"
    attempts = [
        (colleague, None),
        (colleague, {report["id"]: OTHER_KEY}),
        (manager, None),
        (manager, {report["id"]: OTHER_KEY}),
        (first, None),  # the account alone proves nothing: an anonymous report is linked to no account
        (first, {report["id"]: OTHER_KEY}),
    ]
    for who, keys in attempts:
        (refused,) = api.batch(who, [_revised(report, 2)], keys)
        assert (refused["status"], refused["server_ref"], refused["errors"][0]["field"]) == (
            "rejected",
            None,
            "id",
        )
    # The key proves ownership from any account of the facility (a clinician signed in on another account).
    (updated,) = api.batch(colleague, [_revised(report, 2)], {report["id"]: KEY})
    assert updated["status"] == "updated" and updated["server_ref"] == created["server_ref"]
    (duplicate,) = api.batch(first, [_revised(report, 2)], {report["id"]: KEY})
    assert duplicate["status"] == "duplicate"
    held = server.report(report["id"])
    assert (held.latest_revision, held.is_anonymous, held.submitter_id) == (2, True, None)


def test_an_anonymous_report_never_becomes_named_nor_a_named_one_anonymous(
    api: Api, server: RunningServer
) -> None:
    nurse = api.user("nurse1")
    anonymous, named = _anonymous(19), _named(20)
    api.batch(nurse, [anonymous, named], {anonymous["id"]: KEY, named["id"]: OTHER_KEY})
    as_named = _revised(anonymous, 2)
    as_named["reporter"] = named["reporter"]
    as_anonymous = _revised(named, 2)
    as_anonymous["reporter"] = {"anonymous": True}
    results = api.batch(nurse, [as_named, as_anonymous], {anonymous["id"]: KEY, named["id"]: OTHER_KEY})
    assert [(r["status"], r["errors"][0]["field"]) for r in results] == [("rejected", "reporter")] * 2
    assert "anonymously" in results[0]["errors"][0]["message"] and "named" in results[1]["errors"][0]["message"]
    assert server.report(anonymous["id"]).submitter_id is None and server.report(named["id"]).submitter_id


def test_owner_keys_are_kept_only_as_hashes_and_a_malformed_key_is_refused_without_echo(
    api: Api, server: RunningServer
) -> None:
    nurse = api.user("nurse1")
    report, odd = _anonymous(21), _anonymous(22)
    results = api.batch(nurse, [report, odd], {report["id"]: KEY, odd["id"]: "Jane Doe's key"})
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert "Jane" not in json.dumps(results)
    with server.db.reader() as tx:
        (stored,) = tx.one("SELECT owner_key_hash FROM reports WHERE id = ?", (report["id"],))
    assert stored == hashlib.sha256(KEY.encode()).hexdigest()
    for keys in ({"not a uuid": KEY}, {report["id"]: 12}, {report["id"]: None}, {"\ud800": KEY}):
        response = api.post(
            "/api/v1/reports/batch", nurse, json={"reports": [_revised(report, 2)], "owner_keys": keys}
        )
        assert response.status_code == 200
        assert response.json()["results"][0]["status"] == "rejected"


def test_anonymous_reports_held_without_a_key_cannot_be_claimed(api: Api, server: RunningServer) -> None:
    """Reports held before keys existed (or sent by an older client): the first key to come along must not
    claim them, or the attack would simply move to them."""
    first = api.user("nurse1")
    colleague = api.user("nurse2")
    report = _anonymous(23)
    api.batch(first, [report])  # no key
    for who in (first, colleague):
        (refused,) = api.batch(who, [_revised(report, 2)], {report["id"]: KEY})
        assert refused["status"] == "rejected"
        # An identical re-send (a client upgraded with it in flight) is still a harmless duplicate.
        (again,) = api.batch(who, [report], {report["id"]: KEY})
        assert again["status"] == "duplicate"
    assert server.report(report["id"]).latest_revision == 1


def test_a_database_from_before_owner_keys_is_upgraded_and_its_reports_keep_their_owners(
    make_server: ServerFactory, db_url: str
) -> None:
    named, anonymous = _named(24), _anonymous(25)
    with make_server() as server, Api(server) as api:
        nurse = api.user("nurse1")
        api.user("nurse2")
        api.batch(nurse, [named, anonymous])
    # Back to schema version 2 exactly: reports without owner_key_hash.
    db = Database.open(db_url)
    with db.transaction() as tx:
        tx.execute("ALTER TABLE reports DROP COLUMN owner_key_hash")
        tx.execute("UPDATE schema_meta SET value = '2' WHERE key = 'version'")
    db.close()
    with make_server() as server, Api(server) as api:
        nurse = api.login("nurse1")["access_token"]
        colleague = api.login("nurse2")["access_token"]
        with server.db.reader() as tx:
            assert tx.one("SELECT value FROM schema_meta WHERE key = 'version'") == (str(store.SCHEMA_VERSION),)
        (taken,) = api.batch(colleague, [_revised(named, 2)], {named["id"]: KEY})
        (claimed,) = api.batch(colleague, [_revised(anonymous, 2)], {anonymous["id"]: KEY})
        assert taken["status"] == claimed["status"] == "rejected"
        (mine,) = api.batch(nurse, [_revised(named, 2)], {named["id"]: KEY})
        assert mine["status"] == "updated"
        assert server.report(anonymous["id"]).latest_revision == 1


# --- nothing the client typed comes back, and no body gets a 500 (issue 9, item 3) ---------------------------

PATIENT = "Jane Roe MRN 99887766"


def test_typed_ids_field_names_and_form_versions_are_never_echoed_and_never_500(
    api: Api, server: RunningServer
) -> None:
    token = api.user("nurse1")
    good = _named(40)
    surrogate_id = _named(41) | {"id": "\ud800"}
    named_id = _named(42) | {"id": PATIENT}
    unknown_field = _named(43) | {PATIENT: "x"}
    nested_field = _named(44)
    nested_field["patient"] = {**nested_field.get("patient", {}), PATIENT: 1}
    odd_version = _named(45) | {"form_version": PATIENT}
    surrogate_key = _named(46) | {"\ud800": 1}
    batch = [good, surrogate_id, named_id, unknown_field, nested_field, odd_version, surrogate_key]
    response = api.post("/api/v1/reports/batch", token, json={"reports": batch})
    assert response.status_code == 200, response.status_code
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created"] + ["rejected"] * 6
    assert [r["id"] for r in results] == [good["id"], None, None] + [r["id"] for r in batch[3:]]
    assert "Jane" not in response.text and "\\ud800" not in response.text
    assert all(r["errors"] and all(e["message"] for e in r["errors"]) for r in results[1:])
    assert server.stats()["reports"] == 1
    # Sent again: the same answer (nothing half-stored by an earlier failure), still no 500.
    again = api.post("/api/v1/reports/batch", token, json={"reports": batch})
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] + ["rejected"] * 6


_CANARY = "Zqj"
_typed = st.builds(
    lambda a, b: f"{_CANARY}{a}{b}",
    st.text(alphabet=st.characters(codec=None), max_size=16),
    st.sampled_from(["", "\ud800", "x\udfff", " Jane Roe", "."]),
)


def test_fuzzed_ids_and_field_names_get_a_result_each_and_never_a_500(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    sent: list[int] = [0]

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        typed=_typed,
        where=st.sampled_from(["id", "key", "patient key", "module", "answer key", "form_version"]),
    )
    def run(typed: str, where: str) -> None:
        sent[0] += 1
        good = _named(1000 + sent[0])
        good["id"] = str(uuid.uuid4())
        odd = _named(2000 + sent[0])
        odd["id"] = str(uuid.uuid4())
        if where == "id":
            odd["id"] = typed
        elif where == "key":
            odd[typed] = "x"
        elif where == "patient key":
            odd["patient"] = {**(odd.get("patient") or {}), typed: "x"}
        elif where == "module":
            odd.setdefault("modules", {})[typed] = {}
        elif where == "answer key":
            odd["modules"] = {**odd.get("modules", {}), "fall": {typed: "A15"}}
        else:
            odd["form_version"] = typed
        response = api.post("/api/v1/reports/batch", token, json={"reports": [good, odd]})
        assert response.status_code == 200, (where, response.status_code)
        results = response.json()["results"]
        assert [r["status"] for r in results] == ["created", "rejected"], where
        assert _CANARY not in response.text and "\\ud8" not in response.text.lower(), where

    run()
    assert server.stats()["reports"] == sent[0]
