"""The list's filters, sort and search (issue 12, item 3) against a plain Python filter of the same data.

A seeded database of reports with varied units, categories, event types, harm, dates, states, PSO statuses,
case numbers and narratives; hypothesis draws queries, and every page of the answer, put together, must be
exactly the reports the Python reference selects, in an order that respects the sort.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlcipher3.dbapi2 import Connection

from pso_desktop.storage.account import AccountStore
from pso_desktop.storage.database import open_database
from pso_desktop.storage.report_query import CHIP_STATES, PSO_STATUSES, SORT_INDEXES, STATES, ReportQuery
from pso_desktop.storage.reports import ReportStore

UNITS = ("4W-MEDSURG", "ICU-2", "ED", "PEDS-3", None)
CATEGORIES = ("A48", "A50", "A52", "A56", "A62")
EVENT_TYPES = ("incident", "near_miss", "unsafe_condition", None)
HARM = ("LA21151-8", "LA21152-6", "LA21153-4", None)
WORDS = ("patient", "floor", "heparin", "pump", "bedside", "alarm", "zoë", "rounding")
DATES = (*tuple(f"2026-{month:02d}-{day:02d}" for month in (1, 4, 7, 11) for day in (1, 15, 28)), None)
SORTS = (
    "state",
    "event_type",
    "categories",
    "unit",
    "discovered_on",
    "updated_at",
    "server_ref",
    "pso_status",
    "harm",
)
COUNT = 160


def _report(rng: random.Random, index: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "revision": 1,
        "categories": rng.sample(CATEGORIES, rng.randint(0, 2)),
        "narrative": " ".join(rng.sample(WORDS, 3)) + f" note{index}",
    }
    event_type, unit, harm, day = (rng.choice(EVENT_TYPES), rng.choice(UNITS), rng.choice(HARM), rng.choice(DATES))
    if event_type:
        report["event_type"] = event_type
    if unit:
        report["location"] = {"unit": unit}
    if harm:
        report["harm"] = {"level": harm}
    if day:
        report["discovery"] = {"date": day}
    return report


class Seeded:
    """The database and, beside it, what the list should know about each report."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.store = ReportStore(conn)
        rng = random.Random(12)
        reports = [_report(rng, i) for i in range(COUNT)]
        for report in reports:  # one at a time: distinct updated_at, like autosaves
            self.store.save_draft(report)
        self.store.submit([r["id"] for r in reports[::2]])
        sent = [r["id"] for r in reports[::4]]
        claimed = self.store.claim_batch(len(sent) * 2, 10**9)
        self.store.record_results(
            [
                {
                    "id": item.report_id,
                    "revision": item.revision,
                    "status": "created",
                    "server_ref": f"PSO-2026-{n:05d}",
                }
                for n, item in enumerate(claimed)
                if item.report_id in sent
            ]
        )
        self.store.requeue_sending()
        statuses = [
            {
                "id": item.report_id,
                "server_ref": f"PSO-2026-{n:05d}",
                "status": rng.choice(PSO_STATUSES),
                "changed_at": "2026-12-01T00:00:00Z",
            }
            for n, item in enumerate(claimed)
            if item.report_id in sent and n % 3
        ]
        AccountStore(conn).record_statuses(statuses, None)
        # Some submitted reports as a risk manager's copies of the facility's (stored 'submitted', as
        # FacilityStore stores them): a state filter and a state's count leave them out, "facility" has them.
        conn.execute(
            "UPDATE reports SET origin = 'facility', review_state = 'new' WHERE state = 'submitted' AND pk % 3 = 0"
        )
        self.rows = self._rows()

    def _rows(self) -> dict[str, dict[str, Any]]:
        rows = {}
        for pk, report_id, state, server_ref, updated_at, _wire, origin in self.conn.execute(
            "SELECT pk, id, state, server_ref, updated_at, wire, origin FROM reports"
        ):
            status = self.conn.execute(
                "SELECT status FROM server_status WHERE report_id = ?", (report_id,)
            ).fetchone()
            report = self.store.get(report_id)
            assert report is not None
            rows[report_id] = {
                "pk": pk,
                "report": report,
                "state": state,
                "server_ref": server_ref,
                "updated_at": updated_at,
                "pso_status": status[0] if status else None,
                "origin": origin,
            }
        return rows


