"""A custom keyring backend as an attacker (or a careless package) would install one: it reports the highest
priority and keeps every entry in a world-readable JSON file (``PSO_TEST_FILE_KEYRING``). Loaded in CLI
subprocesses through ``PYTHON_KEYRING_BACKEND=tests.support.file_keyring.WorldReadableKeyring``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class WorldReadableKeyring(KeyringBackend):
    priority = 20  # above every real keychain: keyring would pick it without being told

    @staticmethod
    def _path() -> Path:
        return Path(os.environ["PSO_TEST_FILE_KEYRING"])

    def _load(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self._path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data

    def _save(self, data: dict[str, str]) -> None:
        self._path().write_text(json.dumps(data), encoding="utf-8")
        self._path().chmod(0o644)

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\n{username}"] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}\n{username}", None) is None:
            raise PasswordDeleteError("no such entry")
        self._save(data)


class SecretServiceImpostor(WorldReadableKeyring):
    """The same file keyring, claiming to be keyring's Secret Service backend by module and class name."""


SecretServiceImpostor.__module__ = "keyring.backends.SecretService"
SecretServiceImpostor.__qualname__ = SecretServiceImpostor.__name__ = "Keyring"


# keyring registers every backend class for auto-selection; these must only ever be chosen by name.
_registry: set[type] = getattr(KeyringBackend, "_classes", set())
for _cls in (WorldReadableKeyring, SecretServiceImpostor):
    _registry.discard(_cls)
