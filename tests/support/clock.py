"""A clock the test moves: injected as the server's ``ServerConfig.clock`` or a ``ProfileKeys`` clock, so that
token lifetimes, lockouts and back-off pass without real waiting."""

from __future__ import annotations

import time


class FakeClock:
    """A wall clock that only moves when the test says so; starts at ``start`` or, by default, the real time."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
