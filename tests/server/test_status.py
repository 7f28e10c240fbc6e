"""Status feed, status changes by risk managers, permission boundaries and reference data."""

from __future__ import annotations

import random
import uuid
from typing import Any

from pso_desktop.domain import CURRENT_FORM_VERSION
from pso_desktop.domain.samples import sample_report
from tests.server.support import Api, ServerFactory

LOOKUP = "/api/v1/reports/status/lookup"


def _reports(count: int, seed: int, *, anonymous: bool = False) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    found: list[dict[str, Any]] = []
    while len(found) < count:
        report = sample_report(rng, len(found))
        if bool(report["reporter"].get("anonymous")) == anonymous:
            found.append(report)
    return found


def _set_status(api: Api, token: str, report_id: str, status: str, note: str | None = None) -> Any:
    return api.post(f"/api/v1/reports/{report_id}/status", token, json={"status": status, "note": note})


def test_a_reporter_sees_the_received_status_of_their_own_reports_only(api: Api) -> None:
    alice = api.user("alice")
    bob = api.user("bob")
    mine = _reports(2, seed=1)
    api.batch(alice, mine)
    api.batch(bob, _reports(1, seed=2))
    feed = api.statuses(alice)
    assert sorted(c["id"] for c in feed["changes"]) == sorted(r["id"] for r in mine)
    assert {c["status"] for c in feed["changes"]} == {"received"}
    assert all(c["server_ref"].startswith("PSO-") for c in feed["changes"])


def test_the_cursor_returns_only_later_changes(api: Api) -> None:
    nurse = api.user("nurse1")
    manager = api.user("manager", role="risk_manager")
    (report,) = _reports(1, seed=3)
    api.batch(nurse, [report])
    first = api.statuses(nurse)
    assert len(first["changes"]) == 1
    assert api.statuses(nurse, first["cursor"])["changes"] == []
    changed = _set_status(api, manager, report["id"], "more_info_requested", "Which pump model was it?")
    assert changed.status_code == 200
    later = api.statuses(nurse, first["cursor"])
    assert [(c["status"], c["note"]) for c in later["changes"]] == [
        ("more_info_requested", "Which pump model was it?")
    ]
    assert api.statuses(nurse, later["cursor"])["changes"] == []


def test_a_risk_manager_sees_their_facility_only(api: Api) -> None:
    nurse = api.user("nurse1")
    elsewhere_nurse = api.user("nurse9", facility="Other Hospital")
    manager = api.user("manager", role="risk_manager")
    ours = _reports(2, seed=4) + _reports(1, seed=5, anonymous=True)
    api.batch(nurse, ours)
    api.batch(elsewhere_nurse, _reports(2, seed=6))
    seen = {c["id"] for c in api.statuses(manager)["changes"]}
    assert seen == {r["id"] for r in ours}


def test_anonymous_reports_are_not_in_the_reporters_feed_but_can_be_looked_up(api: Api) -> None:
    nurse = api.user("nurse1")
    other = api.user("nurse9", facility="Other Hospital")
    colleague = api.user("nurse2")
    manager = api.user("manager", role="risk_manager")
    (anonymous,) = _reports(1, seed=7, anonymous=True)
    key = "s" * 43
    api.batch(nurse, [anonymous], {anonymous["id"]: key})
    assert api.statuses(nurse)["changes"] == []
    found = api.post(
        LOOKUP, nurse, json={"ids": [anonymous["id"], str(uuid.uuid4())], "owner_keys": {anonymous["id"]: key}}
    )
    assert found.status_code == 200
    assert [(s["id"], s["status"]) for s in found.json()["statuses"]] == [(anonymous["id"], "received")]
    # Without its key (or with another) the UUID alone shows nothing, at the facility or elsewhere.
    for who, keys in ((nurse, None), (colleague, None), (colleague, {anonymous["id"]: "x" * 43}), (other, None)):
        body: dict[str, Any] = {"ids": [anonymous["id"]]}
        if keys:
            body["owner_keys"] = keys
        assert api.post(LOOKUP, who, json=body).json()["statuses"] == []
    assert len(api.post(LOOKUP, manager, json={"ids": [anonymous["id"]]}).json()["statuses"]) == 1


def test_a_reporter_cannot_read_another_reporters_statuses_by_id(api: Api) -> None:
    alice = api.user("alice")
    bob = api.user("bob")
    (named,) = _reports(1, seed=8)
    api.batch(alice, [named])
    assert api.post(LOOKUP, bob, json={"ids": [named["id"]]}).json()["statuses"] == []
    assert len(api.post(LOOKUP, alice, json={"ids": [named["id"]]}).json()["statuses"]) == 1


def test_only_a_risk_manager_of_the_facility_can_change_a_status(api: Api) -> None:
    nurse = api.user("nurse1")
    manager = api.user("manager", role="risk_manager")
    elsewhere = api.user("manager9", role="risk_manager", facility="Other Hospital")
    (report,) = _reports(1, seed=9)
    api.batch(nurse, [report])
    assert _set_status(api, nurse, report["id"], "closed").status_code == 403
    assert _set_status(api, elsewhere, report["id"], "closed").status_code == 404
    assert _set_status(api, manager, str(uuid.uuid4()), "closed").status_code == 404
    done = _set_status(api, manager, report["id"], "closed", "Reviewed at the safety huddle.")
    assert done.status_code == 200
    assert done.json()["status"] == "closed" and done.json()["id"] == report["id"]
    assert api.statuses(nurse)["changes"][-1]["status"] == "closed"


def test_a_status_set_by_the_pso_administrator_reaches_the_reporter(api: Api) -> None:
    nurse = api.user("nurse1")
    (report,) = _reports(1, seed=10)
    (result,) = api.batch(nurse, [report])
    api.server.set_status(result["server_ref"], "under_review")
    assert [c["status"] for c in api.statuses(nurse)["changes"]] == ["received", "under_review"]


def test_an_unknown_cursor_is_refused_plainly(api: Api) -> None:
    nurse = api.user("nurse1")
    response = api.get("/api/v1/reports/status", nurse, params={"since": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_cursor"


def test_the_feed_pages_with_has_more(make_server: ServerFactory) -> None:
    with make_server(status_page_size=4) as server, Api(server) as api:
        nurse = api.user("nurse1")
        reports = _reports(10, seed=11)
        api.batch(nurse, reports)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = api.statuses(nurse, cursor)
            pages += 1
            seen += [c["id"] for c in page["changes"]]
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        assert pages == 3
        assert sorted(seen) == sorted(r["id"] for r in reports)


def test_reference_data_lists_units_and_the_form_version(api: Api) -> None:
    nurse = api.user("nurse1")
    response = api.get("/api/v1/reference", nurse)
    assert response.status_code == 200
    body = response.json()
    assert body["form_catalogue_version"] == CURRENT_FORM_VERSION
    assert CURRENT_FORM_VERSION in body["form_versions"]
    codes = {u["code"] for u in body["units"]}
    # Every unit the realistic sample reports use is offered.
    rng = random.Random(12)
    assert {sample_report(rng, n)["location"]["unit"] for n in range(200)} <= codes
