"""Trends for the risk manager: counts from the real encrypted store, painted as charts, emptied on lock."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt

from pso_desktop.domain import load_catalogue
from pso_desktop.services.trends import NO_HARM_GIVEN, trends
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.window import MainWindow
from tests.ui.conftest import QT_STRICT, SECRET, unlock

pytestmark = QT_STRICT


def test_trends_count_the_stored_reports_by_month_kind_and_harm(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    with qtbot.waitSignal(window.trends_shown, timeout=10_000):
        qtbot.keyClick(window.reports_screen.search, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    shown = window.trends_screen.monthly.trends
    assert shown is not None and window.stack.currentWidget() is window.trends_screen

    catalogue = load_catalogue()
    kinds = {answer.code: answer.display for answer in catalogue.event_types}
    in_window = [r for r in stored_reports if r["discovery"].get("date", "")[:7] in shown.months]
    expected = Counter((r["discovery"]["date"][:7], kinds[r["event_type"]]) for r in in_window)
    drawn = {(month, name): values[i] for name, values in shown.series for i, month in enumerate(shown.months)}
    assert {key: count for key, count in drawn.items() if count} == dict(expected)
    assert shown.total == len(in_window) > 0
    levels = {level.code: level.display for level in catalogue.harm_levels}
    incidents = [r for r in in_window if r["event_type"] == "incident"]  # only an incident reached a patient
    harm = Counter(levels.get((r.get("harm") or {}).get("level"), NO_HARM_GIVEN) for r in incidents)
    assert {name: count for name, count in shown.harm if count} == dict(harm)
    assert window.trends_screen.monthly.grab().width() > 0  # painted without a Qt warning (QT_STRICT)
    assert window.trends_screen.harm.grab().width() > 0
    assert f"{shown.total:,} events discovered" in window.trends_screen.heading.text()

    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    assert window.trends_screen.monthly.trends is None and window.trends_screen.summary.text() == ""


def test_the_window_is_the_last_twelve_months_and_unknown_harm_is_not_given(
    workstation_factory: Callable[[], Workstation], stored_reports: list[dict[str, Any]]
) -> None:
    base = stored_reports[0]
    dated = [
        ("2025-11-30", None),  # 12 months back from 2026-11: just outside
        ("2025-12-01", "LA20747-4"),  # the first day inside
        ("2026-11-30", "not-a-level"),  # this month
        ("2026-12-01", None),  # next month: not a trend yet
    ]
    reports = []
    for date, level in dated:
        report = {**base, "id": f"00000000-0000-4000-8000-{len(reports):012d}", "discovery": {"date": date}}
        report["event_type"] = "incident"
        report["harm"] = {"level": level} if level else {}
        reports.append(report)
    workstation = workstation_factory()
    workstation.create_profile("carol", SECRET)  # only these four reports
    with workstation.session("carol", SECRET) as session:
        session.store.add_reports(reports)
        counted = trends(session, today=dt.date(2026, 11, 27))
    assert counted.months == tuple(f"2025-12 {' '.join(f'2026-{m:02d}' for m in range(1, 12))}".split())
    per_month = {month: sum(values[i] for _, values in counted.series) for i, month in enumerate(counted.months)}
    assert {month: n for month, n in per_month.items() if n} == {"2025-12": 1, "2026-11": 1}
    assert counted.total == 2
    assert {name: n for name, n in counted.harm if n} == {"Death": 1, NO_HARM_GIVEN: 1}
