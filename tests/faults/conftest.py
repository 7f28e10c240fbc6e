"""The fault tier: every test here runs the real CLI under strace (see tests/support/faults.py) and is marked
``faults`` (each module sets ``pytestmark``); without strace, or where ptrace is refused, each test skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.checks import add_reports, new_profile, sample_reports
from tests.support.faults import strace_unavailable

_probe: list[str | None] = []


@pytest.fixture(autouse=True)
def _needs_strace() -> None:
    if not _probe:
        _probe.append(strace_unavailable())
    if _probe[0] is not None:
        pytest.skip(_probe[0])


EARLIER = 40  # reports earlier commands acknowledged (half of them queued): every kill must leave them intact


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile holding EARLIER acknowledged reports; scenarios copy it and never change it otherwise."""
    home = new_profile(tmp_path_factory.mktemp("faults-template") / "home")
    earlier = sample_reports(seed=1, count=EARLIER)
    add_reports(home, earlier[: EARLIER // 2], submit=True)
    add_reports(home, earlier[EARLIER // 2 :], submit=False)
    return home
