"""The report list as a Qt table model, filled page by page from the database worker.

The model never queries anything itself: when the view scrolls near the end it emits ``fetch_requested``
with the offset of the next page, and whoever owns the worker answers with ``add_page``. Every reload starts
a new generation, so a page that arrives for an older search or after a lock is ignored. A reload keeps the rows
shown until the new first page replaces them in one reset (one repaint, not an empty list and then the page).
Rows are ``ReportSummary`` objects, which hold no narrative and no patient data.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from pso_desktop.texts import PSO_STATUS_LABELS, REVIEW_STATE_LABELS, STATE_LABELS
from pso_desktop.times import parse_utc_time

if TYPE_CHECKING:
    from pso_desktop.domain import Catalogue
    from pso_desktop.storage.reports import ReportSummary

COLUMNS: tuple[tuple[str, str], ...] = (
    ("state", "State"),
    ("event_type", "Event type"),
    ("categories", "Category"),
    ("unit", "Unit"),
    ("discovered_on", "Discovered"),
    ("updated_at", "Last changed"),
    ("server_ref", "Case number"),
    ("pso_status", "At the PSO"),
)
DEFAULT_PAGE_SIZE = 200
SUMMARY_ROLE = Qt.ItemDataRole.UserRole
# data() runs for every role of every visible cell on each paint: plain ints, not enum look-ups, to compare.
_TEXT_ROLES = frozenset({int(Qt.ItemDataRole.DisplayRole.value), int(Qt.ItemDataRole.ToolTipRole.value)})
_SUMMARY_ROLE = int(SUMMARY_ROLE.value)
_ROW_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

_Index = QModelIndex | QPersistentModelIndex


@cache
def catalogue() -> Catalogue:
    """The current form's catalogue, for labels (cached)."""
    # Loaded when the first row is shown, not at start (the domain package imports pydantic).
    from pso_desktop.domain import load_catalogue

    return load_catalogue()


def _event_type_label(code: str | None) -> str:
    if not code:
        return ""
    found = next((a for a in catalogue().event_types if a.code == code), None)
    return found.display if found else code


def _category_label(code: str) -> str:
    found = catalogue().category(code)
    if found:
        return found.display
    # A code the bundled form lacks: a V1.2 report's (A63, A44) or a category the PSO published.
    from pso_desktop.domain.catalogue import category_names

    return category_names().get(code, code)


def _local_time(stamp: str) -> str:
    """Storage keeps UTC ISO times; the list shows local time to the minute."""
    moment = parse_utc_time(stamp)
    return stamp if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M")


def display_text(summary: ReportSummary, column: int) -> str:
    """The text of one cell."""
    key = COLUMNS[column][0]
    if key == "state":
        if (
            summary.origin == "facility"
        ):  # a risk manager's copy of the facility's report: its review state instead
            review = REVIEW_STATE_LABELS.get(summary.review_state or "new", summary.review_state or "")
            return f"Facility: {review}"
        return STATE_LABELS.get(summary.state, summary.state)
    if key == "event_type":
        return _event_type_label(summary.event_type)
    if key == "categories":
        return ", ".join(_category_label(code) for code in summary.categories)
    if key == "updated_at":
        return _local_time(summary.updated_at)
    if key == "pso_status":
        return PSO_STATUS_LABELS.get(summary.pso_status or "", summary.pso_status or "")
    value = getattr(summary, key)
    return "" if value is None else str(value)


class ReportTableModel(QAbstractTableModel):
    """Read-only table of report summaries, loaded lazily in pages of ``page_size`` rows."""

    fetch_requested = Signal(int, int)  # generation, offset of the next page

    def __init__(self, parent: QObject | None = None, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        super().__init__(parent)
        self.page_size = page_size
        self._rows: list[ReportSummary] = []
        self._generation = 0
        self._more = False
        self._fetching = False
        self._stale = False  # the rows are an older generation's, shown until the new first page arrives

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def waiting(self) -> bool:
        """True while a page asked for has not arrived (after ``restart``, the first page)."""
        return self._fetching

    @property
    def stale(self) -> bool:
        """True while the rows shown belong to the list before the last ``restart`` (its first page is on its way)."""
        return self._stale

    def restart(self) -> int:
        """Starts a new generation whose first page the caller will fetch; returns it. The rows shown stay until
        that page replaces them (nothing more of them is fetched), so the table repaints once."""
        self._generation += 1
        self._more = False
        self._fetching = True
        self._stale = bool(self._rows)
        return self._generation

    def clear(self) -> None:
        """Empties the model and ignores every page still on its way (on lock)."""
        self.beginResetModel()
        self._rows = []
        self._generation += 1
        self._more = False
        self._fetching = False
        self._stale = False
        self.endResetModel()

    def add_page(self, generation: int, offset: int, rows: list[ReportSummary]) -> bool:
        """Appends a page fetched for ``generation`` at ``offset`` (the first page after a restart replaces the
        rows shown); returns False (and changes nothing) for a page of an older generation or one that no longer
        fits at the end."""
        if generation != self._generation:
            return False
        if self._stale:
            if offset != 0:
                return False
            self.beginResetModel()
            self._rows = list(rows)
            self._stale = False
            self._fetching = False
            self._more = len(rows) >= self.page_size
            self.endResetModel()
            return True
        if offset != len(self._rows):
            return False
        self._fetching = False
        self._more = len(rows) >= self.page_size
        if rows:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
        return True

    def page_failed(self, generation: int) -> None:
        """A page could not be read: stop asking for more until the next restart (and show no rows of a list
        that is no longer asked for)."""
        if generation == self._generation:
            self._fetching = False
            self._more = False
            if self._stale:
                self.beginResetModel()
                self._rows = []
                self._stale = False
                self.endResetModel()

    def summary(self, row: int) -> ReportSummary:
        return self._rows[row]

    # --- QAbstractTableModel -----------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 -- Qt's own default
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        role = int(role)  # PySide passes an int; a caller may pass the enum
        if role not in _TEXT_ROLES and role != _SUMMARY_ROLE:
            return None  # font, colours, alignment, ...: asked for every cell on every paint
        row, column = index.row(), index.column()
        if not index.isValid() or row >= len(self._rows) or column >= len(COLUMNS):
            return None
        summary = self._rows[row]
        return summary if role == _SUMMARY_ROLE else display_text(summary, column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None  # a heading cut short (large text, a narrow window) is whole in its tooltip
        if orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][1] if 0 <= section < len(COLUMNS) else None
        return str(section + 1)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        return _ROW_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def canFetchMore(self, parent: _Index) -> bool:
        return not parent.isValid() and self._more and not self._fetching

    def fetchMore(self, parent: _Index) -> None:
        if not self.canFetchMore(parent):
            return
        self._fetching = True
        self.fetch_requested.emit(self._generation, len(self._rows))
