"""Starting the GUI: training mode starts and cleans up, a missing display fails cleanly, errors are plain."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pso_desktop.domain import ReportInvalid
from pso_desktop.security import TooManyAttemptsError
from pso_desktop.services.reports_input import InputProblem, InputRejected
from pso_desktop.storage.errors import DiskFullError
from pso_desktop.ui import app
from pso_desktop.ui.errors import UNEXPECTED_MESSAGE, is_expected, user_message


def test_demo_runs_training_mode_and_sigterm_cleans_it_up(tmp_path: Path) -> None:
    temp = tmp_path / "child-tmp"
    temp.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "PSO_DESKTOP_HOME": str(tmp_path / "home"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    with subprocess.Popen(
        [sys.executable, "-m", "pso_desktop", "--demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as child:
        deadline = time.monotonic() + 60
        # The practice profile's database appears once the worker has started the environment.
        while not list(temp.glob("pso-desktop-training-*/home/profiles/*/reports.db")):
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "training mode did not start"
            time.sleep(0.1)
        child.send_signal(signal.SIGTERM)  # as at logout: the window closes normally
        _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert b"Traceback" not in err
    assert not list(temp.glob("pso-desktop-training-*"))  # every training file deleted
    assert not (tmp_path / "home" / "profiles").exists()


# Run in a child: gc.freeze is process-wide and app.run needs its own event loop.
_FREEZE_CHILD = """
import gc, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
qapp = QApplication(sys.argv[:1])
from pso_desktop.ui import app
def probe():
    if gc.get_freeze_count() > 0 or probe.tries == 0:
        window = next(w for w in qapp.topLevelWidgets() if isinstance(w, app.MainWindow))
        print(gc.get_freeze_count(), window.is_unlocked, flush=True)
        qapp.quit()
    else:
        probe.tries -= 1
        QTimer.singleShot(100, probe)
probe.tries = 300
QTimer.singleShot(0, probe)
sys.exit(app.run())
"""


def test_start_up_objects_are_frozen_before_any_unlock(tmp_path: Path) -> None:
    # Without the freeze, every full garbage collection walks the modules and Qt wrappers again on the GUI
    # thread (issue 7); done before unlock, it pins no PHI or key material.
    env = {**os.environ, "PSO_DESKTOP_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", _FREEZE_CHILD], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    frozen, unlocked = done.stdout.split()
    assert int(frozen) > 10_000  # the modules, not a handful of objects
    assert unlocked == "False"


def test_without_a_display_run_fails_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert app.run() == 1
    err = capsys.readouterr().err
    assert "no graphical display" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "exc",
    [
        TooManyAttemptsError(retry_after=4.0),
        DiskFullError(),
        InputRejected([InputProblem(1, 2, "narrative", "is required")]),
        ReportInvalid([]),
    ],
)
def test_expected_failures_keep_their_sentence(exc: Exception) -> None:
    assert is_expected(exc)
    assert user_message(exc) == str(exc)


def test_a_bug_gets_a_generic_message_and_only_its_type_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise ValueError("patient Jane Doe fell")
    except ValueError as exc:
        with caplog.at_level(logging.ERROR):
            message = user_message(exc)
    assert message == UNEXPECTED_MESSAGE
    assert "ValueError" in caplog.text
    assert "test_app.py" in caplog.text
    assert "Jane" not in caplog.text
