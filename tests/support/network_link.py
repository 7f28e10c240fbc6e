"""A network link on loopback that a test can cut and restore: the PSO server "goes away and comes back".

A plain TCP relay: the client connects to ``link.url`` and the bytes go to the real server untouched (TLS end to
end, the server's own certificate). ``cut()`` closes the listening socket and resets every relayed connection,
so a client meets "connection refused" (as when a server is down or a ward's network is gone); ``restore()``
listens again on the same port. Every connection accepted is counted in ``connections`` (the client's probes and
syncs).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType
from urllib.parse import urlsplit


class NetworkLink:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        assert parts.hostname and parts.port
        self._upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._port = 0
        self.connections = 0
        self._listen()
        self.url = f"https://{parts.hostname}:{self._port}"

    def __enter__(self) -> NetworkLink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cut()
        for thread in list(self._threads):
            thread.join(timeout=10)

    @property
    def up(self) -> bool:
        return self._listener is not None

    def cut(self) -> None:
        """New connections are refused and every open one is reset."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets = list(self._sockets)
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept loop
            listener.close()
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        """Listens again on the same port."""
        if self._listener is None:
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        listener.listen(64)
        self._port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._start(self._accept_loop, listener)

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="network-link")  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self.connections += 1
                self._sockets.update((client, server))
            self._start(self._relay, client, server)

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        """Both directions of one connection, until either side closes or the link is cut."""
        peers = {client: server, server: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.difference_update((client, server))
            client.close()
            server.close()
