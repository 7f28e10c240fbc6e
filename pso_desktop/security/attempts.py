"""Rate limiting of failed unlocks, per profile, kept across restarts in ``unlock-attempts.json``.

This slows down someone guessing at the workstation's unlock prompt. It is no defence against an attacker
who copies the wrapped key: that is what the memory-hard KDF is for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from pso_desktop.files import write_private_json
from pso_desktop.security.errors import TooManyAttemptsError

FREE_ATTEMPTS = 5
MAX_DELAY_SECONDS = 300.0

_log = logging.getLogger(__name__)


def delay_after(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures: none for the first five, then 1, 2, 4, ...
    seconds, capped at five minutes."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    # Exponent capped so that a huge count cannot overflow before min() applies.
    return min(2.0 ** min(failures - FREE_ATTEMPTS, 32), MAX_DELAY_SECONDS)


class UnlockThrottle:
    """The failed-attempt counter of one profile. Not thread-safe; one unlock at a time per profile."""

    def __init__(self, path: Path, profile: str, clock: Callable[[], float]) -> None:
        self._path = path
        self._profile = profile
        self._clock = clock

    def check(self) -> None:
        """Raises TooManyAttemptsError if the next attempt must wait; checked before any work is done."""
        failures, last_failure = self._load()
        delay = delay_after(failures)
        if delay == 0.0:
            return
        now = self._clock()
        if now < last_failure:
            # The clock went back (or the file came from the future): count the wait from now rather than
            # locking the profile until the clock catches up.
            self._save(failures, now)
            last_failure = now
        retry_after = last_failure + delay - now
        if retry_after > 0:
            raise TooManyAttemptsError(
                f"Too many wrong passwords for profile '{self._profile}'; "
                f"wait {_seconds(retry_after)} before trying again.",
                retry_after=retry_after,
            )

    def record_failure(self) -> None:
        failures, _ = self._load()
        self._save(failures + 1, self._clock())
        _log.info("failed unlock of profile %s (%d in a row)", self._profile, failures + 1)

    def reset(self) -> None:
        self._path.unlink(missing_ok=True)

    def _load(self) -> tuple[int, float]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            failures = data["failures"]
            last_failure = float(data["last_failure"])
            if not isinstance(failures, int) or failures < 0:
                raise ValueError("bad failure count")
            return failures, last_failure
        except FileNotFoundError:
            return 0, 0.0
        except (OSError, ValueError, TypeError, KeyError):
            # Writes are atomic, so a damaged file was tampered with: no free attempts are left.
            _log.warning("unlock attempt record of profile %s is damaged; treating it as used up", self._profile)
            return FREE_ATTEMPTS, 0.0

    def _save(self, failures: int, last_failure: float) -> None:
        write_private_json(self._path, {"failures": failures, "last_failure": last_failure})


def _seconds(value: float) -> str:
    whole = max(1, int(value + 0.999))
    return "1 second" if whole == 1 else f"{whole} seconds"
