"""Typing into the window as a keyboard user does: every key goes to whatever has the keyboard focus (an open
menu first), never to a widget the test picked. ``KeyCounter`` counts the keys that are not characters typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget


def focused() -> QWidget:
    """The widget a key goes to. (The offscreen platform leaves a closed menu as the active window, where a real
    window system gives the main window back its focus: then the key goes to the main window's focus widget.)"""
    widget = QApplication.activePopupWidget() or QApplication.focusWidget()
    if widget is None:
        windows = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.inherits("QMainWindow")]
        widget = windows[0].focusWidget() if len(windows) == 1 else None
    assert widget is not None, "nothing has the keyboard focus"
    return widget


@dataclass
class KeyCounter:
    """Keys pressed, split into characters (text typed, or letters that pick an answer by its name) and
    the other keys (Tab, arrows, Space, Enter, shortcuts)."""

    qtbot: Any
    characters: int = 0
    other: int = 0
    log: list[str] = field(default_factory=list)

    def key(
        self, key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier, times: int = 1
    ) -> None:
        for _ in range(times):
            QTest.keyClick(focused(), key, modifier)
            self.other += 1
            self.log.append(
                f"{modifier.name}+{key.name}" if modifier != Qt.KeyboardModifier.NoModifier else key.name
            )

    def type(self, text: str) -> None:
        for char in text:
            QTest.keyClicks(focused(), char)
            self.characters += 1

    def tab(self, times: int = 1) -> None:
        self.key(Qt.Key.Key_Tab, times=times)
