"""Which keyring backends may hold a wrapped data key."""

from __future__ import annotations

import keyring
import pytest
from keyring.backend import KeyringBackend

from pso_desktop.security import classify_backend
from tests.security.fakes import (
    AltEncryptedKeyring,
    OtherSecureKeyring,
    PlaintextKeyring,
    UnusableKeyring,
    ZeroPriorityKeyring,
    chainer_of,
    fail_keyring,
    null_keyring,
)
from tests.support.memory_keyring import MemoryKeyring


def test_memory_keyring_counts_as_secure() -> None:
    backend = MemoryKeyring()
    verdict = classify_backend(backend)
    assert verdict.secure
    assert verdict.effective is backend
    assert verdict.backend_name == "tests.support.memory_keyring.MemoryKeyring"


@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        (fail_keyring(), "no system keyring"),
        (null_keyring(), "disabled"),
        (PlaintextKeyring(), "plain text"),
        (AltEncryptedKeyring(), "plain file"),
        (ZeroPriorityKeyring(), "unsuitable"),
        (UnusableKeyring(), "not usable (RuntimeError)"),
    ],
    ids=["fail", "null", "plaintext-name", "keyrings.alt-module", "priority-0", "priority-raises"],
)
def test_weak_backends_are_refused_with_a_reason(backend: KeyringBackend, reason: str) -> None:
    verdict = classify_backend(backend)
    assert not verdict.secure
    assert verdict.effective is None
    assert reason in verdict.reason


def test_subclass_of_a_refused_backend_is_refused() -> None:
    class Wrapper(PlaintextKeyring):
        pass

    assert not classify_backend(Wrapper()).secure


def test_chainer_without_a_secure_child_is_refused() -> None:
    verdict = classify_backend(chainer_of(PlaintextKeyring(), ZeroPriorityKeyring()))
    assert not verdict.secure
    assert "no secure backend" in verdict.reason


def test_chainer_resolves_to_its_best_secure_child_not_its_first_child() -> None:
    # A chainer writes to its first child that accepts: here a plaintext one. Keys must go to the secure one.
    secure = OtherSecureKeyring()
    verdict = classify_backend(chainer_of(PlaintextKeyring(), secure, MemoryKeyring()))
    assert verdict.secure
    assert verdict.effective is secure
    assert verdict.backend_name.endswith("ChainerBackend")


def test_real_default_backend_is_classified_without_raising() -> None:
    # Whatever this machine offers (often only 'fail' without a desktop session), classification answers.
    verdict = classify_backend(keyring.get_keyring())
    assert isinstance(verdict.secure, bool) and verdict.reason
