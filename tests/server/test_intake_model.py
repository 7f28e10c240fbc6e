"""Property test: any sequence of sends, split into any batches, gets the outcomes a simple model predicts,
and the server ends up holding exactly the model's revisions."""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pso_desktop.domain.samples import sample_report
from pso_server import store
from pso_server.practice import RunningServer
from tests.server.support import Api

# One send: (which of 3 reports, revision 1-4, which of 2 bodies).
Send = tuple[int, int, int]
sends = st.tuples(st.integers(0, 2), st.integers(1, 4), st.integers(0, 1))
batches = st.lists(st.lists(sends, min_size=1, max_size=6), min_size=1, max_size=5)


def _expected(batch_list: list[list[Send]]) -> tuple[list[list[str]], dict[tuple[int, int], int], dict[int, int]]:
    """The model: held (report, revision) -> body, newest revision per report, and each send's status.
    Within a batch the server stores in (id, revision) order; equal keys keep the order sent."""
    held: dict[tuple[int, int], int] = {}
    latest: dict[int, int] = {}
    answers: list[list[str]] = []
    for batch in batch_list:
        statuses = [""] * len(batch)
        for index in sorted(range(len(batch)), key=lambda i: (batch[i][0], batch[i][1])):
            report, revision, body = batch[index]
            if report not in latest:
                status = "created"
            elif (report, revision) in held:
                status = "duplicate" if held[(report, revision)] == body else "conflict"
            elif revision < latest[report]:
                status = "stale"
            else:
                status = "updated"
            if status in ("created", "updated"):
                held[(report, revision)] = body
                latest[report] = revision
            statuses[index] = status
        answers.append(statuses)
    return answers, held, latest


def _wire(base: dict[str, Any], report_id: str, revision: int, body: int) -> dict[str, Any]:
    wire = copy.deepcopy(base)
    wire["id"] = report_id
    wire["revision"] = revision
    wire["narrative"] = f"{base['narrative']} Version {body}."
    return wire


def test_any_sequence_of_sends_matches_the_model(api: Api, server: RunningServer) -> None:
    token = api.user("nurse1")
    rng = random.Random(5)
    bases = [sample_report(rng, n) for n in range(3)]

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batch_list=batches)
    def run(batch_list: list[list[Send]]) -> None:
        # Fresh reports per example; sorted so that index order is id order, as the model assumes.
        ids = sorted(str(uuid.uuid4()) for _ in range(3))
        answers, held, latest = _expected(batch_list)
        for batch, expected in zip(batch_list, answers, strict=True):
            wires = [_wire(bases[r], ids[r], rev, body) for r, rev, body in batch]
            results = api.batch(token, wires)
            assert [r["status"] for r in results] == expected
            assert [(r["id"], r["revision"]) for r in results] == [(w["id"], w["revision"]) for w in wires]
        with server.db.reader() as tx:
            for report, revision in held:
                body = store.report_body(tx, ids[report], revision)
                assert body is not None and f"Version {held[(report, revision)]}." in body
            for report, newest in latest.items():
                assert store.get_report(tx, ids[report]).latest_revision == newest
            for report in range(3):
                revisions = tx.all("SELECT revision FROM report_revisions WHERE report_id = ?", (ids[report],))
                assert {r[0] for r in revisions} == {rev for (rep, rev) in held if rep == report}

    run()
