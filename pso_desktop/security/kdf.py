"""Deriving a key-encryption key from a clinician's secret with argon2id (RFC 9106).

The parameters travel with every wrapped key, so they can be raised later without breaking old profiles:
unlocking always uses the stored parameters, and a stronger configuration re-wraps the key after a
successful unlock.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw

KEK_BYTES = 32
SALT_BYTES = 16

# Upper bounds for parameters read from storage: a damaged or hostile record must not make an unlock
# allocate gigabytes or run for minutes before it fails.
MAX_MEMORY_KIB = 4 * 1024 * 1024
MAX_TIME_COST = 64
MAX_PARALLELISM = 16


@dataclass(frozen=True)
class KdfParams:
    """argon2id cost parameters. The defaults are RFC 9106's second recommendation (64 MiB, t=3, p=4)."""

    memory_kib: int = 64 * 1024
    time_cost: int = 3
    parallelism: int = 4

    def __post_init__(self) -> None:
        for field_name in ("memory_kib", "time_cost", "parallelism"):
            value = getattr(self, field_name)
            # bool is an int subclass; a JSON `true` must not pass as a cost of 1.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"argon2id {field_name} must be a whole number")
        if not 1 <= self.parallelism <= MAX_PARALLELISM:
            raise ValueError(f"argon2id parallelism must be between 1 and {MAX_PARALLELISM}")
        if not 1 <= self.time_cost <= MAX_TIME_COST:
            raise ValueError(f"argon2id time cost must be between 1 and {MAX_TIME_COST}")
        if not 8 * self.parallelism <= self.memory_kib <= MAX_MEMORY_KIB:
            raise ValueError(
                f"argon2id memory must be between {8 * self.parallelism} KiB and {MAX_MEMORY_KIB} KiB"
            )

    def at_least(self, other: KdfParams) -> bool:
        """True when these parameters cost at least as much memory and time as ``other``."""
        return self.memory_kib >= other.memory_kib and self.time_cost >= other.time_cost

    def stronger_of(self, other: KdfParams) -> KdfParams:
        """The larger memory and time cost of the two; parallelism from ``self`` (it is a speed knob)."""
        return KdfParams(
            memory_kib=max(self.memory_kib, other.memory_kib),
            time_cost=max(self.time_cost, other.time_cost),
            parallelism=self.parallelism,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "algorithm": "argon2id",
            "version": ARGON2_VERSION,
            "memory_kib": self.memory_kib,
            "time_cost": self.time_cost,
            "parallelism": self.parallelism,
        }

    @classmethod
    def from_json(cls, data: Any) -> KdfParams:
        """Parses stored parameters; raises ValueError (or KeyError for a missing field) for anything other
        than argon2id within bounds."""
        if not isinstance(data, dict):
            raise ValueError("KDF parameters must be a JSON object")
        if data.get("algorithm") != "argon2id" or data.get("version") != ARGON2_VERSION:
            raise ValueError("only argon2id version 19 is supported")
        return cls(
            # Types and ranges are checked in __post_init__.
            memory_kib=data["memory_kib"],
            time_cost=data["time_cost"],
            parallelism=data["parallelism"],
        )


PRODUCTION_KDF = KdfParams()


def encode_secret(secret: str) -> bytes:
    """The bytes a secret stands for: NFC-normalised UTF-8, so the same password typed through different
    input methods (composed or decomposed accents) derives the same key."""
    return unicodedata.normalize("NFC", secret).encode("utf-8")


def derive_kek(secret: str, salt: bytes, params: KdfParams) -> bytes:
    """Derives the 32-byte key-encryption key for ``secret`` and ``salt``; CPU and memory bound (run it
    off the GUI thread)."""
    return hash_secret_raw(
        secret=encode_secret(secret),
        salt=salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEK_BYTES,
        type=Type.ID,
        version=ARGON2_VERSION,
    )
