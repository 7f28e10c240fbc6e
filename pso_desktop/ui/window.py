"""The main window: the profile screen while locked, the report list while unlocked.

The window owns the database worker and the ``Backend`` that lives on it, the sync thread and its own
``SyncBackend`` (handed the unlocked profile's access at each unlock), and is the only place that unlocks and
locks. Locking (the Lock action, the idle lock, the computer going to sleep, the OS session locking
or a remote desktop disconnecting) clears every widget that shows report data,
returns to the unlock screen at once, and closes the session on the worker. The title never shows PHI.
"""

from __future__ import annotations

import sys
import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence, QTextCursor
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.paths import APP_NAME
from pso_desktop.services.agent_runner import AgentRunner
from pso_desktop.services.backend import Backend, SyncBackend
from pso_desktop.ui.clipboard import ClipboardGuard
from pso_desktop.ui.errors import user_message
from pso_desktop.ui.file_actions import FileActions
from pso_desktop.ui.idle import DEFAULT_IDLE_LOCK_MINUTES, IdleWatcher
from pso_desktop.ui.printing import PrintActions
from pso_desktop.ui.profile_screen import ProfileScreen, create_error_field
from pso_desktop.ui.reports_screen import ReportsScreen
from pso_desktop.ui.session_lock import REASON_DISCONNECT, WorkstationLockWatcher
from pso_desktop.ui.suspend import SuspendWatcher
from pso_desktop.ui.sync_panel import SyncPanel
from pso_desktop.ui.trends_screen import TrendsScreen
from pso_desktop.ui.worker import DbWorker

if TYPE_CHECKING:
    from pathlib import Path

    from pso_desktop.domain.catalogue import Catalogue
    from pso_desktop.domain.validation import FieldError
    from pso_desktop.services.backend import Standing, Unlocked
    from pso_desktop.services.trends import Bar, Trends
    from pso_desktop.storage.report_query import ReportQuery
    from pso_desktop.sync.engine import SyncSummary
    from pso_desktop.ui.editor_screen import EditorScreen

STATUS_MESSAGE_MS = 10_000
LOCKED_UNSAVED = (
    "Locked, but the last changes to the report could not be saved because of an unexpected problem; unlock to "
    "check the report, and tell IT support if it happens again."
)
KEEP_OPEN = "Keep the window open"
QUIT_UNSAVED = "Quit without saving"


def training_banner() -> QLabel:
    """The strip across the top of every training window: what this is, and how to get in."""
    from pso_desktop.services.training import TRAINING_PROFILE, TRAINING_SECRET

    banner = QLabel(
        f"TRAINING — practice reports on a practice server, deleted when this window closes; nothing reaches your "
        f"PSO. Profile '{TRAINING_PROFILE}', password '{TRAINING_SECRET}'."
    )
    banner.setObjectName("trainingBanner")
    banner.setWordWrap(True)
    banner.setAccessibleName("Training mode")
    return banner


