"""Starting the desktop application: ``pso-desktop`` with no command ends up in ``run``."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from pso_desktop.paths import APP_NAME, resources_dir
from pso_desktop.services.backend import Backend
from pso_desktop.ui import crash, ui_settings
from pso_desktop.ui.contrast import AccessibleStyle, wants_palette_colours
from pso_desktop.ui.window import MainWindow

STYLE_SHEET = "ui/style.qss"
CONTRAST_SHEET = "ui/style-contrast.qss"  # high contrast or dark: no colour of its own
_following = False  # apply_style follows the platform's scheme and contrast changes (connected once)
_log = logging.getLogger(__name__)


def run(*, demo: bool = False) -> int:
    """Shows the main window and runs the event loop until it closes; returns the process exit code.

    With ``demo``: training mode, a throwaway profile and practice server (see ``services.training``).
    """
    if not _display_available():
        print(
            "pso-desktop: no graphical display is available here; use the commands in 'pso-desktop --help'.",
            file=sys.stderr,
        )
        return 1
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    apply_style(app)
    training = None
    backend: Backend | None = None
    if demo:
        # Imported only here: the services load pydantic and SQLCipher, which a normal start does later.
        from pso_desktop.services.backend import TrainingBackend
        from pso_desktop.services.training import TrainingEnvironment

        training = TrainingEnvironment()
        backend = TrainingBackend(training)
    window = MainWindow(backend, training=demo)
    guard = crash.install(window)  # an uncaught exception locks the window and keeps the data
    ui_settings.restore_geometry(window)  # size and position only (no PHI in settings)
    freeze_after_start_up(window)
    window.show()
    _quit_on_signals(app)
    try:
        return app.exec()
    finally:
        try:
            ui_settings.save_geometry(window)
            window.shutdown()
        finally:
            guard.uninstall()
            if training is not None:
                training.close()  # stops the practice server and deletes every training file, whatever happened


def freeze_after_start_up(window: MainWindow) -> None:
    """Once the profile list has been read (the worker has loaded the services, pydantic, SQLCipher, the HTTP
    stack by then), moves every object alive (modules, Qt wrappers, the locked window) to the garbage
    collector's permanent generation: they live for the whole session, and each full collection would
    otherwise walk them all again on the GUI thread (issue 7, docs/performance.md). No profile can be unlocked
    before that list is shown, so no PHI or key material is frozen; what the session creates later is
    collected as usual."""

    def freeze() -> None:
        gc.collect()
        gc.freeze()

    window.ready.connect(freeze, Qt.ConnectionType.SingleShotConnection)


def _quit_on_signals(app: QApplication) -> None:
    """SIGTERM (logout, shutdown, kill) and SIGINT end the event loop normally, so the session is locked and
    closed and training files are deleted, instead of the process dying mid-way."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: app.quit())
    # Python runs signal handlers only when it gets control; an idle timer gives it control four times a second.
    heartbeat = QTimer(app)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(250)


def apply_style(app: QApplication) -> None:
    """The platform style with 3:1 control edges (``contrast.AccessibleStyle``) and the application style
    sheet from ``resources/ui``: the clinical colours, or, when the platform asks for high contrast or a dark
    scheme, a sheet that leaves every colour to the user's palette. Follows the platform when it changes its
    mind; the app still works without a sheet."""
    global _following
    if not isinstance(app.style(), AccessibleStyle):
        app.setStyle(AccessibleStyle(app.style().name()))
    name = CONTRAST_SHEET if wants_palette_colours(app.palette()) else STYLE_SHEET
    path = resources_dir() / name
    try:
        app.setStyleSheet(path.read_text(encoding="utf-8"))
    except OSError:
        _log.warning("style sheet %s not found; using the platform style", name)
    if not _following:
        _following = True
        hints = app.styleHints()
        hints.colorSchemeChanged.connect(lambda _scheme: apply_style(app))
        hints.accessibility().contrastPreferenceChanged.connect(lambda _preference: apply_style(app))


def _display_available() -> bool:
    """False on a Linux/BSD machine with no X11 or Wayland display and no explicit Qt platform, where Qt
    would abort the process instead of failing cleanly."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
