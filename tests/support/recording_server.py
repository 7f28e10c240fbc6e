"""An attacker's PSO server: HTTPS on loopback with a certificate of our choosing, that plays the sync protocol
well enough to be believed and records everything it is sent.

It counts completed TLS handshakes (a client that refuses the certificate never completes one: it sends an
alert instead of its Finished message) and keeps every request's method, path, headers and body. The
certificate can be swapped while it runs, so a test can first let a profile sign in to it legitimately (a
hospital CA given with ``--ca-file``) and then play the attacker at the same address with a certificate from
another CA. Also: ``RecordingListener``, a bare TCP listener that records whatever arrives (a hostile proxy).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

import trustme


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        return "\n".join([f"{self.method} {self.path}", *self.headers.values(), self.body.decode("latin-1")])


@dataclass
class Recording:
    handshakes: int = 0
    connections: int = 0
    requests: list[Received] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)  # for the bare listener

    def clear(self) -> None:
        self.handshakes = self.connections = 0
        self.requests.clear()
        self.raw.clear()

    def everything(self) -> str:
        return "\n".join(r.text() for r in self.requests) + self.raw.decode("latin-1")


def server_context(ca: trustme.CA, host: str = "localhost") -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(host, "127.0.0.1").configure_cert(context)
    return context


class _Base:
    def __init__(self) -> None:
        self.recording = Recording()
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                self.recording.connections += 1
            thread = threading.Thread(target=self._serve_safely, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve_safely(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            self._serve(conn)
        except Exception:  # a refused handshake, a reset, a timeout, a body it cannot parse
            pass  # all expected from the clients under test; a thread's exception would only fail the test run
        finally:
            conn.close()

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError


class RecordingListener(_Base):
    """Accepts TCP connections and records the bytes sent (e.g. a proxy's CONNECT line), answering nothing
    useful: a hostile proxy that wants to see what the client would tell it."""

    def _serve(self, conn: socket.socket) -> None:
        data = conn.recv(65536)
        with self._lock:
            self.recording.raw += data
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class FakePsoServer(_Base):
    """Answers sign-in, renewal, batches and status like a PSO server, and records every request."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self.context = context

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    def _serve(self, conn: socket.socket) -> None:
        with self.context.wrap_socket(conn, server_side=True) as tls:  # the handshake; raises if refused
            with self._lock:
                self.recording.handshakes += 1
            with tls.makefile("rb") as reader:
                self._exchange(tls, reader)

    def _exchange(self, tls: ssl.SSLSocket, reader: BinaryIO) -> None:
        while True:
            request_line = reader.readline(65536)
            if not request_line:
                return
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = reader.read(int(headers.get("content-length", "0")))
            with self._lock:
                self.recording.requests.append(Received(method, path, headers, body))
            status, answer = self._answer(path, body)
            data = json.dumps(answer).encode()
            tls.sendall(
                f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                + data
            )

    @staticmethod
    def _answer(path: str, body: bytes) -> tuple[int, object]:
        path = path.split("?", 1)[0]
        if path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
            return 200, {
                "access_token": "fake-access",
                "refresh_token": "fake-refresh",
                "expires_in": 3600,
                "user": {"username": "alice", "role": "reporter"},
            }
        if path == "/api/v1/reports/batch":
            reports = json.loads(body).get("reports", [])
            return 200, {
                "results": [
                    {
                        "id": r.get("id"),
                        "revision": r.get("revision"),
                        "status": "created",
                        "server_ref": "X-1",
                        "errors": [],
                    }
                    for r in reports
                ]
            }
        if path == "/api/v1/reports/status":
            return 200, {"changes": [], "cursor": None}
        if path == "/api/v1/reports/status/lookup":
            return 200, {"statuses": []}
        if path == "/api/v1/reference":
            return 200, {"units": [], "form_versions": []}
        return 404, {"error": "not_found", "message": "no such endpoint"}


_Server = TypeVar("_Server", bound=_Base)


@contextmanager
def running(server: _Server) -> Iterator[_Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
