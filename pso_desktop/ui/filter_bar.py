"""The list's filter bar: unit, category, event type, harm, PSO status, review state, discovery dates, sort, and
saved views.

Each filter is a button with a menu of checkable choices (Space or Enter opens it, arrows move, Space or Enter
tick and the menu stays open for the next tick; Esc or Tab closes it), so everything works from the keyboard. The bar only holds choices: ``filters()`` gives them as a ``ReportQuery``
(without the search text and state, which the screen adds); the screen runs the query on the database worker.
Saved views (``views_requested`` and friends) are read and written by the screen through the worker too,
because a view can hold a search, which may be PHI, and so lives only in the encrypted profile.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QDate, QRegularExpression, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent, QMouseEvent, QRegularExpressionValidator
from PySide6.QtWidgets import QLineEdit, QMenu, QToolButton, QWidget

from pso_desktop.texts import PSO_STATUS_LABELS, REVIEW_STATE_LABELS
from pso_desktop.ui.flow_layout import FlowLayout
from pso_desktop.ui.reports_model import COLUMNS

if TYPE_CHECKING:
    from pso_desktop.domain import Catalogue
    from pso_desktop.storage.report_query import ReportQuery

NOT_GIVEN_LABEL = "Not given"
SORT_LABELS = dict(COLUMNS)


class MultiChoiceMenu(QMenu):
    """A menu of ticks that stays open while ticking, like a multi-select: Space, Enter or a click ticks the
    active choice; Esc or Tab closes (a plain QMenu closes after every tick and ignores Space)."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = Qt.Key(event.key())
        action = self.activeAction()
        ticks = key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if ticks and action is not None and action.isCheckable() and action.isEnabled():
            action.trigger()
            return
        if key in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            self.close()  # a QMenu would move to the next choice; here Tab leaves, as from a list
            return
        super().keyPressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        action = self.actionAt(event.position().toPoint())
        if action is not None and action.isCheckable() and action.isEnabled():
            action.trigger()
            return
        super().mouseReleaseEvent(event)


class ChoiceButton(QToolButton):
    """A filter: a button whose menu ticks any number of choices. Its text says how many are ticked."""

    changed = Signal()

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.setObjectName("filterButton")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setAccessibleName(f"Filter by {title.lower()}")
        self.setToolTip(f"Show only the reports with the {title.lower()} you tick (none ticked: any)")
        self._menu = MultiChoiceMenu(self)
        self.setMenu(self._menu)
        self._actions: dict[str, QAction] = {}
        self._update_text()

    def set_choices(self, choices: list[tuple[str, str]]) -> None:
        """(code, label) pairs; ticks of codes still offered are kept."""
        ticked = set(self.selected())
        self._menu.clear()
        self._actions = {}
        for code, label in choices:
            action = QAction(label, self._menu)
            action.setCheckable(True)
            action.setChecked(code in ticked)
            action.toggled.connect(self._on_toggled)
            self._menu.addAction(action)
            self._actions[code] = action
        self._update_text()

    def selected(self) -> tuple[str, ...]:
        return tuple(code for code, action in self._actions.items() if action.isChecked())

    def set_selected(self, codes: tuple[str, ...]) -> None:
        """Ticks exactly ``codes`` (codes not offered are added as their own label, e.g. a unit no report has)."""
        for code in codes:
            if code not in self._actions:
                self.set_choices([*self.choices(), (code, code or NOT_GIVEN_LABEL)])
        for code, action in self._actions.items():
            with QSignalBlocker(action):
                action.setChecked(code in codes)
        self._update_text()

    def choices(self) -> list[tuple[str, str]]:
        return [(code, action.text()) for code, action in self._actions.items()]

    def _on_toggled(self, _checked: bool) -> None:
        self._update_text()
        self.changed.emit()

    def _update_text(self) -> None:
        chosen = [action.text() for action in self._actions.values() if action.isChecked()]
        if not chosen:
            text = f"{self.title}: any"
        elif len(chosen) == 1:
            text = f"{self.title}: {chosen[0]}"
        else:
            text = f"{self.title}: {len(chosen)}"
        self.setText(text)
        # What is ticked, then the help (an explicit description hides the tooltip from a screen reader).
        self.setAccessibleDescription(f"Ticked: {', '.join(chosen) if chosen else 'any'}. {self.toolTip()}")


