"""What the key-storage tests (tests/security) share besides their fixtures: two secrets, where their clock starts
and the type of the
``make_keys`` fixture."""

from __future__ import annotations

from collections.abc import Callable

from pso_desktop.security.profiles import ProfileKeys

CLOCK_START = 1_800_000_000.0  # where the key tests' FakeClock starts: a fixed time, so a failure reproduces

SECRET_A = "correct horse battery"
SECRET_B = "Tr0ub4dor&3-nurse-b"

MakeKeys = Callable[..., ProfileKeys]
"""The ``make_keys`` fixture: keyword arguments ``backend``, ``policy`` and ``kdf`` override its defaults."""
