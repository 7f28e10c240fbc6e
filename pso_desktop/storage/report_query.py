"""What the report list shows: filters, search and sort as one value, and the SQL that answers it.

A :class:`ReportQuery` is plain data (it is what a saved view keeps, as JSON). :func:`where_clause` turns it into
a WHERE clause of fixed SQL fragments with every value bound, and :func:`order_clause` into an ORDER BY whose
column comes from a fixed table, never from the caller's text. A page of the list reads a covering index
(:func:`list_source`: ``reports_list`` for the default order, migration 4; ``reports_sort_unit`` and
``reports_sort_discovered_on``, migration 11, in their order; ``reports_list`` and a top-N sort for the other
sorts), so no filter or sort costs more than one scan of one index at 100,000 reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

STATES: tuple[str, ...] = ("draft", "queued", "sending", "submitted", "needs_attention")
PSO_STATUSES: tuple[str, ...] = ("received", "under_review", "more_info_requested", "closed")
ORIGINS: tuple[str, ...] = ("mine", "facility")  # whose a report is (storage/facility.py)
# The list's state chips: the profile's own reports by state, and the facility's copies (a risk manager's) as a
# count of their own, whatever their stored state: they are never in this profile's outbox, so `status` and a
# state's count leave them out. In ``ReportQuery.states`` a state means the profile's own reports in it.
FACILITY = "facility"
CHIP_STATES: tuple[str, ...] = (*STATES, FACILITY)
NOT_GIVEN = ""  # in a harm, event type, unit or PSO status filter: the reports with none
# Counts, trends and facets read this index (see migration 4); forcing it keeps the plan the same for every filter.
LIST_SOURCE = "reports INDEXED BY reports_list"
# The current search's matches (report pks), kept by the store in memory (``temp_store=MEMORY``): no text, no PHI.
SEARCH_HITS = "temp.list_search_hits"

_STATE_ORDER = "CASE state " + " ".join(f"WHEN '{s}' THEN {n}" for n, s in enumerate(STATES)) + " END"
_PSO_ORDER = (
    "CASE pso_status " + " ".join(f"WHEN '{s}' THEN {n}" for n, s in enumerate(PSO_STATUSES, 1)) + " ELSE 0 END"
)
# Sort keys (the list's columns, plus harm) -> the SQL expression. The last tie-breaker is always ``pk``.
SORT_COLUMNS: dict[str, str] = {
    "state": _STATE_ORDER,
    "event_type": "event_type",
    "categories": "categories",
    "unit": "unit",
    "discovered_on": "discovered_on",
    "updated_at": "updated_at",
    "server_ref": "server_ref",
    "pso_status": _PSO_ORDER,
    "harm": "harm",
}
# The direction each sort is first offered in (a heading clicked the first time): newest dates first, text A to Z.
# The sorts with an index of their own (migration 11: unit and discovery date, whose ranges also serve the most
# selective filters) have it built in that direction, with the newest edit first among equal values; the other
# direction walks the same index backwards, so it is the exact reverse (equal values oldest edit first). Every
# other sort reads ``reports_list`` with a top-N sort: an index per column made adding reports to a large profile
# an order of magnitude slower (every covering index holds the state, which every submit and sync result changes).
FIRST_DESCENDING = frozenset({"updated_at", "discovered_on"})
SORT_INDEXES: dict[str, str] = {
    "updated_at": "reports_list",
    "unit": "reports_sort_unit",
    "discovered_on": "reports_sort_discovered_on",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ReportQuery:
    """Which reports the list shows and in what order. Every filter is a set of accepted values (empty: any);
    a report must pass all of them. ``categories`` accepts a report with any of the codes. Dates are ISO days,
    both ends included. ``text`` is plain user input (every word must begin a word of the narrative, the unit
    or the case number) and may be PHI: it is never logged."""

    text: str | None = None
    states: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    harm_levels: tuple[str, ...] = ()
    pso_statuses: tuple[str, ...] = ()
    discovered_from: str | None = None
    discovered_to: str | None = None
    sort: str = "updated_at"
    descending: bool = True
    # The facility's review state (issue 12, item 2; storage/facility.py); "" for reports nobody reviews.
    review_states: tuple[str, ...] = field(default=())
    # Whose reports: "mine" (the profile's own) and/or "facility" (a risk manager's copies of the facility's).
    origins: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in (
            "states",
            "event_types",
            "categories",
            "units",
            "harm_levels",
            "pso_statuses",
            "review_states",
            "origins",
        ):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a sequence of strings")
            object.__setattr__(self, name, tuple(dict.fromkeys(value)))  # hashable, no duplicates
        unknown = set(self.states) - set(CHIP_STATES)
        if unknown:
            raise ValueError(f"unknown report state {sorted(unknown)[0]!r}")
        if set(self.origins) - set(ORIGINS):
            raise ValueError(f"unknown origin {sorted(set(self.origins) - set(ORIGINS))[0]!r}")
        if self.sort not in SORT_COLUMNS:
            raise ValueError(f"unknown sort column {self.sort!r}")
        for name in ("discovered_from", "discovered_to"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _DATE.match(value)):
                raise ValueError(f"{name} must be an ISO date (YYYY-MM-DD)")

    @property
    def searching(self) -> bool:
        return bool(self.text and self.text.strip())

    @property
    def filtered(self) -> bool:
        """True when any filter or search narrows the list (sorting alone does not)."""
        return self.narrowed_except_state or bool(self.states)

    @property
    def narrowed_except_state(self) -> bool:
        return (
            self.searching
            or any(
                (
                    self.event_types,
                    self.categories,
                    self.units,
                    self.harm_levels,
                    self.pso_statuses,
                    self.review_states,
                    self.origins,
                )
            )
            or self.discovered_from is not None
            or self.discovered_to is not None
        )

    def with_changes(self, **changes: Any) -> ReportQuery:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReportQuery:
        """A query saved by :meth:`to_json`; unknown keys (from a newer app) are ignored. ValueError when
        the text is not a query."""
        data = json.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError("a saved view must be a JSON object")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known
        }
        return cls(**values)


def match_expression(text: str) -> str | None:
    """User text -> an FTS5 query: every word quoted (so no operator syntax leaks through) and prefix-matched."""
    words = _WORD.findall(text)
    if not words:
        return None
    return " ".join(f'"{word}"*' for word in words)


def _any_of(column: str, values: tuple[str, ...], clauses: list[str], params: list[Any]) -> None:
    if not values:
        return
    # With "none" among the values, one expression rather than an OR: an OR would make SQLite collect the rows of
    # each term through an index and sort them, reading the wide rows, instead of walking the sort's index.
    target = f"ifnull({column}, '')" if NOT_GIVEN in values else column
    clauses.append(f"{target} IN ({', '.join('?' * len(values))})")
    params.extend(values)


def where_clause(
    query: ReportQuery, *, with_states: bool = True, search_hits: bool = False
) -> tuple[str, list[Any]] | None:
    """``(WHERE ..., params)`` for ``query`` over :data:`LIST_SOURCE` (``""`` when nothing narrows it), or None
    when nothing can match (a search with no words). ``with_states=False`` leaves the state filter out (the
    counts per state that follow the other filters). With ``search_hits`` the search's matches are read from
    :data:`SEARCH_HITS`, which the caller has filled for ``query.text`` (the store keeps it, so a page, its counts
    and the next pages share one search); without it the full-text index is asked in the statement itself."""
    clauses: list[str] = []
    params: list[Any] = []
    if with_states and query.states:
        own = [state for state in query.states if state != FACILITY]
        either = ["origin = 'facility'"] if FACILITY in query.states else []
        if own:
            either.append(f"(origin = 'mine' AND state IN ({', '.join('?' * len(own))}))")
            params.extend(own)
        clauses.append(f"({' OR '.join(either)})")
    _any_of("event_type", query.event_types, clauses, params)
    _any_of("unit", query.units, clauses, params)
    _any_of("harm", query.harm_levels, clauses, params)
    _any_of("pso_status", query.pso_statuses, clauses, params)
    # In the list's covering index since migration 10, like every other filtered column.
    _any_of("review_state", query.review_states, clauses, params)
    _any_of("origin", query.origins, clauses, params)  # in every list index too (migration 10)
    if query.categories:
        # ``categories`` holds the codes as a JSON list, in every list index: a code is one of them exactly when
        # its JSON string occurs in it (json.dumps writes a code the same way alone and in a list; a quote inside
        # another code would be escaped). A test per row of the index being read, instead of collecting every
        # report of the category first (a common category is half the reports).
        clauses.append("(" + " OR ".join("instr(categories, ?) > 0" for _ in query.categories) + ")")
        params.extend(json.dumps(code) for code in query.categories)
    if query.discovered_from is not None:
        clauses.append("discovered_on >= ?")
        params.append(query.discovered_from)
    if query.discovered_to is not None:
        clauses.append("discovered_on <= ?")
        params.append(query.discovered_to)
    if query.text is not None and query.text.strip():
        expression = match_expression(query.text)
        if expression is None:
            return None
        if search_hits:
            clauses.append(f"pk IN (SELECT pk FROM {SEARCH_HITS})")  # noqa: S608 -- a fixed name
        else:
            clauses.append("pk IN (SELECT rowid FROM report_search WHERE report_search MATCH ?)")
            params.append(expression)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def list_source(query: ReportQuery) -> str:
    """The table, with the covering index, a page of the list reads: its sort's own (read in order, so the page is
    the first rows that pass the filters, with no sort step), else ``reports_list`` (one scan and a top-N sort)."""
    return f"reports INDEXED BY {SORT_INDEXES.get(query.sort, 'reports_list')}"


def count_source(query: ReportQuery) -> str:
    """The table, with the index, that counting ``query``'s reports reads: the unit's range, else the discovery
    dates' range, else the whole list index. Each covers every filter, so counting never reads the wide rows."""
    if query.units:
        return "reports INDEXED BY reports_sort_unit"
    if query.discovered_from is not None or query.discovered_to is not None:
        return "reports INDEXED BY reports_sort_discovered_on"
    return LIST_SOURCE


def order_clause(query: ReportQuery) -> str:
    """ORDER BY for ``query``: its sort key, then the newest edit first, then ``pk``, so paging is stable. For a
    sort with an index of its own the ties follow the index: reversed with the direction when the sort is the
    other way than it is first offered (the index walked backwards). The other sorts keep the newest edit first
    among ties either way: that is ``reports_list``'s order, so the top-N sort drops most rows at once (with the
    ties the other way, a sort by case number, empty for most reports, took 8 times as long)."""
    expression = SORT_COLUMNS[query.sort]
    key = "DESC" if query.descending else "ASC"
    if query.sort == "updated_at":
        return f"ORDER BY updated_at {key}, pk {key}"
    if query.sort not in SORT_INDEXES:
        return f"ORDER BY {expression} {key}, updated_at DESC, pk DESC"
    first_way = query.sort in FIRST_DESCENDING
    ties = "DESC" if query.descending == first_way else "ASC"
    return f"ORDER BY {expression} {key}, updated_at {ties}, pk {ties}"
