"""Sign in to the PSO account: a nurse is asked for a user name and password only. The server, the hospital's
CA certificate (a TLS-inspecting proxy) and its proxy come from IT's policy; only where the policy names no
server do they appear, under "Advanced" (open by itself while no server is known). A server typed without
``https://`` gets it.

The dialog only collects input; the sync panel signs in on the sync thread and reports back. The password
field is emptied whenever the dialog closes or fails, and is never stored: the account's refresh token is
kept inside the encrypted profile instead.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.services.backend import SignInDefaults


class SignInDialog(QDialog):
    sign_in_requested = Signal(str, str, str, str, str)  # server URL, account, password, CA file, proxy

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign in to the PSO")
        self.setModal(True)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.server = QLineEdit()
        self.server.setPlaceholderText("https://pso.example.org")
        self.username = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setInputMethodHints(Qt.InputMethodHint.ImhHiddenText | Qt.InputMethodHint.ImhSensitiveData)
        self.ca_file = QLineEdit()
        self.ca_file.setPlaceholderText("Only if IT gave you one (PEM file)")
        self.proxy = QLineEdit()
        self.proxy.setPlaceholderText("Only if IT says so: http://proxy.hospital:3128, or 'system'")
        self.proxy.setToolTip(
            "The proxy to reach the PSO through. 'system' uses this computer's proxy settings on Windows and "
            "macOS; on Linux it uses the proxy variables only where IT's policy allows them "
            "(proxy_from_environment), and otherwise connects directly."
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        ca_row = QWidget()
        ca_layout = QHBoxLayout(ca_row)
        ca_layout.setContentsMargins(0, 0, 0, 0)
        ca_layout.addWidget(self.ca_file, 1)
        ca_layout.addWidget(browse)
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.hide()

        form = QFormLayout()
        form.addRow("User name", self.username)
        form.addRow("Password", self.password)
        self.advanced_button = QToolButton()
        self.advanced_button.setObjectName("advancedButton")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.toggled.connect(self._show_advanced)
        # Under the button, in the same form so that the labels line up.
        self._form = form
        form.addRow(self.advanced_button)
        self._advanced_rows: list[QWidget] = [self.server, ca_row, self.proxy]
        form.addRow("PSO server address", self.server)
        form.addRow("Hospital CA certificate", ca_row)
        form.addRow("Proxy", self.proxy)
        self._show_advanced(False)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Sign in")
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.reason)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        chain = [self.username, self.password, self.advanced_button, self.server, self.ca_file, browse, self.proxy]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)
        self.finished.connect(lambda _result: self.password.clear())

    def prepare(self, defaults: SignInDefaults, reason: str = "") -> None:
        """Fills the dialog before it opens. With a server from IT's policy only the user name and password are
        asked (the policy's server, CA and proxy are used); otherwise the rest is under Advanced, open while no
        server is known."""
        self.reason.setText(reason or "Sign in with your PSO user name and password to send reports.")
        self.server.setText(defaults.server_url)
        self.server.setReadOnly(defaults.fixed_by_policy)
        self.ca_file.setText(defaults.ca_file)
        self.proxy.setText(defaults.proxy)
        self.username.setText(defaults.username)
        self.password.clear()
        self._form.setRowVisible(self.advanced_button, not defaults.fixed_by_policy)
        self.advanced_button.setChecked(not defaults.fixed_by_policy and not defaults.server_url)
        self._show_advanced(self.advanced_button.isChecked())
        self.show_error("")
        self.set_busy(False)
        if not defaults.server_url and not defaults.fixed_by_policy:
            self.server.setFocus()
        else:
            (self.password if defaults.username else self.username).setFocus()

    def _show_advanced(self, shown: bool) -> None:
        for row in self._advanced_rows:
            self._form.setRowVisible(row, shown)
        self.advanced_button.setText(("▾" if shown else "▸") + " Advanced: server address, CA certificate, proxy")
        self.advanced_button.setToolTip("Only if IT asks you to: where the PSO server is and how to reach it.")

    def set_busy(self, busy: bool) -> None:
        for widget in (self.server, self.username, self.password, self.ca_file, self.proxy, self.buttons):
            widget.setEnabled(not busy)
        if busy:
            self.error.setText("Signing in…")
            self.error.show()

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))
        if message:
            self.password.selectAll()
            self.password.setFocus()

    def _submit(self) -> None:
        missing = [
            name
            for name, field in (
                ("your user name", self.username),
                ("your password", self.password),
            )
            if not field.text().strip()
        ]
        if not self.server.text().strip():
            missing.append("the PSO server address (under Advanced; IT can tell you)")
        if missing:
            if not self.server.text().strip():
                self.advanced_button.setChecked(True)
            self.show_error("Enter " + " and ".join(missing) + ".")
            return
        self.sign_in_requested.emit(
            with_https(self.server.text().strip()),
            self.username.text().strip(),
            self.password.text(),
            self.ca_file.text().strip(),
            self.proxy.text().strip(),
        )

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Hospital CA certificate", "", "Certificates (*.pem *.crt);;All files (*)"
        )
        if path:
            self.ca_file.setText(path)


def with_https(address: str) -> str:
    """A server address as typed, with ``https://`` added when no scheme was given (``pso.example.org``)."""
    if address and "://" not in address:
        return "https://" + address
    return address
