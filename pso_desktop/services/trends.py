"""The risk manager's trends: how many events were discovered each month (a run chart, with its median), by kind,
category, unit and harm. Events are reports sent or received; drafts count only when asked for.

Qt-free: counts only, no report content. The window draws them (``ui/trends_screen.py``) on its worker's answer.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Any

from pso_desktop.domain import load_catalogue
from pso_desktop.domain.catalogue import category_names as catalogue_category_names
from pso_desktop.services.workstation import Session
from pso_desktop.storage.report_query import CHIP_STATES, ReportQuery

NO_HARM_GIVEN = "Not given"
NO_UNIT_GIVEN = "No unit given"
TOP_UNITS = 8  # the units with the most events get a bar each; the rest share one ("Other units")


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, its count, and the list filter (``ReportQuery`` fields) that shows the
    reports it counts, added to the list's own (empty: the bar cannot filter, e.g. "Other units")."""

    label: str
    count: int
    narrow: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Trends:
    months: tuple[str, ...]  # "YYYY-MM", oldest first, every month of the window (empty ones too)
    series: tuple[tuple[str, tuple[int, ...]], ...]  # (event type's label, count per month), in form order
    harm: tuple[tuple[str, int], ...]  # incidents per harm level's label, most severe first; NO_HARM_GIVEN last
    total: int
    by_month: tuple[Bar, ...] = ()  # every month of the window, oldest first
    median: float = 0.0  # of the monthly counts of the months the list's dates cover (the run chart's centre line)
    median_months: int = 0  # how many months the median is taken over
    by_category: tuple[Bar, ...] = ()  # categories with events, most first
    by_harm: tuple[Bar, ...] = ()  # as ``harm``, with the filter of each level
    by_unit: tuple[Bar, ...] = ()  # the TOP_UNITS units with most events, then "Other units"
    drafts: bool = False  # drafts were counted as events


def _shift_month(first: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after (or, negative, before) the month of ``first``."""
    year, month = divmod(first.year * 12 + first.month - 1 + months, 12)
    return dt.date(year, month + 1, 1)


def _month_starts(months: int, today: dt.date) -> list[dt.date]:
    """The first days of the last ``months`` months, this one included, oldest first."""
    first = today.replace(day=1)
    return [_shift_month(first, -back) for back in range(months - 1, -1, -1)]


def trends(
    session: Session,
    *,
    months: int = 12,
    today: dt.date | None = None,
    query: ReportQuery | None = None,
    drafts: bool = False,
) -> Trends:
    """Events discovered in the last ``months`` calendar months (this one included); with ``query``, only the
    reports the list shows for it; with ``drafts``, drafts count as events too."""
    starts = _month_starts(months, today or dt.date.today())
    end = _shift_month(starts[-1], 1)  # the first day after this month
    labels = [start.strftime("%Y-%m") for start in starts]
    counted = session.store.trend_counts(starts[0].isoformat(), end.isoformat(), query, drafts=drafts)
    by_month, by_harm = counted.by_month, counted.by_harm
    catalogue = load_catalogue()
    index = {month: position for position, month in enumerate(labels)}
    counts: dict[str, list[int]] = {answer.code: [0] * months for answer in catalogue.event_types}
    for month, event_type, count in by_month:
        if month in index:
            counts.setdefault(event_type, [0] * months)[index[month]] += count
    names = {answer.code: answer.display for answer in catalogue.event_types}
    series = tuple((names.get(code, code or "Not given"), tuple(values)) for code, values in counts.items())
    harm_counts = dict(by_harm)
    incident = ("event_types", ("incident",))
    harm_bars = [
        Bar(level.display, harm_counts.pop(level.code, 0), (incident, ("harm_levels", (level.code,))))
        for level in catalogue.harm_levels
    ]
    # Unknown codes count as not given; the list's "not given" filter shows only the empty ones.
    harm_bars.append(Bar(NO_HARM_GIVEN, sum(harm_counts.values()), (incident, ("harm_levels", ("",)))))
    harm = tuple((bar.label, bar.count) for bar in harm_bars)
    totals = [sum(values[i] for _, values in series) for i in range(months)]
    month_bars = tuple(
        Bar(
            label, total, (("discovered_from", start.isoformat()), ("discovered_to", _last_day(start).isoformat()))
        )
        for label, total, start in zip(labels, totals, starts, strict=True)
    )
    # The median of the months the list's dates cover: over all twelve, a list limited to one quarter would
    # have a median of nine empty months, 0.
    covered = [
        total
        for total, start in zip(totals, starts, strict=True)
        if not (query and query.discovered_from and _last_day(start).isoformat() < query.discovered_from)
        and not (query and query.discovered_to and start.isoformat() > query.discovered_to)
    ]
    category_names = catalogue_category_names()  # a V1.2 report's A63 or a published category in words too
    by_category = tuple(
        Bar(category_names.get(code, code), count, (("categories", (code,)),))
        for code, count in sorted(
            counted.by_category, key=lambda item: (-item[1], category_names.get(item[0], ""))
        )
        if count
    )
    units = sorted(counted.by_unit, key=lambda item: (-item[1], item[0]))
    by_unit = [Bar(unit or NO_UNIT_GIVEN, count, (("units", (unit,)),)) for unit, count in units[:TOP_UNITS]]
    rest = units[TOP_UNITS:]
    if rest:
        by_unit.append(Bar(f"Other units ({len(rest)})", sum(count for _, count in rest)))
    return Trends(
        tuple(labels),
        series,
        harm,
        sum(totals),
        by_month=month_bars,
        median=float(statistics.median(covered)) if covered else 0.0,
        median_months=len(covered),
        by_category=by_category,
        by_harm=tuple(harm_bars),
        by_unit=tuple(by_unit),
        drafts=drafts,
    )


def _last_day(start: dt.date) -> dt.date:
    return _shift_month(start, 1) - dt.timedelta(days=1)


def narrowed(query: ReportQuery, bar: Bar, *, drafts: bool = False) -> ReportQuery:
    """The list's ``query`` narrowed to the reports ``bar`` counts: its filter replaces the same filter of the
    query (the bar's value was among the query's, or the bar would not count anything); a month's dates are
    kept inside the query's own range. Unless the chart counted ``drafts`` too, the list leaves them out as the
    chart did: every state of the query's (all when it has none) but draft."""
    changes: dict[str, Any] = dict(bar.narrow)
    events = tuple(s for s in (query.states or CHIP_STATES) if s != "draft")  # the facility's copies too
    if not drafts and events:  # (none: the query asks for drafts only, and the chart counted nothing)
        changes["states"] = events
    if "discovered_from" in changes and query.discovered_from:
        changes["discovered_from"] = max(changes["discovered_from"], query.discovered_from)
    if "discovered_to" in changes and query.discovered_to:
        changes["discovered_to"] = min(changes["discovered_to"], query.discovered_to)
    return query.with_changes(**changes)
