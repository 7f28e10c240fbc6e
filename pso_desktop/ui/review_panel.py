"""The facility's review of one report, beside the read-only report (risk managers; issue 12, item 2).

Review state, assignee and harm after review (saved together with "Save review", Ctrl+Shift+R), internal notes
and actions with an owner and a due date. A field someone else changed at the same time shows the conflicting
value and who set it; saving the field (keeping or changing its value) resolves it. Everything is read and written
on the database worker (``Backend.review`` and friends), and each change reaches the facility's other risk
managers at the next sync. Every control has an accessible name and is reached with Tab.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.texts import REVIEW_FIELD_LABELS, REVIEW_STATE_LABELS
from pso_desktop.ui.errors import user_message

if TYPE_CHECKING:
    from pso_desktop.services.backend import Backend
    from pso_desktop.storage.facility import Review
    from pso_desktop.ui.worker import DbWorker

SAVE_SHORTCUT = "Ctrl+Shift+R"
NOT_SET = "(not set)"


class ReviewPanel(QGroupBox):
    """Shows and edits the review of the report given to :meth:`show_report`. ``failed`` carries one sentence."""

    failed = Signal(str)
    saved = Signal(str)
    recorded = Signal()  # a change was stored: it waits for the next sync to reach the other risk managers

    def __init__(self, worker: DbWorker, backend: Backend, parent: QWidget | None = None) -> None:
        super().__init__("Facility review", parent)
        self.setObjectName("reviewPanel")
        self.setAccessibleName("Facility review")
        self._worker = worker
        self._backend = backend
        self._report_id: str | None = None
        self._review: Review | None = None
        self._generation = 0
        self._harm_labels: dict[str, str] = {}
        self._busy = False
        # The fields' values as last shown from the stored review (None: take every value of the next one): a
        # field the user changed since is kept when the review is shown again (after a note, or a sync).
        self._shown: dict[str, Any] | None = None
        self._save_asked = False  # Save review pressed while a read or change was on its way: it follows it

        self.state = QComboBox()
        self.state.setAccessibleName(REVIEW_FIELD_LABELS["state"])
        for code, label in REVIEW_STATE_LABELS.items():
            self.state.addItem(label, code)
        self.assignee = QLineEdit()
        self.assignee.setAccessibleName(REVIEW_FIELD_LABELS["assignee"])
        self.assignee.setMaxLength(150)
        self.assignee.setPlaceholderText("A risk manager's user name")
        self.harm = QComboBox()
        self.harm.setAccessibleName(REVIEW_FIELD_LABELS["harm"])
        self.harm.setToolTip("Harm as the review found it; the reporter's own answer is kept as it was sent")
        self.reporter_harm = QLabel()
        self.reporter_harm.setAccessibleName("Harm as reported")
        self.conflicts = QLabel()
        self.conflicts.setObjectName("reviewConflicts")
        self.conflicts.setWordWrap(True)
        self.conflicts.setTextFormat(Qt.TextFormat.PlainText)
        self.conflicts.setAccessibleName("Review conflicts to resolve")
        self.conflicts.hide()
        self.save_action = QAction("Save review", self)
        self.save_action.setShortcut(QKeySequence(SAVE_SHORTCUT))
        self.save_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.save_action.triggered.connect(self.save_fields)
        self.addAction(self.save_action)
        self.save_button = QPushButton(f"Save review ({SAVE_SHORTCUT})")
        self.save_button.setAccessibleName("Save the review state, assignee and harm after review")
        self.save_button.clicked.connect(self.save_action.trigger)

        fields = QFormLayout()
        fields.addRow("Review state", self.state)
        fields.addRow("Assignee", self.assignee)
        fields.addRow("Harm after review", self.harm)
        fields.addRow("Harm as reported", self.reporter_harm)

        self.notes = QListWidget()
        self.notes.setAccessibleName("Internal notes")
        self.notes.setWordWrap(True)
        self.new_note = QLineEdit()
        self.new_note.setAccessibleName("New internal note")
        self.new_note.setMaxLength(4000)
        self.new_note.setPlaceholderText("A note for the facility's risk managers")
        self.new_note.returnPressed.connect(self.add_note)
        self.add_note_button = QPushButton("Add note")
        self.add_note_button.setAccessibleName("Add the internal note")
        self.add_note_button.clicked.connect(self.add_note)
        note_row = QHBoxLayout()
        note_row.addWidget(self.new_note, 1)
        note_row.addWidget(self.add_note_button)

        self.actions_list = QListWidget()
        self.actions_list.setAccessibleName("Actions")
        self.actions_list.setWordWrap(True)
        self.action_text = QLineEdit()
        self.action_text.setAccessibleName("New action")
        self.action_text.setMaxLength(4000)
        self.action_text.setPlaceholderText("What is to be done")
        self.action_owner = QLineEdit()
        self.action_owner.setAccessibleName("Action owner")
        self.action_owner.setMaxLength(150)
        self.action_owner.setPlaceholderText("Owner")
        # A plain text box: a date edit's Tab walks its year, month and day instead of moving on.
        self.action_due = QLineEdit()
        self.action_due.setAccessibleName("Action due date")
        self.action_due.setMaxLength(10)
        self.action_due.setPlaceholderText("Due (YYYY-MM-DD)")
        self.action_due.setToolTip("The due date as YYYY-MM-DD, or empty for none")
        self.add_action_button = QPushButton("Add action")
        self.add_action_button.setAccessibleName("Add the action")
        self.add_action_button.clicked.connect(self.add_action)
        # Enter in any of the action's boxes adds it, as Enter adds a note (the due date is typed last).
        for box in (self.action_text, self.action_owner, self.action_due):
            box.returnPressed.connect(self.add_action)
        action_row = QHBoxLayout()  # under the action's text, which has a line of its own
        action_row.addWidget(self.action_owner, 1)
        action_row.addWidget(self.action_due, 1)
        action_row.addWidget(self.add_action_button)

        layout = QVBoxLayout(self)
        layout.addLayout(fields)
        layout.addWidget(self.conflicts)
        layout.addWidget(self.save_button)
        layout.addWidget(QLabel("Internal notes"))
        layout.addWidget(self.notes, 1)
        layout.addLayout(note_row)
        layout.addWidget(QLabel("Actions"))
        layout.addWidget(self.actions_list, 1)
        layout.addWidget(self.action_text)
        layout.addLayout(action_row)

    def tab_stops(self) -> list[QWidget]:
        """The panel's controls in reading order (the editor's Tab order uses them)."""
        return [
            self.state,
            self.assignee,
            self.harm,
            self.save_button,
            self.notes,
            self.new_note,
            self.add_note_button,
            self.actions_list,
            self.action_text,
            self.action_owner,
            self.action_due,
            self.add_action_button,
        ]

    # --- showing ---------------------------------------------------------------------------------------------

    def set_harm_levels(self, levels: list[tuple[str, str]]) -> None:
        """(code, label) of the form's harm levels, for harm after review and the reporter's own."""
        self._harm_labels = dict(levels)
        self.harm.clear()
        self.harm.addItem(NOT_SET, None)
        for code, label in levels:
            self.harm.addItem(label, code)

    def show_report(self, report_id: str, reporter_harm: str | None) -> None:
        """Loads the review of ``report_id`` (on the worker) and shows it when it comes back."""
        self._generation += 1
        self._report_id = report_id
        self._review = None
        self._shown = None
        self._save_asked = False
        self.reporter_harm.setText(self._harm_labels.get(reporter_harm or "", reporter_harm or NOT_SET))
        self._set_busy(True)
        self._worker.submit(
            partial(self._backend.review, report_id),
            owner=self,
            on_done=partial(self._show, self._generation),
            on_error=partial(self._failed, self._generation),
        )

    def refresh(self) -> None:
        """Reads the review again (after a sync), keeping the report."""
        if self._report_id is not None and not self._busy:
            self._generation += 1
            self._set_busy(True)
            self._worker.submit(
                partial(self._backend.review, self._report_id),
                owner=self,
                on_done=partial(self._show, self._generation),
                on_error=partial(self._failed, self._generation),
            )

    def clear(self) -> None:
        """Forgets the report (on lock, or when another report opens)."""
        self._generation += 1
        self._report_id = None
        self._review = None
        self._shown = None
        self._save_asked = False
        for widget in (self.assignee, self.new_note, self.action_text, self.action_owner, self.action_due):
            widget.clear()
        self.notes.clear()
        self.actions_list.clear()
        self.conflicts.clear()
        self.conflicts.hide()

    @property
    def review(self) -> Review | None:
        return self._review

    def _show(self, generation: int, review: Review) -> None:
        if generation != self._generation:
            return
        self._set_busy(False)
        self._review = review
        fields = review.fields
        edited = {} if self._shown is None else {k: v for k, v in self._chosen().items() if v != self._shown[k]}
        if "state" not in edited:
            self.state.setCurrentIndex(max(0, self.state.findData(fields["state"].value or "new")))
        if "assignee" not in edited:
            self.assignee.setText(fields["assignee"].value or "")
        if "harm" not in edited:
            self.harm.setCurrentIndex(max(0, self.harm.findData(fields["harm"].value)))
        self._shown = {
            "state": self.state.itemData(max(0, self.state.findData(fields["state"].value or "new"))),
            "assignee": (fields["assignee"].value or "").strip() or None,
            "harm": self.harm.itemData(max(0, self.harm.findData(fields["harm"].value))),
        }
        said = []
        for name, field in fields.items():
            for conflict in field.conflicts:
                value = self._label(name, conflict.value)
                said.append(
                    f"{REVIEW_FIELD_LABELS[name]}: {conflict.author} set it to '{value}' at the same time as "
                    f"'{self._label(name, field.value)}'."
                )
        if said:
            said.append("Choose the value and save the review to resolve.")
        self.conflicts.setText("\n".join(said))
        self.conflicts.setVisible(bool(said))
        self.notes.clear()
        for note in review.notes:
            self.notes.addItem(
                f"{note.author}, {_day(note.created_at)}{' (not sent yet)' if note.pending else ''}: {note.text}"
            )
        self.actions_list.clear()
        for action in review.actions:
            owner = action.owner or "no owner"
            due = f"due {action.due}" if action.due else "no due date"
            pending = " (not sent yet)" if action.pending else ""
            self.actions_list.addItem(f"{action.text} ({owner}, {due}; by {action.author}){pending}")
        if self._save_asked:
            self._save_asked = False
            self.save_fields()

    def _chosen(self) -> dict[str, Any]:
        """The state, assignee and harm after review the panel shows (maybe changed, not yet saved)."""
        return {
            "state": self.state.currentData(),
            "assignee": self.assignee.text().strip() or None,
            "harm": self.harm.currentData(),
        }

    def _label(self, name: str, value: Any) -> str:
        if value is None or value == "":
            return NOT_SET
        if name == "state":
            return REVIEW_STATE_LABELS.get(str(value), str(value))
        if name == "harm":
            return self._harm_labels.get(str(value), str(value))
        return str(value)

    # --- changing ----------------------------------------------------------------------------------------------

    def save_fields(self) -> None:
        """Saves each field whose value changed, or that is in conflict (saving it resolves the conflict)."""
        if self._report_id is not None and (self._busy or self._review is None):
            self._save_asked = True  # not dropped: saved once the review on its way is shown
            return
        if self._review is None or self._report_id is None:
            return
        chosen = self._chosen()
        changes = []
        for name, value in chosen.items():
            field = self._review.fields[name]
            current = field.value if field.value is not None or name != "state" else "new"
            if value != current or field.conflicts:
                changes.append((name, value))
        if not changes:
            self.saved.emit("The review has no changes to save.")
            return
        self._submit(
            partial(_change_all, self._backend, self._report_id, changes),
            "Review saved; it reaches the facility's other risk managers at the next sync.",
        )

    def add_note(self) -> None:
        text = self.new_note.text().strip()
        if self._report_id is None or not text or self._busy:
            return
        self.new_note.clear()
        self._submit(partial(self._backend.add_review_note, self._report_id, text), "Note added.")

    def add_action(self) -> None:
        text = self.action_text.text().strip()
        if self._report_id is None or not text or self._busy:
            return
        owner = self.action_owner.text().strip() or None
        due_text = self.action_due.text().strip()
        try:
            due = dt.date.fromisoformat(due_text) if due_text else None
        except ValueError:
            self.failed.emit(
                "Write the action's due date as YYYY-MM-DD (for example 2027-01-31), or leave it empty."
            )
            self.action_due.setFocus()
            self.action_due.selectAll()
            return
        self.action_text.clear()
        self.action_owner.clear()
        self.action_due.clear()
        self._submit(partial(self._backend.add_review_action, self._report_id, text, owner, due), "Action added.")

    def _submit(self, job: Any, said: str) -> None:
        self._generation += 1
        self._set_busy(True)
        self._worker.submit(
            job,
            owner=self,
            on_done=partial(self._after_change, self._generation, said),
            on_error=partial(self._failed, self._generation),
        )

    def _after_change(self, generation: int, said: str, review: Review) -> None:
        if generation != self._generation:
            return
        self._show(generation, review)
        self.saved.emit(said)
        self.recorded.emit()

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            self._set_busy(False)
            self.failed.emit(user_message(exc))

    def _set_busy(self, busy: bool) -> None:
        # Buttons stay enabled (disabling the focused one would move the keyboard away); a change asked for while
        # another is on its way waits for it.
        self._busy = busy


def _change_all(backend: Backend, report_id: str, changes: list[tuple[str, Any]]) -> Review:
    """Runs on the database worker: one change after another (each with its audit entry)."""
    review = None
    for name, value in changes:
        review = backend.change_review(report_id, name, value)
    assert review is not None
    return review


def _day(stamp: str) -> str:
    return stamp[:10]
