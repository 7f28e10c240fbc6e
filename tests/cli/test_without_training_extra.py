"""The client installed without its ``training`` extra (a plain ``pip install .``): no web framework is needed
for anything but training mode, and ``--demo`` says in one line that it needs the extra.

The extra's packages are made unimportable in a subprocess (``sys.modules[name] = None``), as on a machine that
never installed them; the fresh-venv check is in the README ("Pinned dependencies")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pso_desktop.services.training import PRACTICE_SERVER_MODULES, TrainingEnvironment, TrainingUnavailable

ROOT = Path(__file__).resolve().parents[2]
WEB_STACK = (*PRACTICE_SERVER_MODULES, "pso_server")


def _run(tmp_path: Path, code: str, *, block: bool) -> subprocess.CompletedProcess[str]:
    prelude = "import json, sys\n"
    if block:
        prelude += f"for name in {PRACTICE_SERVER_MODULES!r}:\n    sys.modules[name] = None\n"
    env = {**os.environ, "PSO_DESKTOP_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_without_the_training_extra_says_so_in_one_line(tmp_path: Path) -> None:
    done = _run(tmp_path, "from pso_desktop.cli import main\nsys.exit(main(['--demo']))", block=True)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pso-desktop: ") and "training extra" in lines[0]
    assert "Traceback" not in done.stderr


def test_headless_commands_load_no_web_framework(tmp_path: Path) -> None:
    code = f"""
        import io, contextlib
        from pso_desktop.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(['report', 'schema'])
        loaded = sorted(n for n in {WEB_STACK!r} if sys.modules.get(n) is not None)
        print(json.dumps({{"code": code, "schema": bool(json.loads(out.getvalue())), "loaded": loaded}}))
    """
    for block in (True, False):
        done = _run(tmp_path, code, block=block)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1]) == {"code": 0, "schema": True, "loaded": []}


def test_starting_training_without_the_extra_is_an_expected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PRACTICE_SERVER_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "pso_server.practice", raising=False)  # imported afresh, as without the extra
    with TrainingEnvironment() as environment, pytest.raises(TrainingUnavailable, match="training extra"):
        environment.start()


def test_the_server_command_without_its_extra_says_so_in_one_line(tmp_path: Path) -> None:
    done = _run(tmp_path, "from pso_server.command import main\nsys.exit(main(['--help']))", block=True)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "pso-server: the reference server is not installed here: install PSO Desktop with its server extra "
        "(pip install 'pso-desktop[server]')."
    ]
