"""Failed unlocks are rate-limited per profile, across restarts, on a clock the test controls."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pso_desktop.security import TooManyAttemptsError, WrongSecretError
from pso_desktop.security.attempts import delay_after
from tests.support.clock import FakeClock
from tests.support.profile_keys import SECRET_A, SECRET_B, MakeKeys


def _attempts_file(home: Path, name: str) -> Path:
    return home / "profiles" / name / "unlock-attempts.json"


def test_delay_schedule() -> None:
    assert [delay_after(n) for n in range(8)] == [0, 0, 0, 0, 0, 1, 2, 4]
    assert delay_after(13) == 256 and delay_after(14) == 300 and delay_after(10_000) == 300


def test_five_free_tries_then_a_growing_wait_that_survives_a_restart(
    make_keys: MakeKeys, clock: FakeClock, pso_home: Path
) -> None:
    key = make_keys().create("ward3", SECRET_A)
    for _ in range(5):
        with pytest.raises(WrongSecretError):
            make_keys().unlock("ward3", SECRET_B)
    # Even the right password is not tried while the wait runs.
    with pytest.raises(TooManyAttemptsError, match="wait 1 second") as caught:
        make_keys().unlock("ward3", SECRET_A)
    assert caught.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    with pytest.raises(WrongSecretError):
        make_keys().unlock("ward3", SECRET_B)
    clock.advance(0.5)
    with pytest.raises(TooManyAttemptsError) as caught:
        make_keys().unlock("ward3", SECRET_A)  # a new instance: the count lives on disk
    assert caught.value.retry_after == pytest.approx(1.5)
    attempts = _attempts_file(pso_home, "ward3")
    assert stat.S_IMODE(attempts.stat().st_mode) == 0o600
    assert json.loads(attempts.read_text()) == {"failures": 6, "last_failure": clock.now - 0.5}
    clock.advance(1.5)
    assert make_keys().unlock("ward3", SECRET_A) == key
    # Success resets the count: five free tries again.
    assert not attempts.exists()
    for _ in range(5):
        with pytest.raises(WrongSecretError):
            make_keys().unlock("ward3", SECRET_B)
    with pytest.raises(TooManyAttemptsError):
        make_keys().unlock("ward3", SECRET_A)


def test_wait_is_capped_at_five_minutes(make_keys: MakeKeys, clock: FakeClock, pso_home: Path) -> None:
    keys = make_keys()
    keys.create("ward3", SECRET_A)
    _attempts_file(pso_home, "ward3").write_text(json.dumps({"failures": 40, "last_failure": clock.now}))
    with pytest.raises(TooManyAttemptsError, match="wait 300 seconds") as caught:
        keys.unlock("ward3", SECRET_A)
    assert caught.value.retry_after == pytest.approx(300.0)


def test_clock_set_back_does_not_lock_the_profile_for_ever(
    make_keys: MakeKeys, clock: FakeClock, pso_home: Path
) -> None:
    keys = make_keys()
    key = keys.create("ward3", SECRET_A)
    # The last failure is a day "in the future": the wait counts from now instead.
    _attempts_file(pso_home, "ward3").write_text(json.dumps({"failures": 6, "last_failure": clock.now + 86_400}))
    with pytest.raises(TooManyAttemptsError) as caught:
        keys.unlock("ward3", SECRET_A)
    assert caught.value.retry_after == pytest.approx(2.0)
    clock.advance(2.0)
    assert keys.unlock("ward3", SECRET_A) == key


def test_damaged_attempt_record_leaves_no_free_tries(make_keys: MakeKeys, pso_home: Path) -> None:
    keys = make_keys()
    keys.create("ward3", SECRET_A)
    _attempts_file(pso_home, "ward3").write_text("{garbage")
    with pytest.raises(WrongSecretError):
        keys.unlock("ward3", SECRET_B)
    with pytest.raises(TooManyAttemptsError) as caught:
        keys.unlock("ward3", SECRET_A)
    assert caught.value.retry_after == pytest.approx(2.0)


def test_limits_are_per_profile_and_count_password_changes(make_keys: MakeKeys) -> None:
    keys = make_keys()
    keys.create("alice", SECRET_A)
    key_b = keys.create("bob", SECRET_B)
    for _ in range(5):
        with pytest.raises(WrongSecretError):
            keys.change_secret("alice", SECRET_B, "a-new-password")
    with pytest.raises(TooManyAttemptsError):
        keys.unlock("alice", SECRET_A)
    assert keys.unlock("bob", SECRET_B) == key_b
