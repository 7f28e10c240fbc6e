"""The reference server in a process of its own (``pso-server serve``), for window tests that measure the GUI
thread: an in-process server validates and stores every report on a thread of the test's own process, and its
work (and its garbage collections) would hold the GIL against the window, as no real PSO server can."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pso_server import store
from pso_server.store import Database
from pso_server.tls import make_demo_tls
from tests.support.sync import ACCOUNT, PASSWORD


@dataclass(frozen=True)
class ServerProcess:
    base_url: str
    ca_path: Path
    db_url: str

    def reports_held(self) -> int:
        db = Database.open(self.db_url)
        try:
            with db.reader() as tx:
                return int(store.stats(tx)["reports"])
        finally:
            db.close()


@contextmanager
def server_process(folder: Path) -> Iterator[ServerProcess]:
    """Serves on a free loopback port until the block ends (then SIGINT, as an operator's Ctrl+C), with the
    account ACCOUNT (PASSWORD) of tests/support/sync."""
    folder.mkdir(parents=True)
    tls = make_demo_tls(folder / "tls")
    db_url = f"sqlite:///{folder / 'server.db'}"
    command = [sys.executable, "-m", "pso_server"]
    subprocess.run(
        [*command, "add-user", ACCOUNT, "--role", "reporter", "--password-stdin", "--db", db_url],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    serve = [*command, "serve", "--host", "127.0.0.1", "--port", "0", "--db", db_url, "--no-access-log"]
    serve += ["--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key)]
    with subprocess.Popen(serve, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # "PSO server listening on https://127.0.0.1:PORT (sqlite)"
            url = line.split(" on ", 1)[1].split()[0]
            yield ServerProcess(url, tls.ca_cert, db_url)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
