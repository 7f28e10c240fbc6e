"""Child process for the window-close test: the real app (``pso-desktop`` with no command), driven from inside
its own event loop.

Usage: python -m tests.support.gui_edit_close PROFILE TEXT  (GUI_TEST_SECRET and PSO_DESKTOP_HOME set)
Unlocks PROFILE like a user, opens a new report, ticks "near miss" (which greys out some categories), types TEXT
into the description and, without waiting for the autosave, closes the window as its close button does. The
exit code and stderr are the command's own.
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
    profile, text = sys.argv[1], sys.argv[2]
    secret = os.environ.pop("GUI_TEST_SECRET")  # not stdin: the command reconfigures it before reading
    qapp = QApplication(sys.argv[:1])

    def window() -> MainWindow:
        return next(w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow))

    def start() -> None:
        win = window()
        win.ready.connect(lambda: unlock(win))
        win.unlocked.connect(lambda _name: win.new_report())
        win.editor_opened.connect(lambda: type_and_close(win))
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

    QTimer.singleShot(0, start)
    QTimer.singleShot(DEADLINE_MS, lambda: qapp.exit(3))  # never hang the test run
    return cli_main([])  # the bare command: logging set up as in production, then the window


if __name__ == "__main__":
    sys.exit(main())
