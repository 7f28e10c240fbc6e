"""Starting the GUI: training mode is refused for now, a missing display fails cleanly, errors are plain."""

from __future__ import annotations

import logging

import pytest

from pso_desktop.domain import ReportInvalid
from pso_desktop.security import TooManyAttemptsError
from pso_desktop.services.reports_input import InputProblem, InputRejected
from pso_desktop.storage.errors import DiskFullError
from pso_desktop.ui import app
from pso_desktop.ui.errors import UNEXPECTED_MESSAGE, is_expected, user_message
from tests.ui.conftest import QT_STRICT

pytestmark = QT_STRICT


def test_demo_is_not_available_yet(capsys: pytest.CaptureFixture[str]) -> None:
    assert app.run(demo=True) == 1
    err = capsys.readouterr().err
    assert "training mode" in err
    assert err.count("\n") == 1


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
