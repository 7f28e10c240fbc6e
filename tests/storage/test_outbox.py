"""The outbox: claim → record → requeue, as unit tests and as a hypothesis model of the whole lifecycle."""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from pso_desktop.domain.wire import canonical_json
from pso_desktop.storage.database import open_database
from pso_desktop.storage.reports import STATES, ReportStore


def _report(text: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "revision": 1, "event_type": "incident", "categories": [], "narrative": text}


def test_claim_record_requeue(store: ReportStore) -> None:
    reports = [_report(f"report {i}") for i in range(6)]
    store.add_reports(reports, submit=True)

    batch = store.claim_batch(4, 10**6)
    assert [item.report_id for item in batch] == [r["id"] for r in reports[:4]]  # queue order
    assert batch[0].wire == reports[0] and batch[0].attempts == 1
    assert store.outbox_counts()["sending"] == 4

    store.record_results(
        [
            {"id": batch[0].report_id, "revision": 1, "status": "created", "server_ref": "PSO-1", "errors": []},
            {"id": batch[1].report_id, "revision": 1, "status": "duplicate", "server_ref": "PSO-2"},
            {"id": batch[2].report_id, "revision": 1, "status": "rejected", "errors": [{"field": "harm"}]},
        ]
    )
    counts = store.outbox_counts()
    assert (counts["submitted"], counts["needs_attention"], counts["sending"], counts["queued"]) == (2, 1, 1, 2)
    assert store.server_errors(batch[2].report_id) == [{"field": "harm"}]
    assert store.server_errors(batch[0].report_id) == []
    summary = {s.id: s for s in store.list_summaries()}
    assert summary[batch[0].report_id].server_ref == "PSO-1" and summary[batch[0].report_id].state == "submitted"

    # Replaying a checkpoint changes nothing: the entry is no longer "sending".
    store.record_results([{"id": batch[0].report_id, "revision": 1, "status": "conflict", "errors": ["x"]}])
    assert store.outbox_counts()["submitted"] == 2

    assert store.requeue_sending() == 1  # the crash-recovery path
    assert store.outbox_counts()["queued"] == 3
    again = store.claim_batch(10, 10**6)
    assert [item.report_id for item in again] == [batch[3].report_id, *(r["id"] for r in reports[4:])]
    assert again[0].attempts == 2


def test_claim_respects_the_byte_budget(store: ReportStore) -> None:
    reports = [_report("x" * 1000) for _ in range(5)]
    store.add_reports(reports, submit=True)
    size = len(canonical_json(reports[0]))
    assert [i.size_bytes for i in store.claim_batch(10, 3 * size + 10)] == [size] * 3
    # One report larger than the budget still goes out alone (the server's 413 decides), never none.
    assert len(store.claim_batch(10, 1)) == 1
    assert store.claim_batch(10, 10**6) and store.claim_batch(10, 10**6) == []
    with pytest.raises(ValueError):
        store.claim_batch(0, 100)


_SUCCESS = ["created", "duplicate", "updated", "stale"]
_FAILURE = ["conflict", "rejected"]


