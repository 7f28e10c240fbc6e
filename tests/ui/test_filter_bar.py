"""The list's filter bar in the real window (issue 12, item 3): filters, sort by a column's heading, counts
that follow the filters, saved views kept across a lock, and the export and trends of what the list shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from pso_desktop.ui.reports_model import COLUMNS
from pso_desktop.ui.window import MainWindow
from tests.support.ui import shown_ids, unlock


def _column(name: str) -> int:
    return [key for key, _ in COLUMNS].index(name)


def _tick(qtbot: Any, window: MainWindow, button: Any, code: str) -> None:
    """Ticks one choice of a filter's menu as a user would (the menu's action), waiting for the new list."""
    screen = window.reports_screen
    actions = {c: a for c, a in zip((c for c, _ in button.choices()), button.menu().actions(), strict=True)}
    with qtbot.waitSignals([screen.reports_loaded, screen.counts_loaded], timeout=10_000):
        actions[code].trigger()


def _units(window: MainWindow) -> list[str]:
    return [code for code, _ in window.reports_screen.filter_bar.unit.choices()]


def test_filters_sort_counts_views_export_and_trends(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    window = make_window()
    unlock(qtbot, window)
    screen = window.reports_screen
    bar = screen.filter_bar
    qtbot.waitUntil(lambda: len(_units(window)) > 1 and len(bar.category.choices()) > 5, timeout=10_000)
    units = sorted({r["location"]["unit"] for r in stored_reports})
    assert _units(window) == [*units, ""]  # the profile's units, and "Not given"

    # A unit: only its reports, and the chips count only them.
    unit = max(units, key=lambda u: sum(r["location"]["unit"] == u for r in stored_reports))
    _tick(qtbot, window, bar.unit, unit)
    in_unit = [r for r in stored_reports if r["location"]["unit"] == unit]
    assert shown_ids(window) == {r["id"] for r in in_unit}
    queued = sum(1 for r in in_unit if r in stored_reports[:4])
    assert screen.count_labels["queued"].text() == f"Queued: {queued}"
    assert screen.count_labels["draft"].text() == f"Draft: {len(in_unit) - queued}"
    assert bar.unit.text() == f"Unit: {unit}"

    # Clear, then an event type and a category together.
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        bar.clear_button.click()
    assert shown_ids(window) == {r["id"] for r in stored_reports}
    _tick(qtbot, window, bar.event_type, "incident")
    incidents = {r["id"] for r in stored_reports if r["event_type"] == "incident"}
    assert shown_ids(window) == incidents

    # Sorting by a column's heading (A to Z, then Z to A), in SQL.
    header = screen.table.horizontalHeader()
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        header.sectionClicked.emit(_column("unit"))
    shown_units = [screen.model.summary(row).unit for row in range(screen.model.rowCount())]
    assert shown_units == sorted(shown_units) and header.sortIndicatorSection() == _column("unit")
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        header.sectionClicked.emit(_column("unit"))
        # A sort keeps the counts (shown at once); the line waits for the page instead of saying "no report".
        assert screen.list_status.text() == "Reading reports…"
    shown_units = [screen.model.summary(row).unit for row in range(screen.model.rowCount())]
    assert shown_units == sorted(shown_units, reverse=True)
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert bar.sort_button.text() == "Sort: Unit ↓"

    # Export what the list shows: exactly these reports, in this order.
    order = [screen.model.summary(row).id for row in range(screen.model.rowCount())]
    out = tmp_path / "shown.json"
    with qtbot.waitSignal(window.file_actions.done, timeout=10_000):
        window.file_actions.export_file(out, "json", screen.current_query())
    assert [r["id"] for r in json.loads(out.read_text("utf-8"))["reports"]] == order

    # Trends of what the list shows.
    with qtbot.waitSignal(window.trends_shown, timeout=10_000):
        window.show_trends()
    assert "among the reports the list shows" in window.trends_screen.heading.text()
    window.trends_screen.closed.emit()

    # Save the view; a lock forgets every filter; after unlocking, the view brings them back.
    screen.save_view("Incidents by unit")
    qtbot.waitUntil(lambda: any(a.text() == "Incidents by unit" for a in bar.views_button.menu().actions()))
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    assert bar.event_type.selected() == () and bar.sort_key == "updated_at"
    unlock(qtbot, window)
    qtbot.waitUntil(lambda: any(a.text() == "Incidents by unit" for a in bar.views_button.menu().actions()))
    assert shown_ids(window) == {r["id"] for r in stored_reports}
    view = next(a for a in bar.views_button.menu().actions() if a.text() == "Incidents by unit")
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        view.trigger()
    assert [screen.model.summary(row).id for row in range(screen.model.rowCount())] == order
    assert bar.event_type.selected() == ("incident",) and bar.sort_key == "unit" and bar.descending


def test_search_finds_a_unit(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    screen = window.reports_screen
    unit = stored_reports[0]["location"]["unit"]
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        screen.search.setText(unit)
        screen.search.returnPressed.emit()
    assert shown_ids(window) == {r["id"] for r in stored_reports if r["location"]["unit"] == unit}
