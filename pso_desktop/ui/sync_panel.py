"""Send to PSO: a button (F9), a progress bar while the queue goes up, Stop, and a one-line outcome.

The sync runs on its own thread (``sync_worker``) with its own connection to the profile, so the list and the
form's autosave keep working on the database worker during a long upload. Progress comes back through a queued
signal; every answer carries the run's generation, so nothing from a run that was stopped by a lock is shown.
A profile not yet linked to its PSO account (or asked to sign in again) gets the sign-in dialog; after
signing in, the sync starts by itself.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QToolButton, QWidget

from pso_desktop.services.backend import Backend, SignInDefaults, SyncBackend
from pso_desktop.ui.errors import user_message
from pso_desktop.ui.sign_in_dialog import SignInDialog
from pso_desktop.ui.worker import DbWorker

if TYPE_CHECKING:
    from pso_desktop.sync.engine import Progress, SyncSummary


class _ProgressRelay(QObject):
    """Lives on the GUI thread; the sync thread emits into it, and Qt queues each emission to the GUI."""

    progress = Signal(int, object)  # generation, Progress


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def outcome_text(summary: SyncSummary) -> str:
    """One sentence for the end of a run: what went, what needs attention, what stays queued and why."""
    parts = []
    if summary.submitted:
        parts.append(f"{_plural(summary.submitted, 'report')} sent to the PSO")
    if summary.needs_attention:
        verb, which = ("needs", "it") if summary.needs_attention == 1 else ("need", "each")
        parts.append(
            f"{_plural(summary.needs_attention, 'report')} {verb} attention (open {which} from the list to see why)"
        )
    if summary.remaining:
        parts.append(f"{_plural(summary.remaining, 'report')} still queued")
    if not parts:
        return summary.problem or "Nothing was waiting to be sent; statuses are up to date."
    text = "; ".join(parts) + "."
    if summary.problem:
        text += f" {summary.problem}"
    return text[0].upper() + text[1:]


class SyncPanel(QWidget):
    """The sync controls of the report list. ``reset`` on lock: stops a run and forgets what it showed."""

    finished = Signal(object)  # SyncSummary of a run that ended (the list and counts are worth reloading)
    signed_in = Signal(str)  # the account name

    def __init__(
        self,
        sync_worker: DbWorker,
        db_worker: DbWorker,
        backend: Backend,
        sync_backend: SyncBackend,
        parent: QWidget | None = None,
    ) -> None:
        """``backend`` runs on ``db_worker`` (the sign-in dialog's defaults); ``sync_backend`` on
        ``sync_worker`` (sync and sign-in)."""
        super().__init__(parent)
        self.setObjectName("syncPanel")
        self._sync_worker = sync_worker
        self._db_worker = db_worker
        self._backend = backend
        self._sync_backend = sync_backend
        self._generation = 0
        self._stop = threading.Event()
        self.running = False
        self.dialog: SignInDialog | None = None

        self.send_action = QAction("&Send to PSO", self)
        self.send_action.setShortcut(QKeySequence("F9"))
        self.send_action.setToolTip("Send every queued report to the PSO and fetch their statuses (F9)")
        self.send_action.triggered.connect(self.start)
        self.addAction(self.send_action)
        send_button = QToolButton()
        send_button.setObjectName("sendButton")
        send_button.setDefaultAction(self.send_action)
        self.progress = QProgressBar()
        self.progress.setObjectName("syncProgress")
        self.progress.setAccessibleName("Sending progress")
        self.progress.setFormat("%v of %m sent")
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the batch on its way; the rest stays queued")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.hide()
        self.status = QLabel()
        self.status.setObjectName("syncStatus")
        self.status.setWordWrap(True)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(send_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.stop_button)
        layout.addWidget(self.status, 1)

        self._relay = _ProgressRelay(self)
        self._relay.progress.connect(self._on_progress)

    # --- running ---------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        self._generation += 1
        self._stop = threading.Event()
        self._set_running(True)
        self.status.setText("Connecting to the PSO…")
        job = partial(
            self._sync_backend.run_sync, partial(self._relay.progress.emit, self._generation), self._stop.is_set
        )
        self._sync_worker.submit(
            job,
            owner=self,
            on_done=partial(self._on_done, self._generation),
            on_error=partial(self._on_error, self._generation),
        )

    def stop(self) -> None:
        if self.running:
            self._stop.set()
            self.status.setText("Stopping after the batch on its way…")

    def reset(self) -> None:
        """On lock: the run stops, its answers are ignored, and the sign-in dialog (it may hold a typed
        password) is closed."""
        self._stop.set()
        self._generation += 1
        self._set_running(False)
        self.status.clear()
        if self.dialog is not None:
            self.dialog.reject()
            self.dialog.deleteLater()
            self.dialog = None

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.send_action.setEnabled(not running)
        self.progress.setVisible(running)
        self.stop_button.setVisible(running)
        if running:
            self.progress.setRange(0, 0)  # busy until the first progress says how many

    def _on_progress(self, generation: int, progress: Progress) -> None:
        if generation != self._generation or not self.running:
            return
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.sent)
        if progress.phase == "waiting" and progress.wait_seconds is not None:
            self.status.setText(
                f"{progress.reason or 'The PSO is busy.'} Trying again in {progress.wait_seconds:.0f} s."
            )
        elif progress.phase == "sending":
            self.status.setText(f"Sending… {progress.sent:,} of {progress.total:,}")
        elif progress.phase == "statuses":
            self.status.setText("Fetching the PSO's statuses…")

    def _on_done(self, generation: int, summary: SyncSummary) -> None:
        if generation != self._generation:
            return
        self._set_running(False)
        self.status.setText(outcome_text(summary))
        self.finished.emit(summary)

    def _on_error(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._set_running(False)
        from pso_desktop.sync.errors import NotLinked, SignInRequired

        if isinstance(exc, NotLinked | SignInRequired):
            self.status.setText("Sign in to your PSO account to send reports.")
            self._ask_sign_in(str(exc) if isinstance(exc, SignInRequired) else "")
            return
        self.status.setText(user_message(exc))

    # --- signing in ------------------------------------------------------------------------------------

    def _ask_sign_in(self, reason: str) -> None:
        self._db_worker.submit(
            self._backend.sign_in_defaults,
            owner=self,
            on_done=partial(self._show_dialog, self._generation, reason),
        )

    def _show_dialog(self, generation: int, reason: str, defaults: SignInDefaults) -> None:
        if generation != self._generation:
            return
        if self.dialog is None:
            self.dialog = SignInDialog(self.window())
            self.dialog.sign_in_requested.connect(self._sign_in)
        self.dialog.prepare(defaults, reason)
        self.dialog.open()

    def _sign_in(self, server_url: str, username: str, password: str, ca_file: str, proxy: str) -> None:
        assert self.dialog is not None
        self.dialog.set_busy(True)
        job = partial(
            self._sync_backend.sign_in, server_url or None, username, password, ca_file or None, proxy or None
        )
        del password
        self._sync_worker.submit(
            job,
            owner=self,
            on_done=partial(self._on_signed_in, self._generation),
            on_error=partial(self._on_sign_in_failed, self._generation),
        )

    def _on_signed_in(self, generation: int, account: Any) -> None:
        if generation != self._generation or self.dialog is None:
            return
        self.dialog.accept()
        self.status.setText(f"Signed in as {account}.")
        self.signed_in.emit(str(account))
        self.start()

    def _on_sign_in_failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation or self.dialog is None:
            return
        self.dialog.set_busy(False)
        self.dialog.show_error(user_message(exc))
