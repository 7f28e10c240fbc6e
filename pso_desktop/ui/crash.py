"""The window's last line of defence: an exception nobody caught (a bug in a slot, or on another thread).

Python's default would print the traceback, message included, to stderr, and carry on with the report still on
screen. Here the exception's type and place (file, line, function) are logged, never its message or values,
which may hold PHI; the clinician is told in one sentence; and the window locks, which saves the draft and
closes the database, so what was typed is kept and nothing is left open in a state nobody checked.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from pso_desktop.errors import where

if TYPE_CHECKING:
    from pso_desktop.ui.window import MainWindow

CRASH_MESSAGE = (
    "Something went wrong inside PSO Desktop, so it saved your work and locked the window; unlock to carry on, "
    "and tell IT support if it happens again."
)
CRASH_MESSAGE_UNSAVED = (
    "Something went wrong inside PSO Desktop, so it locked the window, but your last changes could not be saved; "
    "unlock to check the report, and tell IT support if it happens again."
)

_log = logging.getLogger(__name__)


class CrashGuard(QObject):
    """Installs ``sys.excepthook`` and ``threading.excepthook`` for ``window``; ``uninstall`` puts the previous
    ones back. The hooks may run on any thread: they only log and signal; the GUI thread locks and tells."""

    caught = Signal()  # queued to the GUI thread
    handled = Signal()  # the window was locked and told (for tests)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.box: QMessageBox | None = None
        self._previous = (sys.excepthook, threading.excepthook)
        self.caught.connect(self._on_caught, Qt.ConnectionType.QueuedConnection)

    def install(self) -> CrashGuard:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook
        return self

    def uninstall(self) -> None:
        previous_hook, previous_thread_hook = self._previous
        if sys.excepthook == self._excepthook:
            sys.excepthook = previous_hook
        if threading.excepthook == self._thread_excepthook:
            threading.excepthook = previous_thread_hook

    def _excepthook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt | SystemExit):
            self._previous[0](exc_type, exc, tb)  # not a bug: Python's own handling
            return
        _log.error("uncaught %s at %s", exc_type.__name__, _place(exc, tb))
        self.caught.emit()

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if issubclass(args.exc_type, SystemExit):
            return  # a thread that ended itself, as Python's default hook does
        place = _place(args.exc_value, args.exc_traceback)
        _log.error("uncaught %s at %s on a background thread", args.exc_type.__name__, place)
        self.caught.emit()

    @Slot()
    def _on_caught(self) -> None:
        """GUI thread, after the failed slot has returned. Must never raise itself: it would come back here."""
        try:
            saved = self._window.lock()  # saves the draft first, then closes the session (see MainWindow.lock)
            message = CRASH_MESSAGE if saved else CRASH_MESSAGE_UNSAVED
            self._window.statusBar().showMessage(message)
            if self.box is None:
                self.box = QMessageBox(
                    QMessageBox.Icon.Warning, "PSO Desktop", message, QMessageBox.StandardButton.Ok, self._window
                )
                self.box.setObjectName("crashMessage")
            self.box.setText(message)
            self.box.open()  # not exec(): the event loop, and the save queued by the lock, carry on
        except Exception as exc:
            _log.error("the crash handler failed: %s at %s", type(exc).__name__, where(exc))
        self.handled.emit()


def _place(exc: BaseException | None, tb: TracebackType | None) -> str:
    if exc is not None and exc.__traceback__ is None and tb is not None:
        exc = exc.with_traceback(tb)
    return where(exc) if exc is not None else "an unknown place"


def install(window: MainWindow) -> CrashGuard:
    """Guards ``window`` until ``uninstall`` (``ui.app.run`` does both)."""
    return CrashGuard(window).install()
