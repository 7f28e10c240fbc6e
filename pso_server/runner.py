"""Running the application under uvicorn with TLS, and draining on SIGTERM.

The first SIGTERM starts a drain: every new request is answered 503 with Retry-After (load balancers see
/healthz fail and stop routing here) for ``drain_seconds``; then uvicorn stops accepting and finishes the
requests in flight. A second SIGTERM, or SIGINT (Ctrl+C), skips the drain.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from pso_server.admission import AdmissionState
from pso_server.sealing import SEALED_UPLOAD_PATH

log = logging.getLogger("uvicorn.error")  # uvicorn's own server log, so the line shows up beside its own

IDLE_CLOSE_GRACE = 1.0  # seconds an idle connection gets to finish its TLS close at shutdown


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose SIGTERM drains first (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, admission: AdmissionState, drain_seconds: float) -> None:
        super().__init__(config)
        self.admission = admission
        self.drain_seconds = drain_seconds
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Deliberately not calling super(): uvicorn would re-raise the signal after shutdown, and the process
        # would end "killed by SIGTERM" instead of exiting 0 after a clean drain.
        if sig == signal.SIGTERM and self._drain_until is None and self.drain_seconds > 0:
            self.start_drain()
            return
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn closes idle keep-alive connections at shutdown, but a TLS close waits for the client's
        # close_notify, and an idle client (say, a pooled connection nobody reads) never sends it: without
        # this, one such client holds the whole shutdown for the graceful timeout (30 s).
        loop = asyncio.get_running_loop()
        timer = loop.call_later(IDLE_CLOSE_GRACE, self._abort_closing_connections)
        try:
            await super().shutdown(sockets=sockets)
        finally:
            timer.cancel()

    def _abort_closing_connections(self) -> None:
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and transport.is_closing():
                transport.abort()  # already closed by uvicorn: only the TLS goodbye is skipped

    def start_drain(self) -> None:
        """Answer 503 from now on, and stop after ``drain_seconds``."""
        self.admission.draining = True
        self._drain_until = time.monotonic() + self.drain_seconds
        log.info(
            "Draining: answering 503 for %.0f s, then stopping (send SIGTERM again to stop now).",
            self.drain_seconds,
        )

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


class _NoAddressForSealedUploads(logging.Filter):
    """Access log lines of sealed uploads carry no client address: an anonymous report's envelope must leave no
    link to the workstation that sent it (docs/sealed-outbox.md), and the time of the line would date it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and str(args[2]).partition("?")[0] == SEALED_UPLOAD_PATH:
            record.args = ("-", *args[1:])
        return True


def _hide_sealed_upload_addresses() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoAddressForSealedUploads) for f in access.filters):
        access.addFilter(_NoAddressForSealedUploads())


def uvicorn_config(
    app: Any,
    *,
    tls_cert: Path | None,
    tls_key: Path | None,
    access_log: bool,
    log_config: Any = None,
) -> uvicorn.Config:
    """uvicorn settings shared by ``serve``, ``demo`` and the in-process test server."""
    _hide_sealed_upload_addresses()
    return uvicorn.Config(
        app,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        proxy_headers=False,  # client addresses drive rate limits: never take them from a header by default
        server_header=False,
        access_log=access_log,
        log_config=log_config,
        lifespan="off",
        timeout_keep_alive=15,
        timeout_graceful_shutdown=30,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one). Raises OSError when the address cannot be used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio enables TCP_NODELAY only on accepted sockets whose proto says TCP,
    # and without it Nagle + delayed ACK add ~40 ms to every small TLS response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
