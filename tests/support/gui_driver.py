"""Child process for window tests that need a process of their own: the real app (``pso-desktop`` with no
command), driven from inside its own event loop as a user would.

Usage: python -m tests.support.gui_driver PROFILE ACTION [TEXT]  (GUI_TEST_SECRET and PSO_DESKTOP_HOME set)
Unlocks PROFILE by typing the secret, then ACTION:
- ``edit-close``: opens a new report, ticks "near miss" (which greys out some categories), types TEXT into the
  description and, without waiting for the autosave, closes the window as its close button does;
- ``lock``: locks with Ctrl+L, prints the status bar's message once the lock is done, and closes the window.
With GUI_TEST_DEMO=1 the command is ``pso-desktop --demo`` (training mode). The exit code and stderr are the
command's own.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from pso_desktop.cli import main as cli_main
from pso_desktop.ui.window import MainWindow

DEADLINE_MS = 120_000


def main() -> int:
    profile, action, text = sys.argv[1], sys.argv[2], (sys.argv[3:] or [""])[0]
    secret = os.environ.pop("GUI_TEST_SECRET")  # not stdin: the command reconfigures it before reading
    qapp = QApplication(sys.argv[:1])
    poll = QTimer()

    def window() -> MainWindow:
        return next(w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow))

    def start() -> None:
        win = window()
        win.ready.connect(lambda: unlock(win))
        if action == "edit-close":
            win.unlocked.connect(lambda _name: win.new_report())
            win.editor_opened.connect(lambda: type_and_close(win))
        else:
            win.unlocked.connect(lambda _name: lock(win))
        if win.profile_screen.profile_box.count():  # the list was read before we connected
            unlock(win)

    def unlock(win: MainWindow) -> None:
        screen = win.profile_screen
        screen.profile_box.setCurrentText(profile)
        QTest.keyClicks(screen.password, secret)
        QTest.keyClick(screen.password, Qt.Key.Key_Return)

    def type_and_close(win: MainWindow) -> None:
        assert win.editor is not None and win.editor.form is not None
        fields = win.editor.form.fields
        kind = fields["event_type"].buttons["near_miss"]  # type: ignore[attr-defined]
        kind.setFocus()
        QTest.keyClick(kind, Qt.Key.Key_Space)
        target = fields["narrative"].focus_target()
        target.setFocus()
        QTest.keyClicks(target, text)
        win.close()  # before the autosave timer: closing must save it

    def lock(win: MainWindow) -> None:
        QTest.keyClick(win.reports_screen.search, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)

        def when_locked() -> None:
            if not win.is_unlocked and win.worker.pending == 0:  # the session's close has answered
                poll.stop()
                print(win.statusBar().currentMessage(), flush=True)
                win.close()

        poll.timeout.connect(when_locked)
        poll.start(50)

    QTimer.singleShot(0, start)
    QTimer.singleShot(DEADLINE_MS, lambda: qapp.exit(3))  # never hang the test run
    # The bare command: logging set up as in production, then the window.
    return cli_main(["--demo"] if os.environ.get("GUI_TEST_DEMO") == "1" else [])


if __name__ == "__main__":
    sys.exit(main())
