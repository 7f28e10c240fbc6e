"""When the window sends by itself: the intervals IT policy sets, and the back-off while the PSO is unreachable.

Pure Python (no Qt, no I/O), so the timing rules can be read and tested apart from the timers that apply them.
The window (``ui.sync_panel``) sends the queue after Submit, after unlock, when the network comes back and every
``send_interval``; fetches the PSO's statuses every ``status_interval``; and, while the PSO cannot be reached,
only probes it (``ApiClient.probe``), waiting longer after each failed probe: ``probe`` seconds at first,
doubling up to ``probe_max``, each wait drawn between its half and its whole (jitter, so that the workstations
of a ward that lost the network together do not all come back in the same second). A ``Retry-After`` from the
PSO is honoured as the shortest wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

DEFAULT_SEND_INTERVAL = 300.0  # the safety net: Submit, unlock and a returning network already send at once
DEFAULT_STATUS_INTERVAL = 900.0  # the PSO's statuses change in hours, not seconds
DEFAULT_PROBE = 30.0
DEFAULT_PROBE_MAX = 600.0
MAX_RETRY_AFTER = 3600.0  # a Retry-After beyond an hour is taken as an hour (a server's clock may be far off)


class _SyncPolicy(Protocol):
    """The part of ``security.profiles.KeyPolicy`` read here (None: the default)."""

    @property
    def sync_send_interval_seconds(self) -> float | None: ...
    @property
    def sync_status_interval_seconds(self) -> float | None: ...
    @property
    def sync_probe_seconds(self) -> float | None: ...
    @property
    def sync_probe_max_seconds(self) -> float | None: ...


@dataclass(frozen=True)
class Schedule:
    """Seconds between automatic sends, status fetches and (at first, and at most) probes of an unreachable PSO."""

    send_interval: float = DEFAULT_SEND_INTERVAL
    status_interval: float = DEFAULT_STATUS_INTERVAL
    probe: float = DEFAULT_PROBE
    probe_max: float = DEFAULT_PROBE_MAX

    @classmethod
    def from_policy(cls, policy: _SyncPolicy) -> Schedule:
        """IT policy's ``sync`` intervals where it gives them, else the defaults above."""
        probe = policy.sync_probe_seconds or DEFAULT_PROBE
        return cls(
            send_interval=policy.sync_send_interval_seconds or DEFAULT_SEND_INTERVAL,
            status_interval=policy.sync_status_interval_seconds or DEFAULT_STATUS_INTERVAL,
            probe=probe,
            probe_max=max(probe, policy.sync_probe_max_seconds or max(DEFAULT_PROBE_MAX, probe)),
        )

    def probe_delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds until the next probe after ``failures`` failed tries in a row (1-based): capped exponential
        back-off with jitter (between half and all of ``probe * 2**(failures-1)``, at most ``probe_max``), and
        never sooner than the server's ``retry_after``."""
        ceiling = min(self.probe_max, self.probe * 2 ** min(max(failures, 1) - 1, 30))
        delay = rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay
