"""The practice server: the reference server run in-process, for ``pso-desktop --demo`` (training mode),
tests and benchmarks.

    with run_server() as server:
        server.add_user("nurse1", "a long password", role="reporter")
        requests.get(f"{server.base_url}/healthz", verify=server.ca_path)

The server listens on a free loopback port over TLS with a throwaway CA, in a background thread, until the
``with`` block ends. It needs the server's web stack (FastAPI, uvicorn, trustme): the client's ``training``
extra installs it, and a client installed without it has no training mode (``pso_desktop.services.training``).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from pso_server import store
from pso_server.admission import AdmissionState
from pso_server.app import create_app
from pso_server.auth import Authenticator
from pso_server.config import KdfParams, ServerConfig
from pso_server.runner import DrainingServer, bind, uvicorn_config
from pso_server.sealing import WRAPPING_KEY_FILE, SealingKeys, open_sealing_keys
from pso_server.store import Database, StatusChange, User
from pso_server.tls import TlsFiles, make_demo_tls

CHEAP_KDF = KdfParams(time_cost=1, memory_kib=1024, parallelism=1)
"""Still argon2id, but cheap: pass ``ServerConfig(kdf=CHEAP_KDF)`` for throwaway accounts (training mode, tests
that create and sign in many accounts), where the production cost, about half a second per hash, only waits."""


@dataclass
class RunningServer:
    """A live server: where it listens, the CA that signs its certificate, and handles for test setup."""

    base_url: str
    ca_path: Path
    data_dir: Path
    db: Database
    app: FastAPI
    admission: AdmissionState
    config: ServerConfig
    sealing: SealingKeys

    def add_user(
        self, username: str, password: str, *, role: str = "reporter", facility: str = "General Hospital"
    ) -> User:
        """Creates an account (argon2id-hashed like any other)."""
        return Authenticator(self.db, self.config).add_user(username, password, role, facility)

    def set_role(self, username: str, role: str) -> None:
        """Changes an account's role (``pso-server set-role``)."""
        Authenticator(self.db, self.config).set_role(username, role)

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        """Disables an account (``pso-server disable-user``), ending its sessions."""
        Authenticator(self.db, self.config).set_disabled(username, disabled)

    def set_status(self, report_id: str, status: str, note: str | None = None) -> StatusChange:
        """Changes a report's status as the PSO administrator would (``pso-server set-status``)."""
        with self.db.transaction() as tx:
            return store.set_status(tx, report_id, status, note, None, self.config.clock())

    def stats(self) -> dict[str, int]:
        with self.db.reader() as tx:
            return store.stats(tx)

    def report(self, report_id: str) -> store.StoredReport:
        """The report as held (submitter, anonymity, newest revision). Raises UnknownReport."""
        with self.db.reader() as tx:
            return store.get_report(tx, report_id)

    def start_draining(self) -> None:
        """Answer every new request 503 + Retry-After, as after SIGTERM."""
        self.admission.draining = True

    def stop_draining(self) -> None:
        self.admission.draining = False


class ServerStartFailed(RuntimeError):
    """The in-process server did not start listening in time."""


@contextmanager
def run_server(
    *,
    db_url: str | None = None,
    data_dir: Path | None = None,
    config: ServerConfig | None = None,
    tls: TlsFiles | None = None,
    host: str = "127.0.0.1",
    start_timeout: float = 15.0,
) -> Iterator[RunningServer]:
    """Starts the server on a free ``host`` port over TLS; stops it and closes the database on exit.

    ``data_dir`` defaults to a new temporary folder (removed afterwards) holding the SQLite database, the
    throwaway CA and the wrapping key of the sealing keys; ``db_url`` may name any database instead (e.g.
    PostgreSQL); ``tls`` reuses existing files.
    """
    owned = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="pso-server-")) if data_dir is None else data_dir
    folder.mkdir(parents=True, exist_ok=True)
    config = config or ServerConfig()
    admission = AdmissionState()
    db: Database | None = None
    try:
        tls = tls or make_demo_tls(folder / "tls")
        db = Database.open(db_url or f"sqlite:///{folder / 'server.db'}")
        sealing = open_sealing_keys(db, folder / WRAPPING_KEY_FILE, config.clock)
        app = create_app(db, config, sealing=sealing, admission=admission)
        sock = bind(host, 0)
        port = sock.getsockname()[1]
        server = DrainingServer(
            uvicorn_config(app, tls_cert=tls.server_cert, tls_key=tls.server_key, access_log=False),
            admission,
            config.drain_seconds,
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pso-server", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + start_timeout
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise ServerStartFailed("The in-process PSO server did not start; see the log above.")
                time.sleep(0.01)
            url_host = f"[{host}]" if ":" in host else host
            yield RunningServer(
                f"https://{url_host}:{port}", tls.ca_cert, folder, db, app, admission, config, sealing
            )
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()
    finally:
        if db is not None:
            db.close()
        if owned:
            shutil.rmtree(folder, ignore_errors=True)
