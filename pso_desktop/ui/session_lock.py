"""Workstation lock: notices when the operating system locks the session or a remote desktop disconnects, so
the window can lock too (issue 9, item 5). GUI thread only.

- Linux: logind's ``Lock`` signal on this process's session object (system bus), the session's ``LockedHint``
  property turning true (``PropertiesChanged``), and the screensaver's ``ActiveChanged(true)`` on the session
  bus, from ``org.freedesktop.ScreenSaver`` (KDE, Xfce, ...) and ``org.gnome.ScreenSaver`` (GNOME).
- Windows: ``WM_WTSSESSION_CHANGE`` after ``WTSRegisterSessionNotification`` on the window, read by a native
  event filter: ``WTS_SESSION_LOCK``, ``WTS_REMOTE_DISCONNECT`` and ``WTS_CONSOLE_DISCONNECT``.
- macOS: the distributed notification ``com.apple.screenIsLocked``, observed through CoreFoundation.

Each source that cannot be reached is logged (without anything personal) and left out; the idle lock and the
sleep lock still apply. Signals arrive on the GUI thread (Qt's D-Bus, the Windows message loop, the main
CFRunLoop that Qt runs on macOS).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import SLOT, QAbstractNativeEventFilter, QCoreApplication, QObject, Signal, Slot

_log = logging.getLogger(__name__)

LOGIND_SERVICE = "org.freedesktop.login1"
LOGIND_MANAGER_PATH = "/org/freedesktop/login1"
LOGIND_MANAGER = "org.freedesktop.login1.Manager"
LOGIND_SESSION = "org.freedesktop.login1.Session"
LOGIND_SESSION_PREFIX = "/org/freedesktop/login1/session/"
PROPERTIES = "org.freedesktop.DBus.Properties"
# (service, path, interface) of the screensavers that announce ActiveChanged(bool).
SCREENSAVERS = (
    ("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver"),
    ("org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver"),  # KDE's older path
    ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"),
)

REASON_LOCK = "lock"
REASON_DISCONNECT = "disconnect"

# Windows (winuser.h / wtsapi32.h)
WM_WTSSESSION_CHANGE = 0x02B1
WTS_CONSOLE_DISCONNECT = 0x2
WTS_REMOTE_DISCONNECT = 0x4
WTS_SESSION_LOCK = 0x7
NOTIFY_FOR_THIS_SESSION = 0
_WTS_REASONS = {
    WTS_SESSION_LOCK: REASON_LOCK,
    WTS_REMOTE_DISCONNECT: REASON_DISCONNECT,
    WTS_CONSOLE_DISCONNECT: REASON_DISCONNECT,
}

# macOS
MAC_SCREEN_LOCKED = b"com.apple.screenIsLocked"


def logind_session_path(session_id: str) -> str:
    """The object path of logind session ``session_id``, escaped as sd_bus_path_encode does: every byte that
    is not an ASCII letter (or a digit after the first character) becomes ``_xx``."""
    if not session_id:
        return LOGIND_SESSION_PREFIX + "_"
    out = []
    for index, byte in enumerate(session_id.encode("utf-8")):
        char = chr(byte)
        if (char.isascii() and char.isalpha()) or (index > 0 and char.isascii() and char.isdigit()):
            out.append(char)
        else:
            out.append(f"_{byte:02x}")
    return LOGIND_SESSION_PREFIX + "".join(out)


class WorkstationLockWatcher(QObject):
    """Emits ``workstation_locked(reason)`` (``"lock"`` or ``"disconnect"``) when the OS session locks.

    ``system_bus`` / ``session_bus`` are ``QDBusConnection``s for logind and the screensaver (default: the
    machine's buses on Linux); ``session_id`` is the logind session (default: ``XDG_SESSION_ID``, else asked of
    logind for this process). Elsewhere the platform's own mechanism is used; ``attach_window`` gives it the
    window (Windows registers that window for session notifications).
    """

    workstation_locked = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        system_bus: Any = None,
        session_bus: Any = None,
        session_id: str | None = None,
        platform: str = sys.platform,
    ) -> None:
        super().__init__(parent)
        self._platform = platform
        self._system_bus: Any = None
        self._session_path: str | None = None
        self._windows: _WindowsSessionFilter | None = None
        self._mac: _MacScreenLockObserver | None = None
        self.sources: list[str] = []  # what is being listened to, for tests and the log
        if platform.startswith("linux"):
            self._listen_linux(system_bus, session_bus, session_id)
        elif platform == "darwin":
            self._mac = _MacScreenLockObserver.start(lambda: self.workstation_locked.emit(REASON_LOCK))
            if self._mac is not None:
                self.sources.append("com.apple.screenIsLocked")
        if not self.sources and not platform.startswith("win"):
            _log.info("No workstation lock signal can be received; the idle and sleep locks still apply.")

    # -- Windows -------------------------------------------------------------------------------------------

    def attach_window(self, hwnd: int) -> None:
        """Windows: registers the window ``hwnd`` for WM_WTSSESSION_CHANGE. Elsewhere nothing is needed."""
        if not self._platform.startswith("win") or self._windows is not None:
            return
        self._windows = _WindowsSessionFilter.start(hwnd, self.workstation_locked.emit)
        if self._windows is not None:
            self.sources.append("WM_WTSSESSION_CHANGE")

    def stop(self) -> None:
        """Stops listening where an explicit stop is needed (Windows' registration, macOS' observer)."""
        if self._windows is not None:
            self._windows.stop()
            self._windows = None
        if self._mac is not None:
            self._mac.stop()
            self._mac = None

    # -- Linux ---------------------------------------------------------------------------------------------

    @Slot()
    def on_session_lock(self) -> None:
        self.workstation_locked.emit(REASON_LOCK)

    @Slot(bool)
    def on_screensaver_active(self, active: bool) -> None:
        if active:
            self.workstation_locked.emit(REASON_LOCK)

    @Slot(str, "QVariantMap", "QStringList")
    def on_session_properties(self, interface: str, changed: dict[str, Any], invalidated: list[str]) -> None:
        if interface == LOGIND_SESSION and _truthy(changed.get("LockedHint")):
            self.workstation_locked.emit(REASON_LOCK)

    def _listen_linux(self, system_bus: Any, session_bus: Any, session_id: str | None) -> None:
        try:
            from PySide6.QtDBus import QDBusConnection
        except ImportError:  # a build without QtDBus: only the idle and sleep locks
            return
        if system_bus is None:
            system_bus = QDBusConnection.systemBus()
        if session_bus is None:
            session_bus = QDBusConnection.sessionBus()
        if system_bus.isConnected():
            self._system_bus = system_bus
            sid = session_id if session_id is not None else os.environ.get("XDG_SESSION_ID")
            if sid:
                self._listen_to_session(logind_session_path(sid))
            else:
                self._ask_logind_for_session()
        else:
            _log.info("No D-Bus system bus: the OS session lock is not seen (the screensaver may be).")
        if session_bus.isConnected():
            for service, path, interface in SCREENSAVERS:
                if session_bus.connect(
                    service, path, interface, "ActiveChanged", self, SLOT("on_screensaver_active(bool)")
                ):
                    self.sources.append(f"{service} {path}")

    def _listen_to_session(self, path: str) -> None:
        bus = self._system_bus
        self._session_path = path
        if bus.connect(LOGIND_SERVICE, path, LOGIND_SESSION, "Lock", self, SLOT("on_session_lock()")):
            self.sources.append("logind Lock")
        if bus.connect(
            LOGIND_SERVICE,
            path,
            PROPERTIES,
            "PropertiesChanged",
            self,
            SLOT("on_session_properties(QString,QVariantMap,QStringList)"),
        ):
            self.sources.append("logind LockedHint")

    def _ask_logind_for_session(self) -> None:
        """No XDG_SESSION_ID: ask logind which session this process belongs to ("auto": the caller's session),
        without waiting for the answer."""
        from PySide6.QtDBus import QDBusMessage

        call = QDBusMessage.createMethodCall(LOGIND_SERVICE, LOGIND_MANAGER_PATH, LOGIND_MANAGER, "GetSession")
        call.setArguments(["auto"])
        if not self._system_bus.callWithCallback(
            call, self, SLOT("on_session_found(QDBusMessage)"), SLOT("on_session_not_found(QDBusError)")
        ):
            _log.info("Could not ask logind for this session: the OS session lock is not seen.")

    @Slot("QDBusMessage")
    def on_session_found(self, reply: Any) -> None:
        arguments = reply.arguments()
        path = _object_path(arguments[0]) if arguments else None
        if path and path.startswith(LOGIND_SESSION_PREFIX):
            self._listen_to_session(path)
        else:
            _log.info("logind named no session for this process: the OS session lock is not seen.")

    @Slot("QDBusError")
    def on_session_not_found(self, error: Any) -> None:
        _log.info(
            "logind does not know this process's session (%s): the OS session lock is not seen.", error.name()
        )

    @property
    def session_path(self) -> str | None:
        return self._session_path


def _truthy(value: Any) -> bool:
    variant = getattr(value, "variant", None)  # a QDBusVariant, if Qt left one
    if callable(variant):
        value = variant()
    return value is True


def _object_path(value: Any) -> str | None:
    path = getattr(value, "path", None)
    if callable(path):
        value = path()
    return value if isinstance(value, str) else None


# -- Windows ----------------------------------------------------------------------------------------------


class _WindowsSessionFilter(QAbstractNativeEventFilter):
    """Reads WM_WTSSESSION_CHANGE from the window's message loop."""

    def __init__(self, hwnd: int, emit: Callable[[str], None]) -> None:
        super().__init__()
        self._hwnd = hwnd
        self._emit = emit

    @classmethod
    def start(cls, hwnd: int, emit: Callable[[str], None]) -> _WindowsSessionFilter | None:
        app = QCoreApplication.instance()
        if app is None:
            return None
        try:
            wtsapi32 = ctypes.WinDLL("wtsapi32")  # type: ignore[attr-defined]
            register = wtsapi32.WTSRegisterSessionNotification
            register.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
            register.restype = ctypes.c_int
            if not register(ctypes.c_void_p(hwnd), NOTIFY_FOR_THIS_SESSION):
                _log.info("WTSRegisterSessionNotification failed: the Windows session lock is not seen.")
                return None
        except (OSError, AttributeError):
            _log.info("wtsapi32 is not available: the Windows session lock is not seen.")
            return None
        event_filter = cls(hwnd, emit)
        app.installNativeEventFilter(event_filter)
        return event_filter

    def stop(self) -> None:
        app = QCoreApplication.instance()
        if app is not None:
            app.removeNativeEventFilter(self)
        try:
            unregister = ctypes.WinDLL("wtsapi32").WTSUnRegisterSessionNotification  # type: ignore[attr-defined]
            unregister.argtypes = [ctypes.c_void_p]
            unregister(ctypes.c_void_p(self._hwnd))
        except (OSError, AttributeError):
            pass

    def nativeEventFilter(self, eventType: Any, message: Any) -> Any:
        if bytes(eventType) == b"windows_generic_MSG":
            reason = wts_reason(message)
            if reason is not None:
                self._emit(reason)
        return False, 0  # only watching: Windows and Qt still handle the message


def wts_reason(message: Any) -> str | None:
    """The lock reason carried by the native MSG at address ``message``, if it is a session lock/disconnect."""
    from ctypes import wintypes

    msg = wintypes.MSG.from_address(int(message))
    if msg.message != WM_WTSSESSION_CHANGE:
        return None
    return _WTS_REASONS.get(int(msg.wParam))


# -- macOS ------------------------------------------------------------------------------------------------

_CFNotificationCallback = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)
_CF_STRING_ENCODING_UTF8 = 0x08000100
_CF_DELIVER_IMMEDIATELY = 4