def _tokens(text: str | None) -> list[str]:
    return re.findall(r"\w+", (text or "").casefold().replace("ë", "e"))


def _chip(row: dict[str, Any]) -> str:
    """A report's chip: its state, or "facility" for a risk manager's copy of the facility's report."""
    return "facility" if row.get("origin") == "facility" else str(row["state"])


def expected(seeded: Seeded, query: ReportQuery) -> set[str]:
    """The Python reference: the ids of the reports ``query`` selects."""
    found = set()
    for report_id, row in seeded.rows.items():
        report = row["report"]
        values = {
            "states": _chip(row),
            "event_types": report.get("event_type"),
            "units": (report.get("location") or {}).get("unit"),
            "harm_levels": (report.get("harm") or {}).get("level"),
            "pso_statuses": row["pso_status"],
        }
        if any(
            getattr(query, name) and (value or "") not in getattr(query, name) for name, value in values.items()
        ):
            continue
        if query.categories and not set(query.categories) & set(report.get("categories", [])):
            continue
        day = (report.get("discovery") or {}).get("date")
        if query.discovered_from and (day is None or day < query.discovered_from):
            continue
        if query.discovered_to and (day is None or day > query.discovered_to):
            continue
        if query.text is not None and query.text.strip():
            words = _tokens(query.text)
            haystack = _tokens(report.get("narrative")) + _tokens(values["units"]) + _tokens(row["server_ref"])
            if not words or not all(any(token.startswith(w) for token in haystack) for w in words):
                continue
        found.add(report_id)
    return found


def _sort_value(seeded: Seeded, report_id: str, sort: str) -> Any:
    row = seeded.rows[report_id]
    report = row["report"]
    value: Any = {
        "state": STATES.index(row["state"]),
        "event_type": report.get("event_type"),
        "categories": None,
        "unit": (report.get("location") or {}).get("unit"),
        "discovered_on": (report.get("discovery") or {}).get("date"),
        "updated_at": row["updated_at"],
        "server_ref": row["server_ref"],
        "pso_status": PSO_STATUSES.index(row["pso_status"]) + 1 if row["pso_status"] else 0,
        "harm": (report.get("harm") or {}).get("level"),
    }[sort]
    if sort == "categories":
        import json

        value = json.dumps(report.get("categories", []))
    return (0, "") if value is None else (1, value)  # SQLite puts NULL first in ascending order


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    path: Path = tmp_path_factory.mktemp("query") / "reports.db"
    conn = open_database(path, bytes(range(32)), create=True)
    try:
        yield Seeded(conn)
    finally:
        conn.close()


def _subset(values: tuple[Any, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from([v or "" for v in values]), max_size=3, unique=True).map(tuple)


queries = st.builds(
    ReportQuery,
    text=st.one_of(
        st.none(),
        st.lists(
            st.sampled_from([*WORDS, "pat", "ICU", "4w", "PSO-2026-0000", "zoe", "note1", "nothing"]), max_size=2
        ).map(" ".join),
    ),
    states=_subset(CHIP_STATES),
    event_types=_subset(EVENT_TYPES),
    categories=st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True).map(tuple),
    units=_subset(UNITS),
    harm_levels=_subset(HARM),
    pso_statuses=_subset((*PSO_STATUSES, None)),
    discovered_from=st.sampled_from(DATES),
    discovered_to=st.sampled_from(DATES),
    sort=st.sampled_from(SORTS),
    descending=st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries, page=st.integers(min_value=1, max_value=40))
