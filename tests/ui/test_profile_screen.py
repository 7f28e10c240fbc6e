"""Unlocking and creating profiles through the window, against the real key and database services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from keyring.backends import fail
from PySide6.QtCore import Qt

from pso_desktop.paths import APP_NAME
from pso_desktop.security import WrongSecretError
from pso_desktop.security.attempts import FREE_ATTEMPTS
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services.backend import Backend
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.errors import UNEXPECTED_MESSAGE
from pso_desktop.ui.window import MainWindow
from tests.support.kdf import CHEAP_KDF
from tests.support.ui import PROFILE, REPORT_COUNT, shown_ids, unlock


def test_wrong_secret_shows_the_error_beside_the_field_then_the_right_one_unlocks(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
) -> None:
    window = make_window()
    screen = window.profile_screen
    assert screen.profile_box.currentText() == PROFILE
    assert screen.password.hasFocus()

    with qtbot.waitSignal(window.unlock_failed, timeout=10_000) as failed:
        qtbot.keyClicks(screen.password, "not the secret")
        qtbot.keyClick(screen.password, Qt.Key.Key_Return)

    message = failed.args[0]
    assert screen.unlock_error.isVisible()
    assert screen.unlock_error.text() == message
    assert message != UNEXPECTED_MESSAGE
    # KeePassXC style: the focus is back in the password field with the wrong text selected for retyping.
    assert screen.password.hasFocus()
    assert screen.password.selectedText() == "not the secret"
    assert not window.is_unlocked
    assert window.stack.currentWidget() is screen
    # The text is the services' own sentence for this failure.
    with pytest.raises(WrongSecretError) as raised:
        workstation_factory().open(PROFILE, "not the secret")
    assert message == str(raised.value)

    unlock(qtbot, window)
    assert window.is_unlocked
    assert window.stack.currentWidget() is window.reports_screen
    assert window.windowTitle() == f"{APP_NAME} — {PROFILE}"
    assert len(shown_ids(window)) == REPORT_COUNT
    assert screen.password.text() == ""  # the secret does not linger in the hidden form
    assert not screen.unlock_error.isVisible()


def test_after_too_many_wrong_passwords_unlock_waits_as_long_as_the_services_say(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    screen = window.profile_screen
    messages: list[str] = []
    window.unlock_failed.connect(messages.append)
    for attempt in range(FREE_ATTEMPTS + 1):
        with qtbot.waitSignal(window.unlock_failed, timeout=10_000):
            screen.unlock_requested.emit(PROFILE, f"wrong {attempt}")
    assert all(message == messages[0] for message in messages[:FREE_ATTEMPTS])
    assert messages[-1] != messages[0]  # the last one is the services' "wait" sentence
    assert screen.unlock_error.text() == messages[-1]
    assert not screen.unlock_button.isEnabled()
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)  # Enter does not get around the wait either
    assert window.worker.pending == 0

    qtbot.waitUntil(screen.unlock_button.isEnabled, timeout=10_000)
    unlock(qtbot, window)
    assert window.is_unlocked


def test_first_start_offers_to_create_a_profile_and_opens_it(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = make_window()
    screen = window.profile_screen
    assert screen.pages.currentIndex() == 1  # no profile yet: the create form
    assert not screen.back_button.isVisible()

    qtbot.keyClicks(screen.new_name, "bob")
    qtbot.keyClicks(screen.new_secret, "a long enough secret")
    qtbot.keyClicks(screen.new_secret_repeat, "a long enough secret")
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000) as loaded:
        qtbot.mouseClick(screen.create_button, Qt.MouseButton.LeftButton)

    assert loaded.args == [0]
    assert window.windowTitle() == f"{APP_NAME} — bob"
    assert window.reports_screen.list_status.text() == "No reports in this profile yet."
    assert workstation_factory().keys.list_profiles() == ["bob"]
    assert [screen.profile_box.itemText(i) for i in range(screen.profile_box.count())] == ["bob"]


def test_differing_repeat_is_caught_before_anything_is_created(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = make_window()
    screen = window.profile_screen
    qtbot.keyClicks(screen.new_name, "bob")
    qtbot.keyClicks(screen.new_secret, "a long enough secret")
    qtbot.keyClicks(screen.new_secret_repeat, "a long enough secreT")
    qtbot.keyClick(screen.new_secret_repeat, Qt.Key.Key_Return)

    assert screen.repeat_error.isVisible()
    assert "differ" in screen.repeat_error.text()
    assert screen.new_secret_repeat.hasFocus()
    assert window.worker.pending == 0
    assert workstation_factory().keys.list_profiles() == []


@pytest.mark.parametrize(
    ("name", "secret", "field"),
    [
        ("bob", "short", "secret"),
        (PROFILE, "a long enough secret", "name"),
        (PROFILE.upper(), "a long enough secret", "name"),
        ("!!!", "a long enough secret", "name"),
    ],
)
def test_a_new_profile_the_store_would_refuse_is_refused_with_a_sentence_beside_its_field(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    name: str,
    secret: str,
    field: str,
) -> None:
    window = make_window()
    screen = window.profile_screen
    qtbot.waitUntil(lambda: screen.profile_box.count() == 1)
    qtbot.mouseClick(screen.new_profile_button, Qt.MouseButton.LeftButton)
    assert screen.pages.currentIndex() == 1
    qtbot.keyClicks(screen.new_name, name)
    qtbot.keyClicks(screen.new_secret, secret)
    qtbot.keyClicks(screen.new_secret_repeat, secret)
    qtbot.keyClick(screen.new_secret_repeat, Qt.Key.Key_Return)

    label, widget = {
        "secret": (screen.secret_error, screen.new_secret),
        "name": (screen.name_error, screen.new_name),
    }[field]
    assert label.isVisible() and label.text().endswith(".") and label.text() != UNEXPECTED_MESSAGE
    assert widget.hasFocus()
    assert window.worker.pending == 0 and not window.is_unlocked
    # The profile that existed before is untouched and still the only one.
    assert [screen.profile_box.itemText(i) for i in range(screen.profile_box.count())] == [PROFILE]


def test_every_problem_of_a_new_profile_shows_at_once(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = make_window()
    screen = window.profile_screen
    qtbot.keyClicks(screen.new_secret, "short")
    qtbot.keyClicks(screen.new_secret_repeat, "shorT")
    qtbot.keyClick(screen.new_secret_repeat, Qt.Key.Key_Return)
    assert screen.name_error.isVisible() and screen.secret_error.isVisible() and screen.repeat_error.isVisible()
    assert screen.new_name.hasFocus()  # the first problem
    assert workstation_factory().keys.list_profiles() == []


def test_a_display_name_with_spaces_makes_its_folder_name_and_enter_creates_it(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = make_window()
    screen = window.profile_screen
    qtbot.keyClicks(screen.new_name, "Jordan  Example")
    assert screen.folder_hint.isVisible() and "jordan-example" in screen.folder_hint.text()
    qtbot.keyClicks(screen.new_secret, "a long enough secret")
    qtbot.keyClicks(screen.new_secret_repeat, "a long enough secret")
    with qtbot.waitSignal(window.unlocked, timeout=10_000) as unlocked:
        qtbot.keyClick(screen.new_name, Qt.Key.Key_Return)  # Enter in any field submits
    assert unlocked.args == ["jordan-example"]
    assert workstation_factory().keys.list_profiles() == ["jordan-example"]


def test_keyring_warning_is_shown_as_a_banner(
    qtbot: Any, make_window: Callable[..., MainWindow], pso_home: Any
) -> None:
    insecure = fail.Keyring()  # type: ignore[no-untyped-call]
    keys = ProfileKeys(pso_home, backend=insecure, kdf=CHEAP_KDF)
    assert keys.warning  # the services consider this backend insecure and fall back to key files
    window = make_window(backend=Backend(lambda: Workstation(pso_home, keys=keys)))

    banner = window.profile_screen.keyring_warning
    assert banner.isVisible()
    assert banner.text() == keys.warning


def test_no_banner_with_a_secure_keyring(make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    assert not window.profile_screen.keyring_warning.isVisible()


def test_an_invalid_it_policy_is_reported_after_the_window_opens(
    make_window: Callable[..., MainWindow], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PSO_DESKTOP_POLICY", str(tmp_path / "missing-policy.json"))
    window = make_window()  # the profile list comes first; the keyring and policy check follows and fails
    screen = window.profile_screen
    assert not screen.pages.isEnabled()
    assert "IT policy" in screen.busy_label.text() and "missing-policy.json" in screen.busy_label.text()
