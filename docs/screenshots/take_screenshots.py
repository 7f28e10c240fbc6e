"""Re-creates the screenshots in this folder from synthetic sample data (no real PHI).

Run from the repository root, for example:
``PYTHONPATH=$PWD QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/take_screenshots.py``
(or under ``xvfb-run -a``). Uses a throwaway PSO_DESKTOP_HOME and an in-memory keyring. It takes every picture at
1024×600, the smallest screen the app is made for, and at 1366×768 (issue 8), each size in its own folder
(``1024x600/``, ``1366x768/``), one process per size; ``PSO_SHOTS_SIZE=1366x768`` takes only that size. At
1366×768 it also takes the list and a new report in a high-contrast theme and with the text size doubled. A size's
folder is emptied of pictures first, so none is left from an older run.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # for tests.support.memory_keyring

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtGui import QColor, QFont, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from pso_desktop.domain import validate_report  # noqa: E402
from pso_desktop.domain.samples import sample_report  # noqa: E402
from pso_desktop.security.profiles import ProfileKeys  # noqa: E402
from pso_desktop.services.backend import Backend, TrainingBackend  # noqa: E402
from pso_desktop.services.training import TRAINING_PROFILE, TRAINING_SECRET, TrainingEnvironment  # noqa: E402
from pso_desktop.services.workstation import Workstation  # noqa: E402
from pso_desktop.ui.app import apply_style  # noqa: E402
from pso_desktop.ui.window import MainWindow  # noqa: E402
from tests.support.memory_keyring import MemoryKeyring  # noqa: E402

PROFILE, SECRET = "jsmith", "screenshot secret"
SIZES = ("1024x600", "1366x768")
SIZE = os.environ.get("PSO_SHOTS_SIZE", "")
WIDTH, HEIGHT = (int(part) for part in (SIZE or SIZES[0]).split("x"))
OUT = HERE / f"{WIDTH}x{HEIGHT}"
CASE_NUMBER = "PSO-2026-000042"


def all_sizes() -> int:
    """Runs this script once per size (one QApplication, one throwaway data folder each)."""
    for size in SIZES:
        code = subprocess.run([sys.executable, __file__], env={**os.environ, "PSO_SHOTS_SIZE": size}, check=False)
        if code.returncode:
            return code.returncode
    return 0


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    root = Path(tempfile.mkdtemp(prefix="pso-shots-"))
    os.environ["PSO_DESKTOP_HOME"] = str(root)
    # The in-memory keyring stands in for the OS keychain: IT policy names it, so no keyring warning shows.
    policy = root / "policy.json"
    policy.write_text('{"allowed_keyring_backends": ["tests.support.memory_keyring.MemoryKeyring"]}')
    os.environ["PSO_DESKTOP_POLICY"] = str(policy)
    backend_keyring = MemoryKeyring()

    def workstation() -> Workstation:
        return Workstation(root, keys=ProfileKeys(root, backend=backend_keyring))

    app = QApplication(sys.argv[:1])
    apply_style(app)
    if code := first_start(app, workstation):
        return code

    setup = workstation()
    setup.create_profile(PROFILE, SECRET)
    rng = random.Random(7)  # noqa: S311 -- reproducible sample data, not security
    reports = [validate_report(sample_report(rng, i)).export() for i in range(60)]
    with setup.session(PROFILE, SECRET) as session:
        session.add_reports(reports[:25], submit=True)
        session.add_reports(reports[25:])
        # The oldest queued report as a sync leaves it: taken by the PSO, with a case number and a status.
        (sent,) = session.store.claim_batch(1, 10**7)
        session.store.record_results(
            [{"id": sent.report_id, "revision": 1, "status": "created", "server_ref": CASE_NUMBER, "errors": []}]
        )
        change = {"id": sent.report_id, "server_ref": CASE_NUMBER, "status": "under_review"}
        session.account.record_statuses([{**change, "changed_at": "2026-12-01T10:00:00Z"}], cursor=None)

    window = MainWindow(Backend(workstation))
    window.resize(WIDTH, HEIGHT)

    def shoot(name: str) -> None:
        save(window, name)

    def on_ready() -> None:
        QTimer.singleShot(200, lambda: (shoot("unlock.png"), try_wrong_secret()))

    def try_wrong_secret() -> None:
        screen = window.profile_screen
        wrong = "not my password"
        screen.password.setText(wrong)
        screen.unlock_requested.emit(PROFILE, wrong)

    def on_failed(_message: str) -> None:
        def next_step() -> None:
            shoot("unlock-error.png")
            window.profile_screen.unlock_requested.emit(PROFILE, SECRET)

        QTimer.singleShot(200, next_step)

    def on_loaded(_rows: int) -> None:
        window.reports_screen.reports_loaded.disconnect(on_loaded)

        def open_first_fall() -> None:
            shoot("main-window.png")
            model = window.reports_screen.model
            rows = [model.summary(row) for row in range(model.rowCount())]
            window.open_report(next((r.id for r in rows if "A48" in r.categories), rows[0].id))

        QTimer.singleShot(400, open_first_fall)

    opened: list[str] = []

    def on_editor_opened() -> None:
        editor = window.editor
        assert editor is not None and editor.form is not None
        if not opened:
            opened.append("report-form.png")
            QTimer.singleShot(300, lambda: (shoot("report-form.png"), window.new_report()))
            return
        if editor.read_only:
            QTimer.singleShot(300, lambda: (shoot("report-read-only.png"), app.quit()))
            return
        form = editor.form
        form.fields["event_type"].set_value("incident")
        form.fields["narrative"].set_value("Found on the floor beside the bed during the 02:00 round.")
        form.fields["categories"].set_value(["A48"])
        form.refresh_visibility()
        editor.invalid.connect(
            lambda _errors: QTimer.singleShot(300, lambda: (shoot("report-form-errors.png"), window.show_trends()))
        )
        editor.submit()

    window.ready.connect(on_ready)
    window.unlock_failed.connect(on_failed)
    window.reports_screen.reports_loaded.connect(on_loaded)
    window.editor_opened.connect(on_editor_opened)

    def on_trends_shown() -> None:
        QTimer.singleShot(300, lambda: (shoot("trends.png"), window.open_report(sent.report_id)))

    window.trends_shown.connect(on_trends_shown)
    window.show()
    code = app.exec()
    window.shutdown()
    return code or training(app) or (accessibility(app, workstation) if WIDTH == 1366 else 0)


def save(window: MainWindow, name: str) -> None:
    window.grab().save(str(OUT / name))
    print(f"saved {OUT.name}/{name}")


def first_start(app: QApplication, workstation: Callable[[], Workstation]) -> int:
    """first-start.png: the first run on a computer, no profile yet, so the window opens on "Create a profile"."""
    window = MainWindow(Backend(workstation))
    window.resize(WIDTH, HEIGHT)

    def on_ready() -> None:
        QTimer.singleShot(300, lambda: (save(window, "first-start.png"), app.quit()))

    window.ready.connect(on_ready)
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()


def training(app: QApplication) -> int:
    """training.png: ``pso-desktop --demo``, unlocked with the practice profile shown on its banner."""
    environment = TrainingEnvironment()
    window = MainWindow(TrainingBackend(environment), training=True)
    window.resize(WIDTH, HEIGHT)

    def on_ready() -> None:
        window.profile_screen.unlock_requested.emit(TRAINING_PROFILE, TRAINING_SECRET)

    def on_loaded(_rows: int) -> None:
        window.reports_screen.reports_loaded.disconnect(on_loaded)

        def shoot() -> None:
            save(window, "training.png")
            app.quit()

        QTimer.singleShot(400, shoot)

    window.ready.connect(on_ready)
    window.reports_screen.reports_loaded.connect(on_loaded)
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()
        environment.close()


HIGH_CONTRAST_BLACK = {  # a platform high-contrast theme, as Windows' "High Contrast Black"
    QPalette.ColorRole.Window: "#000000",
    QPalette.ColorRole.WindowText: "#ffffff",
    QPalette.ColorRole.Base: "#000000",
    QPalette.ColorRole.AlternateBase: "#000000",
    QPalette.ColorRole.Text: "#ffffff",
    QPalette.ColorRole.Button: "#000000",
    QPalette.ColorRole.ButtonText: "#ffffff",
    QPalette.ColorRole.Highlight: "#1aebff",
    QPalette.ColorRole.HighlightedText: "#000000",
    QPalette.ColorRole.PlaceholderText: "#ffff00",
}


def accessibility(app: QApplication, workstation: Callable[[], Workstation]) -> int:
    """At 1366x768 only: the list and a new report in a high-contrast theme (high-contrast-*.png) and with the
    text size doubled (text-200-*.png)."""
    palette, font = QPalette(app.palette()), QFont(app.font())
    contrast = QPalette()
    for role, colour in HIGH_CONTRAST_BLACK.items():
        contrast.setColor(role, QColor(colour))
    app.setPalette(contrast)
    apply_style(app)
    code = list_and_form(app, workstation, "high-contrast")
    app.setPalette(palette)
    apply_style(app)
    doubled = QFont(font)
    doubled.setPointSizeF(font.pointSizeF() * 2)
    app.setFont(doubled)
    code = code or list_and_form(app, workstation, "text-200")
    app.setFont(font)
    return code


def list_and_form(app: QApplication, workstation: Callable[[], Workstation], prefix: str) -> int:
    window = MainWindow(Backend(workstation))
    window.resize(WIDTH, HEIGHT)

    def on_loaded(_rows: int) -> None:
        window.reports_screen.reports_loaded.disconnect(on_loaded)
        QTimer.singleShot(400, lambda: (save(window, f"{prefix}-list.png"), window.new_report()))

    def on_editor_opened() -> None:
        QTimer.singleShot(400, lambda: (save(window, f"{prefix}-form.png"), app.quit()))

    window.ready.connect(lambda: window.profile_screen.unlock_requested.emit(PROFILE, SECRET))
    window.reports_screen.reports_loaded.connect(on_loaded)
    window.editor_opened.connect(on_editor_opened)
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()


if __name__ == "__main__":
    sys.exit(main() if SIZE else all_sizes())
