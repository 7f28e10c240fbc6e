"""Running the real ``pso-desktop`` command in a subprocess, as IT scripts do."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