def test_pages_hold_exactly_the_filtered_reports_in_sort_order(
    seeded: Seeded, query: ReportQuery, page: int
) -> None:
    listed: list[str] = []
    offset = 0
    while True:
        rows = seeded.store.list_summaries(query=query, limit=page, offset=offset)
        listed += [row.id for row in rows]
        offset += page
        if len(rows) < page:
            break
    want = expected(seeded, query)
    assert len(listed) == len(set(listed))  # paging neither repeats nor skips
    assert set(listed) == want
    assert seeded.store.count_matching(query) == len(want)
    keys = [_sort_value(seeded, report_id, query.sort) for report_id in listed]
    assert keys == sorted(keys, reverse=query.descending)
    # The counts beside the list follow every filter but the state.
    everyone = expected(seeded, query.with_changes(states=()))
    counts = seeded.store.count_by_state(query)
    assert counts == {s: sum(1 for r in everyone if _chip(seeded.rows[r]) == s) for s in CHIP_STATES}
    # Exports of what the list shows: exactly these reports, in the list's order.
    assert [r["id"] for r in seeded.store.export_matching(query)] == listed


def test_seeded_data_covers_every_filter(seeded: Seeded) -> None:
    """The data the property test runs on has every kind of value (else it would prove little)."""
    rows = seeded.rows.values()
    assert {row["state"] for row in rows} >= {"draft", "queued", "submitted"}
    assert {row["pso_status"] for row in rows} >= {None, *PSO_STATUSES}
    assert sum(1 for row in rows if row["server_ref"]) > 10


def test_search_reaches_unit_and_case_number(seeded: Seeded) -> None:
    ref = next(row["server_ref"] for row in seeded.rows.values() if row["server_ref"])
    assert {s.server_ref for s in seeded.store.list_summaries(text=ref, limit=1000)} == {ref}
    icu = {s.id for s in seeded.store.list_summaries(text="icu", limit=1000)}
    assert icu == {
        r for r, row in seeded.rows.items() if (row["report"].get("location") or {}).get("unit") == "ICU-2"
    }


def test_a_category_change_moves_the_report_between_category_filters(seeded: Seeded, tmp_path: Path) -> None:
    conn = open_database(tmp_path / "one.db", bytes(32), create=True)
    try:
        store = ReportStore(conn)
        report = {"id": str(uuid.uuid4()), "revision": 1, "categories": ["A48"], "narrative": "x"}
        store.save_draft(report)
        assert [s.id for s in store.list_summaries(query=ReportQuery(categories=("A48",)))] == [report["id"]]
        store.save_draft({**report, "categories": ["A50"]})
        assert store.list_summaries(query=ReportQuery(categories=("A48",))) == []
        assert len(store.list_summaries(query=ReportQuery(categories=("A50",)))) == 1
        store.delete(str(report["id"]))
        assert conn.execute("SELECT count(*) FROM report_categories").fetchone()[0] == 0
    finally:
        conn.close()


def test_query_round_trips_as_json_and_refuses_nonsense() -> None:
    query = ReportQuery(text="fall", units=("ICU-2",), sort="unit", descending=False, discovered_from="2026-01-01")
    assert ReportQuery.from_json(query.to_json()) == query
    with pytest.raises(ValueError):
        ReportQuery(sort="wire; DROP TABLE reports")
    with pytest.raises(ValueError):
        ReportQuery(discovered_from="yesterday")
    with pytest.raises(ValueError):
        ReportQuery(states=("archived",))


# --- how the answers are read (issue 12, item 3: the list at 100,000 reports) -------------------------------------


