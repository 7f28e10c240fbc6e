"""The wrapped data key: AES-256-GCM under a key derived from the clinician's secret.

The stored form is a small JSON document (kept in the OS keyring, or in the fallback key file) holding the
argon2id parameters and salt, the nonce and the ciphertext. The associated data binds the ciphertext to the
profile name and key version, so an entry copied under another profile, or an older entry restored over a
newer one, does not decrypt as if it belonged there.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pso_desktop.security.errors import CorruptKeyDataError, WrongSecretError
from pso_desktop.security.kdf import SALT_BYTES, KdfParams, derive_kek

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT = "pso-desktop-wrapped-key"
FORMAT_VERSION = 1
CIPHER = "AES-256-GCM"


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted for one profile and key version. Holds no secret in the clear."""

    profile: str
    key_version: int
    kdf: KdfParams
    salt: bytes
    nonce: bytes
    ciphertext: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "profile": self.profile,
                "key_version": self.key_version,
                "kdf": {**self.kdf.to_json(), "salt": _b64(self.salt)},
                "cipher": CIPHER,
                "nonce": _b64(self.nonce),
                "ciphertext": _b64(self.ciphertext),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, *, profile: str) -> WrappedKey:
        """Parses a stored wrapped key; raises CorruptKeyDataError (naming ``profile``) if it is unusable."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
                raise ValueError("unknown format")
            if data.get("cipher") != CIPHER:
                raise ValueError("unknown cipher")
            key_version = data.get("key_version")
            if not isinstance(key_version, int) or isinstance(key_version, bool) or key_version < 1:
                raise ValueError("bad key version")
            claimed_profile = data.get("profile")
            if not isinstance(claimed_profile, str):
                raise ValueError("bad profile")
            kdf_data = data.get("kdf")
            if not isinstance(kdf_data, dict):
                raise ValueError("bad KDF parameters")
            wrapped = cls(
                profile=claimed_profile,
                key_version=key_version,
                kdf=KdfParams.from_json(kdf_data),
                salt=_unb64(kdf_data["salt"]),
                nonce=_unb64(data.get("nonce")),
                ciphertext=_unb64(data.get("ciphertext")),
            )
        except (ValueError, TypeError, KeyError) as exc:
            # json.JSONDecodeError and binascii.Error are ValueErrors; none of them carry key material.
            raise CorruptKeyDataError(
                f"The stored key of profile '{profile}' is damaged; restore it from a backup or ask IT for help."
            ) from exc
        if len(wrapped.salt) < SALT_BYTES or len(wrapped.nonce) != NONCE_BYTES:
            raise CorruptKeyDataError(
                f"The stored key of profile '{profile}' is damaged; restore it from a backup or ask IT for help."
            )
        return wrapped


def associated_data(profile: str, key_version: int) -> bytes:
    """What the ciphertext is bound to: the format, the profile name and the key version."""
    return f"{FORMAT}/{FORMAT_VERSION}\x00{profile}\x00{key_version}".encode()


def wrap_key(data_key: bytes, secret: str, *, profile: str, key_version: int, kdf: KdfParams) -> WrappedKey:
    """Encrypts ``data_key`` under a key derived from ``secret`` with a fresh salt and nonce."""
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError("a data key must be 32 bytes")
    salt = secrets.token_bytes(SALT_BYTES)
    nonce = secrets.token_bytes(NONCE_BYTES)
    kek = derive_kek(secret, salt, kdf)
    ciphertext = AESGCM(kek).encrypt(nonce, data_key, associated_data(profile, key_version))
    return WrappedKey(profile, key_version, kdf, salt, nonce, ciphertext)


def unwrap_key(wrapped: WrappedKey, secret: str, *, profile: str) -> bytes:
    """Decrypts the data key for ``profile`` (the name the caller expects, not the one the record claims).

    Raises WrongSecretError when the secret is wrong or the record belongs to another profile or key
    version; both look the same to AES-GCM, and neither reveals anything about the key.
    """
    kek = derive_kek(secret, wrapped.salt, wrapped.kdf)
    try:
        data_key = AESGCM(kek).decrypt(
            wrapped.nonce, wrapped.ciphertext, associated_data(profile, wrapped.key_version)
        )
    except InvalidTag:
        raise WrongSecretError(f"The password for profile '{profile}' is wrong; check it and try again.") from None
    if len(data_key) != DATA_KEY_BYTES:
        raise CorruptKeyDataError(
            f"The stored key of profile '{profile}' is damaged; restore it from a backup or ask IT for help."
        )
    return data_key


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError("bad base64") from exc
