"""Clinician profiles and their data keys.

Each profile has a folder ``<root>/profiles/<name>/`` (0700) holding its SQLCipher database, a non-secret
``profile.json`` and, after failed unlocks, ``unlock-attempts.json``. Its random 32-byte data key is wrapped
(see ``envelope``) with a key derived from the clinician's secret and the wrapped form is stored in the OS
keyring, or, where no secure keyring exists and policy allows, in ``wrapped-key.json`` in the profile folder.
Neither the stored entry nor the secret alone yields the key, so clinicians sharing one OS account stay apart.

Every method does key derivation or keyring I/O; call them from a worker, never the GUI thread.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend

from pso_desktop import paths
from pso_desktop.files import ensure_private_dir, write_private_json
from pso_desktop.security.attempts import UnlockThrottle
from pso_desktop.security.envelope import DATA_KEY_BYTES, WrappedKey, unwrap_key, wrap_key
from pso_desktop.security.errors import (
    CorruptKeyDataError,
    InsecureKeyringError,
    InvalidProfileNameError,
    KeyEntryMissingError,
    KeyringUnavailableError,
    PolicyError,
    ProfileExistsError,
    ProfileFolderError,
    ProfileNotFoundError,
    WeakSecretError,
    WrongSecretError,
)
from pso_desktop.security.kdf import PRODUCTION_KDF, KdfParams
from pso_desktop.security.key_stores import KeyFile, KeyringEntry, KeyStore
from pso_desktop.security.keyring_guard import (
    BackendVerdict,
    backend_name,
    classify_backend,
    is_valid_backend_name,
    system_backend,
)
from pso_desktop.security.winvault import persist_locally

KEYRING_SERVICE = "PSO Desktop"
CREDENTIAL_SERVICE = "PSO Desktop device credential"
CREDENTIAL_FILE = "device-credential"
PROFILE_FILE = paths.PROFILE_FILE
KEY_FILE = "wrapped-key.json"
ATTEMPTS_FILE = "unlock-attempts.json"
DATABASE_FILE = "reports.db"
POLICY_FILE = "policy.json"
POLICY_ENV = "PSO_DESKTOP_POLICY"
MIN_SECRET_LENGTH = 8
STORAGE_OS_KEYRING = "os_keyring"
STORAGE_PASSWORD_FILE = "password_file"  # noqa: S105 -- a mode name, not a password
# The least KDF cost IT policy may set (OWASP's argon2id minimum); tests pass KdfParams directly instead.
POLICY_MIN_KDF = KdfParams(memory_kib=19 * 1024, time_cost=2, parallelism=1)

_RECORD_FORMAT_VERSION = 1
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerPolicy:
    """The PSO server IT has fixed for this workstation (``"pso_server"`` in the policy file)."""

    url: str
    ca_file: str | None = None
    proxy: str | None = None


def _server_policy(value: Any, path: Path) -> ServerPolicy | None:
    if value is None:
        return None
    url = value.get("url") if isinstance(value, dict) else None
    if not isinstance(url, str) or not url.startswith("https://"):
        raise PolicyError(
            f'The IT policy file {path} must give the PSO server as "pso_server": {{"url": "https://..."}}; '
            "ask IT to correct it."
        )
    extra = {key: value.get(key) for key in ("ca_file", "proxy")}
    if set(value) - {"url", "ca_file", "proxy"} or not all(
        v is None or (isinstance(v, str) and v) for v in extra.values()
    ):
        raise PolicyError(f'The IT policy file {path} has an invalid "pso_server" setting; ask IT to correct it.')
    return ServerPolicy(url, extra["ca_file"], extra["proxy"])


MAX_SYNC_WAIT = 24 * 3600.0  # beyond a day a sync is better run again than kept waiting


# The "sync" settings: each key's lowest and highest value in seconds. The intervals of the window's automatic
# sending (docs/sync.md, "Sending by itself") start at one second, so tests can run them quickly.
SYNC_SETTINGS = {
    "max_wait_seconds": (0.0, MAX_SYNC_WAIT),
    "send_interval_seconds": (1.0, MAX_SYNC_WAIT),
    "status_interval_seconds": (1.0, MAX_SYNC_WAIT),
    "probe_seconds": (1.0, 3600.0),
    "probe_max_seconds": (1.0, MAX_SYNC_WAIT),
}


def _sync_settings(value: Any, path: Path) -> dict[str, float]:
    """The "sync" object's settings that are given (missing ones keep each tool's default)."""
    if value is None:
        return {}
    if isinstance(value, dict) and not set(value) - set(SYNC_SETTINGS):
        given = {key: value[key] for key in SYNC_SETTINGS if key in value}
        if all(
            not isinstance(v, bool)
            and isinstance(v, int | float)
            and SYNC_SETTINGS[k][0] <= v <= SYNC_SETTINGS[k][1]
            for k, v in given.items()
        ):
            return {key: float(v) for key, v in given.items()}
    ranges = ", ".join(f'"{key}" ({low:.0f} to {high:.0f})' for key, (low, high) in SYNC_SETTINGS.items())
    raise PolicyError(
        f'The IT policy file {path} must give "sync" as an object of numbers of seconds, any of {ranges}; '
        "ask IT to correct it."
    )


MAX_KEEP_CLOSED_DAYS = 3650.0


def _keep_closed_days(value: Any, path: Path) -> float | None:
    if value is None:
        return None
    days = value.get("keep_closed_days") if isinstance(value, dict) else None
    if (
        not isinstance(value, dict)
        or set(value) - {"keep_closed_days"}
        or isinstance(days, bool)
        or not isinstance(days, int | float)
        or not 0 <= days <= MAX_KEEP_CLOSED_DAYS
    ):
        raise PolicyError(
            f'The IT policy file {path} must give "facility_reports" as {{"keep_closed_days": N}} with N from 0 '
            f"to {MAX_KEEP_CLOSED_DAYS:.0f}; ask IT to correct it."
        )
    return float(days)


MAX_IDLE_LOCK_MINUTES = 24 * 60.0


def _idle_lock_minutes(value: Any, path: Path) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_IDLE_LOCK_MINUTES:
        raise PolicyError(
            f'The IT policy file {path} must give "idle_lock_minutes" as a number of minutes above 0 and at most '
            f"{MAX_IDLE_LOCK_MINUTES:.0f}; ask IT to correct it."
        )
    return float(value)


MAX_CLIPBOARD_SECONDS = 3600.0


def _clipboard_clear_seconds(value: Any, path: Path) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_CLIPBOARD_SECONDS:
        raise PolicyError(
            f'The IT policy file {path} must give "clipboard_clear_seconds" as a number of seconds above 0 and at '
            f"most {MAX_CLIPBOARD_SECONDS:.0f}; ask IT to correct it."
        )
    return float(value)


def _allowed_backends(value: Any, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and is_valid_backend_name(v) for v in value):
        raise PolicyError(
            f'The IT policy file {path} must give "allowed_keyring_backends" as a list of keyring backend '
            'classes ("module.Class"); ask IT to correct it.'
        )
    return tuple(value)


@dataclass(frozen=True)
class SealedOutboxPolicy:
    """``"sealed_outbox"`` in the policy file (docs/sync.md, "The sealed outbox and its agent")."""

    spool_dir: str | None = None  # a machine-wide spool folder instead of <PSO_DESKTOP_HOME>/spool
    probe_seconds: float = 60.0  # how often the agent looks for the PSO server while the spool is not empty
    credential_store: str | None = None  # "file" keeps device credentials in files even with an OS keyring


MAX_PROBE_SECONDS = 24 * 3600.0


def _sealed_outbox(value: Any, path: Path) -> SealedOutboxPolicy:
    if value is None:
        return SealedOutboxPolicy()
    invalid = PolicyError(
        f'The IT policy file {path} must give "sealed_outbox" as {{"spool_dir": "FOLDER", "probe_seconds": N, '
        f'"credential_store": "keyring" or "file"}} (each optional, N from 1 to {MAX_PROBE_SECONDS:.0f}); '
        "ask IT to correct it."
    )
    if not isinstance(value, dict) or set(value) - {"spool_dir", "probe_seconds", "credential_store"}:
        raise invalid
    spool_dir = value.get("spool_dir")
    probe = value.get("probe_seconds", 60.0)
    store = value.get("credential_store")
    if spool_dir is not None and (not isinstance(spool_dir, str) or not os.path.isabs(spool_dir)):
        raise invalid
    if isinstance(probe, bool) or not isinstance(probe, int | float) or not 1 <= probe <= MAX_PROBE_SECONDS:
        raise invalid
    if store not in (None, "keyring", "file"):
        raise invalid
    return SealedOutboxPolicy(spool_dir, float(probe), store)


@dataclass(frozen=True)
class KeyPolicy:
    """What IT allows on this workstation. Loaded from a JSON policy file; every key is optional:

    - ``"require_os_keyring": true`` forbids the password-protected key file fallback;
    - ``"kdf": {"memory_kib": ..., "time_cost": ..., "parallelism": ...}`` sets the argon2id cost for new
      and re-wrapped keys (not below 19 MiB and t=2);
    - ``"pso_server": {"url": "https://...", "ca_file": "...", "proxy": "..."}`` fixes the PSO server every
      profile signs in to and syncs with, and optionally the extra CA to trust and the proxy (a URL or
      ``"system"``); people can then no longer choose another server;
    - ``"proxy_from_environment": true`` makes the proxy variables (``HTTPS_PROXY``, ``ALL_PROXY``,
      ``NO_PROXY``) the "system" proxy on Linux, where no other system setting exists (never on Windows or
      macOS, whose own settings are read); without it, no environment variable chooses a proxy;
    - ``"sync": {"max_wait_seconds": N}`` is how long a sync keeps retrying a server that does not answer
      (the window, the agent and ``pso-desktop sync`` without ``--max-wait``); its ``send_interval_seconds``,
      ``status_interval_seconds``, ``probe_seconds`` and ``probe_max_seconds`` time the window's automatic
      sending (docs/sync.md);
    - ``"allowed_keyring_backends": ["module.Class", ...]`` names keyring backends trusted besides the known
      platform keychains (e.g. a vendor's keychain); every other backend is not secure;
    - ``"idle_lock_minutes": N`` is how long the window may go without input before it locks (default 10);
    - ``"clipboard_clear_seconds": N`` is how long a copy from the window stays on the clipboard (default 120);
    - ``"sealed_outbox": {"spool_dir": "...", "probe_seconds": N, "credential_store": "file"}``: a machine-wide
      spool folder, how often the agent looks for the PSO server, and device credentials kept in files.
    - ``"facility_reports": {"keep_closed_days": N}`` is how long a risk manager's profile keeps a copy of a
      facility report after its review was closed (default: as long as the account is a risk manager).
    """

    allow_file_fallback: bool = True
    kdf: KdfParams | None = None
    server: ServerPolicy | None = None
    proxy_from_environment: bool = False
    sync_max_wait_seconds: float | None = None
    sync_send_interval_seconds: float | None = None
    sync_status_interval_seconds: float | None = None
    sync_probe_seconds: float | None = None
    sync_probe_max_seconds: float | None = None
    allowed_keyring_backends: tuple[str, ...] = ()
    idle_lock_minutes: float | None = None
    clipboard_clear_seconds: float | None = None
    sealed_outbox: SealedOutboxPolicy = SealedOutboxPolicy()
    facility_keep_closed_days: float | None = None

    @classmethod
    def load(cls, root: Path) -> KeyPolicy:
        """Reads the file named by ``PSO_DESKTOP_POLICY``, else ``<root>/policy.json``; defaults if neither
        exists. Raises PolicyError for a file that is named but missing, unreadable, or has unknown keys:
        a typo in a security policy must not silently weaken it."""
        named = os.environ.get(POLICY_ENV)
        path = Path(named) if named else root / POLICY_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if named:
                raise PolicyError(
                    f"The IT policy file {path} named by {POLICY_ENV} does not exist; "
                    "ask IT to fix the setting or the file."
                ) from None
            return cls()
        except OSError as exc:
            raise PolicyError(f"The IT policy file {path} cannot be read; ask IT to fix its permissions.") from exc
        return cls._parse(text, path)

    @classmethod
    def _parse(cls, text: str, path: Path) -> KeyPolicy:
        invalid = f"The IT policy file {path} is not valid; ask IT to correct it."
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PolicyError(invalid) from exc
        if not isinstance(data, dict):
            raise PolicyError(invalid)
        known = {
            "require_os_keyring",
            "kdf",
            "pso_server",
            "proxy_from_environment",
            "sync",
            "allowed_keyring_backends",
            "idle_lock_minutes",
            "clipboard_clear_seconds",
            "sealed_outbox",
            "facility_reports",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(
                f"The IT policy file {path} has unknown settings ({', '.join(unknown)}); ask IT to correct it."
            )
        require = data.get("require_os_keyring", False)
        proxy_from_environment = data.get("proxy_from_environment", False)
        if not isinstance(require, bool) or not isinstance(proxy_from_environment, bool):
            raise PolicyError(invalid)
        kdf: KdfParams | None = None
        if "kdf" in data:
            kdf_data = data["kdf"]
            if not isinstance(kdf_data, dict) or set(kdf_data) - {"memory_kib", "time_cost", "parallelism"}:
                raise PolicyError(invalid)
            try:
                kdf = KdfParams(
                    memory_kib=kdf_data.get("memory_kib", PRODUCTION_KDF.memory_kib),
                    time_cost=kdf_data.get("time_cost", PRODUCTION_KDF.time_cost),
                    parallelism=kdf_data.get("parallelism", PRODUCTION_KDF.parallelism),
                )
            except ValueError as exc:
                raise PolicyError(invalid) from exc
            if not kdf.at_least(POLICY_MIN_KDF):
                raise PolicyError(
                    f"The IT policy file {path} sets a key derivation cost below 19 MiB and 2 passes; "
                    "ask IT to raise it."
                )
        sync = _sync_settings(data.get("sync"), path)
        return cls(
            allow_file_fallback=not require,
            kdf=kdf,
            server=_server_policy(data.get("pso_server"), path),
            proxy_from_environment=proxy_from_environment,
            sync_max_wait_seconds=sync.get("max_wait_seconds"),
            sync_send_interval_seconds=sync.get("send_interval_seconds"),
            sync_status_interval_seconds=sync.get("status_interval_seconds"),
            sync_probe_seconds=sync.get("probe_seconds"),
            sync_probe_max_seconds=sync.get("probe_max_seconds"),
            facility_keep_closed_days=_keep_closed_days(data.get("facility_reports"), path),
            allowed_keyring_backends=_allowed_backends(data.get("allowed_keyring_backends"), path),
            idle_lock_minutes=_idle_lock_minutes(data.get("idle_lock_minutes"), path),
            clipboard_clear_seconds=_clipboard_clear_seconds(data.get("clipboard_clear_seconds"), path),
            sealed_outbox=_sealed_outbox(data.get("sealed_outbox"), path),
        )


@dataclass(frozen=True)
class _ProfileRecord:
    """The non-secret ``profile.json``: where the wrapped key lives and which version is current."""

    name: str
    profile_id: str
    created: float
    storage_mode: str
    keyring_backend: str | None
    keyring_username: str | None
    key_version: int

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": _RECORD_FORMAT_VERSION,
            "name": self.name,
            "profile_id": self.profile_id,
            "created": self.created,
            "storage_mode": self.storage_mode,
            "keyring_service": KEYRING_SERVICE if self.storage_mode == STORAGE_OS_KEYRING else None,
            "keyring_backend": self.keyring_backend,
            "keyring_username": self.keyring_username,
            "key_version": self.key_version,
        }

    @classmethod
    def from_json(cls, data: Any, name: str) -> _ProfileRecord:
        if not isinstance(data, dict) or data.get("format_version") != _RECORD_FORMAT_VERSION:
            raise ValueError("unknown profile record format")
        record = cls(
            name=data["name"],
            profile_id=data["profile_id"],
            created=float(data["created"]),
            storage_mode=data["storage_mode"],
            keyring_backend=data.get("keyring_backend"),
            keyring_username=data.get("keyring_username"),
            key_version=data["key_version"],
        )
        if record.name != name or not isinstance(record.key_version, int) or record.key_version < 1:
            raise ValueError("profile record does not match its folder")
        if record.storage_mode == STORAGE_OS_KEYRING:
            if not isinstance(record.keyring_backend, str) or not isinstance(record.keyring_username, str):
                raise ValueError("keyring location missing")
        elif record.storage_mode != STORAGE_PASSWORD_FILE:
            raise ValueError("unknown storage mode")
        return record


class ProfileKeys:
    """Creates profiles and hands out their data keys. One instance per process is enough; it holds no key."""

    def __init__(
        self,
        root: Path,
        *,
        backend: KeyringBackend | None = None,
        policy: KeyPolicy | None = None,
        kdf: KdfParams | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``root`` is the PSO_DESKTOP_HOME folder; ``backend`` defaults to keyring's choice for this
        session; ``policy`` to ``KeyPolicy.load(root)``; ``kdf`` (cost for new wrappings) to the policy's
        or the production default."""
        self._root = root
        self._policy = policy if policy is not None else KeyPolicy.load(root)
        self._backend = backend if backend is not None else system_backend()
        self._verdict: BackendVerdict = classify_backend(self._backend, self._policy.allowed_keyring_backends)
        if self._verdict.effective is not None:
            persist_locally(self._verdict.effective)  # Windows: this machine only, never roaming
        self._kdf = kdf if kdf is not None else (self._policy.kdf or PRODUCTION_KDF)
        self._clock = clock
        if not self._verdict.secure:
            _log.warning("no secure keyring: %s", self._verdict.reason)

    # -- queries -------------------------------------------------------------------------------------------

    @property
    def policy(self) -> KeyPolicy:
        return self._policy

    @property
    def warning(self) -> str | None:
        """A plain sentence when new keys go to the password-protected file fallback, else None."""
        if self._verdict.secure or not self._policy.allow_file_fallback:
            return None
        reason = self._verdict.reason
        # The reason once: "no system keyring is available" would only repeat the sentence's own first words.
        why = "" if reason.startswith("no system keyring") else f" ({reason})"
        return (
            f"No secure system keyring is available{why}, so profile keys are kept in "
            "password-protected files in the profile folders; ask IT to enable the system keyring."
        )

    def exists(self, name: str) -> bool:
        """True when a profile of this name has been created under this root."""
        if not paths.valid_profile_name(name):
            return False
        return (paths.profile_dir(name, self._root) / PROFILE_FILE).is_file()

    def list_profiles(self) -> list[str]:
        """The names of all profiles under this root, sorted."""
        return paths.profile_names(self._root)

    def database_path(self, name: str) -> Path:
        """Where the profile's SQLCipher database lives; the storage layer creates it."""
        return self._folder(name) / DATABASE_FILE

    def storage_mode(self, name: str) -> str:
        """``"os_keyring"`` or ``"password_file"``: where this profile's wrapped key is kept."""
        return self._load_record(name).storage_mode

    # -- operations ----------------------------------------------------------------------------------------

    def create(self, name: str, secret: str) -> bytes:
        """Creates profile ``name`` with a new random data key protected by ``secret`` and returns the key.

        Raises ProfileExistsError if the name is taken (nothing is overwritten), WeakSecretError,
        InsecureKeyringError (no secure keyring and policy forbids the fallback) or KeyringUnavailableError.
        """
        folder = self._folder(name)
        _check_new_secret(secret)
        profile_id = uuid.uuid4().hex
        record = self._record_for_new_profile(name, profile_id)
        try:
            ensure_private_dir(folder.parent)  # profiles/ too: folder names are clinicians' chosen names
            ensure_private_dir(folder)
        except OSError as exc:
            raise _folder_error(folder, exc) from None
        if any((folder / item).exists() for item in (PROFILE_FILE, KEY_FILE, DATABASE_FILE)):
            raise ProfileExistsError(
                f"A profile named '{name}' already exists; choose another name or unlock that profile."
            )
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        wrapped = wrap_key(data_key, secret, profile=name, key_version=1, kdf=self._kdf)
        try:
            self._key_store(record).create(wrapped.to_json())
        except FileExistsError:
            raise ProfileExistsError(
                f"A profile named '{name}' already exists; choose another name or unlock that profile."
            ) from None
        except OSError as exc:
            raise _folder_error(folder, exc) from None
        try:
            write_private_json(folder / PROFILE_FILE, record.to_json(), exclusive=True)
        except FileExistsError:
            # Another process created the same profile at the same moment and won: remove only our own key.
            self._discard_key_material(record)
            raise ProfileExistsError(
                f"A profile named '{name}' already exists; choose another name or unlock that profile."
            ) from None
        except OSError as exc:
            self._discard_key_material(record)  # no half-made profile: the name stays free for a retry
            raise _folder_error(folder, exc) from None
        _log.info("created profile %s (key storage: %s)", name, record.storage_mode)
        return data_key

    def unlock(self, name: str, secret: str) -> bytes:
        """Returns the profile's 32-byte data key.

        Raises WeakSecretError (empty secret), ProfileNotFoundError, TooManyAttemptsError, WrongSecretError,
        KeyEntryMissingError, KeyringUnavailableError, BackendChangedError, InsecureKeyringError or
        CorruptKeyDataError. Never creates a key and never touches the database file.
        """
        folder = self._folder(name)
        if not secret:
            raise WeakSecretError(f"Enter the password for profile '{name}'.")
        record = self._load_record(name)
        throttle = UnlockThrottle(folder / ATTEMPTS_FILE, name, self._clock)
        throttle.check()
        wrapped = self._load_wrapped(record)
        try:
            data_key = unwrap_key(wrapped, secret, profile=name)
        except WrongSecretError:
            throttle.record_failure()
            raise
        throttle.reset()
        self._after_unlock(record, wrapped, data_key, secret)
        self._key_store(record).settle()
        return data_key

    def change_secret(self, name: str, old: str, new: str) -> None:
        """Re-wraps the profile's data key (unchanged, so the database needs no re-keying) under ``new``.

        A wrong ``old`` counts as a failed unlock. After this, entries wrapped under ``old`` are refused
        even if restored from a backup, because the key version moves on.
        """
        _check_new_secret(new)
        data_key = self.unlock(name, old)
        record = self._load_record(name)  # unlock may have moved the key or raised its version
        # Never lower the cost below what the key was wrapped with, e.g. by an instance with test parameters.
        stored_kdf = self._load_wrapped(record).kdf
        wrapped = wrap_key(
            data_key, new, profile=name, key_version=record.key_version + 1, kdf=self._kdf.stronger_of(stored_kdf)
        )
        self._store_wrapped(record, wrapped)
        self._save_record(replace(record, key_version=wrapped.key_version))
        _log.info("changed the password of profile %s", name)

    def credential_store(self, name: str, kind: str, stored_in: str | None = None) -> KeyStore:
        """Where profile ``name``'s device credential lives (``kind``: ``keyring`` or ``file``, as its agent
        file says): the OS keyring entry, or ``device-credential`` (0600) in the profile folder. No secret is
        needed to read it: the credential can only upload sealed envelopes (docs/sealed-outbox.md)."""
        record = self._load_record(name)
        subject = f"the device credential of profile '{name}'"
        if kind == "keyring":
            return KeyringEntry(
                self._backend,
                self._verdict,
                service=CREDENTIAL_SERVICE,
                username=f"{name}/{record.profile_id}",
                stored_in=stored_in or self.credential_backend() or "",
                subject=subject,
            )
        return KeyFile(self._folder(name) / CREDENTIAL_FILE, subject, allowed=True)

    def credential_backend(self) -> str | None:
        """The keyring backend (``module.Class``) a new keyring credential is written to, if any."""
        return backend_name(self._verdict.effective) if self._verdict.effective is not None else None

    def credential_kind(self) -> str:
        """Where a new device credential goes: the OS keyring when a secure one is here (and IT policy does not
        say ``file``), else the private file."""
        if self._verdict.secure and self._policy.sealed_outbox.credential_store != "file":
            return "keyring"
        return "file"

    # -- internals -----------------------------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        try:
            return paths.profile_dir(name, self._root)
        except ValueError:
            raise InvalidProfileNameError(
                "Profile names use 1-64 letters, digits, '.', '-' or '_' and start with a letter or digit; "
                "choose a name like that."
            ) from None

    def _record_for_new_profile(self, name: str, profile_id: str) -> _ProfileRecord:
        """The record of a new profile: its key goes to the secure keyring, else to the file fallback if policy
        allows it."""
        if self._verdict.secure:
            # A random id in the entry name keeps profiles of the same name under different roots apart.
            backend = backend_name(self._secure_backend())
            return _ProfileRecord(
                name, profile_id, self._clock(), STORAGE_OS_KEYRING, backend, f"{name}/{profile_id}", 1
            )
        if self._policy.allow_file_fallback:
            return _ProfileRecord(name, profile_id, self._clock(), STORAGE_PASSWORD_FILE, None, None, 1)
        raise InsecureKeyringError(
            f"No secure system keyring is available ({self._verdict.reason}) and IT policy requires one; "
            "ask IT to enable the system keyring on this workstation."
        )

    def _secure_backend(self) -> KeyringBackend:
        effective = self._verdict.effective
        assert effective is not None, "only called when the verdict is secure"
        return effective

    def _load_record(self, name: str) -> _ProfileRecord:
        path = self._folder(name) / PROFILE_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileNotFoundError(
                f"There is no profile named '{name}'; check the name or create the profile first."
            ) from None
        except OSError as exc:
            raise CorruptKeyDataError(
                f"The settings of profile '{name}' cannot be read; ask IT to check the profile folder."
            ) from exc
        try:
            return _ProfileRecord.from_json(json.loads(text), name)
        except (ValueError, TypeError, KeyError) as exc:
            raise CorruptKeyDataError(
                f"The settings of profile '{name}' are damaged; restore them from a backup or ask IT for help."
            ) from exc

    def _save_record(self, record: _ProfileRecord) -> None:
        write_private_json(self._folder(record.name) / PROFILE_FILE, record.to_json())

    def _load_wrapped(self, record: _ProfileRecord) -> WrappedKey:
        text = self._read_wrapped_text(record)
        wrapped = WrappedKey.from_json(text, profile=record.name)
        if wrapped.key_version < record.key_version:
            # An older entry was put back (a backup, or a colleague who knew the old password).
            raise KeyEntryMissingError(
                f"The stored key of profile '{record.name}' is older than the profile's last password change; "
                "restore the current key from a backup or ask IT for help."
            )
        return wrapped

    def _key_store(self, record: _ProfileRecord) -> KeyStore:
        """Where the record says the profile's wrapped key lives: the one place that asks which kind it is."""
        subject = f"profile '{record.name}'"
        if record.storage_mode == STORAGE_OS_KEYRING:
            assert record.keyring_backend is not None and record.keyring_username is not None  # checked at parse
            return KeyringEntry(
                self._backend,
                self._verdict,
                service=KEYRING_SERVICE,
                username=record.keyring_username,
                stored_in=record.keyring_backend,
                subject=subject,
            )
        allowed = self._verdict.secure or self._policy.allow_file_fallback
        return KeyFile(self._folder(record.name) / KEY_FILE, subject, allowed=allowed)

    def _read_wrapped_text(self, record: _ProfileRecord) -> str:
        return self._key_store(record).read()

    def _store_wrapped(self, record: _ProfileRecord, wrapped: WrappedKey) -> None:
        """Replaces the stored wrapped key of an existing profile where its record says it lives."""
        self._key_store(record).replace(wrapped.to_json())

    def _discard_key_material(self, record: _ProfileRecord) -> None:
        """Best-effort removal of the key material a losing create wrote; never raises. Only our own
        material is removed: a keyring entry under our random id, or a key file we created exclusively."""
        try:
            self._key_store(record).discard()
        except Exception as exc:
            _log.warning("could not remove an unused keyring entry: %s", type(exc).__name__)

    def _moves_to_keyring(self, record: _ProfileRecord) -> bool:
        """A key in the file fallback moves into the OS keyring once a secure one is available."""
        return record.storage_mode == STORAGE_PASSWORD_FILE and self._verdict.secure

    def _after_unlock(self, record: _ProfileRecord, wrapped: WrappedKey, data_key: bytes, secret: str) -> None:
        """Housekeeping after a successful unlock; failures are logged and never fail the unlock.

        - an entry newer than the record (a password change interrupted before the record was saved) rolls
          the record forward;
        - a key in the file fallback moves into the OS keyring once a secure one is available;
        - a key wrapped with weaker KDF parameters than configured is re-wrapped with the configured ones.
        """
        try:
            if wrapped.key_version > record.key_version:
                record = replace(record, key_version=wrapped.key_version)
                self._save_record(record)
            if not wrapped.kdf.at_least(self._kdf):
                wrapped = wrap_key(
                    data_key,
                    secret,
                    profile=record.name,
                    key_version=record.key_version + 1,
                    kdf=self._kdf.stronger_of(wrapped.kdf),
                )
                if self._moves_to_keyring(record):
                    self._migrate_to_keyring(record, wrapped)
                else:
                    self._store_wrapped(record, wrapped)
                    self._save_record(replace(record, key_version=wrapped.key_version))
                _log.info("raised the key derivation cost of profile %s", record.name)
            elif self._moves_to_keyring(record):
                self._migrate_to_keyring(record, wrapped)
        except (OSError, KeyringUnavailableError) as exc:
            _log.warning("key housekeeping for profile %s postponed: %s", record.name, type(exc).__name__)

    def _migrate_to_keyring(self, record: _ProfileRecord, wrapped: WrappedKey) -> None:
        """Moves a fallback key file into the secure keyring: entry first, then record, then the file."""
        moved = replace(
            record,
            storage_mode=STORAGE_OS_KEYRING,
            keyring_backend=backend_name(self._secure_backend()),
            keyring_username=f"{record.name}/{record.profile_id}",
            key_version=wrapped.key_version,
        )
        self._key_store(moved).replace(wrapped.to_json())
        self._save_record(moved)
        self._key_store(record).discard()
        _log.info("moved the key of profile %s into the system keyring", record.name)


def _folder_error(folder: Path, exc: OSError) -> ProfileFolderError:
    reason = exc.strerror or type(exc).__name__
    return ProfileFolderError(
        f"The profile folder {folder} cannot be written ({reason}); "
        "ask IT to check the data folder's permissions and free space."
    )


def _check_new_secret(secret: str) -> None:
    if not secret:
        raise WeakSecretError("Enter a password for the profile; it must not be empty.")
    if len(secret) < MIN_SECRET_LENGTH:
        raise WeakSecretError(f"Choose a password of at least {MIN_SECRET_LENGTH} characters.")
