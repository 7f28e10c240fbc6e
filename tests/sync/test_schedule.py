"""The back-off of the window's probes while the PSO is unreachable: capped, exponential, jittered, and never
sooner than the server's Retry-After."""

from __future__ import annotations

import random

from pso_desktop.sync.schedule import MAX_RETRY_AFTER, Schedule


def test_each_failed_try_waits_longer_up_to_the_cap_with_jitter() -> None:
    schedule = Schedule(probe=30, probe_max=600)
    rng = random.Random(7)
    for failures, ceiling in ((1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600), (40, 600)):
        waits = [schedule.probe_delay(failures, None, rng) for _ in range(200)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), (failures, min(waits), max(waits))
        assert max(waits) - min(waits) > ceiling / 4  # spread out: a ward's workstations do not come back together


def test_retry_after_is_the_shortest_wait_and_is_capped() -> None:
    schedule = Schedule(probe=1, probe_max=2)
    rng = random.Random(1)
    assert schedule.probe_delay(1, 120, rng) == 120
    assert schedule.probe_delay(1, 10**9, rng) == MAX_RETRY_AFTER
    assert 0.5 <= schedule.probe_delay(1, 0, rng) <= 1  # "now" still waits the back-off: no hammering
