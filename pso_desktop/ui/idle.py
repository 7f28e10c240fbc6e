"""Idle lock: notices when nobody has used the keyboard, mouse or touch screen for a while.

An application-wide event filter only records the time of the last input event (cheap, since it sees every
event); a single-shot timer wakes up when the idle limit could be reached and checks. ``idle`` is emitted
once per ``start``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Signal

_INPUT_EVENTS = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseButtonDblClick,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
        QEvent.Type.TouchUpdate,
        QEvent.Type.TabletPress,
    }
)
DEFAULT_IDLE_LOCK_MINUTES = 10.0


def _monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class IdleWatcher(QObject):
    """Emits ``idle`` after ``timeout_ms`` without user input, while started. GUI thread only."""

    idle = Signal()

    def __init__(
        self, timeout_ms: int, parent: QObject | None = None, *, clock: Callable[[], float] = _monotonic_ms
    ) -> None:
        super().__init__(parent)
        if timeout_ms <= 0:
            raise ValueError("the idle timeout must be positive")
        self.timeout_ms = timeout_ms
        self._clock = clock
        self._last_input = clock()
        self._active = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.check_now)

    def set_timeout(self, timeout_ms: int) -> None:
        """Changes the idle limit (IT policy); a running count keeps its last input and is checked again."""
        if timeout_ms <= 0:
            raise ValueError("the idle timeout must be positive")
        self.timeout_ms = timeout_ms
        if self._active:
            self.check_now()

    @property
    def active(self) -> bool:
        return self._active

    def start(self) -> None:
        """Starts counting from now and watches every input event of the application."""
        app = QCoreApplication.instance()
        if app is None:
            raise RuntimeError("the idle lock needs a running application")
        if not self._active:
            app.installEventFilter(self)
        self._active = True
        self._last_input = self._clock()
        self._timer.start(self.timeout_ms)

    def stop(self) -> None:
        if self._active:
            app = QCoreApplication.instance()
            if app is not None:
                app.removeEventFilter(self)
        self._active = False
        self._timer.stop()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _INPUT_EVENTS:
            self._last_input = self._clock()
        return False  # only watching: every event goes on to its receiver

    def check_now(self) -> None:
        """Emits ``idle`` (and stops) when the limit is reached; otherwise sleeps until it could be."""
        if not self._active:
            return
        remaining = self.timeout_ms - (self._clock() - self._last_input)
        if remaining <= 0:
            self.stop()
            self.idle.emit()
        else:
            self._timer.start(max(1, int(remaining)))
