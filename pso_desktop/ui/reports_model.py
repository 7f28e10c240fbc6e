"""The report list as a Qt table model, filled page by page from the database worker.

The model never queries anything itself: when the view scrolls near the end it emits ``fetch_requested``
with the offset of the next page, and whoever owns the worker answers with ``add_page``. Every reload starts
a new generation, so a page that arrives for an older search or after a lock is ignored.
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
    return found.display if found else code


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

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def waiting(self) -> bool:
        """True while a page asked for has not arrived (after ``restart``, the first page)."""
        return self._fetching

    def restart(self) -> int:
        """Empties the model and starts a new generation whose first page the caller will fetch; returns it."""
        self.beginResetModel()
        self._rows = []
        self._generation += 1
        self._more = False
        self._fetching = True
        self.endResetModel()
        return self._generation

    def clear(self) -> None:
        """Empties the model and ignores every page still on its way (on lock)."""
        self.beginResetModel()
        self._rows = []
        self._generation += 1
        self._more = False
        self._fetching = False
        self.endResetModel()

    def add_page(self, generation: int, offset: int, rows: list[ReportSummary]) -> bool:
        """Appends a page fetched for ``generation`` at ``offset``; returns False (and changes nothing) for
        a page of an older generation or one that no longer fits at the end."""
        if generation != self._generation or offset != len(self._rows):
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
        """A page could not be read: stop asking for more until the next restart."""
        if generation == self._generation:
            self._fetching = False
            self._more = False

    def summary(self, row: int) -> ReportSummary:
        return self._rows[row]

    # --- QAbstractTableModel -----------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 -- Qt's own default
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows) or index.column() >= len(COLUMNS):
            return None
        summary = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return display_text(summary, index.column())
        if role == SUMMARY_ROLE:
            return summary
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None  # a heading cut short (large text, a narrow window) is whole in its tooltip
        if orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][1] if 0 <= section < len(COLUMNS) else None
        return str(section + 1)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def canFetchMore(self, parent: _Index) -> bool:
        return not parent.isValid() and self._more and not self._fetching

    def fetchMore(self, parent: _Index) -> None:
        if not self.canFetchMore(parent):
            return
        self._fetching = True
        self.fetch_requested.emit(self._generation, len(self._rows))