class MainWindow(QMainWindow):
    """PSO Desktop's window. Call ``shutdown`` once when the application ends (``run`` does)."""

    ready = Signal()  # the profile list has been read
    keyring_checked = Signal()  # the keyring warning (if any) is shown
    unlocked = Signal(str)  # profile name
    unlock_failed = Signal(str)  # the message shown
    locked = Signal()
    editor_opened = Signal()
    trends_shown = Signal()
    backup_done = Signal(object)  # the automatic backup's file when one was taken, else None (for tests)

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        idle_lock_ms: int = int(DEFAULT_IDLE_LOCK_MINUTES * 60_000),
        suspend_watcher: SuspendWatcher | None = None,
        lock_watcher: WorkstationLockWatcher | None = None,
        training: bool = False,
        auto_send: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        """``auto_send=False`` leaves sending to F9 alone (tests of F9's own behaviour)."""
        super().__init__(parent)
        self.training = training
        self._auto_send = auto_send
        self._watching_network = False
        self.setWindowTitle(self._title())
        self._fit_to_screen()
        self.backend = backend or Backend()
        self.worker = DbWorker(self)
        self.worker.failed.connect(self._show_status)
        # Sending reports runs beside the database worker, on its own connection: a long upload never holds up
        # the list or the form's autosave.
        self.sync_worker = DbWorker(self, name="pso-sync")
        self.sync_worker.failed.connect(self._show_status)
        self.sync_backend = SyncBackend()  # the sync thread's own: never shared with the database worker
        # The sealed outbox's agent (docs/sealed-outbox.md) sends the spools on a thread of its own while the
        # window is locked or minimised; unlocked and in view, the outbox sends.
        self.sealed_agent = AgentRunner()
        self.sealed_agent.allow(True)
        self.sealed_agent.start()
        self._profile: str | None = None
        # (profile, report id, the path of the question that had the focus) open at the last lock
        self._reopen: tuple[str, str | None, str | None] | None = None
        self._backup_stop = threading.Event()
        self._close_saving = False  # a close is waiting for the draft's save on the worker
        self._close_anyway = False  # the draft is saved (or the clinician chose to quit without it): close now
        self.close_box: QMessageBox | None = None  # "the draft could not be saved" at close, while shown

        # No mnemonic: a letter typed into the File menu (or its menu bar, after Esc) must never lock the window.
        self.lock_action = QAction("Lock", self)
        self.lock_action.setShortcut(QKeySequence("Ctrl+L"))
        self.lock_action.setToolTip("Lock the profile now (Ctrl+L); unlock with your password")
        self.lock_action.setEnabled(False)
        self.lock_action.triggered.connect(self.lock)
        self.addAction(self.lock_action)

        self.profile_screen = ProfileScreen()
        self.profile_screen.unlock_requested.connect(self._unlock)
        self.profile_screen.create_requested.connect(self._create_profile)
        self.reports_screen = ReportsScreen(self.worker, self.backend, self.lock_action)
        self.reports_screen.failed.connect(self._show_status)
        self.reports_screen.new_requested.connect(self.new_report)
        self.reports_screen.open_requested.connect(self.open_report)
        self.reports_screen.trends_requested.connect(self.show_trends)
        self.trends_screen = TrendsScreen()
        self.trends_screen.closed.connect(self._back_to_list)
        self.trends_screen.bar_chosen.connect(self._filter_list_to_bar)
        self.trends_screen.drafts_changed.connect(self._count_trends)
        self.trends_screen.png_requested.connect(self._save_trends_png)
        self._trends_query: ReportQuery | None = None  # the list's query the trends were counted for
        self.editor: EditorScreen | None = None  # built when first needed: it loads the form catalogue
        self.sync_panel = SyncPanel(self.sync_worker, self.worker, self.backend, self.sync_backend)
        self.sync_panel.finished.connect(self._on_sync_finished)
        self.reports_screen.add_bar(self.sync_panel)
        self.trends_screen.addAction(self.sync_panel.send_action)  # F9 on every screen of an unlocked profile
        self.file_actions = FileActions(self.worker, self.backend, self)
        self.file_actions.done.connect(self._show_status)
        self.file_actions.imported.connect(self._on_imported)
        self.file_actions.query_source = self.reports_screen.current_query
        self.print_actions = PrintActions(self.worker, self.backend, self)
        self.print_actions.done.connect(self._show_status)
        self.print_actions.report_source = self._report_to_print
        self.print_actions.query_source = self.reports_screen.current_query
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions(self.file_actions.actions)
        file_menu.addSeparator()
        file_menu.addActions(self.print_actions.actions)
        file_menu.addSeparator()
        file_menu.addAction(self.lock_action)
        file_menu.installEventFilter(self)
        file_menu.aboutToShow.connect(self._remember_focus)
        self._file_menu = file_menu
        self._focus_before_menu: QWidget | None = None
        self.stack = QStackedWidget()
        self.stack.addWidget(self.profile_screen)
        self.stack.addWidget(self.reports_screen)
        self.stack.addWidget(self.trends_screen)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        if training:
            layout.addWidget(training_banner())
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.statusBar()  # created now, so the first message does not make the layout jump
        # A message is about the screen it was shown on (the form's "Not submitted" is not about the trends):
        # another screen starts without it. A message about the move itself is shown after the move.
        self.stack.currentChanged.connect(lambda _index: self.statusBar().clearMessage())
        # Where the queue stands, on every screen; passing messages use the status bar's left part.
        self.statusBar().addPermanentWidget(self.sync_panel.status)

        self.idle = IdleWatcher(idle_lock_ms, self)
        self.idle.idle.connect(self._on_idle)
        self.suspend = suspend_watcher or SuspendWatcher()
        self.suspend.setParent(self)
        self.suspend.suspended.connect(self._on_suspended)
        self.workstation_lock = lock_watcher or WorkstationLockWatcher()
        self.workstation_lock.setParent(self)
        self.workstation_lock.workstation_locked.connect(self._on_workstation_locked)
        # Copies of report text are concealed from clipboard history and cleared at lock, quit and after a time.
        self.clipboard_guard = ClipboardGuard(self)
        if sys.platform.startswith("win"):
            self.workstation_lock.attach_window(int(self.winId()))  # WM_WTSSESSION_CHANGE comes to a window

        self.profile_screen.set_busy(True, "Reading the profiles on this workstation…")
        self.worker.submit(
            self.backend.list_profiles, owner=self, on_done=self._on_profiles, on_error=self._on_startup_failed
        )
        # Slower (it loads the services and asks the OS keyring), so it comes second: the window is usable first.
        self.worker.submit(
            self.backend.keyring_warning,
            owner=self,
            on_done=self._on_keyring_checked,
            on_error=self._on_keyring_failed,
        )
        # IT's idle time and clipboard time; read before any unlock can be (the worker runs jobs in order).
        self.worker.submit(
            self.backend.window_policy, owner=self, on_done=self._on_window_policy, on_error=lambda _exc: None
        )

    def _fit_to_screen(self) -> None:
        """1100×700 where it fits, else the screen's free area (a 1024×600 laptop)."""
        screen = self.screen()
        area = screen.availableGeometry() if screen is not None else None
        if area is None or (area.width() >= 1100 and area.height() >= 700):
            self.resize(1100, 700)
        else:
            self.resize(min(1100, area.width()), min(700, area.height()))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Esc in the File menu closes it and gives the keyboard back to where it was: Qt would leave the menu bar
        holding the keyboard, where the next letters typed open menus and choose their items."""
        if (
            watched is self._file_menu
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        ):
            QTimer.singleShot(0, self._leave_menu_bar)
        return super().eventFilter(watched, event)

    def _remember_focus(self) -> None:
        focus = QApplication.focusWidget() or self.focusWidget()
        self._focus_before_menu = focus if focus is not None and self.isAncestorOf(focus) else None

    def _leave_menu_bar(self) -> None:
        if self._file_menu.isVisible():
            return
        bar = self.menuBar()
        if bar.activeAction() is not None:
            # Esc on the menu bar itself ends its keyboard mode (where letters open menus and choose items).
            for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
                QApplication.sendEvent(bar, QKeyEvent(kind, Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier))
        previous = self._focus_before_menu
        if previous is not None and previous.isVisible():
            previous.setFocus(Qt.FocusReason.PopupFocusReason)
        if QApplication.activeWindow() is not self:
            self.activateWindow()  # (without a window manager nothing else gives it back)

    def _title(self, profile: str | None = None) -> str:
        """The window title: the app, TRAINING in training mode, and the unlocked profile's name (never PHI)."""
        parts = [APP_NAME, "TRAINING" if self.training else None, profile]
        return " — ".join(part for part in parts if part)

    @property
    def is_unlocked(self) -> bool:
        return self._profile is not None

    # --- startup -----------------------------------------------------------------------------------------

    def _on_profiles(self, profiles: list[str]) -> None:
        self.profile_screen.set_busy(False)
        self.profile_screen.set_profiles(profiles)
        self.ready.emit()

    def _on_keyring_checked(self, warning: str | None) -> None:
        self.profile_screen.set_keyring_warning(warning)
        self.keyring_checked.emit()

    def _on_keyring_failed(self, exc: BaseException) -> None:
        # E.g. an invalid IT policy file: no profile can be unlocked or created until IT fixes it; say why.
        self.profile_screen.set_busy(True, user_message(exc))
        self.keyring_checked.emit()

    def _on_window_policy(self, policy: tuple[float | None, float | None]) -> None:
        idle_minutes, clipboard_seconds = policy
        if idle_minutes is not None:
            self.idle.set_timeout(max(1, round(idle_minutes * 60_000)))
        if clipboard_seconds is not None:
            self.clipboard_guard.set_clear_after(max(1, round(clipboard_seconds * 1000)))

    def _on_startup_failed(self, exc: BaseException) -> None:
        # Without the profile list (e.g. an invalid IT policy file) nothing can be unlocked; say why.
        self.profile_screen.set_busy(True, user_message(exc))
        self.ready.emit()

    # --- unlock and create -------------------------------------------------------------------------------

    def _unlock(self, name: str, secret: str) -> None:
        self.profile_screen.set_busy(True, "Unlocking… this takes a moment.")
        self.worker.submit(
            partial(self.backend.unlock, name, secret),
            owner=self,
            on_done=self._on_unlocked,
            on_error=self._on_unlock_failed,
        )

    def _create_profile(self, name: str, secret: str) -> None:
        self.profile_screen.set_busy(True, "Creating the profile and its encrypted database…")
        self.worker.submit(
            partial(self.backend.create_profile, name, secret),
            owner=self,
            on_done=self._on_created,
            on_error=self._on_create_failed,
        )

    def _on_unlocked(self, unlocked: Unlocked) -> None:
        # First on the sync thread's queue: every sync or backup submitted from now on finds the profile there.
        self.sync_worker.submit(partial(self.sync_backend.attach, unlocked))
        self.sealed_agent.allow(self.isMinimized())
        name = unlocked.name
        self._profile = name
        self.profile_screen.set_busy(False)
        self.profile_screen.show_unlock_page(profile=name)  # empties the password field
        self.setWindowTitle(self._title(name))
        self.stack.setCurrentWidget(self.reports_screen)
        self.lock_action.setEnabled(True)
        self.file_actions.set_enabled(True)
        self.print_actions.set_enabled(True)
        self.reports_screen.load()
        self._show_notices(unlocked.notices)
        self.reports_screen.search.setFocus()
        reopen, self._reopen = self._reopen, None
        if reopen is not None and reopen[0] == name and reopen[1]:
            self.worker.submit(
                partial(self.backend.open_report, reopen[1]),
                owner=self,
                on_done=partial(self._show_reopened, reopen[1], reopen[2]),
                on_error=lambda _exc: None,  # a new report never saved: nothing to go back to
            )
        self.idle.start()
        self._backup_stop = threading.Event()
        self._back_up(after_sync=False)
        if self._auto_send:
            from pso_desktop.sync.schedule import Schedule

            self.sync_panel.enable(Schedule.from_policy(unlocked.policy))
            if not self._watching_network:
                self._watching_network = True
                self.sync_panel.watch_network()
        self.unlocked.emit(name)

    def _on_created(self, unlocked: Unlocked) -> None:
        name = unlocked.name
        names = [
            self.profile_screen.profile_box.itemText(i) for i in range(self.profile_screen.profile_box.count())
        ]
        self.profile_screen.set_profiles(sorted({*names, name}), select=name)
        self._on_unlocked(unlocked)

    def _on_unlock_failed(self, exc: BaseException) -> None:
        message = user_message(exc)
        self.profile_screen.set_busy(False)
        self.profile_screen.show_unlock_error(message)
        retry_after = getattr(exc, "retry_after", None)  # TooManyAttemptsError says how long to wait
        if isinstance(retry_after, int | float) and retry_after > 0:
            self.profile_screen.hold_unlock(float(retry_after))
        self.unlock_failed.emit(message)

    def _on_create_failed(self, exc: BaseException) -> None:
        message = user_message(exc)
        self.profile_screen.set_busy(False)
        self.profile_screen.show_create_error(message, create_error_field(exc))
        self.unlock_failed.emit(message)

    # --- writing reports ---------------------------------------------------------------------------------

    def new_report(self) -> None:
        """Opens the form on a new report (nothing is stored until the first edit)."""
        if self.is_unlocked:
            self.worker.submit(self.backend.new_report_start, owner=self, on_done=self._show_new_editor)

    def _show_new_editor(self, start: tuple[Catalogue, dict[str, Any]]) -> None:
        """A new report: discovered now, with the unit and reporter this profile last submitted (its memory)."""
        if not self.is_unlocked:
            return
        from pso_desktop.ui.editor_screen import new_report

        catalogue, remembered = start
        report = new_report(catalogue)
        for part, values in remembered.items():
            report[part] = {**report.get(part, {}), **values}
        editor = self._editor()
        editor.open(catalogue, report, is_new=True)
        self.stack.setCurrentWidget(editor)
        self.editor_opened.emit()

    def open_report(self, report_id: str) -> None:
        if self.is_unlocked:
            self.worker.submit(
                partial(self.backend.open_report, report_id),
                owner=self,
                on_done=lambda opened: self._show_editor(*opened),
            )

    def _show_reopened(self, report_id: str, focused: str | None, opened: tuple[Any, ...]) -> None:
        """The report open at the lock, with the keyboard back at the question it was on (not the first)."""
        self._show_editor(*opened)
        editor = self.editor
        if focused and editor is not None and editor.form is not None and editor.form.report_id == report_id:
            editor.form.focus_field(focused)
            target = editor.form.window().focusWidget()
            if isinstance(target, QPlainTextEdit):  # the caret after what was typed, not before it
                target.moveCursor(QTextCursor.MoveOperation.End)

    def _show_editor(
        self,
        catalogue: Catalogue,
        report: dict[str, Any] | None,
        pso_problems: list[FieldError] | None = None,
        standing: Standing | None = None,
    ) -> None:
        if not self.is_unlocked:
            return  # locked while the report was being read
        editor = self._editor()
        if report is None:
            from pso_desktop.ui.editor_screen import new_report

            editor.open(catalogue, new_report(catalogue), is_new=True)
        else:
            editor.open(catalogue, report, pso_problems=pso_problems or [], standing=standing)
        self.stack.setCurrentWidget(editor)
        self.editor_opened.emit()

    def show_trends(self) -> None:
        """Trends of what the list shows (all reports when nothing narrows it)."""
        if self.is_unlocked:
            self._trends_query = self.reports_screen.current_query()
            self._count_trends(self.trends_screen.drafts.isChecked())

    def _count_trends(self, drafts: bool) -> None:
        query = self._trends_query
        if self.is_unlocked and query is not None:
            scope = query if query.filtered else None
            self.worker.submit(
                partial(self.backend.trends, scope, drafts),
                owner=self,
                on_done=partial(self._on_trends, scope is not None),
            )

    def _filter_list_to_bar(self, bar: Bar) -> None:
        """A chart's bar chosen: the list, narrowed to the reports that bar counts."""
        from pso_desktop.services.trends import narrowed

        if self.is_unlocked and self._trends_query is not None:
            shown = self.trends_screen.trends
            drafts = shown is not None and shown.drafts
            self.stack.setCurrentWidget(self.reports_screen)
            # The list shows what the bar counted: without drafts unless the chart counted them too.
            self.reports_screen.apply_view(narrowed(self._trends_query, bar, drafts=drafts))
            self.reports_screen.focus_table()
            kind = "events and drafts" if drafts else "events (drafts left out, as in the chart)"
            self._show_status(f"{bar.label}: {bar.count:,} {kind}")

    def _save_trends_png(self, data: bytes, path: Path) -> None:
        """Writes the charts' PNG on the worker, atomically and audited like a PDF (no PHI in the audit text)."""
        if self.is_unlocked:
            count = self.trends_screen.trends.total if self.trends_screen.trends is not None else 0
            self.worker.submit(
                partial(self.backend.save_printout, path, data, "png, trends charts", count),
                owner=self,
                on_done=lambda _none: self._show_status(f"Charts saved as {path.name}"),
            )

    def _on_trends(self, filtered: bool, trends: Trends) -> None:
        if self.is_unlocked:
            self.trends_screen.show_trends(trends, filtered=filtered)
            self.stack.setCurrentWidget(self.trends_screen)
            self.trends_shown.emit()

    def _report_to_print(self) -> str | None:
        """The report open in the form (once stored), else the list's current row; None when there is none."""
        editor = self.editor
        if self.stack.currentWidget() is editor and editor is not None and editor.form is not None:
            editor.flush()  # the last edits are saved first (the worker runs jobs in order): the printout shows them
            return editor.form.report_id or None
        if self.stack.currentWidget() is self.reports_screen:
            index = self.reports_screen.table.currentIndex()
            if index.isValid():
                return self.reports_screen.model.summary(index.row()).id
        return None

    def _editor(self) -> EditorScreen:
        if self.editor is None:
            # Imported here: the form loads the domain layer (pydantic), which the worker has already loaded by
            # the time a catalogue arrives, and which a window that only shows the list never needs.
            from pso_desktop.ui.editor_screen import EditorScreen

            self.editor = EditorScreen(self.worker, self.backend)
            self.editor.failed.connect(self._show_status)
            self.editor.closed.connect(self._back_to_list)
            self.editor.submitted.connect(self._on_report_submitted)
            self.editor.deleted.connect(self._on_draft_deleted)
            self.editor.review_panel.recorded.connect(self.sync_panel.review_changed)
            # Send to PSO (F9) on the report's screen too: a risk manager sends a review from beside it.
            self.editor.addAction(self.sync_panel.send_action)
            self.stack.addWidget(self.editor)
        return self.editor

    def _back_to_list(self) -> None:
        if self.is_unlocked:
            self.stack.setCurrentWidget(self.reports_screen)
            self.reports_screen.load()  # queued after the editor's last save: the list shows it
            self.reports_screen.table.setFocus()

    def _on_draft_deleted(self) -> None:
        self._back_to_list()
        self._show_status("The draft was deleted.")

    def _on_report_submitted(self, _report_id: str) -> None:
        self._back_to_list()
        # Only this: the queue's line beside it says where the report is (waiting, sending, sent).
        self._show_status("The report is submitted.")
        self.sync_panel.queue_changed()
        # A Submit that found its draft already at the PSO (another process's killed Submit) says so once.
        self.worker.submit(self.backend.take_notices, owner=self, on_done=self._show_notices)

    def _show_notices(self, notices: tuple[str, ...]) -> None:
        """Sentences the clinician reads once: above the list (spoken by a screen reader) and in the status bar."""
        if not notices or not self.is_unlocked:
            return  # (the lock emptied the line)
        self.reports_screen.show_notices(notices)
        self._show_status(" ".join(notices))

    def _on_imported(self, _count: int) -> None:
        self.reports_screen.load()
        self.sync_panel.queue_changed()

    def _on_sync_finished(self, summary: SyncSummary) -> None:
        if self.is_unlocked:
            # A run that changed nothing (the status timer's, most of the day) neither reloads the list under the
            # clinician's eyes nor counts as a sync for the backups (DUE_AFTER_SYNC).
            changed = any(
                (
                    summary.submitted,
                    summary.needs_attention,
                    summary.status_changes,
                    summary.facility_reports,
                    summary.review_records,
                    summary.facility_purged,
                )
            )
            # The list only when it is on screen: every way back to it reads it again, and a clinician typing in
            # the form meanwhile does not pay for a list nobody sees.
            if changed and self.stack.currentWidget() is self.reports_screen:
                self.reports_screen.load()  # new states and the PSO's case references
            editor = self.editor
            if editor is not None and editor.read_only and editor.form is not None and editor.form.report_id:
                # A submitted report on screen: its case line follows the sync (sent, case number, status).
                report_id = editor.form.report_id
                self.worker.submit(
                    partial(self.backend.standing, report_id),
                    owner=editor,
                    on_done=partial(editor.update_standing, report_id),
                )
            if changed:
                self._back_up(after_sync=True)

    # --- automatic backups -------------------------------------------------------------------------------

    def _back_up(self, *, after_sync: bool) -> None:
        """An encrypted backup when one is due, on the sync thread and its own connection: the form and the list
        keep working, and a lock never waits for it (the stop event abandons it at its next step)."""
        self.sync_worker.submit(
            partial(self.sync_backend.back_up_if_due, after_sync, self._backup_stop.is_set),
            owner=self,
            on_done=self.backup_done.emit,
            on_error=self._on_backup_failed,
        )

    def _on_backup_failed(self, exc: BaseException) -> None:
        if self.is_unlocked:
            self._show_status(user_message(exc))
        self.backup_done.emit(None)

    def _save_and_clear_editor(self) -> bool:
        """The editor's pending edits are saved (queued before anything submitted after this) and every input
        is emptied, even when saving fails. False when the edits could not be handed to the worker (a bug: its
        type and place are logged)."""
        if self.editor is None:
            return True
        try:
            self.editor.flush()
        except Exception as exc:
            user_message(exc)  # logs a bug's type and place, never its message
            return False
        finally:
            self.editor.clear()
        return True

    # --- lock --------------------------------------------------------------------------------------------

    def lock(self) -> bool:
        """Clears the report data from the window, shows the unlock screen and closes the session on the
        worker. Does nothing while locked. Returns False when the form's last edits could not be saved (a bug);
        the lock happens all the same."""
        if self._profile is None:
            return True
        profile, self._profile = self._profile, None
        self._backup_stop.set()  # first: a backup in progress stops at its next step and keeps nothing
        self.idle.stop()
        self._clear_clipboard()
        self.lock_action.setEnabled(False)
        self.file_actions.set_enabled(False)
        self.print_actions.set_enabled(False)
        if self.file_actions.problems_box is not None:
            self.file_actions.problems_box.reject()
        editor = self.editor
        # Back in this report after unlock (its id kept in memory only, never in a settings file).
        self._reopen = (
            (profile, editor.form.report_id, editor.form.focused_path())
            if editor is not None and editor.form is not None and self.stack.currentWidget() is editor
            else None
        )
        saved = self._save_and_clear_editor()
        self.sync_panel.reset()
        self.reports_screen.clear()
        self.trends_screen.clear()
        self.stack.setCurrentWidget(self.profile_screen)
        self.profile_screen.show_unlock_page(profile=profile)
        self.setWindowTitle(self._title())
        self.worker.submit(
            self.backend.lock, owner=self, on_done=self._on_lock_done, on_error=self._on_lock_failed
        )
        self.sync_worker.submit(self.sync_backend.detach)
        self.sealed_agent.allow(True)
        self.locked.emit()
        if not saved:
            self._show_status(LOCKED_UNSAVED)
        return saved

    def _clear_clipboard(self) -> None:
        """PHI does not outlive a lock: our copy leaves the clipboard (if it is still there) and the selection."""
        try:
            self.clipboard_guard.clear_if_ours()
            self.clipboard_guard.clear_selection_if_ours()
        except Exception as exc:  # never let the clipboard stop a lock
            user_message(exc)  # logs a bug's type and place

    def _on_idle(self) -> None:
        self.lock()
        self._show_status("Locked after a period without activity.")

    def _on_suspended(self) -> None:
        if self.is_unlocked:
            self.lock()
            self._show_status("Locked because the computer went to sleep.")

    def _on_workstation_locked(self, reason: str) -> None:
        if self.is_unlocked:
            self.lock()
            if reason == REASON_DISCONNECT:
                self._show_status("Locked because the remote desktop session was disconnected.")
            else:
                self._show_status("Locked because the workstation was locked.")

    def _on_lock_done(self, problem: str | None) -> None:
        if problem is not None:  # locked all the same; only the audit entry of the lock is missing
            self._show_status(problem)

    def _on_lock_failed(self, exc: BaseException) -> None:
        # The connection is closed even when the final audit entry could not be written.
        self._show_status(user_message(exc))

    # --- shutdown ----------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Saves the draft, closes any open session and stops the workers (waits for jobs in flight); callbacks
        arriving later are dropped. Safe to call twice (``closeEvent`` and then ``run`` both call it)."""
        if self.worker.stopped:
            return  # the second call must not flush again: nothing can be saved once the worker is gone
        try:
            self._backup_stop.set()
            self.sealed_agent.stop()
            self.idle.stop()
            self.workstation_lock.stop()
            self._clear_clipboard()
            self._save_and_clear_editor()  # first, so the draft's save is queued ahead of the final lock
            self.sync_panel.reset()
            self.reports_screen.clear()
            self._profile = None
            self.worker.submit(self._final_lock)
        finally:
            # Whatever failed above, the threads stop: a QThread still running at exit aborts the process.
            self.worker.shutdown()
            self.print_actions.shutdown()  # a PDF being painted is abandoned
            # A stopped sync ends within a quarter second, or when the request on its way is answered or times out.
            self.sync_worker.shutdown()

    def _final_lock(self) -> None:
        """Runs on the worker at exit, when no callback can be delivered any more: log what went wrong."""
        try:
            self.backend.lock()
        except Exception as exc:
            user_message(exc)  # logs a bug's type and place; an expected failure needs no log at exit

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.WindowStateChange:
            # Minimised, the agent sends the spool; back in view and unlocked, the outbox does.
            self.sealed_agent.allow(self.isMinimized() or not self.is_unlocked)
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing saves the draft first, on the worker: the close waits (ignored) until the save has answered.
        When it failed (a full disk), the window stays open and asks; otherwise it shuts down and closes."""
        editor = self.editor
        if self._close_anyway or self.worker.stopped or not self.is_unlocked or editor is None:
            self.shutdown()
            super().closeEvent(event)
            return
        event.ignore()
        if self._close_saving or self.close_box is not None:
            return  # already waiting for the save, or already asking
        self._close_saving = True
        try:
            editor.flush()
        except Exception as exc:
            editor.save_error = user_message(exc)  # logs a bug's type and place, never its message
        # Queued behind the draft's save (and any autosave in flight): its answer comes after theirs.
        self.worker.submit(lambda: None, owner=self, on_done=self._on_close_saved, on_error=self._on_close_saved)

    def _on_close_saved(self, _result: object = None) -> None:
        self._close_saving = False
        editor = self.editor
        if self.is_unlocked and editor is not None and editor.has_unsaved_changes and editor.save_error:
            self._ask_close_unsaved(editor.save_error)
            return
        self._close_anyway = True
        self.close()

    def _ask_close_unsaved(self, reason: str) -> None:
        """The draft could not be saved at close: the window stays open unless the clinician chooses to quit."""
        text = f"The draft could not be saved: {reason}"
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Draft not saved", text, QMessageBox.StandardButton.NoButton, self
        )
        keep = box.addButton(KEEP_OPEN, QMessageBox.ButtonRole.RejectRole)
        quit_button = box.addButton(QUIT_UNSAVED, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.finished.connect(partial(self._on_close_answer, box, quit_button))
        self.close_box = box
        box.open()
        self._show_status(text)

    def _on_close_answer(self, box: QMessageBox, quit_button: QAbstractButton, _result: int) -> None:
        box.deleteLater()
        self.close_box = None
        if box.clickedButton() is quit_button:
            self._close_anyway = True
            self.close()

    def _show_status(self, message: str) -> None:
        self.statusBar().showMessage(message, STATUS_MESSAGE_MS)
