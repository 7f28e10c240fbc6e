"""Suspend lock: notices when the computer goes to sleep or has slept, so the window can lock.

Two sources, because neither is enough alone:
- logind's ``PrepareForSleep`` signal on the D-Bus system bus (Linux) arrives before the machine sleeps
  (``True``) and after it wakes (``False``); the window locks on either.
- A heartbeat on every platform: a timer that should tick every few seconds but comes back much later means
  the machine slept (or the process was frozen). It is measured on a clock that keeps counting during sleep.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import SLOT, QObject, QTimer, Signal, Slot

_log = logging.getLogger(__name__)

LOGIND_SERVICE = "org.freedesktop.login1"
LOGIND_PATH = "/org/freedesktop/login1"
LOGIND_INTERFACE = "org.freedesktop.login1.Manager"
HEARTBEAT_MS = 5_000
GRACE_MS = 30_000  # a busy machine may delay a tick by seconds; half a minute of silence means it slept


def _sleep_counting_ms() -> float:
    """Milliseconds on a clock that includes time asleep: CLOCK_BOOTTIME on Linux (immune to wall-clock
    changes); elsewhere the wall clock, since the monotonic clock stops during sleep on macOS."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME) * 1000.0
    return time.time() * 1000.0


class SuspendWatcher(QObject):
    """Emits ``suspended`` when the machine is about to sleep or has just woken. GUI thread only.

    ``bus`` is a ``QDBusConnection`` to listen on for logind (default: the system bus on Linux, none
    elsewhere); ``clock`` is in milliseconds and must keep counting while the machine sleeps.
    """

    suspended = Signal()

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        heartbeat_ms: int = HEARTBEAT_MS,
        grace_ms: int = GRACE_MS,
        clock: Callable[[], float] = _sleep_counting_ms,
        bus: Any = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._heartbeat_ms = heartbeat_ms
        self._grace_ms = grace_ms
        self._last_tick = clock()
        self._timer = QTimer(self)
        self._timer.setInterval(heartbeat_ms)
        self._timer.timeout.connect(self.check_now)
        self._timer.start()
        self.listening_to_logind = self._listen_to_logind(bus)

    def check_now(self) -> None:
        """Emits ``suspended`` if far more time passed since the last tick than the timer allows."""
        now = self._clock()
        late_by = now - self._last_tick - self._heartbeat_ms
        self._last_tick = now
        if late_by > self._grace_ms:
            _log.info("The computer was asleep or the app was frozen for about %d s.", int(late_by / 1000))
            self.suspended.emit()

    @Slot(bool)
    def on_prepare_for_sleep(self, going_to_sleep: bool) -> None:
        """Locks on both edges: before sleeping (True) and, if that came too late, after waking (False)."""
        self._last_tick = self._clock()  # the heartbeat need not report the same sleep again
        self.suspended.emit()

    def _listen_to_logind(self, bus: Any) -> bool:
        if bus is None:
            if not sys.platform.startswith("linux"):
                return False
            try:
                from PySide6.QtDBus import QDBusConnection
            except ImportError:  # a build without QtDBus: the heartbeat still notices sleep after waking
                return False
            bus = QDBusConnection.systemBus()
        if not bus.isConnected():
            _log.info("No D-Bus system bus: the window locks after sleep, noticed when it wakes.")
            return False
        connected = bool(
            bus.connect(
                LOGIND_SERVICE,
                LOGIND_PATH,
                LOGIND_INTERFACE,
                "PrepareForSleep",
                self,
                SLOT("on_prepare_for_sleep(bool)"),
            )
        )
        if not connected:
            _log.info("Could not listen to logind: the window locks after sleep, noticed when it wakes.")
        return connected