def _plan(conn: Connection, sql: str, params: list[Any]) -> list[str]:
    return [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("descending", [False, True])
def test_every_sort_reads_one_covering_index(seeded: Seeded, sort: str, descending: bool) -> None:
    """A page of any sort, with any filter, reads one covering index, never the wide rows; the default order, the
    unit and the discovery date walk their own index in order and stop after the page (no temporary b-tree
    sorting every matching report)."""
    for query in (
        ReportQuery(sort=sort, descending=descending),
        ReportQuery(
            sort=sort,
            descending=descending,
            units=("ICU-2", ""),
            categories=("A48", "A50"),
            event_types=("incident",),
            harm_levels=("LA21151-8",),
            pso_statuses=("", "closed"),
            states=("queued", "submitted"),
            discovered_from="2026-01-01",
        ),
        ReportQuery(
            sort=sort,
            descending=descending,
            units=("ICU-2", "ED"),
            harm_levels=("LA21151-8", "LA21152-6"),
            event_types=("incident",),
            discovered_to="2026-11-30",
            text="patient",
        ),
    ):
        statements: list[str] = []
        seeded.conn.set_trace_callback(statements.append)
        try:
            seeded.store.list_summaries(query=query, limit=5)
        finally:
            seeded.conn.set_trace_callback(None)
        (sql,) = [s for s in statements if s.startswith("SELECT id,")]
        plan = _plan(seeded.conn, sql, [])
        index = SORT_INDEXES.get(sort, "reports_list")
        assert any(index in step for step in plan), plan
        if sort in SORT_INDEXES:
            assert not any("TEMP B-TREE" in step for step in plan), plan
        assert not any(step.startswith("SCAN reports") and "INDEX" not in step for step in plan), plan


@pytest.mark.parametrize("sort", sorted(SORT_INDEXES))
def test_descending_is_the_ascending_list_reversed(seeded: Seeded, sort: str) -> None:
    """For a sort with its own index, equal values keep one order (newest edit first when the sort is first
    offered), so the other direction, read backwards along the same index, is exactly the list reversed."""
    up = [s.id for s in seeded.store.list_summaries(query=ReportQuery(sort=sort, descending=False), limit=COUNT)]
    down = [s.id for s in seeded.store.list_summaries(query=ReportQuery(sort=sort, descending=True), limit=COUNT)]
    assert len(up) == COUNT and down == up[::-1]


def test_counts_and_search_follow_every_write(seeded: Seeded, tmp_path: Path) -> None:
    """The counts and the search's matches are remembered between pages, and forgotten as soon as anything is
    written: by this connection, or by another one (the sync thread's)."""
    conn = seeded.conn
    store = seeded.store
    query = ReportQuery(text="heparin", units=("ED",))
    before = store.count_by_state(query)
    listed = {s.id for s in store.list_summaries(query=query, limit=COUNT)}
    assert sum(before.values()) == len(expected(seeded, query.with_changes(states=()))) > 0

    added = {
        "id": str(uuid.UUID(int=random.Random(99).getrandbits(128), version=4)),
        "revision": 1,
        "narrative": "heparin drip paused",
        "location": {"unit": "ED"},
    }
    other = open_database(Path(conn.execute("PRAGMA database_list").fetchone()[2]), bytes(range(32)))
    try:
        ReportStore(other).save_draft(added)  # another connection writes
    finally:
        other.close()
    try:
        after = store.count_by_state(query)
        assert after["draft"] == before["draft"] + 1
        assert {s.id for s in store.list_summaries(query=query, limit=COUNT)} == listed | {added["id"]}
        store.save_draft({**added, "narrative": "drip paused"})  # this connection writes: no longer found
        assert store.count_by_state(query) == before
        assert {s.id for s in store.list_summaries(query=query, limit=COUNT)} == listed
    finally:
        conn.execute("DELETE FROM reports WHERE id = ?", (added["id"],))  # the module's data stays as seeded
    assert store.count_by_state(query) == before


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (ReportQuery(units=("ICU-2",), harm_levels=("LA21151-8",)), "reports_sort_unit"),
        (ReportQuery(discovered_from="2026-04-01", discovered_to="2026-07-28"), "reports_sort_discovered_on"),
    ],
)
def test_counts_under_a_unit_or_dates_read_only_that_range(seeded: Seeded, query: ReportQuery, index: str) -> None:
    """The counts beside a list narrowed to a unit or to dates read that range of its covering index, not every
    report (and still agree with the Python reference)."""
    statements: list[str] = []
    seeded.conn.set_trace_callback(statements.append)
    try:
        counts = seeded.store._count_by_state(query)  # not the remembered answer: the statement itself
    finally:
        seeded.conn.set_trace_callback(None)
    (sql,) = [s for s in statements if s.startswith("SELECT count(*) FILTER")]
    plan = _plan(seeded.conn, sql, [])
    # (SQLite calls an index holding the virtual ``harm`` column "INDEX", not "COVERING INDEX", though it reads
    # the value from the index.)
    assert any(step.startswith("SEARCH reports USING") and f"INDEX {index} (" in step for step in plan), plan
    everyone = expected(seeded, query)
    assert counts == {s: sum(1 for r in everyone if _chip(seeded.rows[r]) == s) for s in CHIP_STATES}
