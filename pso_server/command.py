"""The ``pso-server`` command's entry point: the reference server's packages come with the ``server`` extra, so
a client installed without it (a plain ``pip install .``) gets one line saying so instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence

SERVER_MODULES = ("fastapi", "starlette", "uvicorn", "trustme")
UNAVAILABLE = (
    "pso-server: the reference server is not installed here: install PSO Desktop with its server extra "
    "(pip install 'pso-desktop[server]')."
)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from pso_server.cli import main as serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in SERVER_MODULES:
            raise  # a bug, not a missing extra
        print(UNAVAILABLE, file=sys.stderr)
        return 1
    return serve(argv)
