"""The wrapped-key format: argon2id parameters, AES-GCM and what the ciphertext is bound to."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from pso_desktop.security import PRODUCTION_KDF, CorruptKeyDataError, KdfParams, WrongSecretError
from pso_desktop.security.envelope import WrappedKey, unwrap_key, wrap_key
from tests.support.kdf import CHEAP_KDF
from tests.support.profile_keys import SECRET_A, SECRET_B


def test_round_trip_returns_the_same_key() -> None:
    key = secrets.token_bytes(32)
    wrapped = wrap_key(key, SECRET_A, profile="ward3", key_version=1, kdf=CHEAP_KDF)
    restored = WrappedKey.from_json(wrapped.to_json(), profile="ward3")
    assert unwrap_key(restored, SECRET_A, profile="ward3") == key


def test_stored_form_holds_parameters_but_no_key_or_secret() -> None:
    key = secrets.token_bytes(32)
    text = wrap_key(key, SECRET_A, profile="ward3", key_version=4, kdf=CHEAP_KDF).to_json()
    data = json.loads(text)
    assert data["kdf"]["algorithm"] == "argon2id"
    assert (data["kdf"]["memory_kib"], data["kdf"]["time_cost"], data["kdf"]["parallelism"]) == (256, 1, 1)
    assert data["key_version"] == 4 and data["cipher"] == "AES-256-GCM"
    assert key.hex() not in text and SECRET_A not in text


def test_each_wrap_uses_fresh_salt_and_nonce() -> None:
    key = secrets.token_bytes(32)
    first = wrap_key(key, SECRET_A, profile="p", key_version=1, kdf=CHEAP_KDF)
    second = wrap_key(key, SECRET_A, profile="p", key_version=1, kdf=CHEAP_KDF)
    assert first.salt != second.salt and first.nonce != second.nonce and first.ciphertext != second.ciphertext


def test_wrong_secret_is_refused_without_revealing_anything() -> None:
    wrapped = wrap_key(secrets.token_bytes(32), SECRET_A, profile="ward3", key_version=1, kdf=CHEAP_KDF)
    with pytest.raises(WrongSecretError) as caught:
        unwrap_key(wrapped, SECRET_B, profile="ward3")
    assert SECRET_A not in str(caught.value) and SECRET_B not in str(caught.value)
    assert "ward3" in str(caught.value)


def test_entry_is_bound_to_profile_name_and_key_version() -> None:
    key = secrets.token_bytes(32)
    wrapped = wrap_key(key, SECRET_A, profile="alice", key_version=2, kdf=CHEAP_KDF)
    # The right secret, but the entry is presented for another profile: refused.
    with pytest.raises(WrongSecretError):
        unwrap_key(wrapped, SECRET_A, profile="bob")
    # The same entry with its version number edited: refused too.
    data = json.loads(wrapped.to_json())
    data["key_version"] = 3
    with pytest.raises(WrongSecretError):
        unwrap_key(WrappedKey.from_json(json.dumps(data), profile="alice"), SECRET_A, profile="alice")


def test_stored_kdf_parameters_are_the_ones_used() -> None:
    key = secrets.token_bytes(32)
    wrapped = wrap_key(key, SECRET_A, profile="p", key_version=1, kdf=KdfParams(512, 2, 1))
    data = json.loads(wrapped.to_json())
    data["kdf"]["time_cost"] = 1  # an attacker "downgrading" the cost only derives a different key
    with pytest.raises(WrongSecretError):
        unwrap_key(WrappedKey.from_json(json.dumps(data), profile="p"), SECRET_A, profile="p")


def test_composed_and_decomposed_accents_are_the_same_secret() -> None:
    key = secrets.token_bytes(32)
    wrapped = wrap_key(key, "Ren\u00e9e-secret", profile="p", key_version=1, kdf=CHEAP_KDF)
    assert unwrap_key(wrapped, "Rene\u0301e-secret", profile="p") == key


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(format="something-else"),
        lambda d: d.update(cipher="AES-128-CBC"),
        lambda d: d.update(nonce="not base64!"),
        lambda d: d.update(key_version=0),
        lambda d: d.update(key_version=True),
        lambda d: d["kdf"].update(algorithm="scrypt"),
        lambda d: d["kdf"].update(memory_kib=64 * 1024 * 1024),  # 64 GiB: refused before any allocation
        lambda d: d["kdf"].update(time_cost=10_000),
        lambda d: d["kdf"].pop("salt"),
        lambda d: d.pop("ciphertext"),
    ],
)
def test_damaged_entries_are_reported_as_damaged(edit) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(
        wrap_key(secrets.token_bytes(32), SECRET_A, profile="p", key_version=1, kdf=CHEAP_KDF).to_json()
    )
    edit(data)
    with pytest.raises(CorruptKeyDataError, match="damaged"):
        WrappedKey.from_json(json.dumps(data), profile="p")


def test_not_json_is_damaged() -> None:
    with pytest.raises(CorruptKeyDataError):
        WrappedKey.from_json("hunter2", profile="p")


@pytest.mark.parametrize(
    ("memory", "time_cost", "parallelism"), [(7, 1, 1), (256, 0, 1), (256, 1, 0), (256, 1, 17), (64, 1, 16)]
)
def test_kdf_parameters_outside_argon2_bounds_are_rejected(memory: int, time_cost: int, parallelism: int) -> None:
    with pytest.raises(ValueError, match="argon2id"):
        KdfParams(memory, time_cost, parallelism)


def test_production_defaults_are_rfc9106_and_fast_enough_here() -> None:
    assert (PRODUCTION_KDF.memory_kib, PRODUCTION_KDF.time_cost, PRODUCTION_KDF.parallelism) == (65536, 3, 4)
    key = secrets.token_bytes(32)
    started = time.perf_counter()
    wrapped = wrap_key(key, SECRET_A, profile="p", key_version=1, kdf=PRODUCTION_KDF)
    elapsed = time.perf_counter() - started
    assert unwrap_key(wrapped, SECRET_A, profile="p") == key
    assert elapsed < 1.0, f"one production key derivation took {elapsed:.2f} s"


def test_stronger_of_never_lowers_a_cost() -> None:
    merged = KdfParams(1024, 1, 2).stronger_of(KdfParams(512, 3, 1))
    assert (merged.memory_kib, merged.time_cost, merged.parallelism) == (1024, 3, 2)
    assert merged.at_least(KdfParams(1024, 3, 4)) and not KdfParams(512, 3, 1).at_least(merged)
