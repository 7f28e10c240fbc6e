"""The PSO's sealing keys: HPKE key pairs that workstations seal reports for (the sealed outbox, issue 7).

The wire and disk contract is docs/sealed-outbox.md; this module is the server's half of its cryptography:

- HPKE (RFC 9180) base mode from ``cryptography``: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM,
  single-shot (``enc || ciphertext``); ``info`` names the key id, so an envelope cannot be opened as if it were
  sealed for another key.
- Key pairs live in the server's database (``sealing_keys``), so every server on one PostgreSQL shares them.
  The private key is stored wrapped with AES-256-GCM by the **wrapping key**, 32 random bytes in a file of the
  server's configuration (``--wrapping-key``, default ``$PSO_SERVER_HOME/sealing-wrapping.key``), never in the
  database: a copy of the database alone opens no envelope.
- The wrapping key file is created (mode 0600) only while the database holds no sealing key; once it does, a
  server without the right file refuses to start with one sentence saying which file to copy.
- Rotation makes a new current key; old private keys stay, so envelopes sealed before a rotation still open.

The client has its own copy of the suite, ``info`` and key id rules (pso_desktop never imports pso_server).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from pso_server import store
from pso_server.errors import ServerError
from pso_server.store import Database, serialise

SUITE_NAME: Final = "X25519-HKDF-SHA256-AES-256-GCM"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
INFO_PREFIX = b"pso-desktop sealed report v1|"
WRAPPING_KEY_FILE = "sealing-wrapping.key"
SEALED_UPLOAD_PATH = "/api/v1/sealed/batch"  # the one path a device credential opens
_WRAP_AAD = b"pso-server sealing key v1|"


def key_id_of(public_raw: bytes) -> str:
    """``sk-`` and the first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    return "sk-" + hashlib.sha256(public_raw).hexdigest()[:16]


def info_for(key_id: str) -> bytes:
    """HPKE ``info`` of an envelope sealed for ``key_id``."""
    return INFO_PREFIX + key_id.encode("utf-8")


def seal(plaintext: bytes, public_raw: bytes) -> bytes:
    """What a client does (for tests and benchmarks): ``enc || ciphertext`` for the key with this public key."""
    public = X25519PublicKey.from_public_bytes(public_raw)
    return SUITE.encrypt(plaintext, public, info=info_for(key_id_of(public_raw)))


class SealingKeyUnavailable(ServerError):
    """The wrapping key is missing, unreadable, too widely readable or not the one the database's keys need."""


class WrappingKey:
    """The AES-256-GCM key that wraps the private sealing keys stored in the database."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a wrapping key has 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def generate(cls) -> WrappingKey:
        return cls(os.urandom(32))

    def wrap(self, key_id: str, private_raw: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, private_raw, _WRAP_AAD + key_id.encode())

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """The raw private key. Raises InvalidTag when this is not the key that wrapped it (or the row was
        altered, or moved to another key id)."""
        return self._aead.decrypt(wrapped[:12], wrapped[12:], _WRAP_AAD + key_id.encode())


def load_wrapping_key(db: Database, path: Path) -> WrappingKey:
    """The wrapping key in ``path``; created there (mode 0600, atomically) only when the file does not exist and
    the database holds no sealing key yet. Raises SealingKeyUnavailable with the sentence to act on."""
    if not path.exists():
        with db.reader() as tx:
            held = bool(store.sealing_keys(tx))
        if held:
            raise SealingKeyUnavailable(
                f"The sealing keys in this database are wrapped by a key that is not in {path}: copy the wrapping "
                "key file from the server that created them, or name it with --wrapping-key."
            )
        _create_key_file(path)
    return _read_key_file(path)


def _create_key_file(path: Path) -> None:
    """Writes 32 random bytes (base64, one line) to ``path`` unless it exists: through a temporary file and a
    hard link, so a server starting at the same moment reads either nothing or the whole key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        with suppress(FileExistsError):  # another server created it first: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink()


def _read_key_file(path: Path) -> WrappingKey:
    try:
        mode = path.stat().st_mode
        text = path.read_bytes()
    except OSError as exc:
        raise SealingKeyUnavailable(
            f"The wrapping key file {path} cannot be read ({exc.strerror}); check the path and its permissions."
        ) from None
    if os.name == "posix" and mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise SealingKeyUnavailable(
            f"The wrapping key file {path} can be read or changed by other users; make it owner-only "
            f"(chmod 600 {path})."
        )
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SealingKeyUnavailable(
            f"The wrapping key file {path} does not hold a wrapping key (32 bytes in base64 on one line)."
        )
    return WrappingKey(key)


