"""The report editor: the form, autosave, and Submit with every problem listed beside the form.

Every edit restarts a short autosave timer; when it fires, the report as entered is saved as a draft on the
database worker. Going back to the list, locking and closing the window save at once (``flush``): the save
is queued on the worker before the lock, and the worker runs jobs in order, so a lock never loses typing.
Submit saves, validates and queues on the worker; a report that is not complete stays a draft and each
problem is listed in the nurse's words, with a click (or Enter) taking the cursor to the field.

A report submitted (queued or on its way) or sent opens read-only, with its case number and the PSO's status:
no stray click or key changes it and nothing is saved. Amend makes it editable; the first change is saved as
its next revision, a draft (the store never changes a submitted revision).
"""

from __future__ import annotations

import datetime as dt
import uuid
from functools import partial
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.domain.catalogue import Catalogue
from pso_desktop.domain.validation import FieldError, ReportInvalid
from pso_desktop.services.backend import Backend, Standing
from pso_desktop.services.workstation import PSWP_LABEL
from pso_desktop.texts import PSO_STATUS_LABELS
from pso_desktop.ui.errors import user_message
from pso_desktop.ui.one_line_label import PSWP_SHORT, OneLineLabel
from pso_desktop.ui.report_form import ReportForm
from pso_desktop.ui.review_panel import ReviewPanel
from pso_desktop.ui.worker import DbWorker

AUTOSAVE_DELAY_MS = 1500
NOT_SAVED_YET = "Not saved yet: saving starts when you type."
SAVED_DRAFT = "Saved as a draft: changes are saved as you type."  # a stored draft just opened
SECTION_LIST_CHARS = 32  # the section list's width in average characters (large text widens it); long names wrap
RETRY_DELAY_MS = 10_000
MAX_ERROR_ROWS = 6
PSO_PROBLEMS_HEADING = "The PSO did not accept this report; fix {things} and submit it again"
# Submitted (waiting or on its way) or taken by the PSO: only Amend changes these. A draft, and a report the PSO
# did not accept (needs_attention), open editable.
READ_ONLY_STATES = frozenset({"queued", "sending", "submitted"})
AMEND_SHORTCUT = "Ctrl+E"
REVIEW_SHORTCUT = "Ctrl+Shift+V"
REVIEW_PANEL_WIDTH = 300  # at 1024 pixels the form keeps most of the width
NOTE_SHOWN = (
    300  # characters of the PSO's note in the case line (up to 2000 are allowed); all of it in its tooltip
)


def standing_text(standing: Standing, *, amending: bool = False) -> str:
    """One line on where the report stands (no report content): its case number, the PSO's status and note,
    and what Amend does. Empty for a draft never sent and for a report the PSO did not accept (its reasons are
    listed instead)."""
    case = f"case number {standing.server_ref}" if standing.server_ref else "no case number yet"
    following = standing.revision + 1
    if amending:
        return (
            f"Amending ({case}): your changes are saved as revision {following}, a draft until you submit it; "
            f"revision {standing.revision} stays as it was submitted."
        )
    if standing.facility:
        where = f"From your facility's record, revision {standing.revision}, {case}."
    elif standing.state == "queued":
        where = f"Submitted and queued: it goes to the PSO by itself ({case})."
    elif standing.state == "sending":
        where = f"Submitted: being sent to the PSO now ({case})."
    elif standing.state == "submitted":
        where = f"Sent to the PSO, {case}."
    elif standing.state == "draft" and standing.server_ref:
        where = f"Revision {standing.revision} of {case}, a draft: it goes to the PSO when you submit it."
    else:
        return ""
    if standing.pso_status:
        where += f" At the PSO: {PSO_STATUS_LABELS.get(standing.pso_status, standing.pso_status)}."
    if standing.pso_note:
        note = " ".join(standing.pso_note.split())
        where += f" The PSO's note: {note if len(note) <= NOTE_SHOWN else note[: NOTE_SHOWN - 1] + '…'}"
    if standing.facility:
        where += (
            f" Read-only: only its reporter can change it. Review it beside the form ({REVIEW_SHORTCUT}); the review "
            "reaches the facility's other risk managers at the next sync."
        )
    elif standing.state in READ_ONLY_STATES:
        where += (
            f" Read-only. To change it, choose Amend ({AMEND_SHORTCUT}): your changes become revision {following}, "
            "sent when you submit it."
        )
    return where


