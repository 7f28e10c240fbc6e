"""The report list: real reports from the encrypted store, search, paging and the table model's contract."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, Qt

from pso_desktop.domain import load_catalogue
from pso_desktop.services.workstation import PSWP_LABEL
from pso_desktop.ui.reports_model import COLUMNS, ReportTableModel
from pso_desktop.ui.window import MainWindow
from tests.support.ui import REPORT_COUNT, shown_ids, unlock


def _column(name: str) -> int:
    return [key for key, _ in COLUMNS].index(name)


def test_list_shows_every_stored_report_with_counts_and_banner(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    with qtbot.waitSignal(window.reports_screen.counts_loaded, timeout=10_000) as counts:
        unlock(qtbot, window)
    screen = window.reports_screen

    assert shown_ids(window) == {report["id"] for report in stored_reports}
    assert counts.args[0] == {
        "draft": REPORT_COUNT - 4,
        "queued": 4,
        "sending": 0,
        "submitted": 0,
        "needs_attention": 0,
        "facility": 0,  # no copy of the facility's reports: a reporter's profile
    }
    assert not screen.count_labels["facility"].isVisible()
    assert screen.count_labels["queued"].text() == "Queued: 4"
    assert screen.count_labels["draft"].text() == f"Draft: {REPORT_COUNT - 4}"
    assert screen.banner.full_text() == PSWP_LABEL
    assert screen.banner.isVisible()

    by_id = {report["id"]: report for report in stored_reports}
    catalogue = load_catalogue()
    event_labels = {answer.code: answer.display for answer in catalogue.event_types}
    model = screen.model
    for row in range(model.rowCount()):
        report = by_id[model.summary(row).id]
        cell = model.index(row, _column("event_type")).data()
        assert cell == event_labels[report["event_type"]]
        assert model.index(row, _column("unit")).data() == report["location"]["unit"]
        state = model.index(row, _column("state")).data()
        assert state == ("Queued" if report in stored_reports[:4] else "Draft")
    # The list holds no narrative text: nothing a passer-by could read about a patient.
    texts = {str(model.index(r, c).data()) for r in range(model.rowCount()) for c in range(model.columnCount())}
    assert not any(report["narrative"] in texts for report in stored_reports)


def _matches(narrative: str, word: str) -> bool:
    return any(token.startswith(word) for token in re.findall(r"\w+", narrative.lower()))


def test_search_filters_by_narrative(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    screen = window.reports_screen
    # A word that occurs in some narratives but not all, found from the data rather than assumed.
    words = {w for r in stored_reports for w in re.findall(r"[a-z]{6,}", r["narrative"].lower())}
    word = next(
        w
        for w in sorted(words)
        if 0 < sum(_matches(r["narrative"], w) for r in stored_reports) < REPORT_COUNT // 2
    )
    expected = {r["id"] for r in stored_reports if _matches(r["narrative"], word)}

    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000) as loaded:
        qtbot.keyClicks(screen.search, word.upper())  # case-insensitive; the delay timer coalesces the keys
    assert loaded.args == [len(expected)]
    assert shown_ids(window) == expected
    assert "matching" in screen.list_status.text()

    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        qtbot.keyClicks(screen.search, "zzzqqq")
    assert shown_ids(window) == set()
    assert screen.list_status.text() == "No report matches the search."

    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        screen.search.clear()
    assert shown_ids(window) == {report["id"] for report in stored_reports}


def test_pages_are_fetched_as_the_view_asks_for_more(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    screen = window.reports_screen
    model = screen.model
    model.page_size = 5
    requested: list[int] = []
    model.fetch_requested.connect(lambda _generation, offset: requested.append(offset))
    unlock(qtbot, window)
    # Five rows do not fill the table, so the view itself keeps asking for the next page until a short one.
    qtbot.waitUntil(lambda: model.rowCount() == REPORT_COUNT and window.worker.pending == 0, timeout=10_000)
    assert requested == [5, 10]
    assert not model.canFetchMore(QModelIndex())  # the last page was short: nothing more to read
    assert shown_ids(window) == {report["id"] for report in stored_reports}
    # Newest edit first, as the store orders them, with no report twice across pages.
    stamps = [model.summary(row).updated_at for row in range(model.rowCount())]
    assert stamps == sorted(stamps, reverse=True)
    assert screen.list_status.text() == f"{REPORT_COUNT} reports shown."


def test_model_contract_with_real_rows(
    qtbot: Any, qtmodeltester: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    model = window.reports_screen.model
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)
    assert model.headerData(0, Qt.Orientation.Horizontal) == "State"


def test_a_page_for_an_older_generation_is_ignored(
    qtmodeltester: Any, make_window: Callable[..., MainWindow], qtbot: Any, stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    rows = [window.reports_screen.model.summary(r) for r in range(3)]
    model = ReportTableModel(page_size=3)
    old = model.restart()
    new = model.restart()
    assert not model.add_page(old, 0, rows)
    assert model.rowCount() == 0
    assert model.add_page(new, 0, rows)
    assert not model.add_page(new, 0, rows)  # the same offset twice would duplicate rows
    assert model.rowCount() == 3
    qtmodeltester.check(model)
    model.clear()
    assert model.rowCount() == 0
    assert not model.canFetchMore(QModelIndex())


def test_a_state_chip_filters_the_list_and_ticking_it_again_shows_all(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    screen = window.reports_screen
    queued = {report["id"] for report in stored_reports[:4]}

    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        screen.count_labels["queued"].click()
    assert shown_ids(window) == queued
    assert screen.list_status.text() == "4 matching reports shown."
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):  # another chip replaces the filter
        screen.count_labels["draft"].click()
    assert not screen.count_labels["queued"].isChecked()
    assert shown_ids(window) == {report["id"] for report in stored_reports[4:]}
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        screen.count_labels["draft"].click()  # ticked again: every report
    assert len(shown_ids(window)) == REPORT_COUNT

    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        screen.count_labels["needs_attention"].click()
    assert shown_ids(window) == set() and screen.list_status.text() == "No report is in this state."
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    assert not any(chip.isChecked() for chip in screen.count_labels.values())  # a lock forgets the filter


def test_a_reload_keeps_the_rows_until_the_new_page_replaces_them_in_one_reset(
    qtmodeltester: Any, make_window: Callable[..., MainWindow], qtbot: Any, stored_reports: list[dict[str, Any]]
) -> None:
    """A filter or sort change repaints the table once, from the old rows to the new page, never through an
    empty list; the old rows are not paged further meanwhile, and a page that fails leaves no stale rows."""
    window = make_window()
    unlock(qtbot, window)
    rows = [window.reports_screen.model.summary(r) for r in range(6)]
    model = ReportTableModel(page_size=3)
    first = model.restart()
    assert model.add_page(first, 0, rows[:3]) and model.canFetchMore(QModelIndex())
    resets: list[str] = []
    model.modelReset.connect(lambda: resets.append("reset"))
    model.rowsRemoved.connect(lambda *_: resets.append("removed"))

    second = model.restart()
    assert model.stale and model.rowCount() == 3 and model.summary(0) == rows[0]
    assert not model.canFetchMore(QModelIndex())  # nothing more of the old list is read
    assert not model.add_page(first, 3, rows[3:])  # the old generation's next page: ignored
    assert not model.add_page(second, 3, rows[3:])  # only the first page can replace the old rows
    assert resets == [] and model.rowCount() == 3
    assert model.add_page(second, 0, rows[3:5])
    assert resets == ["reset"] and not model.stale
    assert [model.summary(r) for r in range(model.rowCount())] == rows[3:5]
    assert not model.canFetchMore(QModelIndex())  # a short page: the end
    qtmodeltester.check(model)

    third = model.restart()
    model.page_failed(third)
    assert model.rowCount() == 0 and not model.stale


def test_a_new_filter_shows_its_list_from_the_top(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    screen = window.reports_screen
    screen.table.setFixedHeight(screen.table.rowHeight(0) * 5)  # fewer rows fit than the list holds
    qtbot.waitUntil(lambda: screen.table.verticalScrollBar().maximum() > 0)
    screen.table.scrollToBottom()
    assert screen.table.verticalScrollBar().value() > 0
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        screen.filter_bar.set_sort("unit", False)
    assert screen.table.verticalScrollBar().value() == 0
    units = [screen.model.summary(r).unit or "" for r in range(screen.model.rowCount())]
    assert units == sorted(units) and len(units) == REPORT_COUNT
