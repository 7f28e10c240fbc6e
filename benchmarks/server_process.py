"""The reference server as the benchmarks run it: ``pso-server serve`` in its own process (as in production:
the client's CPU work must not slow the server through the GIL, nor the server the client's GUI), on a free
loopback port, with a fresh SQLite database, a throwaway certificate and one reporter account."""

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

ACCOUNT = "bench"
PASSWORD = "benchmark password 1"


@dataclass(frozen=True)
class ServerProcess:
    base_url: str
    ca_path: Path
    db_url: str

    def reports_held(self) -> int:
        db = Database.open(self.db_url)
        try:
            with db.reader() as tx:
                return store.stats(tx)["reports"]
        finally:
            db.close()


@contextmanager
def server_process(folder: Path) -> Iterator[ServerProcess]:
    """Serves until the block ends (then SIGINT, as an operator's Ctrl+C); account ACCOUNT / PASSWORD."""
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
