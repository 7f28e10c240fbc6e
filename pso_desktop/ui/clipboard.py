"""Clipboard guard: report text copied from the window is concealed from clipboard history and cleared at
lock, at quit and after a time (issue 9, item 4). GUI thread only.

Every copy the window's widgets make (Ctrl+C, Cut, a context menu's Copy) goes through Qt's clipboard in this
process. The guard sees each change while this process owns the clipboard, and puts the same text back with
the formats that ask clipboard managers and the OS not to keep or share it:

- Windows: ``ExcludeClipboardContentFromMonitorProcessing``, and ``CanIncludeInClipboardHistory`` and
  ``CanUploadToCloudClipboard`` set to 0 (clipboard history, Win+V, and cloud clipboard sync);
- macOS: ``org.nspasteboard.ConcealedType`` (the nspasteboard.org convention clipboard managers honour);
- KDE (Klipper) and other X11/Wayland managers that follow it: ``x-kde-passwordManagerHint`` = ``secret``.

Clearing happens only if the clipboard still holds what we put there, compared by content (a digest of the
text; ownership is not reliable on every platform): a user who has since copied something in another
application keeps it.
"""

from __future__ import annotations

import hashlib
import logging
import sys

from PySide6.QtCore import QByteArray, QMimeData, QObject, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication

_log = logging.getLogger(__name__)

DEFAULT_CLEAR_SECONDS = 120.0
KDE_HINT = "x-kde-passwordManagerHint"
MAC_CONCEALED = "org.nspasteboard.ConcealedType"
_DWORD_ZERO = b"\x00\x00\x00\x00"


def _windows_format(name: str) -> str:
    """The MIME type Qt maps to the registered Windows clipboard format ``name``."""
    return f'application/x-qt-windows-mime;value="{name}"'


WINDOWS_EXCLUDE = _windows_format("ExcludeClipboardContentFromMonitorProcessing")
WINDOWS_NO_HISTORY = _windows_format("CanIncludeInClipboardHistory")
WINDOWS_NO_CLOUD = _windows_format("CanUploadToCloudClipboard")


def concealment_formats(platform: str = sys.platform) -> dict[str, bytes]:
    """The extra clipboard formats (MIME type -> data) that mark a copy as concealed on ``platform``."""
    if platform.startswith("win"):
        return {WINDOWS_EXCLUDE: b"", WINDOWS_NO_HISTORY: _DWORD_ZERO, WINDOWS_NO_CLOUD: _DWORD_ZERO}
    if platform == "darwin":
        return {MAC_CONCEALED: b""}
    return {KDE_HINT: b"secret"}


_mac_converter: object | None = None  # kept for the process's life, as Qt expects of a converter


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class ClipboardGuard(QObject):
    """Conceals the window's copies and clears them at ``clear_if_ours`` (lock, quit) or after ``clear_after_ms``.

    Only a digest of the copied text is kept, never the text."""

    concealed = Signal()  # a copy was marked concealed (for tests)
    cleared = Signal()  # the clipboard was cleared because it still held our copy

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        clear_after_ms: int = int(DEFAULT_CLEAR_SECONDS * 1000),
        platform: str = sys.platform,
    ) -> None:
        super().__init__(parent)
        self._platform = platform
        self._placed: bytes | None = None
        self._placing = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(clear_after_ms)
        self._timer.timeout.connect(self.clear_if_ours)
        if platform == "darwin":
            global _mac_converter
            if _mac_converter is None:
                _mac_converter = install_mac_concealed_type()
        self._clipboard: QClipboard | None = QGuiApplication.clipboard()
        if self._clipboard is not None:
            self._clipboard.dataChanged.connect(self._on_changed)

    @property
    def holding(self) -> bool:
        """True while a copy of ours may still be on the clipboard (until it is cleared or replaced)."""
        return self._placed is not None

    @property
    def clear_after_ms(self) -> int:
        return self._timer.interval()

    def set_clear_after(self, milliseconds: int) -> None:
        """Changes the time after which a copy is cleared (IT policy)."""
        if milliseconds <= 0:
            raise ValueError("the clipboard clearing time must be positive")
        self._timer.setInterval(milliseconds)

    def _on_changed(self) -> None:
        clipboard = self._clipboard
        if self._placing or clipboard is None:
            return
        if not clipboard.ownsClipboard():
            return  # another application copied: not ours to mark (and clear_if_ours compares content anyway)
        source = clipboard.mimeData()
        text = source.text() if source is not None else ""
        if not text:
            return
        data = QMimeData()
        data.setText(text)
        if source is not None and source.hasHtml():
            data.setHtml(source.html())
        for mime, payload in concealment_formats(self._platform).items():
            data.setData(mime, QByteArray(payload))
        self._placing = True
        try:
            clipboard.setMimeData(data)
        finally:
            self._placing = False
        self._placed = _digest(text)
        self._timer.start()
        self.concealed.emit()

    def clear_if_ours(self) -> bool:
        """Clears the clipboard if it still holds the text we put there; returns True when it did."""
        self._timer.stop()
        placed, self._placed = self._placed, None
        clipboard = self._clipboard
        if placed is None or clipboard is None:
            return False
        current = clipboard.text()
        if _digest(current) != placed:
            return False  # someone copied something else since: leave it
        self._placing = True
        try:
            clipboard.clear()
        finally:
            self._placing = False
        _log.info("cleared the clipboard of a copy from the window")
        self.cleared.emit()
        return True

    def clear_selection_if_ours(self) -> None:
        """X11's primary selection (middle-click paste) holds whatever text is selected in the window: at lock
        and quit it is given up if this process still owns it (X11 selection ownership is exact)."""
        clipboard = self._clipboard
        if clipboard is not None and clipboard.supportsSelection() and clipboard.ownsSelection():
            self._placing = True
            try:
                clipboard.clear(QClipboard.Mode.Selection)
            finally:
                self._placing = False


def install_mac_concealed_type() -> object | None:
    """macOS: Qt writes unknown MIME types under its own UTIs, so ``org.nspasteboard.ConcealedType`` needs a
    converter that writes it under its own name (Qt 6.5+ ``QUtiMimeConverter``, created once; Qt keeps it).
    Returns the converter, or None where this Qt has none (then copies are cleared but not marked)."""
    from PySide6 import QtGui

    base = getattr(QtGui, "QUtiMimeConverter", None)
    if base is None:
        _log.info("This Qt cannot mark macOS clipboard copies as concealed; they are still cleared.")
        return None

    class _ConcealedTypeConverter(base):  # type: ignore[misc, valid-type]
        def canConvert(self, mime: str, uti: str) -> bool:
            return mime == MAC_CONCEALED and uti == MAC_CONCEALED

        def mimeForUti(self, uti: str) -> str:
            return MAC_CONCEALED if uti == MAC_CONCEALED else ""

        def utiForMime(self, mime: str) -> str:
            return MAC_CONCEALED if mime == MAC_CONCEALED else ""

        def convertToMime(self, mime: str, data: list[QByteArray], uti: str) -> object:
            return QByteArray()

        def convertFromMime(self, mime: str, data: object, uti: str) -> list[QByteArray]:
            return [QByteArray()]

    return _ConcealedTypeConverter()
