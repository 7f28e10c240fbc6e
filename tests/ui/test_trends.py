"""Trends for the risk manager: counts from the real encrypted store (checked against a plain Python count of the
same reports), painted as charts with the keyboard and the mouse, a bar filtering the list, a PNG with the PSWP
label, drafts only when asked for, emptied on lock."""

from __future__ import annotations

import datetime as dt
import random
import re
import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QHelpEvent, QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QToolTip

from pso_desktop.domain import load_catalogue, validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.services.trends import NO_HARM_GIVEN, NO_UNIT_GIVEN, TOP_UNITS, trends
from pso_desktop.services.workstation import PSWP_LABEL, Workstation
from pso_desktop.ui.trends_screen import BarChart
from pso_desktop.ui.window import MainWindow
from tests.support.ui import PROFILE, SECRET, unlock

SUBMITTED = 30
DRAFTS = 10


@pytest.fixture
def events(workstation_factory: Callable[[], Workstation]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """PROFILE with SUBMITTED submitted reports and DRAFTS drafts, from the real services; (submitted, drafts)."""
    rng = random.Random(12)
    reports = [validate_report(sample_report(rng, i)).export() for i in range(SUBMITTED + DRAFTS)]
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        session.add_reports(reports[:SUBMITTED], submit=True)
        session.add_reports(reports[SUBMITTED:])
    return reports[:SUBMITTED], reports[SUBMITTED:]


def expected(reports: list[dict[str, Any]], months: tuple[str, ...]) -> dict[str, Counter[str]]:
    """A plain Python count of what each chart should show."""
    catalogue = load_catalogue()
    levels = {level.code: level.display for level in catalogue.harm_levels}
    names = {c.code: c.display for c in catalogue.categories}
    shown = [r for r in reports if r["discovery"].get("date", "")[:7] in months]
    return {
        "month": Counter(r["discovery"]["date"][:7] for r in shown),
        "category": Counter(names[code] for r in shown for code in r.get("categories", [])),
        "unit": Counter((r.get("location") or {}).get("unit") or NO_UNIT_GIVEN for r in shown),
        "harm": Counter(
            levels.get((r.get("harm") or {}).get("level") or "", NO_HARM_GIVEN)
            for r in shown
            if r["event_type"] == "incident"  # only an incident reached a patient
        ),
    }


def top_units(units: Counter[str]) -> dict[str, int]:
    """The TOP_UNITS units with most events, the rest as one "Other units (n)" bar."""
    ranked = sorted(units.items(), key=lambda item: (-item[1], item[0]))
    shown = dict(ranked[:TOP_UNITS])
    if ranked[TOP_UNITS:]:
        shown[f"Other units ({len(ranked) - TOP_UNITS})"] = sum(n for _, n in ranked[TOP_UNITS:])
    return shown


def drawn(chart: BarChart) -> dict[str, int]:
    return {bar.label: bar.count for bar in chart.bars if bar.count}


def open_trends(qtbot: Any, window: MainWindow) -> None:
    with qtbot.waitSignal(window.trends_shown, timeout=10_000):
        qtbot.keyClick(window.reports_screen.search, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)


def test_charts_count_events_only_unless_drafts_are_ticked(
    qtbot: Any, make_window: Callable[..., MainWindow], events: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    submitted, drafts = events
    window = make_window()
    window.resize(1024, 600)
    unlock(qtbot, window)
    open_trends(qtbot, window)
    screen = window.trends_screen
    assert window.stack.currentWidget() is screen and screen.trends is not None
    assert screen.banner.full_text() == PSWP_LABEL and screen.banner.isVisible()  # the PSWP banner stays on
    months = screen.trends.months
    want = expected(submitted, months)
    assert drawn(screen.monthly) == dict(want["month"])
    assert drawn(screen.category) == dict(want["category"])
    assert drawn(screen.unit) == top_units(want["unit"])
    assert drawn(screen.harm) == dict(want["harm"])
    assert screen.trends.total == sum(want["month"].values()) > 0
    monthly = [bar.count for bar in screen.monthly.bars]
    assert screen.trends.median == statistics.median(monthly) and len(monthly) == 12
    # Every figure is also text, for screen readers.
    for chart in screen.charts:
        for bar in chart.bars:
            assert f"{chart.label(bar)}: {bar.count:,}" in chart.accessibleDescription()
            assert f"{chart.label(bar)}: {bar.count:,}" in screen.summary.text()
    # A month in words, as in "Jan 2026" (never "26-01" nor "2026-01").
    year, month = (int(part) for part in screen.monthly.bars[-1].label.split("-"))
    last = dt.date(year, month, 1).strftime("%b %Y")
    assert f"{last}: " in screen.monthly.accessibleDescription() and f"to {last}:" in screen.heading.text()
    assert not re.search(r"\b\d{4}-\d{2}\b", screen.summary.text() + screen.heading.text())
    assert f"Median {screen.trends.median:g} a month" in screen.summary.text()
    kinds = Counter(r["event_type"] for r in submitted if r["discovery"]["date"][:7] in months)
    names = {answer.code: answer.display for answer in load_catalogue().event_types}
    for code, count in kinds.items():
        assert f"{names[code]}: {count:,}" in screen.summary.text().splitlines()[-1]
    screen.grab().save("/tmp/charts-trends-1024x600.png")

    # Drafts only when asked for: the tick box, from the keyboard (Alt+D).
    with qtbot.waitSignal(window.trends_shown, timeout=10_000):
        qtbot.keyClick(screen, Qt.Key.Key_D, Qt.KeyboardModifier.AltModifier)
    assert screen.drafts.isChecked() and screen.trends.drafts
    with_drafts = expected(submitted + drafts, months)
    assert drawn(screen.monthly) == dict(with_drafts["month"])
    assert drawn(screen.category) == dict(with_drafts["category"])
    assert drawn(screen.unit) == top_units(with_drafts["unit"])
    assert drawn(screen.harm) == dict(with_drafts["harm"])
    assert "events and drafts" in screen.heading.text()

    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    assert screen.trends is None and screen.summary.text() == ""
    assert all(not chart.bars for chart in screen.charts)


def test_enter_on_a_bar_filters_the_list_to_it(
    qtbot: Any, make_window: Callable[..., MainWindow], events: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    submitted, _drafts = events
    window = make_window()
    window.resize(1024, 600)
    unlock(qtbot, window)
    open_trends(qtbot, window)
    screen = window.trends_screen
    # Tab to the unit chart (Back, drafts, PNG, then the four charts in order), arrows to the second bar.
    screen.drafts.setFocus()
    for _ in range(5):
        qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
    assert window.focusWidget() is screen.unit
    qtbot.keyClick(screen.unit, Qt.Key.Key_Down)
    bar = screen.unit.bars[1]
    assert screen.unit.current == 1 and screen.unit.toolTip().startswith(f"{bar.label}: {bar.count:,}")
    # Hover: the mouse over a bar asks for its tooltip, which gives that bar's figure.
    first = screen.category.bars[0]
    where = screen.category.bar_rect(0).center().toPoint()
    QApplication.sendEvent(
        screen.category, QHelpEvent(QEvent.Type.ToolTip, where, screen.category.mapToGlobal(where))
    )
    assert QToolTip.text().startswith(f"{first.label}: {first.count:,}")
    unit = dict(bar.narrow)["units"][0]
    with qtbot.waitSignal(window.reports_screen.counts_loaded, timeout=10_000):
        qtbot.keyClick(screen.unit, Qt.Key.Key_Return)
    assert window.stack.currentWidget() is window.reports_screen
    assert window.reports_screen.current_query().units == (unit,)
    qtbot.waitUntil(lambda: window.reports_screen.list_status.text() != "Reading reports…", timeout=10_000)
    # The list shows what the bar counted: that unit's events, its drafts left out as in the chart (every state
    # chip but Draft ticked).
    want = sum(1 for r in submitted if r["location"]["unit"] == unit)
    assert want == bar.count and window.reports_screen.model.rowCount() == want
    rows = [window.reports_screen.model.summary(i) for i in range(window.reports_screen.model.rowCount())]
    assert {row.unit for row in rows} == {unit} and "draft" not in {row.state for row in rows}
    chips = window.reports_screen.count_labels
    assert [state for state, chip in chips.items() if chip.isChecked()] == [s for s in chips if s != "draft"]
    assert "drafts left out, as in the chart" in window.statusBar().currentMessage()
    # Unticking one of the states leaves the others.
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        chips["needs_attention"].click()
    assert window.reports_screen.current_query().states == ("queued", "sending", "submitted", "facility")

    # A click on a month bar (mouse): the list narrows to that month.
    open_trends(qtbot, window)
    index = max(range(12), key=lambda i: screen.monthly.bars[i].count)
    month = screen.monthly.bars[index]
    centre = screen.monthly.bar_rect(index).center().toPoint()
    with qtbot.waitSignal(window.reports_screen.counts_loaded, timeout=10_000):
        qtbot.mouseClick(screen.monthly, Qt.MouseButton.LeftButton, pos=QPoint(centre.x(), centre.y()))
    query = window.reports_screen.current_query()
    assert query.units == (unit,)  # the list's filter stays; the month narrows it
    assert query.discovered_from == f"{month.label}-01" and (query.discovered_to or "")[:7] == month.label
    qtbot.waitUntil(lambda: window.reports_screen.list_status.text() != "Reading reports…", timeout=10_000)
    assert window.reports_screen.model.rowCount() == month.count  # exactly the events the bar counted

    # With drafts counted, a bar's list has them too.
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        window.reports_screen.filter_bar.clear_button.click()  # every filter and state chip off
    open_trends(qtbot, window)
    with qtbot.waitSignal(window.trends_shown, timeout=10_000):
        screen.drafts.click()
    index = max(range(len(screen.unit.bars)), key=lambda i: screen.unit.bars[i].count)
    with_drafts = screen.unit.bars[index]
    centre = screen.unit.bar_rect(index).center().toPoint()
    with qtbot.waitSignal(window.reports_screen.counts_loaded, timeout=10_000):
        qtbot.mouseClick(screen.unit, Qt.MouseButton.LeftButton, pos=QPoint(centre.x(), centre.y()))
    qtbot.waitUntil(lambda: window.reports_screen.list_status.text() != "Reading reports…", timeout=10_000)
    assert window.reports_screen.model.rowCount() == with_drafts.count
    assert "draft" in {window.reports_screen.model.summary(i).state for i in range(with_drafts.count)}


def test_save_as_png_carries_the_pswp_label_and_is_audited(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    events: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    window.resize(1024, 600)
    unlock(qtbot, window)
    open_trends(qtbot, window)
    offered: list[str] = []

    def save_dialog(_parent: Any, _title: str, name: str, _filter: str) -> tuple[str, str]:
        offered.append(name)
        return str(tmp_path / "charts"), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_dialog))
    with qtbot.waitSignal(window.statusBar().messageChanged, timeout=10_000):
        qtbot.keyClick(
            window.trends_screen,
            Qt.Key.Key_S,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    assert offered == [f"pso-trends-{dt.date.today().isoformat()}.png"]  # no PHI in the name
    saved = tmp_path / "charts.png"
    image = QImage(str(saved))
    assert not image.isNull() and image.width() >= 800
    assert (saved.stat().st_mode & 0o077) == 0  # readable by its owner only, as exports are
    assert image.text("Confidentiality") == PSWP_LABEL  # in the file's metadata, and painted at its top:
    top_band = [image.pixelColor(x, y).lightness() for x in range(0, 400, 2) for y in range(4, 24)]
    assert min(top_band) < 128
    assert "Charts saved as charts.png" in window.statusBar().currentMessage()
    workstation = window.backend._get_workstation()
    with workstation.session(PROFILE, SECRET) as session:
        printed = [e.detail for e in session.audit.entries() if e.action == "print"]
    shown = window.trends_screen.trends
    assert shown is not None and printed == [f"png, trends charts, {shown.total} report(s)"]  # no PHI in it
    image.save("/tmp/charts-png-export.png")


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
    reports: list[dict[str, Any]] = []
    for date, level in dated:
        report = {**base, "id": f"00000000-0000-4000-8000-{len(reports):012d}", "discovery": {"date": date}}
        report["event_type"] = "incident"
        report["harm"] = {"level": level} if level else {}
        reports.append(report)
    workstation = workstation_factory()
    workstation.create_profile("carol", SECRET)  # only these four reports
    with workstation.session("carol", SECRET) as session:
        session.store.add_reports(reports)  # drafts
        assert trends(session, today=dt.date(2026, 11, 27)).total == 0  # a draft is not an event
        counted = trends(session, today=dt.date(2026, 11, 27), drafts=True)
    assert counted.months == tuple(f"2025-12 {' '.join(f'2026-{m:02d}' for m in range(1, 12))}".split())
    per_month = {bar.label: bar.count for bar in counted.by_month}
    assert {month: n for month, n in per_month.items() if n} == {"2025-12": 1, "2026-11": 1}
    assert counted.total == 2
    assert {name: n for name, n in counted.harm if n} == {"Death": 1, NO_HARM_GIVEN: 1}


def _day_typed(qtbot: Any, window: MainWindow, edit: Any, day: str) -> None:
    edit.setFocus()
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        qtbot.keyClicks(edit, day)


def test_the_median_is_over_the_months_the_list_dates_cover(
    qtbot: Any, make_window: Callable[..., MainWindow], events: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    """Outside test: with the list limited to one quarter, the run chart's median was taken over all twelve
    months, nine of them empty by the filter, so it said 0."""
    submitted, _ = events
    window = make_window()
    unlock(qtbot, window)
    open_trends(qtbot, window)
    months = window.trends_screen.trends.months if window.trends_screen.trends else ()
    per_month = Counter(r["discovery"]["date"][:7] for r in submitted)
    # The quarter (three months in a row) of the window with the most events in its quietest month.
    start = max(range(len(months) - 2), key=lambda i: min(per_month[m] for m in months[i : i + 3]))
    quarter = months[start : start + 3]
    want = statistics.median(per_month[m] for m in quarter)
    assert want > 0

    screen = window.trends_screen
    assert screen.trends is not None and screen.trends.median_months == 12

    # Back to the list (Alt+Left), the quarter typed as its discovery dates, and Trends again (Ctrl+T).
    with qtbot.waitSignal(screen.closed, timeout=10_000):
        qtbot.keyClick(screen, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    bar = window.reports_screen.filter_bar
    year, month = (int(part) for part in quarter[-1].split("-"))
    last_day = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).isoformat()
    _day_typed(qtbot, window, bar.date_from, f"{quarter[0]}-01")
    _day_typed(qtbot, window, bar.date_to, last_day)
    open_trends(qtbot, window)
    assert screen.trends is not None
    assert {b.label: b.count for b in screen.monthly.bars if b.count} == {
        m: per_month[m] for m in quarter if per_month[m]
    }
    assert screen.trends.median == want and screen.trends.median_months == 3
    assert f"Median {want:g} a month" in screen.summary.text()