class OutboxModel(RuleBasedStateMachine):
    """Drafts, edits, submits, claims, results, requeues and deletes against a plain-Python model."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.conn = open_database(folder / f"{uuid.uuid4()}.db", os.urandom(32), create=True)
        self.store = ReportStore(self.conn)
        self.counter = itertools.count()
        self.content: dict[str, dict[str, Any]] = {}  # id -> current content (revision inside)
        self.draft: dict[str, bool] = {}  # id -> current revision not submitted yet
        self.frozen: dict[tuple[str, int], dict[str, Any]] = {}
        self.entries: dict[tuple[str, int], str] = {}  # (id, revision) -> outbox state
        self.order: list[tuple[str, int]] = []  # queue order

    def teardown(self) -> None:
        self.conn.close()

    def _ids(self, *, draft: bool | None = None) -> list[str]:
        return sorted(i for i in self.content if draft is None or self.draft[i] == draft)

    @rule()
    def create(self) -> None:
        number = next(self.counter)
        # Ids derived from the counter, not random: hypothesis replays draw from sorted id lists.
        report = {**_report(f"narrative {number}"), "id": str(uuid.UUID(int=number, version=4))}
        self.store.save_draft(report)
        self.content[report["id"]], self.draft[report["id"]] = report, True

    @precondition(lambda self: self.content)
    @rule(data=st.data())
    def edit(self, data: st.DataObject) -> None:
        report_id = data.draw(st.sampled_from(self._ids()))
        current = self.content[report_id]
        revision = current["revision"] if self.draft[report_id] else current["revision"] + 1
        edited = {**current, "narrative": f"edited {next(self.counter)}", "revision": revision}
        assert self.store.save_draft({**edited, "revision": 1}) == revision  # stored revision wins
        self.content[report_id], self.draft[report_id] = edited, True

    @precondition(lambda self: any(self.draft.values()))
    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from(self._ids(draft=True)), min_size=1, unique=True))
        self.store.submit(chosen)
        for report_id in chosen:
            key = (report_id, self.content[report_id]["revision"])
            self.frozen[key], self.entries[key], self.draft[report_id] = self.content[report_id], "queued", False
            self.order.append(key)

    @precondition(lambda self: self.content)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        report_id = data.draw(st.sampled_from(self._ids()))
        if any(key[0] == report_id for key in self.frozen):
            with pytest.raises(Exception, match="submitted"):
                self.store.delete(report_id)
            return
        self.store.delete(report_id)
        del self.content[report_id], self.draft[report_id]

    @rule(limit=st.integers(1, 5))
    def claim(self, limit: int) -> None:
        expected = [key for key in self.order if self.entries[key] == "queued"][:limit]
        items = self.store.claim_batch(limit, 10**9)
        assert [(i.report_id, i.revision) for i in items] == expected
        for item in items:
            assert item.wire == self.frozen[(item.report_id, item.revision)]  # exactly what was queued
            self.entries[(item.report_id, item.revision)] = "sending"

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def record(self, data: st.DataObject) -> None:
        keys = data.draw(st.lists(st.sampled_from(sorted(self.entries)), min_size=1, unique=True))
        results = []
        for report_id, revision in keys:
            status = data.draw(st.sampled_from(_SUCCESS + _FAILURE))
            results.append({"id": report_id, "revision": revision, "status": status, "errors": ["e"]})
            if self.entries[(report_id, revision)] == "sending":  # anything else is ignored
                self.entries[(report_id, revision)] = "submitted" if status in _SUCCESS else "needs_attention"
        self.store.record_results(results)

    @rule()
    def requeue(self) -> None:
        sending = [key for key, state in self.entries.items() if state == "sending"]
        assert self.store.requeue_sending() == len(sending)
        for key in sending:
            self.entries[key] = "queued"

    @invariant()
    def counts_match(self) -> None:
        expected = dict.fromkeys(STATES, 0)
        expected["draft"] = sum(self.draft.values())
        latest: dict[str, tuple[str, int]] = {}
        for key in self.order:
            latest[key[0]] = key
        for key in latest.values():
            expected[self.entries[key]] += 1
        assert self.store.outbox_counts() == expected

    @invariant()
    def list_matches(self) -> None:
        listed = {s.id: (s.revision, s.state) for s in self.store.list_summaries(limit=10_000)}
        expected = {}
        for report_id, content in self.content.items():
            revision = content["revision"]
            state = "draft" if self.draft[report_id] else self.entries[(report_id, revision)]
            expected[report_id] = (revision, state)
        assert listed == expected


def test_outbox_model(tmp_path: Path) -> None:
    run_state_machine_as_test(
        lambda: OutboxModel(tmp_path),  # type: ignore[arg-type]
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