@dataclass(frozen=True)
class SealingKey:
    """The public half of a sealing key pair, as served to clients and listed by ``pso-server``."""

    key_id: str
    public_key: bytes  # raw 32 bytes
    created_at: float
    current: bool


def _public(row: store.SealingKeyRow) -> SealingKey:
    return SealingKey(row.key_id, row.public_key, row.created_at, row.current)


class SealingKeys:
    """The database's sealing keys, opened with one wrapping key. Thread-safe: the unwrapped private keys are
    cached per key id (a key pair never changes once stored), everything else is read from the database, so a
    rotation made by ``pso-server sealing-key rotate`` or another server shows at the next request."""

    def __init__(self, db: Database, wrapping: WrappingKey, clock: Callable[[], float]) -> None:
        self._db = db
        self._wrapping = wrapping
        self._clock = clock
        self._private: dict[str, X25519PrivateKey] = {}
        self._lock = threading.Lock()

    def ensure(self) -> SealingKey:
        """Creates the first key pair when the database has none, checks that the wrapping key opens every
        stored one, and returns the current key. Raises SealingKeyUnavailable."""
        with self._db.transaction() as tx:
            serialise(tx, "sealing_keys")
            if store.current_sealing_key(tx) is None:
                self._add(tx)
            rows = store.sealing_keys(tx)
        for row in rows:
            self._unwrap(row)
        current = next(row for row in rows if row.current)
        return _public(current)

    def rotate(self) -> SealingKey:
        """Makes a new key pair the current one; the old ones stay to open envelopes sealed before."""
        self.ensure()  # never add a key wrapped differently from the ones held
        with self._db.transaction() as tx:
            serialise(tx, "sealing_keys")
            row = self._add(tx)
        return _public(row)

    def current(self) -> SealingKey:
        with self._db.reader() as tx:
            row = store.current_sealing_key(tx)
        if row is None:  # a database emptied under a running server: make one, as at first start
            return self.ensure()
        return _public(row)

    def open(self, key_id: str, sealed: bytes) -> bytes | None:
        """The plaintext of an envelope sealed for ``key_id``, or None when it does not open (unknown key id,
        altered or truncated bytes, sealed for another key or with another ``info``)."""
        private = self._private_key(key_id)
        if private is None:
            return None
        try:
            return SUITE.decrypt(sealed, private, info=info_for(key_id))
        except (InvalidTag, ValueError):
            return None

    def _private_key(self, key_id: str) -> X25519PrivateKey | None:
        with self._lock:
            found = self._private.get(key_id)
        if found is not None:
            return found
        with self._db.reader() as tx:
            row = store.sealing_key(tx, key_id)
        return None if row is None else self._unwrap(row)

    def _unwrap(self, row: store.SealingKeyRow) -> X25519PrivateKey:
        try:
            private = X25519PrivateKey.from_private_bytes(
                self._wrapping.unwrap(row.key_id, row.wrapped_private_key)
            )
        except (InvalidTag, ValueError):
            raise SealingKeyUnavailable(
                f"The wrapping key does not open the sealing key {row.key_id} held in the database: give this "
                "server the wrapping key file of the server that created the keys (--wrapping-key)."
            ) from None
        with self._lock:
            self._private[row.key_id] = private
        return private

    def _add(self, tx: store.Tx) -> store.SealingKeyRow:
        private = X25519PrivateKey.generate()
        public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        private_raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key_id = key_id_of(public_raw)
        now = self._clock()
        store.add_current_sealing_key(tx, key_id, public_raw, self._wrapping.wrap(key_id, private_raw), now)
        return store.SealingKeyRow(key_id, public_raw, b"", now, True)


def open_sealing_keys(db: Database, wrapping_key_file: Path, clock: Callable[[], float]) -> SealingKeys:
    """The wrapping key from its file (created on a first start) and the database's keys, checked and created
    when none exists yet. Raises SealingKeyUnavailable."""
    keys = SealingKeys(db, load_wrapping_key(db, wrapping_key_file), clock)
    keys.ensure()
    return keys
