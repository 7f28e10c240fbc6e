"""``pso-desktop agent --status``: IT reads each profile's sealed spool and the agent's last success with no
clinician secret (the real CLI in subprocesses, the real reference server over TLS, real SQLCipher)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.test_sealed_agent import _agent, _reports, _signed_in, _status, _submit, pso
from tests.support.relay import ComingBack

__all__ = ["pso"]  # the fixture, shared with the agent's own tests


def _monitor(home: Path) -> list[dict[str, Any]]:
    result = _agent(home, "--status")  # no secret in its environment, nothing on its standard input
    assert result.code == 0, result.err
    value: list[dict[str, Any]] = json.loads(result.out)
    return value


def test_it_sees_the_spool_and_the_agents_last_success_without_the_secret(pso_home: Path, pso: ComingBack) -> None:
    home = pso_home
    _signed_in(home, pso)
    assert _monitor(home) == [
        {"profile": "alice", "spooled": 0, "rejected": 0, "agent_last_success": None, "problem": None}
    ]
    pso.down()
    _submit(home, _reports(7, seed=3))
    before = _monitor(home)
    assert before == [
        {"profile": "alice", "spooled": 7, "rejected": 0, "agent_last_success": None, "problem": None}
    ]
    sealed = _status(home)["sealed"]  # the clinician's own view, with the secret, still says the same
    assert sealed == {"spooled": 7, "rejected": 0, "agent_last_success": None}

    pso.up()
    assert _agent(home, "--once").code == 0
    (after,) = _monitor(home)
    assert after["spooled"] == 0 and after["rejected"] == 0 and after["problem"] is None
    assert isinstance(after["agent_last_success"], str) and after["agent_last_success"].startswith("20")
    assert _status(home)["sealed"]["agent_last_success"] == after["agent_last_success"]
