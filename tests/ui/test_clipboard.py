"""Issue 9, item 4: PHI does not outlive a lock. The audit copied the narrative and found it still on the
clipboard after the idle lock and after quitting.

Replayed on a real X server (Xvfb) with the real window in its own process (tests/support/clipboard_driver.py)
and xclip as the other application: a copy from the description is on the clipboard with KDE's password-manager
hint, and is gone after the lock, after quitting and after IT's clearing time -- unless another application
copied something since, which is left alone. The primary selection (middle-click) is given up at lock too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.ui.clipboard import KDE_HINT, WINDOWS_NO_HISTORY, ClipboardGuard, concealment_formats
from tests.support.cli import SECRET, cli_env, run_cli

REPO = Path(__file__).resolve().parents[2]
NARRATIVE = "Patient Jane Roe 1957-03-02 slipped in room 12"  # stands for PHI
OTHER = "a shopping list from another application"


@pytest.fixture
def display() -> Iterator[str]:
    """A private X server; ends with the test (and with it any xclip still serving a selection)."""
    if shutil.which("Xvfb") is None or shutil.which("xclip") is None:
        pytest.skip("needs Xvfb and xclip (Debian packages xvfb, xclip; scripts/setup.sh test installs them)")
    read, write = os.pipe()
    with subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        os.close(write)
        with os.fdopen(read) as numbers:
            number = numbers.readline().strip()
        assert number, "Xvfb did not start"
        try:
            yield f":{number}"
        finally:
            server.terminate()
            server.wait(10)


def xclip_out(display: str, selection: str = "clipboard", target: str | None = None) -> str | None:
    """What another application pastes; None when nothing is there."""
    args = ["xclip", "-o", "-selection", selection] + (["-t", target] if target else [])
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=15, env={**os.environ, "DISPLAY": display}, check=False
    )
    return result.stdout if result.returncode == 0 and result.stdout else None


def xclip_in(display: str, text: str) -> None:
    """Another application copies ``text`` (xclip keeps serving it in the background)."""
    subprocess.run(
        ["xclip", "-i", "-selection", "clipboard"],
        input=text,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=15,
        env={**os.environ, "DISPLAY": display},
        check=True,
    )


class Window:
    def __init__(self, home: Path, display: str) -> None:
        env = cli_env(home, DISPLAY=display, QT_QPA_PLATFORM="xcb", GUI_TEST_SECRET=SECRET, PYTHONPATH=str(REPO))
        env.pop("WAYLAND_DISPLAY", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.clipboard_driver", "alice"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert self.answer() == "unlocked"

    def answer(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def do(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.answer()

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        try:
            self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process.stdout.close()


@pytest.fixture
def window_factory(pso_home: Path, display: str) -> Iterator[Any]:
    assert run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n").code == 0
    windows: list[Window] = []

    def make() -> Window:
        windows.append(Window(pso_home, display))
        return windows[-1]

    yield make
    for window in windows:
        window.close()


def _copied_and_concealed(window: Window, display: str) -> None:
    assert window.do(f"copy {NARRATIVE}") == "copied"
    assert xclip_out(display) == NARRATIVE  # the copy works for the user
    targets = (xclip_out(display, target="TARGETS") or "").split()
    assert KDE_HINT in targets
    assert xclip_out(display, target=KDE_HINT) == "secret"


def test_a_copy_is_concealed_and_gone_after_the_lock(window_factory: Any, display: str) -> None:
    window = window_factory()
    _copied_and_concealed(window, display)
    assert xclip_out(display, selection="primary") == NARRATIVE  # selected text: X11's middle-click paste
    assert window.do("lock") == "locked"
    assert xclip_out(display) is None
    assert xclip_out(display, selection="primary") is None


def test_another_applications_copy_survives_the_lock(window_factory: Any, display: str) -> None:
    window = window_factory()
    _copied_and_concealed(window, display)
    xclip_in(display, OTHER)
    assert xclip_out(display) == OTHER
    assert window.do("lock") == "locked"
    assert xclip_out(display) == OTHER


def test_a_copy_is_gone_after_quitting(window_factory: Any, display: str) -> None:
    window = window_factory()
    _copied_and_concealed(window, display)
    assert window.do("quit") == "shut down"
    assert xclip_out(display) is None


def test_another_applications_copy_survives_quitting(window_factory: Any, display: str) -> None:
    window = window_factory()
    _copied_and_concealed(window, display)
    xclip_in(display, OTHER)
    assert window.do("quit") == "shut down"
    assert xclip_out(display) == OTHER


def test_a_copy_is_cleared_after_it_policy_time(window_factory: Any, display: str, pso_home: Path) -> None:
    (pso_home / "policy.json").write_text(json.dumps({"clipboard_clear_seconds": 1.5}))
    window = window_factory()
    _copied_and_concealed(window, display)
    assert window.do("wait-cleared") == "cleared"
    assert xclip_out(display) is None
    assert window.do("copy second") == "copied"  # still unlocked: a new report, copied again
    assert xclip_out(display) == "second"


def test_another_applications_copy_survives_the_clearing_time(
    window_factory: Any, display: str, pso_home: Path
) -> None:
    (pso_home / "policy.json").write_text(json.dumps({"clipboard_clear_seconds": 1}))
    window = window_factory()
    _copied_and_concealed(window, display)
    xclip_in(display, OTHER)
    assert window.do("wait-cleared") == "left"  # the timer ran and found another application's text
    assert xclip_out(display) == OTHER


# -- without a display -----------------------------------------------------------------------------------


def test_two_minutes_by_default(qapp: Any) -> None:
    assert ClipboardGuard().clear_after_ms == 120_000


def test_each_platform_gets_its_concealment_formats() -> None:
    windows = concealment_formats("win32")
    assert windows[WINDOWS_NO_HISTORY] == b"\x00\x00\x00\x00"
    assert 'value="ExcludeClipboardContentFromMonitorProcessing"' in "".join(windows)
    assert 'value="CanUploadToCloudClipboard"' in "".join(windows)
    assert concealment_formats("darwin") == {"org.nspasteboard.ConcealedType": b""}
    assert concealment_formats("linux") == {KDE_HINT: b"secret"}


@pytest.mark.parametrize("value", [0, -1, "120", True, 3601])
def test_a_bad_clearing_time_in_the_policy_is_refused(pso_home: Path, value: object) -> None:
    from pso_desktop.security import PolicyError
    from pso_desktop.security.profiles import KeyPolicy

    (pso_home / "policy.json").write_text(json.dumps({"clipboard_clear_seconds": value}))
    with pytest.raises(PolicyError, match="clipboard_clear_seconds"):
        KeyPolicy.load(pso_home)
