"""The unlocked screen: the confidentiality banner, counts per state, search, and the report list.

Every query goes to the database worker; pages and counts come back as callbacks on the GUI thread. A
generation number (kept by the model) makes answers to an older search, or answers arriving after a lock,
harmless. The search text may itself be PHI (a patient's name): it is never logged and is cleared on lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.services.backend import Backend
from pso_desktop.texts import CHIP_LABELS as STATE_LABELS
from pso_desktop.ui.errors import user_message
from pso_desktop.ui.filter_bar import FilterBar
from pso_desktop.ui.one_line_label import PSWP_SHORT, OneLineLabel
from pso_desktop.ui.reports_model import COLUMNS, ReportTableModel, catalogue
from pso_desktop.ui.worker import DbWorker

if TYPE_CHECKING:
    from pso_desktop.storage.report_query import ReportQuery
    from pso_desktop.storage.reports import ReportSummary

SEARCH_DELAY_MS = 250


# Each column's usual longest text (State ... At the PSO), measured in the current font; Category also takes
# what is left.
COLUMN_SAMPLES = (
    "Facility: In review",  # a risk manager's copy of the facility's report, longer than "Needs attention"
    "Near miss (close call)",
    "Medication or Other Substance",
    "4W-MEDSURG",
    "2026-12-31",
    "2026-12-31 23:59",
    "PSO-2026-000042",
    "Under review",
)

WORD_COLUMNS = ("event_type", "categories", "unit", "server_ref", "pso_status")  # shrink first when room is short
WORD_FLOOR = 0.45  # ... down to this share of their usual width


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
        self.search.setPlaceholderText("Search narratives, units, case numbers")
        self.search.setAccessibleName("Search report narratives, units and case numbers")
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

        # One chip per state with its count; a chip ticked shows only that state (ticked again: all). A view or a
        # chart's bar may tick several (the chart's events: every state but draft); unticking one of them leaves
        # the others.
        self.count_labels: dict[str, QToolButton] = {}
        self._state_filter: tuple[str, ...] = ()
        counts_row = QHBoxLayout()
        counts_row.setSpacing(6)
        for state, label_text in STATE_LABELS.items():
            chip = QToolButton()
            chip.setObjectName("countChip")
            chip.setCheckable(True)
            chip.setProperty("state", state)
            chip.setToolTip(
                "Show only the facility's reports (your copies, read-only; again: show all)"
                if state == "facility"
                else f"Show only your own reports in the state “{label_text}” (again: show all)"
            )
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

        # Filters, sort and saved views (filter_bar.py); every change reloads the list and its counts.
        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self.reload_reports)
        self.filter_bar.clear_requested.connect(self._clear_filters)
        self.filter_bar.save_view_requested.connect(self._ask_view_name)
        self.filter_bar.view_chosen.connect(self._apply_view)
        self.filter_bar.delete_view_requested.connect(self._delete_view)
        self._choices_loaded = False
        self._counts_generation = 0
        # The last counts and the query they answer (its order left out: sorting never changes a count).
        self._counted: tuple[ReportQuery, tuple[dict[str, int], int]] | None = None
        self._matching: int | None = None  # how many reports the current query selects (from the counts)
        self.view_dialog: QInputDialog | None = None

        self.model = ReportTableModel(self)
        self.model.fetch_requested.connect(self._fetch_page)
        self.table = QTableView()
        self.table.setObjectName("reportTable")
        self.table.setAccessibleName("Reports")
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
        header.setStretchLastSection(False)  # Category takes the spare width (_fit_columns), not "At the PSO"
        header.setHighlightSections(False)
        # A click on a column's heading sorts by it (again: the other way), in SQL on the worker.
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(_column("updated_at"), Qt.SortOrder.DescendingOrder)
        header.sectionClicked.connect(self._on_header_clicked)
        self.table.viewport().installEventFilter(self)  # a new width: the columns are fitted again

        self.list_status = QLabel()
        self.list_status.setObjectName("listStatus")

        # What the clinician is told once after an unlock (a draft the PSO already held), until the next lock.
        self.notice = QLabel()
        self.notice.setObjectName("unlockNotice")
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName("Notice")
        self.notice.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.notice.hide()

        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.banner)
        self._layout.addWidget(self.notice)
        self._layout.addLayout(top)
        self._layout.addWidget(self.filter_bar)
        self._layout.addWidget(self.table, 1)
        self._layout.addWidget(self.list_status)

    def _fit_columns(self) -> None:
        """Each column as wide as its usual content in the current font, and Category (the longest text)
        takes the width left over. When that does not fit (a narrow window, large text), the columns of words
        shrink first, then every column alike, so the list never scrolls sideways; a cut text is whole in its
        tooltip."""
        metrics = self.table.fontMetrics()
        padding = 2 * metrics.averageCharWidth()
        heading = self.table.horizontalHeader().fontMetrics()
        wanted = [
            max(metrics.horizontalAdvance(sample), heading.horizontalAdvance(title) + padding) + padding
            for sample, (_key, title) in zip(COLUMN_SAMPLES, COLUMNS, strict=True)
        ]
        room = self.table.viewport().width()
        spare = room - sum(wanted)
        if spare >= 0:
            wanted[_column("categories")] += spare
        else:
            # Words shrink first, to about half (a cut word still reads, a cut date does not); then all alike.
            words = [_column(key) for key in WORD_COLUMNS]
            give = [wanted[c] - int(wanted[c] * WORD_FLOOR) for c in words]
            share = min(1.0, -spare / max(1, sum(give)))
            for column, most in zip(words, give, strict=True):
                wanted[column] -= int(most * share)
            if sum(wanted) > room:
                wanted = [width * room // sum(wanted) for width in wanted]
        header = self.table.horizontalHeader()
        for column, width in enumerate(wanted):
            header.resizeSection(column, width)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Down in the search box goes to the list (one key, not a Tab through every chip)."""
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
            return False
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
        self._counted = None  # the data may have changed: count again
        self._load_choices()
        self.reload_reports()

    def show_notices(self, notices: Sequence[str]) -> None:
        """Shows sentences the clinician reads once (after an unlock) above the list, and says them to a screen
        reader; none hides the line."""
        text = " ".join(notices)
        self.notice.setText(text)
        self.notice.setAccessibleDescription(text)
        self.notice.setVisible(bool(text))
        if text:
            QAccessible.updateAccessibility(QAccessibleAnnouncementEvent(self.notice, text))

    def clear(self) -> None:
        """Forgets everything shown (on lock): rows, counts, search text; answers still on their way are
        ignored."""
        self._active = False
        self.show_notices(())
        self._search_delay.stop()
        self.model.clear()
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        for chip in self.count_labels.values():
            with QSignalBlocker(chip):
                chip.setChecked(False)
        self._state_filter = ()
        self._show_counts(None)
        self.list_status.clear()
        self.filter_bar.reset()
        self.filter_bar.set_units([])
        self.filter_bar.set_view_names([])
        self._sync_header()
        self._choices_loaded = False
        self._matching = None
        self._counted = None
        if self.view_dialog is not None:
            self.view_dialog.reject()

    def reload_reports(self) -> None:
        """Starts the list over for the current search, filters and sort, and reads the counts that follow them."""
        self._search_delay.stop()
        if not self._active:
            return
        generation = self.model.restart()  # the rows shown stay until the new page replaces them
        self.list_status.setText("Reading reports…")
        self._matching = None
        query = self.current_query()
        counted = query.with_changes(sort="updated_at", descending=True)
        self._counts_generation += 1
        if self._counted is not None and self._counted[0] == counted:
            # Only the order changed: the counts stand (one query less on the worker).
            self._on_counts(self._counts_generation, counted, self._counted[1])
            counted_now = None
        else:
            counted_now = counted
        # The first page and the counts in one job: one round trip, one repaint.
        self._worker.submit(
            partial(self._backend.list_first_page, query, self.model.page_size, counted_now),
            owner=self,
            on_done=partial(self._on_first_page, generation, self._counts_generation, counted_now),
            on_error=partial(self._on_page_failed, generation),
        )

    def current_query(self) -> ReportQuery:
        """What the list shows: the filter bar's filters and sort, the search text and the state chip. May hold
        PHI (the search): never log it."""
        query = self.filter_bar.filters()
        return query.with_changes(text=self._search_text(), states=self._state_filter)

    def is_filtered(self) -> bool:
        return self.current_query().filtered

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
            self._state_filter = (state,)
        else:
            self._state_filter = tuple(s for s in self._state_filter if s != state)
        self.reload_reports()

    def _search_text(self) -> str | None:
        text = self.search.text().strip()
        return text or None

    def _fetch_page(self, generation: int, offset: int) -> None:
        if not self._active:
            return
        job = partial(
            self._backend.list_reports, limit=self.model.page_size, offset=offset, query=self.current_query()
        )
        self._worker.submit(
            job,
            owner=self,
            on_done=partial(self._on_page, generation, offset),
            on_error=partial(self._on_page_failed, generation),
        )

    def _on_first_page(
        self,
        generation: int,
        counts_generation: int,
        counted: ReportQuery | None,
        answer: tuple[list[ReportSummary], tuple[dict[str, int], int] | None],
    ) -> None:
        rows, counts = answer
        if counted is not None and counts is not None:
            self._on_counts(counts_generation, counted, counts)
        self._on_page(generation, 0, rows)

    def _on_page(self, generation: int, offset: int, rows: list[ReportSummary]) -> None:
        if not self._active or not self.model.add_page(generation, offset, rows):
            return
        if offset == 0:
            self.table.scrollToTop()  # a new list starts at its top (the old one may have been scrolled far)
        shown = self.model.rowCount()
        if shown and self.table.hasFocus() and not self.table.currentIndex().isValid():
            self.table.setCurrentIndex(self.model.index(0, 0))  # Enter in the search box came before the rows
        self._show_list_status()
        self.reports_loaded.emit(shown)

    def _show_list_status(self) -> None:
        shown = self.model.rowCount()
        noun = "report" if shown == 1 else "reports"
        more = "; scroll down for more" if self.model.canFetchMore(self.table.rootIndex()) else ""
        query = self.current_query()
        searching = self._search_text() is not None
        filtering = bool(self._state_filter) or (query.filtered and not searching)
        total = self._matching
        if total is not None and total > shown:
            matching = "matching " if searching or filtering else ""
            self.list_status.setText(f"{shown:,} of {total:,} {matching}reports shown{more}.")
            return
        if searching or filtering:
            if shown:
                self.list_status.setText(f"{shown} matching {noun} shown{more}.")
            elif searching:
                self.list_status.setText(f"No report matches the search{' in this state' if filtering else ''}.")
            elif self._state_filter and not query.narrowed_except_state:
                in_state = "this state" if len(self._state_filter) == 1 else "these states"
                self.list_status.setText(f"No report is in {in_state}.")
            else:
                self.list_status.setText("No report matches these filters.")
        else:
            self.list_status.setText(
                f"{shown} {noun} shown{more}." if shown else "No reports in this profile yet."
            )

    def _on_page_failed(self, generation: int, exc: BaseException) -> None:
        if not self._active or generation != self.model.generation:
            return
        self.model.page_failed(generation)
        message = user_message(exc)
        self.list_status.setText(message)
        self.failed.emit(message)

    def _on_counts(self, generation: int, query: ReportQuery, answer: tuple[dict[str, int], int]) -> None:
        if not self._active or generation != self._counts_generation:
            return
        self._counted = (query, answer)
        counts, matching = answer
        self._matching = matching
        self._show_counts(counts)
        if not self.model.waiting:  # else the page's arrival says it (not "no report" while it is on its way)
            self._show_list_status()
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
            if state == "facility":  # a reporter's profile never holds any: no chip for them
                chip.setVisible(chip.isChecked() or (counts is not None and counts.get(state, 0) > 0))

    # --- filters, sort, views ----------------------------------------------------------------------------

    def _load_choices(self) -> None:
        """The filter bar's choices: the form's categories, event types and harm levels, the profile's units
        and saved views (once per unlock; units again on refresh)."""
        if not self._choices_loaded:
            self._worker.submit(self._backend.catalogue, owner=self, on_done=self._on_catalogue)
            self._worker.submit(self._backend.view_names, owner=self, on_done=self._on_view_names)
        self._worker.submit(self._backend.units, owner=self, on_done=self._on_units)

    def _on_catalogue(self, _catalogue: object) -> None:
        if self._active:
            self.filter_bar.set_catalogue(catalogue())
            self._choices_loaded = True

    def _on_units(self, units: list[str]) -> None:
        if self._active:
            self.filter_bar.set_units(units)

    def _on_view_names(self, names: list[str]) -> None:
        if self._active:
            self.filter_bar.set_view_names(names)

    def _clear_filters(self) -> None:
        self.filter_bar.reset()
        for chip in self.count_labels.values():
            with QSignalBlocker(chip):
                chip.setChecked(False)
        self._state_filter = ()
        self._sync_header()
        self.reload_reports()

    def _on_header_clicked(self, column: int) -> None:
        key = COLUMNS[column][0]
        first_way = key in ("updated_at", "discovered_on")  # newest first; text columns A to Z
        descending = not self.filter_bar.descending if key == self.filter_bar.sort_key else first_way
        self.filter_bar.set_sort(key, descending)  # emits changed -> reload
        self._sync_header()

    def _sync_header(self) -> None:
        """The header's sort indicator shows the filter bar's sort (none for a sort by harm, not a column)."""
        header = self.table.horizontalHeader()
        keys = [key for key, _ in COLUMNS]
        order = Qt.SortOrder.DescendingOrder if self.filter_bar.descending else Qt.SortOrder.AscendingOrder
        with QSignalBlocker(header):
            if self.filter_bar.sort_key in keys:
                header.setSortIndicatorShown(True)
                header.setSortIndicator(keys.index(self.filter_bar.sort_key), order)
            else:
                header.setSortIndicatorShown(False)

    def _ask_view_name(self) -> None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Save view")
        dialog.setLabelText("Name of this view (its filters, order and search are kept in your profile):")
        dialog.textValueSelected.connect(self.save_view)
        self.view_dialog = dialog
        dialog.open()

    def save_view(self, name: str) -> None:
        """Saves the list's current query as view ``name`` (in the encrypted profile, on the worker)."""
        if not self._active or not name.strip():
            return
        self._worker.submit(
            partial(self._backend.save_view, name, self.current_query()),
            owner=self,
            on_done=self._on_view_names,
            on_error=self._on_counts_failed,
        )

    def _apply_view(self, name: str) -> None:
        self._worker.submit(partial(self._backend.load_view, name), owner=self, on_done=self.apply_view)

    def apply_view(self, query: ReportQuery | None) -> None:
        """Shows the list as ``query`` says (a saved view): filters, order, search text and state."""
        if not self._active or query is None:
            return
        for name, chip in self.count_labels.items():
            with QSignalBlocker(chip):
                chip.setChecked(name in query.states)
        self._state_filter = tuple(s for s in STATE_LABELS if s in query.states)
        with QSignalBlocker(self.search):
            self.search.setText(query.text or "")
        with QSignalBlocker(self.filter_bar):
            self.filter_bar.apply(query)
        self._sync_header()
        self.reload_reports()

    def _delete_view(self, name: str) -> None:
        self._worker.submit(partial(self._backend.delete_view, name), owner=self, on_done=self._on_view_names)


def _column(key: str) -> int:
    return [k for k, _ in COLUMNS].index(key)
