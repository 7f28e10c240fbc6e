"""The longest event-loop stall on the GUI thread while a block runs (as ``benchmarks/bench_ui.py`` measures it):
a 5 ms precise timer, and the longest time between two of its ticks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer

TICK_MS = 5


class StallMeter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._clock = QElapsedTimer()
        self._last_ns = 0
        self.largest_gap_ms = 0.0

    @contextmanager
    def running(self) -> Iterator[StallMeter]:
        self.largest_gap_ms = 0.0
        self._clock.start()
        self._last_ns = 0
        self._timer.start()
        try:
            yield self
        finally:
            self._timer.stop()
            self._tick()  # a stall at the very end counts too

    def _tick(self) -> None:
        now = self._clock.nsecsElapsed()
        self.largest_gap_ms = max(self.largest_gap_ms, (now - self._last_ns) / 1e6)
        self._last_ns = now
