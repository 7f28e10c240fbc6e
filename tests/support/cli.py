"""Running the real ``pso-desktop`` command in a subprocess, as IT scripts do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pso_server.practice import RunningServer

SECRET = "correct horse battery staple"


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: its own data root, and no OS keyring (the password-file fallback)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PSO_DESKTOP_", "PYTHON_KEYRING"))}
    env |= {"PSO_DESKTOP_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    env |= extra
    return env


def run_cli(home: Path, *args: str, stdin: str | bytes = "", timeout: float = 120, **env: str) -> Result:
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "pso_desktop", *args],
        input=data,
        capture_output=True,
        env=cli_env(home, **env),
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def status(home: Path) -> dict[str, Any]:
    """``pso-desktop status --json`` of the profile on ``home`` (unlocked with SECRET): how many reports of each state."""
    result = run_cli(home, "status", "--json", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    counts: dict[str, Any] = json.loads(result.out)
    return counts


def assert_clean_failure(result: Result, *, code: int = 1) -> None:
    """The command failed with ``code`` and a one-line message, no traceback."""
    assert result.code == code
    assert "Traceback" not in result.err
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("pso-desktop"), result.err


def login(home: Path, server: RunningServer, user: str, password: str) -> Result:
    """``pso-desktop login`` to ``server``, trusting its throwaway CA, as ``user``; the profile on ``home`` is
    unlocked with SECRET and the account's password follows on standard input, as an IT script sends them."""
    return run_cli(
        home,
        "login",
        "--server",
        server.base_url,
        "--user",
        user,
        "--ca-file",
        str(server.ca_path),
        "--password-stdin",
        stdin=f"{SECRET}\n{password}\n",
    )


def start_cli(
    home: Path,
    *args: str,
    module: str = "pso_desktop",
    stdout: int = subprocess.PIPE,
    stderr: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """``python -m module args`` (the CLI, or a child of the tests such as tests.support.autosave_loop) started in
    a subprocess the test can read and kill; SECRET is written to its standard input, which is then closed."""
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        env=cli_env(home),
    )
    assert child.stdin is not None
    child.stdin.write((SECRET + "\n").encode())
    child.stdin.close()
    return child
