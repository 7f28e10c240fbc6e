"""What the window remembers between runs in a plain settings file (``PSO_DESKTOP_HOME/settings.ini``): its size
and position, and the folder and format of the last export. Nothing about a patient or a report is ever kept
here (no PHI in settings): the unit and the reporter are remembered inside the encrypted profile instead, and the
report that was open only in memory.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QWidget

from pso_desktop.paths import DataFolderError, home

GEOMETRY = "window/geometry"
EXPORT_FOLDER = "export/folder"
EXPORT_FORMAT = "export/format"
KEYS = (GEOMETRY, EXPORT_FOLDER, EXPORT_FORMAT)  # every key this file may hold


def settings() -> QSettings | None:
    """The settings file, or None when the data folder cannot be used (nothing is remembered then)."""
    try:
        path = home() / "settings.ini"
    except (DataFolderError, OSError):
        return None
    return QSettings(str(path), QSettings.Format.IniFormat)


def restore_geometry(window: QWidget) -> None:
    store = settings()
    value = store.value(GEOMETRY) if store is not None else None
    if isinstance(value, QByteArray) and not value.isEmpty():
        window.restoreGeometry(value)
    # Never larger than the screen's free area: a first start with large text would otherwise open taller or
    # wider than the screen where no window manager clamps it (Submit off screen).
    screen = window.screen()
    if screen is not None:
        room = screen.availableGeometry().size()
        # Not restored: the window's own first size (1100×700 where it fits), never its size hint, which on
        # the small unlock card opened a 553×469 window on a 1366×768 screen, its card behind a scroll bar.
        window.resize(window.size().boundedTo(room))


def save_geometry(window: QWidget) -> None:
    store = settings()
    if store is not None:
        store.setValue(GEOMETRY, window.saveGeometry())
        store.sync()


def last_export() -> tuple[str, str]:
    """The folder and format ("json", "csv", "fhir") of the last export, or empty strings."""
    store = settings()
    if store is None:
        return "", ""
    return str(store.value(EXPORT_FOLDER, "") or ""), str(store.value(EXPORT_FORMAT, "") or "")


def remember_export(folder: str, fmt: str) -> None:
    store = settings()
    if store is not None:
        store.setValue(EXPORT_FOLDER, folder)
        store.setValue(EXPORT_FORMAT, fmt)
        store.sync()
