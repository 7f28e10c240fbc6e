"""Child process of the typing soak test: a nurse's night of typing into the real report form.

Usage: python -m tests.support.typing_soak [KEYSTROKES]  (PSO_DESKTOP_HOME set to an empty folder)

Opens the real window on a real SQLCipher profile (fast KDF, in-memory keyring), unlocks it, opens a new report
with Ctrl+N and drives it with QTest key events only: text fields, the event-type and harm radio groups with the
arrow keys, the category list with Space, and the medication module's repeating group of products (entries
added, typed in and removed). It pauses for the autosave now and then, goes back to the list (which saves), and
checks that the stored draft is what the form shows. Prints one JSON line: the keystrokes sent, the time taken
and None's reference count after warm-up and at the end (a broken binding drains it until the process aborts
with "Fatal Python error: none_dealloc"; the parent test judges the count). Exits 1 with a reason on a check
that fails. Only made-up text is typed, and nothing of it is printed.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keyring
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPushButton, QWidget

from pso_desktop.security.keyring_guard import admit_for_tests
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services.backend import Backend
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.editor_screen import EditorScreen
from pso_desktop.ui.form_fields import CheckListField, FormField, GroupField, RadioField
from pso_desktop.ui.report_form import ReportForm
from pso_desktop.ui.window import MainWindow
from tests.support.kdf import CHEAP_KDF
from tests.support.memory_keyring import MemoryKeyring

KEYSTROKES = 20_000
PROFILE, SECRET = "soak", "night shift soak secret"
MEDICATION = "A54"
AUTOSAVE_EVERY = 5_000  # keystrokes between pauses long enough for the autosave timer to fire
WORDS = ["the", "patient", "was", "found", "beside", "the", "bed", "at", "shift", "change", "and", "said", "she"]
WORDS += ["had", "tried", "to", "reach", "the", "call", "bell"]
Key = Qt.Key
NO_MOD = Qt.KeyboardModifier.NoModifier


class Failed(Exception):
    """A check of the soak failed: the message says which (exit code 1)."""


def wait_until(what: str, done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise Failed(f"timed out waiting for {what}")
        QTest.qWait(10)


def wait_for_autosave(saves: list[int]) -> None:
    before = len(saves)
    wait_until("an autosave", lambda: len(saves) > before, timeout_s=20)


class Keyboard:
    """Sends key events to widgets as a user would, counting every keystroke."""

    def __init__(self) -> None:
        self.count = 0

    def key(self, widget: QWidget, key: Key, modifier: Qt.KeyboardModifier = NO_MOD) -> None:
        widget.setFocus()
        QTest.keyClick(widget, key, modifier)
        self.count += 1

    def type(self, widget: QWidget, text: str) -> None:
        widget.setFocus()
        QTest.keyClicks(widget, text)
        self.count += len(text)

    def clear(self, widget: QWidget) -> None:
        self.key(widget, Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        self.key(widget, Key.Key_Backspace)


class Soak:
    def __init__(self, window: MainWindow, editor: EditorScreen, keyboard: Keyboard) -> None:
        assert editor.form is not None
        self.window, self.editor, self.keys = window, editor, keyboard
        self.form: ReportForm = editor.form
        self.fields = self.form.fields
        self.round = 0
        # How None's count moved across the keystrokes into the form's fixed fields (not the repeating group,
        # whose entries come and go). With a sound binding it only grows: PySide keeps a reference to None for
        # many of the widgets and wrappers it makes, which is harmless, as only a drain can free None. A binding
        # that drops a reference per call shows here even where that growth would hide it in the total.
        self.typing_drift = 0

    @contextmanager
    def counted(self) -> Iterator[None]:
        before = sys.getrefcount(None)
        yield
        self.typing_drift += sys.getrefcount(None) - before

    def text(self, path: str, words: int) -> None:
        target = self.fields[path].focus_target()
        if self.round % 3 == 0:  # bounded: the text is replaced now and then, as a nurse rewrites a sentence
            self.keys.clear(target)
        start = self.round * 7 % len(WORDS)
        self.keys.type(target, " ".join((WORDS * 2)[start : start + words]) + " ")

    def radios(self, path: str, moves: list[Key]) -> list[str | None]:
        """Arrow keys on a radio group; returns the answer after each move."""
        field = self.fields[path]
        assert isinstance(field, RadioField)
        button = field.focus_target()
        if field.group.checkedButton() is None:
            self.keys.key(button, Key.Key_Space)
        answers = []
        for key in moves:
            self.keys.key(button, key)
            button = QApplication.focusWidget() or button  # an arrow moves the focus with the choice
            answers.append(field.value())
        return answers

    def tick_medication(self) -> None:
        categories = self.fields["categories"]
        assert isinstance(categories, CheckListField)
        self.keys.key(categories.list, Key.Key_Home)
        while categories.list.currentItem().data(Qt.ItemDataRole.UserRole) != MEDICATION:
            self.keys.key(categories.list, Key.Key_Down)
        self.keys.key(categories.list, Key.Key_Space)
        if MEDICATION not in (categories.value() or []):
            raise Failed("Space did not tick the Medication category")

    def products(self) -> None:
        group = self.fields["modules.medication.products"]
        assert isinstance(group, GroupField)
        if not group.add_button.isEnabled():  # full: remove the oldest entries, as with a wrong product
            for _ in range(2):
                box = group.entries[0]["generic_name"].parentWidget()
                remove = box.findChild(QPushButton) if box is not None else None
                if remove is None:
                    raise Failed("a product has no Remove button")
                self.keys.key(remove, Key.Key_Space)
            QTest.qWait(0)  # the removed entries are deleted later, by the event loop
        self.keys.key(group.add_button, Key.Key_Space)
        entry = group.entries[-1]
        focused = QApplication.focusWidget()
        if focused is not entry["generic_name"].focus_target():
            raise Failed("adding a product did not put the cursor in its first field")
        for name, words in (("generic_name", 3), ("strength", 2), ("dosage_form", 2), ("manufacturer", 3)):
            self.entry_text(entry[name], words)
        for older in group.entries[:-1]:
            self.entry_text(older["brand_name"], 2)

    def entry_text(self, field: FormField, words: int) -> None:
        target = field.focus_target()
        self.keys.clear(target)
        self.keys.type(target, " ".join(WORDS[self.round % 9 : self.round % 9 + words]))

    def one_round(self) -> None:
        with self.counted():
            # Incident -> near miss -> unsafe condition -> back: the branching hides and shows whole sections.
            answers = self.radios("event_type", [Key.Key_Down, Key.Key_Down, Key.Key_Up, Key.Key_Up])
            self.text("narrative", 12)
            self.text("location.description", 6)
            self.text("patient.name", 2)
            levels = self.radios("harm.level", [Key.Key_Down, Key.Key_Down, Key.Key_Up, Key.Key_Up])
        if answers != ["near_miss", "unsafe_condition", "near_miss", "incident"]:
            raise Failed(f"the arrow keys chose {answers} as the event type")
        if len(set(levels)) != 3:
            raise Failed("the arrow keys did not move through the harm levels")
        self.products()
        with self.counted():
            self.text("reporter.name", 2)
        self.round += 1


def open_new_report(window: MainWindow, keyboard: Keyboard) -> EditorScreen:
    wait_until("the profile list", lambda: window.profile_screen.profile_box.count() > 0)
    screen = window.profile_screen
    screen.profile_box.setCurrentText(PROFILE)
    keyboard.type(screen.password, SECRET)
    keyboard.key(screen.password, Key.Key_Return)
    wait_until("the unlock", lambda: window.stack.currentWidget() is window.reports_screen)
    keyboard.key(window.reports_screen.search, Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    wait_until(
        "the new report", lambda: window.editor is not None and window.stack.currentWidget() is window.editor
    )
    assert window.editor is not None
    return window.editor


def soak(total: int) -> dict[str, Any]:
    home = Path(os.environ["PSO_DESKTOP_HOME"])
    admit_for_tests(MemoryKeyring)  # this child process is a test too, outside pytest's conftest
    backend = MemoryKeyring()
    keyring.set_keyring(backend)

    def workstation() -> Workstation:
        return Workstation(home, keys=ProfileKeys(home, backend=backend, kdf=CHEAP_KDF))

    workstation().create_profile(PROFILE, SECRET)
    app = QApplication.instance() or QApplication([])
    window = MainWindow(Backend(workstation), idle_lock_ms=24 * 3_600_000)
    window.show()
    window.activateWindow()  # the keyboard goes to the active window only: the arrow keys move the focus
    if not QTest.qWaitForWindowActive(window):
        raise Failed("the window did not become active")
    saves: list[int] = []
    try:
        keyboard = Keyboard()
        editor = open_new_report(window, keyboard)
        editor.saved.connect(saves.append)
        driver = Soak(window, editor, keyboard)
        keyboard.count = 0  # from here on, only the form's keystrokes
        driver.tick_medication()
        driver.one_round()  # warm-up: every kind of input built and shown once before None is counted
        driver.typing_drift = 0
        # The collector runs only at the pauses, so that None's count moves only with what the keystrokes do.
        gc.collect()
        gc.disable()
        none_start = none_low = sys.getrefcount(None)
        started = time.monotonic()
        next_pause = AUTOSAVE_EVERY
        while keyboard.count < total:
            driver.one_round()
            none_low = min(none_low, sys.getrefcount(None))
            if next_pause <= keyboard.count < total:
                wait_for_autosave(saves)
                gc.collect()
                next_pause += AUTOSAVE_EVERY
        gc.enable()
        typed = driver.form.report()
        saved_before_back = len(saves)  # the last keystrokes came after the last pause: Back saves them
        back_from = driver.form.fields["reporter.name"].focus_target()
        keyboard.key(back_from, Key.Key_Left, Qt.KeyboardModifier.AltModifier)
        wait_until("the save on Back", lambda: len(saves) > saved_before_back and window.worker.pending == 0)
        seconds = time.monotonic() - started
        gc.collect()
        none_end = sys.getrefcount(None)
        if window.stack.currentWidget() is not window.reports_screen:
            raise Failed("Back (Alt+Left) did not return to the list")
        with workstation().session(PROFILE, SECRET) as session:
            stored = session.get_report(str(typed["id"]))
        if stored != typed:
            raise Failed("the stored draft differs from what the form showed")
        if len(typed["modules"]["medication"]["products"]) < 2:
            raise Failed("the repeating group of products lost its entries")
        return {
            "keystrokes": keyboard.count,
            "seconds": round(seconds, 1),
            "saves": len(saves),
            "none_start": none_start,
            "none_lowest": none_low,
            "none_end": none_end,
            "none_typing_drift": driver.typing_drift,
            "none_immortal": sys.version_info >= (3, 12),
        }
    finally:
        window.shutdown()
        window.deleteLater()
        app.processEvents()


def main() -> int:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else KEYSTROKES
    try:
        result = soak(total)
    except Failed as failed:
        print(f"typing soak: {failed}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
