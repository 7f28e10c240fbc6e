"""The first screen: unlock a clinician's profile with its password, or create a new profile.

The screen only collects input and shows outcomes; the window runs the slow work (key derivation, keyring,
database) on the worker. A wrong password is reported beside the password field, which gets the focus with
its text selected so the clinician can simply type again.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.paths import profile_folder_name
from pso_desktop.texts import LOCKOUT_NOTE

MIN_SECRET_LENGTH = 8  # as the key store demands (security.profiles); checked here to list every problem at once

NAME, SECRET, FORM = "name", "secret", "form"
# Headings relative to the user's text size (a fixed size in the style sheet would not grow with large text).
TITLE_SCALE, HEADING_SCALE = 2.2, 1.45
CARD_CHARS = 80


def scaled_font(label: QLabel, scale: float) -> None:
    font = QFont(label.font())
    font.setPointSizeF(max(font.pointSizeF(), 1.0) * scale)
    label.setFont(font)


def create_error_field(exc: BaseException) -> str:
    """Which field of the new-profile form a failure belongs beside."""
    # Imported here: the security package loads the crypto and keyring libraries, which the worker loads
    # anyway; the window should not wait for them at start.
    from pso_desktop.security.errors import InvalidProfileNameError, ProfileExistsError, WeakSecretError

    if isinstance(exc, InvalidProfileNameError | ProfileExistsError):
        return NAME
    if isinstance(exc, WeakSecretError):
        return SECRET
    return FORM


def _error_label() -> QLabel:
    label = QLabel()
    label.setObjectName("fieldError")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def _show_error(label: QLabel, message: str) -> None:
    label.setText(message)
    label.setVisible(bool(message))


def _password_field(placeholder: str) -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText(placeholder)
    # No input method composition or autocompletion for secrets.
    field.setInputMethodHints(Qt.InputMethodHint.ImhHiddenText | Qt.InputMethodHint.ImhSensitiveData)
    return field


class ProfileScreen(QWidget):
    """Choose a profile and unlock it, or create one. Emits requests; the window answers them."""

    unlock_requested = Signal(str, str)  # profile name, secret
    create_requested = Signal(str, str)  # profile name, secret

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("profileScreen")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # let the style sheet paint it

        title = QLabel("PSO Desktop")
        title.setObjectName("appTitle")
        scaled_font(title, TITLE_SCALE)
        subtitle = QLabel("Patient safety event reporting")
        subtitle.setObjectName("appSubtitle")

        self.keyring_warning = QLabel()
        self.keyring_warning.setObjectName("warningBanner")
        self.keyring_warning.setWordWrap(True)
        self.keyring_warning.hide()

        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_unlock_page())
        self.pages.addWidget(self._build_create_page())
        self.pages.currentChanged.connect(self._fit_page)
        self._fit_page(self.pages.currentIndex())

        self.busy_label = QLabel()
        self.busy_label.setObjectName("busyLabel")
        self.busy_label.setWordWrap(True)
        self.busy_label.hide()

        card = QFrame()
        card.setObjectName("card")
        # As wide as about 80 characters of the user's text size (480 pixels at the usual size).
        card.setMaximumWidth(self.fontMetrics().averageCharWidth() * CARD_CHARS)
        card_layout = QVBoxLayout(card)
        card_layout.addWidget(title)
        card_layout.addWidget(subtitle)
        card_layout.addSpacing(8)
        card_layout.addWidget(self.keyring_warning)
        card_layout.addWidget(self.pages)
        card_layout.addWidget(self.busy_label)

        body = QWidget()
        body.setObjectName("profileBody")
        outer = QVBoxLayout(body)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 3)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        # Large text on a small screen: the card scrolls vertically instead of making the window taller than
        # the screen.
        scroll = QScrollArea()
        scroll.setObjectName("profileScroll")
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        body.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # the screen's background, as above
        screen = QVBoxLayout(self)
        screen.setContentsMargins(0, 0, 0, 0)
        screen.addWidget(scroll)
        self._has_profiles = False

    def _fit_page(self, current: int) -> None:
        """The card is as tall as the page shown: a stacked widget is otherwise as tall as its tallest page,
        and the short unlock page sat in the create page's height with wide gaps."""
        for index in range(self.pages.count()):
            policy = QSizePolicy.Policy.Preferred if index == current else QSizePolicy.Policy.Ignored
            page = self.pages.widget(index)
            if page is not None:
                page.setSizePolicy(policy, policy)
        self.pages.updateGeometry()

    # --- building ----------------------------------------------------------------------------------------

    def _build_unlock_page(self) -> QWidget:
        page = QWidget()
        self.profile_box = QComboBox()
        self.profile_box.setAccessibleName("Profile")
        self.password = _password_field("Password")
        self.password.setAccessibleName("Password")
        self.password.returnPressed.connect(self._request_unlock)
        self.unlock_error = _error_label()
        self.unlock_button = QPushButton("&Unlock")
        self.unlock_button.setDefault(True)
        self.unlock_button.clicked.connect(self._request_unlock)
        self.new_profile_button = QPushButton("&New profile…")
        self.new_profile_button.setFlat(True)
        self.new_profile_button.clicked.connect(self.show_create_page)

        form = QFormLayout()
        form.addRow("&Profile:", self.profile_box)
        form.addRow("Pass&word:", self.password)
        form.addRow("", self.unlock_error)
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_profile_button)
        buttons.addStretch(1)
        buttons.addWidget(self.unlock_button)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel("Unlock your profile")
        heading.setObjectName("pageHeading")
        scaled_font(heading, HEADING_SCALE)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addLayout(buttons)
        return page

    def _build_create_page(self) -> QWidget:
        page = QWidget()
        self.new_name = QLineEdit()
        self.new_name.setAccessibleName("Profile name")
        self.new_name.setPlaceholderText("for example Jordan Smith, or jsmith")
        self.new_name.setMaxLength(64)
        self.new_name.returnPressed.connect(self._request_create)
        self.new_name.textChanged.connect(self._show_folder_name)
        self.folder_hint = QLabel()
        self.folder_hint.setObjectName("hint")
        self.folder_hint.hide()
        self.name_error = _error_label()
        self.new_secret = _password_field("At least 8 characters")
        self.new_secret.setAccessibleName("New password")
        self.new_secret.returnPressed.connect(self._request_create)
        self.secret_error = _error_label()
        self.new_secret_repeat = _password_field("The same password again")
        self.new_secret_repeat.setAccessibleName("Repeat password")
        self.new_secret_repeat.returnPressed.connect(self._request_create)
        self.repeat_error = _error_label()
        self.create_error = _error_label()
        self.create_button = QPushButton("&Create profile")
        self.create_button.clicked.connect(self._request_create)
        self.back_button = QPushButton("&Back")
        self.back_button.setFlat(True)
        self.back_button.clicked.connect(lambda: self.show_unlock_page())

        hint = QLabel(f"Your reports are encrypted with a key that only this password opens. {LOCKOUT_NOTE}")
        hint.setObjectName("hint")
        self.create_hint = hint
        hint.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Profile &name:", self.new_name)
        form.addRow("", self.folder_hint)
        form.addRow("", self.name_error)
        form.addRow("Pass&word:", self.new_secret)
        form.addRow("", self.secret_error)
        form.addRow("&Repeat:", self.new_secret_repeat)
        form.addRow("", self.repeat_error)
        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.create_button)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel("Create a profile")
        heading.setObjectName("pageHeading")
        scaled_font(heading, HEADING_SCALE)
        layout.addWidget(heading)
        layout.addWidget(hint)
        layout.addLayout(form)
        layout.addWidget(self.create_error)
        layout.addLayout(buttons)
        return page

    # --- what the window tells the screen ----------------------------------------------------------------

    def set_profiles(self, names: list[str], *, select: str | None = None) -> None:
        """Fills the profile list; shows the new-profile form when there is no profile yet."""
        current = select or self.profile_box.currentText()
        self.profile_box.clear()
        self.profile_box.addItems(names)
        if current in names:
            self.profile_box.setCurrentText(current)
        self._has_profiles = bool(names)
        self.back_button.setVisible(self._has_profiles)
        if self._has_profiles:
            self.show_unlock_page()
        else:
            self.show_create_page()

    def set_keyring_warning(self, text: str | None) -> None:
        self.keyring_warning.setText(text or "")
        self.keyring_warning.setVisible(bool(text))

    def set_busy(self, busy: bool, message: str = "") -> None:
        """Disables the forms while the worker unlocks or creates a profile."""
        self.pages.setEnabled(not busy)
        self.busy_label.setText(message)
        self.busy_label.setVisible(busy and bool(message))

    def show_unlock_page(self, profile: str | None = None) -> None:
        """The unlock form with an empty password field, focused."""
        if not self._has_profiles:
            self.show_create_page()
            return
        if profile is not None:
            self.profile_box.setCurrentText(profile)
        self._clear_secrets()
        _show_error(self.unlock_error, "")
        self.pages.setCurrentIndex(0)
        self.password.setFocus()

    def show_create_page(self) -> None:
        self._clear_secrets()
        for label in (self.name_error, self.secret_error, self.repeat_error, self.create_error):
            _show_error(label, "")
        self.new_name.clear()
        self.pages.setCurrentIndex(1)
        self.new_name.setFocus()

    def show_unlock_error(self, message: str) -> None:
        """Shows ``message`` beside the password field and selects the password for retyping."""
        _show_error(self.unlock_error, message)
        self.password.setFocus()
        self.password.selectAll()

    def hold_unlock(self, seconds: float) -> None:
        """Disables the Unlock button for ``seconds`` (after too many wrong passwords, the services refuse
        to try again before then anyway; this saves the clinician a pointless attempt)."""
        self.unlock_button.setEnabled(False)
        # The screen is the timer's context: if it is deleted first, the timer never fires.
        QTimer.singleShot(max(1, int(seconds * 1000) + 50), self, lambda: self.unlock_button.setEnabled(True))

    def show_create_error(self, message: str, field: str) -> None:
        """Shows ``message`` beside ``field`` (NAME, SECRET or FORM) and moves the focus there."""
        targets = {
            NAME: (self.name_error, self.new_name),
            SECRET: (self.secret_error, self.new_secret),
            FORM: (self.create_error, self.new_secret),
        }
        label, widget = targets[field]
        _show_error(label, message)
        widget.setFocus()
        widget.selectAll()

    # --- requests ----------------------------------------------------------------------------------------

    def _request_unlock(self) -> None:
        if not self.pages.isEnabled() or not self.unlock_button.isEnabled():
            return
        name = self.profile_box.currentText()
        if not name:
            self.show_create_page()
            return
        _show_error(self.unlock_error, "")
        self.unlock_requested.emit(name, self.password.text())

    def _show_folder_name(self, text: str) -> None:
        """Under the name: the profile name it becomes, when that differs (a name with spaces)."""
        folder = profile_folder_name(text)
        shown = bool(text.strip() and folder and folder != text.strip())
        self.folder_hint.setText(f"Listed as the profile “{folder}”." if shown else "")
        self.folder_hint.setVisible(shown)

    def _request_create(self) -> None:
        """Checks everything it can at once, shows every problem beside its field, and focuses the first."""
        if not self.pages.isEnabled():
            return
        for label in (self.name_error, self.secret_error, self.repeat_error, self.create_error):
            _show_error(label, "")
        name = self.new_name.text().strip()
        folder = profile_folder_name(name)
        existing = {self.profile_box.itemText(i).lower() for i in range(self.profile_box.count())}
        problems: list[tuple[QLabel, QLineEdit, str]] = []
        if not name:
            problems.append(
                (self.name_error, self.new_name, "Enter a name for the profile, for example your name.")
            )
        elif not folder:
            problems.append(
                (self.name_error, self.new_name, "Use at least one letter or digit in the profile's name.")
            )
        elif folder.lower() in existing:
            problems.append(
                (
                    self.name_error,
                    self.new_name,
                    f"A profile called “{folder}” already exists on this computer; unlock it, or choose "
                    "another name.",
                )
            )
        if len(self.new_secret.text()) < MIN_SECRET_LENGTH:
            problems.append(
                (
                    self.secret_error,
                    self.new_secret,
                    f"Choose a password of at least {MIN_SECRET_LENGTH} characters.",
                )
            )
        if self.new_secret.text() != self.new_secret_repeat.text():
            problems.append(
                (
                    self.repeat_error,
                    self.new_secret_repeat,
                    "The two passwords differ; type the same password twice.",
                )
            )
        for label, _field, message in problems:
            _show_error(label, message)
        if problems:
            first = problems[0][1]
            first.setFocus()
            first.selectAll()
            return
        self.create_requested.emit(name, self.new_secret.text())

    def _clear_secrets(self) -> None:
        for field in (self.password, self.new_secret, self.new_secret_repeat):
            field.clear()