def new_report(catalogue: Catalogue, now: dt.datetime | None = None) -> dict[str, Any]:
    """The starting point of a new report: its identity, today's report date, discovered now (the date and time
    are answers to change when it was not; "unknown" is under the section's more detail), and the empty shape of
    the parts every report has, so that Submit names the missing field itself (the unit, not "location")."""
    moment = now or dt.datetime.now()
    return {
        "id": str(uuid.uuid4()),
        "revision": 1,
        "form_version": catalogue.version,
        "report_date": moment.date().isoformat(),
        "categories": [],
        "discovery": {
            "date": moment.date().isoformat(),
            "date_unknown": False,
            "time": moment.strftime("%H:%M:00"),
            "time_unknown": False,
        },
        "location": {},
        "reporter": {"anonymous": False},
    }


class EditorScreen(QWidget):
    """Edits one report at a time. ``open`` shows a report, ``flush`` saves pending edits, ``clear`` empties
    it (on lock)."""

    closed = Signal()  # the clinician went back to the list
    saved = Signal(int)  # a draft was saved: the revision stored
    submitted = Signal(str)  # the report was queued: its id
    deleted = Signal()  # the draft was deleted (or, never saved, dropped)
    invalid = Signal(object)  # Submit found problems: list[FieldError]
    failed = Signal(str)  # a plain message for the status bar (not only failures: an entry removed, its Undo)

    def __init__(self, worker: DbWorker, backend: Backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("editorScreen")
        self._worker = worker
        self._backend = backend
        self._forms: dict[str, ReportForm] = {}  # one per form version, built when first needed
        self._pages: dict[str, QWidget] = {}  # each form with its section list
        self.form: ReportForm | None = None
        self._dirty = False
        # A new report never saved, as it opened: it is saved only once what is entered differs from this (a box
        # ticked and unticked again leaves nothing to save).
        self._untouched: dict[str, Any] | None = None
        self.save_error: str | None = None  # why the last save of the report on screen failed (a plain sentence)
        self._generation = 0  # answers for a report no longer shown (after clear or open) are ignored

        self.back_action = QAction("← &Back to the list", self)
        self.back_action.setShortcut(QKeySequence("Alt+Left"))
        self.back_action.setToolTip("Save and go back to the report list (Alt+Left)")
        self.back_action.triggered.connect(self.close_editor)
        self.submit_action = QAction("&Submit to the PSO", self)
        self.submit_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.submit_action.setToolTip("Check the report and queue it for sending (Ctrl+Enter)")
        self.submit_action.triggered.connect(self.submit)
        self.delete_action = QAction("&Delete draft", self)
        self.delete_action.setToolTip("Delete this draft; only a report never submitted can be deleted")
        self.delete_action.triggered.connect(self.ask_delete)
        self.amend_action = QAction("&Amend", self)
        self.amend_action.setShortcut(QKeySequence(AMEND_SHORTCUT))
        self.amend_action.setToolTip(
            f"Change this submitted report: your changes become its next revision ({AMEND_SHORTCUT})"
        )
        self.amend_action.triggered.connect(self.amend)
        self.amend_action.setEnabled(False)
        self.review_action = QAction("Go to the &review", self)
        self.review_action.setShortcut(QKeySequence(REVIEW_SHORTCUT))
        self.review_action.setToolTip(f"Move to the facility review of this report ({REVIEW_SHORTCUT})")
        self.review_action.triggered.connect(self.go_to_review)
        self.addActions(
            [self.back_action, self.submit_action, self.delete_action, self.amend_action, self.review_action]
        )
        self.confirm_delete: QMessageBox | None = None
        back = self.back_button = QPushButton(self.back_action.text().replace("&", ""))
        back.setObjectName("backButton")
        back.clicked.connect(self.back_action.trigger)
        self.submit_button = QPushButton(self.submit_action.text().replace("&", ""))
        self.submit_button.setObjectName("submitButton")
        self.submit_button.clicked.connect(self.submit_action.trigger)

        self.heading = QLabel()
        self.heading.setObjectName("editorHeading")
        self.save_status = QLabel()
        self.save_status.setObjectName("saveStatus")
        self.save_status.setAccessibleName("Save status")
        # The save status wraps rather than widening the window (large text would push Submit off screen).
        self.save_status.setWordWrap(True)
        self.save_status.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top = QHBoxLayout()
        top.addWidget(back)
        top.addWidget(self.heading)
        top.addWidget(self.save_status, 1)
        self.delete_button = QPushButton(self.delete_action.text().replace("&", ""))
        self.delete_button.setObjectName("deleteButton")
        self.delete_button.clicked.connect(self.delete_action.trigger)
        top.addWidget(self.delete_button)
        top.addWidget(self.submit_button)
        self.amend_button = QPushButton(self.amend_action.text())
        self.amend_button.setObjectName("amendButton")
        self.amend_button.setAccessibleName("Amend this report")
        self.amend_button.setToolTip(self.amend_action.toolTip())
        self.amend_button.clicked.connect(self.amend_action.trigger)
        self.amend_button.hide()
        top.addWidget(self.amend_button)
        # A draft started on an older form version than the PSO's current one: finish it there, or move it.
        self.move_button = QPushButton()
        self.move_button.setObjectName("moveFormButton")
        self.move_button.clicked.connect(self.move_to_current_form)
        self.move_button.hide()
        self._move_target: str | None = None
        top.insertWidget(2, self.move_button)

        # Where the report stands; selectable, so the case number can be copied.
        self.standing = QLabel()
        self.standing.setObjectName("reportStanding")
        self.standing.setWordWrap(True)
        self.standing.setTextFormat(Qt.TextFormat.PlainText)  # the PSO's note is shown as written, never as markup
        self.standing.setAccessibleName("Where this report stands")
        self.standing.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.standing.hide()
        self._standing: Standing | None = None
        self._read_only = False
        self._shown: dict[str, Any] = {}  # the report as opened, put back if anything changes it while read-only
        self._undo_pending = False

        self.errors_heading = QLabel()
        self.errors_heading.setObjectName("errorsHeading")
        self.errors = QListWidget()
        self.errors.setObjectName("errorList")
        self.errors.setAccessibleName("Problems to fix before submitting")
        self.errors.itemActivated.connect(self._go_to_error)
        self.errors.itemClicked.connect(self._go_to_error)
        self._show_errors([])

        # The same confidentiality notice as on the list: this screen shows a patient's details.
        self.banner = OneLineLabel(PSWP_LABEL, short=PSWP_SHORT)
        self.banner.setObjectName("pswpBanner")
        self.banner.setAccessibleName("Confidentiality notice")

        # The facility's review (risk managers), beside the read-only report.
        self.review_panel = ReviewPanel(worker, backend)
        self.review_panel.setFixedWidth(REVIEW_PANEL_WIDTH)
        self.review_panel.failed.connect(self.failed)
        self.review_panel.saved.connect(self.save_status.setText)
        self.review_panel.hide()

        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.banner)
        self._layout.addLayout(top)
        self._layout.addWidget(self.standing)
        self._layout.addWidget(self.errors_heading)
        self._layout.addWidget(self.errors)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        self._pages_box = QVBoxLayout()
        body.addLayout(self._pages_box, 1)
        body.addWidget(self.review_panel, 0)
        self._layout.addLayout(body, 1)

        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_DELAY_MS)
        self._autosave.timeout.connect(self.flush)

    def focusNextPrevChild(self, next: bool) -> bool:
        """Tab and Shift+Tab go round the screen in reading order: the buttons, the problems, the sections, then
        every input of the form as it reads (see ``ReportForm.focusNextPrevChild``), and back to the buttons."""
        current = QApplication.focusWidget()
        outside = [
            widget
            for widget in (
                self.back_button,
                self.move_button,
                self.delete_button,
                self.submit_button,
                self.amend_button,
                self.errors,
                *(self.review_panel.tab_stops() if self.review_panel.isVisible() else ()),
                self.form.section_list if self.form is not None else None,
            )
            if widget is not None and widget.isVisible() and widget.isEnabled()
        ]
        stops = outside + (self.form.tab_stops() if self.form is not None else [])
        if current is None or current not in stops:
            return super().focusNextPrevChild(next)
        index = (stops.index(current) + (1 if next else -1)) % len(stops)
        stops[index].setFocus(Qt.FocusReason.TabFocusReason if next else Qt.FocusReason.BacktabFocusReason)
        return True

    # --- showing a report ------------------------------------------------------------------------------

    def open(
        self,
        catalogue: Catalogue,
        report: dict[str, Any],
        *,
        is_new: bool = False,
        pso_problems: list[FieldError] | None = None,
        standing: Standing | None = None,
    ) -> None:
        """Shows ``report`` in the form of its catalogue (building that form the first time), with the PSO's
        reasons for not accepting it, if it did not; read-only when ``standing`` says it was submitted."""
        self.flush()
        self._generation += 1
        form = self._form_for(catalogue)
        form.load(report)
        self._autosave.stop()  # loading is not an edit
        self._shown = report
        self._dirty = False
        self._untouched = form.report() if is_new else None
        self._standing = standing
        self._set_read_only(standing is not None and standing.state in READ_ONLY_STATES)
        self._show_errors(pso_problems or [], heading=PSO_PROBLEMS_HEADING)
        facility = standing is not None and standing.facility
        self.heading.setText(
            "New report"
            if is_new
            else "Facility report (read-only)"
            if facility
            else "Submitted report (read-only)"
            if self._read_only
            else "Draft report"
            if standing is None or standing.state == "draft"
            else "Report"
        )
        self._show_review(catalogue, report, standing)
        self.save_status.setText(NOT_SAVED_YET if is_new else "" if self._read_only else SAVED_DRAFT)
        self.submit_button.setEnabled(True)
        self.move_button.hide()
        self._move_target = None
        if not is_new and not self._read_only:
            self._worker.submit(
                self._backend.new_draft_version,
                owner=self,
                on_done=partial(self._offer_move, self._generation, catalogue.version),
            )
        form.scroll_to_start()
        form.fields["event_type"].focus_target().setFocus()

    def _show_review(self, catalogue: Catalogue, report: dict[str, Any], standing: Standing | None) -> None:
        """The review panel, for a report the facility's review applies to (read on the worker)."""
        if standing is None or not standing.reviewable or not isinstance(report.get("id"), str):
            self.review_panel.clear()
            self.review_panel.hide()
            return
        self.review_panel.set_harm_levels([(a.code, a.display) for a in catalogue.harm_levels])
        harm = report.get("harm")
        level = harm.get("level") if isinstance(harm, dict) else None
        self.review_panel.show_report(report["id"], level if isinstance(level, str) else None)
        self.review_panel.show()

    def go_to_review(self) -> None:
        """Moves the keyboard to the review panel (Ctrl+Shift+V), when it is shown."""
        if self.review_panel.isVisible():
            self.review_panel.state.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # --- moving a draft to the PSO's current form version ------------------------------------------------

    def _offer_move(self, generation: int, version: str, target: str) -> None:
        if generation != self._generation or self._read_only or target == version:
            return
        self._move_target = target
        self.move_button.setText(f"Move to form {target}")
        self.move_button.setAccessibleName(f"Move this draft to form {target}")
        self.move_button.setToolTip(
            f"This draft was started on form {version}; the PSO now uses {target}. Move it (each answer that no "
            "longer fits is listed), or finish it on its own version: both are accepted."
        )
        self.move_button.show()

    def move_to_current_form(self) -> None:
        if self.form is None or self._read_only or self._move_target is None or self.form.report_id is None:
            return
        self.flush()  # queued first: the move reads what was typed
        self.move_button.setEnabled(False)
        self._worker.submit(
            partial(self._backend.move_draft, self.form.report_id, self._move_target),
            owner=self,
            on_done=partial(self._on_moved, self._generation, self._move_target),
            on_error=partial(self._on_move_failed, self._generation),
        )

    def _on_moved(self, generation: int, target: str, moved: tuple[Any, ...]) -> None:
        self.move_button.setEnabled(True)
        if generation != self._generation:
            return
        catalogue, report, problems, standing, said = moved
        self.open(catalogue, report, pso_problems=problems, standing=standing)
        if said:
            self._show_errors(
                [FieldError("form_version", sentence) for sentence in said],
                heading=f"Moved to form {target}: {{things}} no longer fit and were left out",
            )
        self.save_status.setText(f"Moved to form {target}")

    def _on_move_failed(self, generation: int, exc: BaseException) -> None:
        self.move_button.setEnabled(True)
        if generation == self._generation:
            self.failed.emit(user_message(exc))

    def _form_for(self, catalogue: Catalogue) -> ReportForm:
        form = self._forms.get(catalogue.version)
        if form is None:
            form = ReportForm(catalogue)
            form.changed.connect(self._on_changed)
            form.notice.connect(self.failed)  # the status line: an entry removed, with its Undo
            self._forms[catalogue.version] = form
            # The sections beside the form: where am I, what is left, which sections have problems.
            page = QWidget()
            page.setObjectName("formWithSections")
            row = QHBoxLayout(page)
            row.setContentsMargins(0, 0, 0, 0)
            width = form.section_list.fontMetrics().averageCharWidth() * SECTION_LIST_CHARS
            form.section_list.setFixedWidth(width)
            form.section_legend.setFixedWidth(width)
            sections = QVBoxLayout()
            sections.addWidget(form.section_list, 1)
            sections.addWidget(form.section_legend, 0)
            row.addLayout(sections, 0)
            row.addWidget(form, 1)
            self._pages[catalogue.version] = page
            self._pages_box.addWidget(page, 1)
        for version, other in self._pages.items():
            other.setVisible(self._forms[version] is form)
        self.form = form
        return form

    @property
    def read_only(self) -> bool:
        return self._read_only

    def _set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only
        if self.form is not None:
            self.form.set_read_only(read_only)
        # A copy of the facility's report is never amended here: only its reporter sends a new version.
        amendable = read_only and not (self._standing is not None and self._standing.facility)
        self.amend_action.setEnabled(amendable)
        self.amend_button.setVisible(amendable)
        for action, button in ((self.submit_action, self.submit_button), (self.delete_action, self.delete_button)):
            action.setEnabled(not read_only)
            button.setVisible(not read_only)
        self._show_standing(standing_text(self._standing) if self._standing is not None else "")

    def _show_standing(self, text: str) -> None:
        self.standing.setText(text)
        self.standing.setVisible(bool(text))
        note = self._standing.pso_note if self._standing is not None else None
        self.standing.setToolTip(f"The PSO's note: {note}" if note else "")

    def update_standing(self, report_id: str, standing: Standing | None) -> None:
        """A sync moved the read-only report on screen along: its case line says where it stands now."""
        if standing is None or not self._read_only or self.form is None or self.form.report_id != report_id:
            return
        self._standing = standing
        if self.review_panel.isVisible():  # the sync brought the other risk managers' review records
            self.review_panel.refresh()
        if standing.state in READ_ONLY_STATES:
            self._show_standing(standing_text(standing))
        else:  # the PSO did not accept it: its reasons are listed when it is opened again
            self._show_standing(
                "The PSO did not accept this report. Go back to the list and open it again to see why and fix it."
            )

    def amend(self) -> None:
        """Makes the submitted report on screen editable. Nothing is written until the first change, which is
        saved (autosave, as for any draft) as the report's next revision."""
        if not self._read_only or self.form is None or not self.amend_action.isEnabled():
            return
        on_button = self.amend_button.hasFocus()
        self._set_read_only(False)
        # It was submitted, so it is part of the record: there is no draft to delete.
        self.delete_action.setEnabled(False)
        self.delete_button.hide()
        self.heading.setText("Report")
        if self._standing is not None:
            self._show_standing(standing_text(self._standing, amending=True))
        if on_button:  # the button is gone; otherwise the keyboard stays on the field the clinician chose
            self.form.fields["event_type"].focus_target().setFocus()

    def _undo_change(self, generation: int) -> None:
        if generation == self._generation and self._read_only and self.form is not None:
            self.form.load(self._shown)
        self._undo_pending = False  # after loading: whatever loading itself emits is not undone again

    def clear(self) -> None:
        """Forgets the report on screen (on lock): every input emptied, answers still on their way ignored.
        Call ``flush`` first to keep the last edits."""
        self._generation += 1
        if self.confirm_delete is not None:
            self.confirm_delete.reject()
        for form in self._forms.values():
            form.clear()
        # After emptying, not before: an emptied form is never an edit still to save (it would save on a locked
        # profile and say that saving failed).
        self._autosave.stop()
        self._dirty = False
        self._untouched = None
        self.save_error = None
        self._show_errors([])
        self.save_status.clear()
        self._standing = None  # the PSO's note may name a patient
        self._shown = {}
        self.standing.clear()
        self.standing.setToolTip("")
        self.standing.hide()
        self.review_panel.clear()  # notes may name a patient
        self.review_panel.hide()

    # --- saving ----------------------------------------------------------------------------------------

    @property
    def has_unsaved_changes(self) -> bool:
        return self._dirty

    def _on_changed(self) -> None:
        if self._read_only:
            # Only Amend changes a submitted report: never save it. A change that got past the inputs' guards
            # (an assistive technology's "press", say) is undone once its signal has been handled.
            if not self._undo_pending:
                self._undo_pending = True
                QTimer.singleShot(0, partial(self._undo_change, self._generation))
            return
        self._dirty = True
        self.save_status.setText("Editing…")
        self._autosave.start(AUTOSAVE_DELAY_MS)

    def flush(self) -> None:
        """Saves pending edits now (queued on the worker ahead of anything submitted after this call)."""
        self._autosave.stop()
        if not self._dirty or self.form is None or self._worker.stopped:
            return  # (a stopped worker: the window closed, after saving the draft; a later change is dropped)
        report = self.form.report()  # before the edits count as saved: if this fails, they are still unsaved
        self._dirty = False
        if self._untouched is not None:
            if report == self._untouched:  # put back as it opened: still nothing to save
                self.save_status.setText(NOT_SAVED_YET)
                return
            self._untouched = None  # saved from now on, even if put back as it was
        self.save_status.setText("Saving…")
        self._worker.submit(
            partial(self._backend.save_draft, report),
            owner=self,
            on_done=partial(self._on_saved, self._generation),
            on_error=partial(self._on_save_failed, self._generation),
        )

    def _on_saved(self, generation: int, revision: int) -> None:
        if generation != self._generation or self.form is None:
            return
        self.form.set_revision(revision)
        self.save_error = None
        if not self._dirty:
            self.save_status.setText(f"Draft saved at {dt.datetime.now():%H:%M:%S}")
        self.saved.emit(revision)

    def _on_save_failed(self, generation: int, exc: BaseException) -> None:
        message = user_message(exc)
        if generation != self._generation:
            # The form shows another report by now (or none, after a lock): say it, so the clinician can reopen
            # the report and check it; its last saved state is what the list shows.
            self.failed.emit(f"The last changes to the previous report could not be saved: {message}")
            return
        self._dirty = True  # still to be saved: the next edit, Back, or the retry timer tries again
        self.save_error = message
        self.save_status.setText("Not saved yet")
        self._autosave.start(RETRY_DELAY_MS)
        self.failed.emit(f"The draft could not be saved: {message}")

    # --- leaving and submitting ------------------------------------------------------------------------

    def close_editor(self) -> None:
        self.flush()
        self.closed.emit()

    def submit(self) -> None:
        if self.form is None or self._read_only or not self.submit_button.isEnabled():
            return
        self._autosave.stop()
        self._dirty = False
        self._untouched = None  # Submit saves it, whatever it holds
        self.submit_button.setEnabled(False)
        self.save_status.setText("Checking the report…")
        self._worker.submit(
            partial(self._backend.submit_report, self.form.report()),
            owner=self,
            on_done=partial(self._on_submitted, self._generation),
            on_error=partial(self._on_submit_failed, self._generation),
        )

    def _on_submitted(self, generation: int, revision: int) -> None:
        if generation != self._generation or self.form is None:
            return
        self.form.set_revision(revision)
        self.submit_button.setEnabled(True)
        self.save_status.setText("Queued for sending")
        self.submitted.emit(self.form.report_id or "")

    def _on_submit_failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self.submit_button.setEnabled(True)
        if isinstance(exc, ReportInvalid):
            count = len(exc.errors)
            self.save_status.setText("Saved as a draft")
            self._show_errors(exc.errors)
            self.invalid.emit(list(exc.errors))
            self.errors.setCurrentRow(0)
            self.errors.setFocus()
            self.failed.emit(
                f"Not submitted: {count} {'thing' if count == 1 else 'things'} to fix, listed above the form. "
                "Your draft is saved."
            )
            return
        self._dirty = True
        self.save_status.setText("Not submitted")
        self.failed.emit(user_message(exc))

    def ask_delete(self) -> None:
        """Asks before deleting (a deleted draft cannot be brought back); the answer comes back to
        ``_on_delete_answer`` without blocking the event loop."""
        if self.form is None or self._read_only:
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Delete draft",
            "Delete this draft? It cannot be brought back. A report already submitted is kept.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.finished.connect(partial(self._on_delete_answer, self._generation, box))
        self.confirm_delete = box
        box.open()

    def _on_delete_answer(self, generation: int, box: QMessageBox, _result: int) -> None:
        box.deleteLater()
        self.confirm_delete = None
        yes = box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)
        if not yes or generation != self._generation or self.form is None or self.form.report_id is None:
            return
        self._autosave.stop()
        self._dirty = False  # nothing more to save: the draft goes
        self._worker.submit(
            partial(self._backend.delete_draft, self.form.report_id),
            owner=self,
            on_done=partial(self._on_deleted, self._generation),
            on_error=partial(self._on_delete_failed, self._generation),
        )

    def _on_deleted(self, generation: int, _result: object) -> None:
        if generation == self._generation:
            self.clear()
            self.deleted.emit()

    def _on_delete_failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            self.failed.emit(user_message(exc))

    # --- problems --------------------------------------------------------------------------------------

    def _show_errors(self, errors: list[FieldError], *, heading: str | None = None) -> None:
        self.errors.clear()
        for error in errors:
            label = self.form.catalogue.label(error.field) if self.form is not None else error.field
            # The field's name in front, unless the message already says it (or there is no name for it).
            named = label == error.field or label in error.message
            item = QListWidgetItem(error.message if named else f"{label}: {error.message}")
            item.setData(Qt.ItemDataRole.UserRole, error.field)
            self.errors.addItem(item)
        count = len(errors)
        things = f"{count} {'thing' if count == 1 else 'things'}"
        self.errors_heading.setText(
            (heading or "Before this report can be submitted, fix {things}").format(things=things)
            + " (Enter on one takes you to its field):"
        )
        self.errors_heading.setVisible(bool(errors))
        self.errors.setVisible(bool(errors))
        if self.form is not None:
            self.form.mark_problems([error.field for error in errors])
        rows = min(max(count, 1), MAX_ERROR_ROWS)  # as tall as the list, up to a limit; it scrolls beyond
        self.errors.setFixedHeight(self.errors.sizeHintForRow(0) * rows + 2 * self.errors.frameWidth() + 4)

    def _go_to_error(self, item: QListWidgetItem) -> None:
        if self.form is not None:
            self.form.focus_field(str(item.data(Qt.ItemDataRole.UserRole)))