class DayEdit(QLineEdit):
    """A day typed as YYYY-MM-DD, empty for no limit; Up and Down step it by a day.

    Not a QDateEdit: with "any" as its special value, a day typed over "any" was never taken (the text
    became "from: any2026…"), so the list could not be narrowed to dates by typing them.
    """

    changed = Signal()

    def __init__(self, name: str, any_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._day: str | None = None
        self.setPlaceholderText(any_text)
        self.setValidator(QRegularExpressionValidator(QRegularExpression(r"[0-9]{0,4}(-[0-9]{0,2}){0,2}"), self))
        self.setAccessibleName(name)
        self.setToolTip(f"{name} this day, typed as YYYY-MM-DD (Up and Down step it; empty: no limit)")
        self.setAccessibleDescription(self.toolTip())
        self.textEdited.connect(self._on_edited)
        # A day left half typed is put back to the one applied, so what the box shows is what filters.
        self.editingFinished.connect(lambda: self.set_day(self._day))

    def day(self) -> str | None:
        return self._day

    def set_day(self, day: str | None) -> None:
        """Shows ``day`` (YYYY-MM-DD or None), without ``changed``."""
        self._day = day
        if self.text() != (day or ""):
            self.setText(day or "")

    def _on_edited(self, text: str) -> None:
        if not text:
            self._apply(None)
            return
        date = QDate.fromString(text, "yyyy-MM-dd")
        if date.isValid() and len(text) == 10:
            self._apply(text)

    def _apply(self, day: str | None) -> None:
        if day != self._day:
            self._day = day
            self.changed.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        step = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1}.get(Qt.Key(event.key()))
        if step is None:
            super().keyPressEvent(event)
            return
        start = QDate.fromString(self._day, "yyyy-MM-dd") if self._day else QDate.currentDate().addDays(-step)
        day = start.addDays(step).toString("yyyy-MM-dd")
        self.setText(day)
        self._apply(day)

    def sizeHint(self) -> QSize:
        # As wide as a day or the "any" text, in the current font (large text too), not a whole line.
        metrics = self.fontMetrics()
        width = max(metrics.horizontalAdvance(t) for t in ("0000-00-00", self.placeholderText()))
        hint = super().sizeHint()
        return QSize(width + metrics.averageCharWidth() * 3, hint.height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()


class FilterBar(QWidget):
    """The filters, sort and saved views of the list. ``changed`` is emitted whenever the query changes."""

    changed = Signal()
    save_view_requested = Signal()
    view_chosen = Signal(str)  # the name of a saved view to apply
    delete_view_requested = Signal(str)
    clear_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterBar")
        self.unit = ChoiceButton("Unit")
        self.category = ChoiceButton("Category")
        self.event_type = ChoiceButton("Event type")
        self.harm = ChoiceButton("Harm")
        self.pso_status = ChoiceButton("At the PSO")
        self.pso_status.set_choices([("", "Not sent yet"), *PSO_STATUS_LABELS.items()])
        # The facility's review (risk managers); a report nobody reviews (the profile's own) has none.
        self.review_state = ChoiceButton("Review")
        self.review_state.set_choices([*REVIEW_STATE_LABELS.items(), ("", "Not reviewed")])
        # Whose reports (a risk manager's list holds the facility's beside the profile's own).
        self.origin = ChoiceButton("From")
        self.origin.setToolTip("Show only your own reports, or only your facility's (none ticked: both)")
        self.origin.set_choices([("mine", "Your own"), ("facility", "Your facility's")])
        self.choice_buttons = (
            self.origin,
            self.unit,
            self.category,
            self.event_type,
            self.harm,
            self.pso_status,
            self.review_state,
        )
        for button in self.choice_buttons:
            button.changed.connect(self.changed)

        self.date_from = DayEdit("Discovered from", "from: any")
        self.date_to = DayEdit("Discovered up to", "to: any")
        for edit in (self.date_from, self.date_to):
            edit.changed.connect(self.changed)

        self.sort_key = "updated_at"
        self.descending = True
        self.sort_button = QToolButton()
        self.sort_button.setObjectName("filterButton")
        self.sort_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.sort_button.setAccessibleName("Sort the list")
        self.sort_button.setToolTip("Sort the list by a column (or click a column's heading)")
        sort_menu = QMenu(self.sort_button)
        self._sort_actions: dict[str, QAction] = {}
        for key, label in (*COLUMNS, ("harm", "Harm")):
            action = sort_menu.addAction(label)
            action.setCheckable(True)
            action.triggered.connect(partial(self._choose_sort, key))
            self._sort_actions[key] = action
        sort_menu.addSeparator()
        self._descending_action = sort_menu.addAction("Descending (largest, newest first)")
        self._descending_action.setCheckable(True)
        self._descending_action.triggered.connect(self._toggle_direction)
        self.sort_button.setMenu(sort_menu)

        self.views_button = QToolButton()
        self.views_button.setObjectName("filterButton")
        self.views_button.setText("Views")
        self.views_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.views_button.setAccessibleName("Saved views")
        self.views_button.setToolTip("Save these filters as a view, or apply a saved one (kept in your profile)")
        self._views_menu = QMenu(self.views_button)
        self.views_button.setMenu(self._views_menu)
        self.set_view_names([])

        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setAccessibleName("Clear filters")
        self.clear_button.setToolTip("Show every report again (the search box is kept)")
        self.clear_button.clicked.connect(self.clear_requested)

        # One row that wraps onto a second when the width runs out (large text, a narrow window): the list
        # never scrolls sideways.
        row = FlowLayout(self, spacing=6)
        widgets: tuple[QWidget, ...] = (*self.choice_buttons, self.date_from, self.date_to)
        for widget in (*widgets, self.sort_button, self.views_button, self.clear_button):
            row.addWidget(widget)
        self._update_sort()

    # --- choices -----------------------------------------------------------------------------------------

    def set_catalogue(self, catalogue: Catalogue) -> None:
        """The category, event type and harm choices, with the form's labels (called once, after unlock)."""
        # Every category a stored report may carry: the form's, then a V1.2 report's or a published version's.
        from pso_desktop.domain.catalogue import category_names

        categories = {c.code: c.display for c in catalogue.categories}
        for code, display in category_names().items():
            categories.setdefault(code, display)
        self.category.set_choices(list(categories.items()))
        self.event_type.set_choices([(a.code, a.display) for a in catalogue.event_types])
        self.harm.set_choices([*((a.code, a.display) for a in catalogue.harm_levels), ("", NOT_GIVEN_LABEL)])

    def set_units(self, units: list[str]) -> None:
        self.unit.set_choices([(unit, unit) for unit in units] + [("", NOT_GIVEN_LABEL)])

    def set_view_names(self, names: list[str]) -> None:
        self._views_menu.clear()
        save = self._views_menu.addAction("Save these filters as a view…")
        save.triggered.connect(self.save_view_requested)
        if names:
            self._views_menu.addSeparator()
        for name in names:
            action = self._views_menu.addAction(name)
            action.triggered.connect(partial(self.view_chosen.emit, name))
        if names:
            delete = self._views_menu.addMenu("Delete a view")
            for name in names:
                action = delete.addAction(name)
                action.triggered.connect(partial(self.delete_view_requested.emit, name))

    # --- the query ---------------------------------------------------------------------------------------

    def filters(self) -> ReportQuery:
        """The bar's filters and sort (no search text, no state)."""
        from pso_desktop.storage.report_query import ReportQuery

        return ReportQuery(
            units=self.unit.selected(),
            categories=self.category.selected(),
            event_types=self.event_type.selected(),
            harm_levels=self.harm.selected(),
            pso_statuses=self.pso_status.selected(),
            review_states=self.review_state.selected(),
            origins=self.origin.selected(),
            discovered_from=self.date_from.day(),
            discovered_to=self.date_to.day(),
            sort=self.sort_key,
            descending=self.descending,
        )

    def apply(self, query: ReportQuery) -> None:
        """Shows ``query``'s filters and sort (a saved view); emits ``changed`` once."""
        for button, codes in (
            (self.unit, query.units),
            (self.category, query.categories),
            (self.event_type, query.event_types),
            (self.harm, query.harm_levels),
            (self.pso_status, query.pso_statuses),
            (self.review_state, query.review_states),
            (self.origin, query.origins),
        ):
            with QSignalBlocker(button):
                button.set_selected(codes)
        for edit, day in ((self.date_from, query.discovered_from), (self.date_to, query.discovered_to)):
            edit.set_day(day)
        self.sort_key, self.descending = query.sort, query.descending
        self._update_sort()
        self.changed.emit()

    def reset(self) -> None:
        """Every filter back to 'any' and the default order, without signals (on lock, and Clear filters)."""
        for button in self.choice_buttons:
            with QSignalBlocker(button):
                button.set_selected(())
        for edit in (self.date_from, self.date_to):
            edit.set_day(None)
        self.sort_key, self.descending = "updated_at", True
        self._update_sort()

    def set_sort(self, key: str, descending: bool) -> None:
        """Sort by ``key`` (a column, e.g. from the table's header); emits ``changed`` when it changed."""
        if (key, descending) != (self.sort_key, self.descending):
            self.sort_key, self.descending = key, descending
            self._update_sort()
            self.changed.emit()

    def _choose_sort(self, key: str) -> None:
        self.set_sort(key, self.descending)
        self._update_sort()  # the menu's own tick toggled; show the real one

    def _toggle_direction(self) -> None:
        self.set_sort(self.sort_key, not self.descending)

    def _update_sort(self) -> None:
        for key, action in self._sort_actions.items():
            action.setChecked(key == self.sort_key)
        self._descending_action.setChecked(self.descending)
        arrow = "↓" if self.descending else "↑"
        label = SORT_LABELS.get(self.sort_key, "Harm")
        self.sort_button.setText(f"Sort: {label} {arrow}")