class _MacScreenLockObserver:
    """Observes com.apple.screenIsLocked on the distributed notification center (CoreFoundation, via ctypes).

    The callback runs on the main thread's run loop, which Qt's event loop runs on macOS."""

    def __init__(self, cf: Any, center: int, name: int, callback: Any) -> None:
        self._cf, self._center, self._name, self._callback = cf, center, name, callback

    @classmethod
    def start(cls, on_locked: Callable[[], None]) -> _MacScreenLockObserver | None:
        try:
            cf = ctypes.CDLL("/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation")
            cf.CFNotificationCenterGetDistributedCenter.restype = ctypes.c_void_p
            cf.CFStringCreateWithCString.restype = ctypes.c_void_p
            cf.CFStringCreateWithCString.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
            cf.CFNotificationCenterAddObserver.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                _CFNotificationCallback,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_long,
            ]
            cf.CFNotificationCenterRemoveObserver.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            center = cf.CFNotificationCenterGetDistributedCenter()
            name = cf.CFStringCreateWithCString(None, MAC_SCREEN_LOCKED, _CF_STRING_ENCODING_UTF8)
        except (OSError, AttributeError):
            _log.info("CoreFoundation is not available: the macOS screen lock is not seen.")
            return None
        if not center or not name:
            return None

        def notified(_center: Any, _observer: Any, _name: Any, _object: Any, _info: Any) -> None:
            on_locked()

        callback = _CFNotificationCallback(notified)  # kept alive by the observer object
        observer = cls(cf, center, name, callback)
        cf.CFNotificationCenterAddObserver(center, id(observer), callback, name, None, _CF_DELIVER_IMMEDIATELY)
        return observer

    def stop(self) -> None:
        self._cf.CFNotificationCenterRemoveObserver(self._center, id(self), self._name, None)
