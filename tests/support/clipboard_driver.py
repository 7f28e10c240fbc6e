"""Child process for the clipboard tests: the real window on a real X display (Xvfb), driven from stdin while
the test reads the clipboard with xclip as another application would.

Usage: python -m tests.support.clipboard_driver PROFILE (GUI_TEST_SECRET, PSO_DESKTOP_HOME and DISPLAY set,
QT_QPA_PLATFORM=xcb). Prints ``unlocked`` once the profile is open, then one answer per stdin line:

- ``copy TEXT``: opens a new report, types TEXT into the description, selects it (Ctrl+A) and copies it
  (Ctrl+C) as a user does; answers ``copied``;
- ``lock``: locks as Ctrl+L does; answers ``locked``;
- ``unlock``: unlocks again; answers ``unlocked``;
- ``quit``: what closing the window does (its shutdown), with the event loop still running so the clipboard
  can be read afterwards; answers ``shut down``;
- ``wait-cleared``: once the guard's timer has run, answers ``cleared`` if it cleared the clipboard, ``left``
  if it found something else there and left it.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QSocketNotifier, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from pso_desktop.services.backend import Backend
from pso_desktop.ui.window import MainWindow


def main() -> int:
    profile = sys.argv[1]
    secret = os.environ.pop("GUI_TEST_SECRET")
    app = QApplication(sys.argv[:1])
    window = MainWindow(Backend())
    window.show()

    def say(text: str) -> None:
        print(text, flush=True)

    def unlock() -> None:
        screen = window.profile_screen
        screen.profile_box.setCurrentText(profile)
        QTest.keyClicks(screen.password, secret)
        QTest.keyClick(screen.password, Qt.Key.Key_Return)

    window.unlocked.connect(lambda _name: say("unlocked"))
    window.ready.connect(unlock)

    def copy(text: str) -> None:
        def type_and_copy() -> None:
            window.editor_opened.disconnect(type_and_copy)
            assert window.editor is not None and window.editor.form is not None
            target = window.editor.form.fields["narrative"].focus_target()
            target.setFocus()
            QTest.keyClicks(target, text)
            QTest.keyClick(target, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
            QTest.keyClick(target, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
            QTimer.singleShot(100, lambda: say("copied"))

        window.editor_opened.connect(type_and_copy)
        window.new_report()

    cleared: list[bool] = []
    window.clipboard_guard.cleared.connect(lambda: cleared.append(True))
    poll = QTimer()

    def answer_when_released() -> None:
        if not window.clipboard_guard.holding:
            poll.stop()
            poll.timeout.disconnect(answer_when_released)
            say("cleared" if cleared else "left")
            cleared.clear()

    def command(line: str) -> None:
        verb, _, rest = line.partition(" ")
        if verb == "copy":
            copy(rest)
        elif verb == "lock":
            window.lock()
            say("locked")
        elif verb == "unlock":
            unlock()
        elif verb == "quit":
            window.shutdown()
            say("shut down")
        elif verb == "wait-cleared":
            poll.timeout.connect(answer_when_released)
            poll.start(50)
        elif verb == "exit":
            app.quit()

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)

    def read_line() -> None:
        line = sys.stdin.readline()
        if not line:
            notifier.setEnabled(False)
            app.quit()
            return
        command(line.rstrip("\n"))

    notifier.activated.connect(read_line)
    QTimer.singleShot(120_000, lambda: app.exit(3))  # never hang the test run
    code = app.exec()
    window.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
