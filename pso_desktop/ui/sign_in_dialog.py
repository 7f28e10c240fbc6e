"""Sign in to the PSO account: server address (fixed when IT's policy names it), account, password, and, when
the hospital's network needs them, its CA certificate (a TLS-inspecting proxy) and its proxy.

The dialog only collects input; the sync panel signs in on the sync thread and reports back. The password
field is emptied whenever the dialog closes or fails, and is never stored: the account's refresh token is
kept inside the encrypted profile instead.
"""

from __future__ import annotations

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
    QVBoxLayout,
    QWidget,
)

from pso_desktop.ui.backend import SignInDefaults


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
        self.proxy.setToolTip("The proxy to reach the PSO through; 'system' uses this computer's proxy settings")
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
        form.addRow("PSO server", self.server)
        form.addRow("Account", self.username)
        form.addRow("Password", self.password)
        form.addRow("Hospital CA certificate", ca_row)
        form.addRow("Proxy", self.proxy)
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
        self.finished.connect(lambda _result: self.password.clear())

    def prepare(self, defaults: SignInDefaults, reason: str = "") -> None:
        """Fills the dialog before it opens; a server fixed by IT's policy cannot be changed here."""
        self.reason.setText(reason or "Sign in with your PSO account to send reports from this profile.")
        self.server.setText(defaults.server_url)
        self.server.setReadOnly(defaults.fixed_by_policy)
        self.server.setToolTip("Set by IT's policy" if defaults.fixed_by_policy else "")
        self.ca_file.setText(defaults.ca_file)
        self.proxy.setText(defaults.proxy)
        self.username.setText(defaults.username)
        self.password.clear()
        self.show_error("")
        self.set_busy(False)
        (self.password if defaults.username else self.username if defaults.server_url else self.server).setFocus()

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
                ("the PSO server", self.server),
                ("your account", self.username),
                ("your password", self.password),
            )
            if not field.text().strip()
        ]
        if missing:
            self.show_error("Enter " + " and ".join(missing) + ".")
            return
        self.sign_in_requested.emit(
            self.server.text().strip(),
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
