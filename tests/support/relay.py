"""A TCP relay on a fixed loopback port, so a server can go away and come back at the same address.

The reference server listens on a new free port each time it starts; a profile signed in to
``relay.url`` keeps that address while the server behind it stops (connections are then refused: the relay
closes its listening socket, as a stopped server's port does) and starts again on another port. TLS passes
through untouched: the client verifies the real server's certificate.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType

from pso_server.practice import RunningServer
from pso_server.tls import TlsFiles


class TcpRelay:
    def __init__(self) -> None:
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"https://127.0.0.1:{self.port}"
        self._target: int | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self, target_port: int) -> None:
        """Accepts on the relay's port again and forwards to ``target_port``."""
        self.down()
        self._target = target_port
        self._stop.clear()
        self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept, name="tcp-relay", daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stops listening (new connections are refused) and cuts the open ones."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._connections.clear()

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None and self._target is not None
        target = self._target
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._connections.discard(source)
            with contextlib.suppress(OSError):
                source.close()


class ComingBack:
    """The reference server behind a relay: :meth:`up` starts it (the same database, keys and certificate as
    before), :meth:`down` stops it; the address profiles know (``relay.url``) stays the same."""

    def __init__(self, folder: Path, relay: TcpRelay, accounts: Mapping[str, str]) -> None:
        self.folder = folder
        self.relay = relay
        self._accounts = dict(accounts)
        self._stack: ExitStack | None = None
        self.server: RunningServer | None = None
        self.ca_path = folder / "tls" / "demo-ca.pem"

    def up(self) -> RunningServer:
        from tests.support.sync import practice_server

        first = self._accounts is not None and not (self.folder / "tls").exists()
        tls = (
            None
            if first
            else TlsFiles(
                self.ca_path, self.folder / "tls" / "server-cert.pem", self.folder / "tls" / "server-key.pem"
            )
        )
        self._stack = ExitStack()
        self.server = self._stack.enter_context(
            practice_server(self.folder, self._accounts if first else {}, tls=tls)
        )
        self.relay.up(int(self.server.base_url.rsplit(":", 1)[1]))
        return self.server

    def down(self) -> None:
        self.relay.down()
        if self._stack is not None:
            self._stack.close()
        self._stack = None
        self.server = None


@contextmanager
def coming_back(folder: Path, accounts: Mapping[str, str]) -> Iterator[ComingBack]:
    """A :class:`ComingBack` server, up, with ``accounts`` created at its first start."""
    with TcpRelay() as relay:
        running = ComingBack(folder, relay, accounts)
        running.up()
        try:
            yield running
        finally:
            running.down()
