"""The risk manager's trends: how many events were discovered each month, by kind, and how much harm they did.

Qt-free: counts only, no report content. The window draws them (``ui/trends_screen.py``) on its worker's answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pso_desktop.domain import load_catalogue
from pso_desktop.services.workstation import Session
from pso_desktop.storage.report_query import ReportQuery

NO_HARM_GIVEN = "Not given"


@dataclass(frozen=True)
class Trends:
    months: tuple[str, ...]  # "YYYY-MM", oldest first, every month of the window (empty ones too)
    series: tuple[tuple[str, tuple[int, ...]], ...]  # (event type's label, count per month), in form order
    harm: tuple[tuple[str, int], ...]  # incidents per harm level's label, most severe first; NO_HARM_GIVEN last
    total: int


def _shift_month(first: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after (or, negative, before) the month of ``first``."""
    year, month = divmod(first.year * 12 + first.month - 1 + months, 12)
    return dt.date(year, month + 1, 1)


def _month_starts(months: int, today: dt.date) -> list[dt.date]:
    """The first days of the last ``months`` months, this one included, oldest first."""
    first = today.replace(day=1)
    return [_shift_month(first, -back) for back in range(months - 1, -1, -1)]


def trends(
    session: Session, *, months: int = 12, today: dt.date | None = None, query: ReportQuery | None = None
) -> Trends:
    """Events discovered in the last ``months`` calendar months (this one included); with ``query``, only the
    reports the list shows for it."""
    starts = _month_starts(months, today or dt.date.today())
    end = _shift_month(starts[-1], 1)  # the first day after this month
    labels = [start.strftime("%Y-%m") for start in starts]
    by_month, by_harm = session.store.trend_counts(starts[0].isoformat(), end.isoformat(), query)
    catalogue = load_catalogue()
    index = {month: position for position, month in enumerate(labels)}
    counts: dict[str, list[int]] = {answer.code: [0] * months for answer in catalogue.event_types}
    for month, event_type, count in by_month:
        if month in index:
            counts.setdefault(event_type, [0] * months)[index[month]] += count
    names = {answer.code: answer.display for answer in catalogue.event_types}
    series = tuple((names.get(code, code or "Not given"), tuple(values)) for code, values in counts.items())
    harm_counts = dict(by_harm)
    harm = tuple((level.display, harm_counts.pop(level.code, 0)) for level in catalogue.harm_levels)
    harm += ((NO_HARM_GIVEN, sum(harm_counts.values())),)  # unknown codes count as not given
    return Trends(tuple(labels), series, harm, sum(sum(values) for _, values in series))
