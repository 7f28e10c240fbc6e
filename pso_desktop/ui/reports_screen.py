"""The unlocked screen: the confidentiality banner, counts per state, search, and the report list.

Every query goes to the database worker; pages and counts come back as callbacks on the GUI thread. A
generation number (kept by the model) makes answers to an older search, or answers arriving after a lock,
harmless. The search text may itself be PHI (a patient's name): it is never logged and is cleared on lock.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.ui.backend import Backend
from pso_desktop.ui.errors import user_message
from pso_desktop.ui.one_line_label import PSWP_SHORT, OneLineLabel
from pso_desktop.ui.reports_model import STATE_LABELS, ReportTableModel
from pso_desktop.ui.worker import DbWorker

if TYPE_CHECKING:
    from pso_desktop.storage.reports import ReportSummary

SEARCH_DELAY_MS = 250


class ReportsScreen(QWidget):
    """The report list of the unlocked profile. Call ``load`` after unlocking and ``clear`` on lock."""

    reports_loaded = Signal(int)  # rows in the list after a page arrived
    counts_loaded = Signal(object)  # dict state -> count
    failed = Signal(str)  # a plain message for the status bar
    new_requested = Signal()  # the clinician wants to write a new report
    open_requested = Signal(str)  # ... or to open this report (its id)
    trends_requested = Signal()  # ... or to see the trends

    def __init__(
        self, worker: DbWorker, backend: Backend, lock_action: QAction, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("reportsScreen")
        self._worker = worker
        self._backend = backend
        self._active = False

        # Its text is set in load(): the screen is only shown once unlocked.
        self.banner = OneLineLabel(short=PSWP_SHORT)
        self.banner.setObjectName("pswpBanner")
        self.banner.setAccessibleName("Confidentiality notice")

        self.search = QLineEdit()
        self.search.setObjectName("searchBox")
        self.search.setPlaceholderText("Search report narratives")
        self.search.setAccessibleName("Search report narratives")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Type to search; Down or Enter goes to the list")
        self.search.setMinimumWidth(160)
        self.search.installEventFilter(self)
        self._search_delay = QTimer(self)
        self._search_delay.setSingleShot(True)
        self._search_delay.setInterval(SEARCH_DELAY_MS)
        self._search_delay.timeout.connect(self.reload_reports)
        self.search.textChanged.connect(self._search_delay.start)
        self.search.returnPressed.connect(self._on_search_entered)

        self.refresh_action = QAction("&Refresh", self)
        self.refresh_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Refresh))
        self.refresh_action.setToolTip("Read the list and the counts again (F5)")
        self.refresh_action.triggered.connect(self.load)
        self.addAction(self.refresh_action)
        refresh_button = QToolButton()
        refresh_button.setDefaultAction(self.refresh_action)
        self.new_action = QAction("&New report", self)
        self.new_action.setShortcut(QKeySequence(QKeySequence.StandardKey.New))
        self.new_action.setToolTip("Write a new report (Ctrl+N); it is saved as you type")
        self.new_action.triggered.connect(self.new_requested)
        self.addAction(self.new_action)
        new_button = QToolButton()
        new_button.setObjectName("newReportButton")
        new_button.setDefaultAction(self.new_action)
        self.trends_action = QAction("&Trends", self)
        self.trends_action.setShortcut(QKeySequence("Ctrl+T"))
        self.trends_action.setToolTip("Events per month, by kind and by harm, as charts (Ctrl+T)")
        self.trends_action.triggered.connect(self.trends_requested)
        self.addAction(self.trends_action)
        trends_button = QToolButton()
        trends_button.setDefaultAction(self.trends_action)
        lock_button = QToolButton()
        lock_button.setObjectName("lockButton")
        lock_button.setDefaultAction(lock_action)

        # One chip per state with its count; a chip ticked shows only that state (ticked again: all).
        self.count_labels: dict[str, QToolButton] = {}
        self._state_filter: str | None = None
        counts_row = QHBoxLayout()
        counts_row.setSpacing(6)
        for state, label_text in STATE_LABELS.items():
            chip = QToolButton()
            chip.setObjectName("countChip")
            chip.setCheckable(True)
            chip.setProperty("state", state)
            chip.setToolTip(f"Show only the reports in the state “{label_text}” (again: show all)")
            chip.toggled.connect(partial(self._filter_by_state, state))
            self.count_labels[state] = chip
            counts_row.addWidget(chip)
        self._show_counts(None)

        # Two rows, so the list fits a 1024-pixel screen with no sideways scrolling: actions and search, then
        # the count chips.
        top = QVBoxLayout()
        actions_row = QHBoxLayout()
        actions_row.addWidget(new_button)
        actions_row.addWidget(self.search, 1)
        actions_row.addWidget(trends_button)
        actions_row.addWidget(refresh_button)
        actions_row.addWidget(lock_button)
        top.addLayout(actions_row)
        counts_row.addStretch(1)
        top.addLayout(counts_row)

        self.model = ReportTableModel(self)
        self.model.fetch_requested.connect(self._fetch_page)
        self.table = QTableView()
        self.table.setObjectName("reportTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.activated.connect(self._open_row)  # double-click, or Enter on the selected row
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        # Narrow enough for a 1024-pixel screen with no sideways scrolling; the last column takes what is left.
        for column, width in enumerate((100, 140, 200, 100, 95, 130, 100)):
            header.resizeSection(column, width)

        self.list_status = QLabel()
        self.list_status.setObjectName("listStatus")

        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.banner)
        self._layout.addLayout(top)
        self._layout.addWidget(self.table, 1)
        self._layout.addWidget(self.list_status)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Down in the search box goes to the list (one key, not a Tab through every chip)."""
        if (
            watched is self.search
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Down
            and event.modifiers() == Qt.KeyboardModifier.NoModifier
        ):
            self.focus_table()
            return True
        return super().eventFilter(watched, event)

    def _on_search_entered(self) -> None:
        self.reload_reports()
        self.focus_table()

    def focus_table(self) -> None:
        """The keyboard goes to the list, on its current row (the first when none is chosen yet)."""
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        if not self.table.currentIndex().isValid() and self.model.rowCount() > 0:
            self.table.setCurrentIndex(self.model.index(0, 0))

    def add_bar(self, bar: QWidget) -> None:
        """A row of controls under the search row (the window adds the sync panel here)."""
        self._layout.insertWidget(2, bar)

    # --- lifecycle ---------------------------------------------------------------------------------------

    def load(self) -> None:
        """Reads the counts and the first page of the list again (after unlock, on refresh)."""
        # Imported here, not at start: the services pull in the storage and crypto libraries, which the worker
        # has loaded by the time a profile is unlocked.
        from pso_desktop.services.workstation import PSWP_LABEL

        self.banner.setText(PSWP_LABEL)
        self._active = True
        self._load_counts()
        self.reload_reports()

    def clear(self) -> None:
        """Forgets everything shown (on lock): rows, counts, search text; answers still on their way are
        ignored."""
        self._active = False
        self._search_delay.stop()
        self.model.clear()
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        for chip in self.count_labels.values():
            with QSignalBlocker(chip):
                chip.setChecked(False)
        self._state_filter = None
        self._show_counts(None)
        self.list_status.clear()

    def reload_reports(self) -> None:
        """Starts the list over for the current search text."""
        self._search_delay.stop()
        if not self._active:
            return
        generation = self.model.restart()
        self.list_status.setText("Reading reports…")
        self._fetch_page(generation, 0)

    def _open_row(self, index: QModelIndex) -> None:
        if index.isValid():
            self.open_requested.emit(self.model.summary(index.row()).id)

    # --- worker round trips ------------------------------------------------------------------------------

    def _filter_by_state(self, state: str, ticked: bool) -> None:
        if ticked:
            for other, chip in self.count_labels.items():
                if other != state and chip.isChecked():
                    with QSignalBlocker(chip):
                        chip.setChecked(False)
            self._state_filter = state
        elif self._state_filter == state:
            self._state_filter = None
        self.reload_reports()

    def _search_text(self) -> str | None:
        text = self.search.text().strip()
        return text or None

    def _fetch_page(self, generation: int, offset: int) -> None:
        if not self._active:
            return
        job = partial(
            self._backend.list_reports,
            text=self._search_text(),
            limit=self.model.page_size,
            offset=offset,
            state=self._state_filter,
        )
        self._worker.submit(
            job,
            owner=self,
            on_done=partial(self._on_page, generation, offset),
            on_error=partial(self._on_page_failed, generation),
        )

    def _on_page(self, generation: int, offset: int, rows: list[ReportSummary]) -> None:
        if not self._active or not self.model.add_page(generation, offset, rows):
            return
        shown = self.model.rowCount()
        if shown and self.table.hasFocus() and not self.table.currentIndex().isValid():
            self.table.setCurrentIndex(self.model.index(0, 0))  # Enter in the search box came before the rows
        noun = "report" if shown == 1 else "reports"
        more = "; scroll down for more" if self.model.canFetchMore(self.table.rootIndex()) else ""
        searching, filtering = self._search_text() is not None, self._state_filter is not None
        if searching or filtering:
            if shown:
                self.list_status.setText(f"{shown} matching {noun} shown{more}.")
            elif searching:
                self.list_status.setText(f"No report matches the search{' in this state' if filtering else ''}.")
            else:
                self.list_status.setText("No report is in this state.")
        else:
            self.list_status.setText(
                f"{shown} {noun} shown{more}." if shown else "No reports in this profile yet."
            )
        self.reports_loaded.emit(shown)

    def _on_page_failed(self, generation: int, exc: BaseException) -> None:
        if not self._active or generation != self.model.generation:
            return
        self.model.page_failed(generation)
        message = user_message(exc)
        self.list_status.setText(message)
        self.failed.emit(message)

    def _load_counts(self) -> None:
        self._worker.submit(
            self._backend.status_counts, owner=self, on_done=self._on_counts, on_error=self._on_counts_failed
        )

    def _on_counts(self, counts: dict[str, int]) -> None:
        if not self._active:
            return
        self._show_counts(counts)
        self.counts_loaded.emit(dict(counts))

    def _on_counts_failed(self, exc: BaseException) -> None:
        if self._active:
            self.failed.emit(user_message(exc))

    def _show_counts(self, counts: dict[str, int] | None) -> None:
        for state, chip in self.count_labels.items():
            label = STATE_LABELS[state]
            value = "–" if counts is None else str(counts.get(state, 0))
            chip.setText(f"{label}: {value}")
            chip.setAccessibleName(f"{label}: {value}")
