"""Which keyring backends may hold a wrapped data key."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from pso_desktop.security import classify_backend
from pso_desktop.security.keyring_guard import KNOWN_BACKENDS, backend_name
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


def test_memory_keyring_counts_as_secure_because_the_test_suite_admits_it() -> None:
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


# -- issue 9, item 6: an allow-list of known keychains ------------------------------------------------------


class _CustomKeyring(KeyringBackend):
    """A backend nobody vetted, reporting a high priority (the audit's world-readable file keyring)."""

    priority = 20

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("must never be written to")

    def delete_password(self, service: str, username: str) -> None:
        return None


class _Impostor(_CustomKeyring):
    pass


_Impostor.__module__ = "keyring.backends.SecretService"
_Impostor.__qualname__ = _Impostor.__name__ = "Keyring"

_unregister_for_tests: set[type] = getattr(KeyringBackend, "_classes", set())
_unregister_for_tests.discard(_CustomKeyring)
_unregister_for_tests.discard(_Impostor)
CUSTOM = f"{__name__}._CustomKeyring"


def test_an_unknown_backend_is_not_secure_whatever_its_priority() -> None:
    verdict = classify_backend(_CustomKeyring())
    assert not verdict.secure and verdict.effective is None
    assert "not a known system keychain and IT policy does not name it" in verdict.reason


def test_a_backend_policy_names_is_secure() -> None:
    backend = _CustomKeyring()
    verdict = classify_backend(backend, [CUSTOM])
    assert verdict.secure and verdict.effective is backend


def test_a_class_claiming_a_known_name_is_refused_even_if_policy_names_that_name() -> None:

    backend = _Impostor()
    assert backend_name(backend) == "keyring.backends.SecretService.Keyring"
    assert not classify_backend(backend).secure
    assert not classify_backend(backend, ["keyring.backends.SecretService.Keyring"]).secure


def test_a_subclass_of_a_known_keychain_is_refused() -> None:
    from keyring.backends.SecretService import Keyring as SecretService

    class Tweaked(SecretService):
        priority = 20

    getattr(KeyringBackend, "_classes", set()).discard(Tweaked)
    verdict = classify_backend(Tweaked())  # type: ignore[no-untyped-call]
    assert not verdict.secure and "not a known system keychain" in verdict.reason


def test_the_named_refusals_hold_even_when_policy_names_the_class() -> None:
    assert not classify_backend(PlaintextKeyring(), [f"{PlaintextKeyring.__module__}.PlaintextKeyring"]).secure


def test_a_chainer_of_unknown_backends_is_refused_and_the_known_child_is_chosen() -> None:
    assert not classify_backend(chainer_of(_CustomKeyring())).secure
    secure = MemoryKeyring()
    verdict = classify_backend(chainer_of(_CustomKeyring(), secure))
    assert verdict.secure and verdict.effective is secure


def test_no_production_code_admits_a_test_keyring() -> None:
    root = Path(__file__).resolve().parents[2] / "pso_desktop"
    callers = [
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if "admit_for_tests(" in path.read_text(encoding="utf-8")
    ]
    assert callers == ["security/keyring_guard.py"]  # its definition only


def test_the_known_keychains_resolve_to_keyrings_own_classes() -> None:
    import importlib

    for name in KNOWN_BACKENDS:
        module_name, _, class_name = name.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        assert issubclass(cls, KeyringBackend), name
