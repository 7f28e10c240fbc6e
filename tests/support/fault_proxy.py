"""A fault-injecting HTTPS proxy on loopback, for sync tests that must see real network failures.

It behaves like a hospital's TLS-inspecting proxy: it terminates TLS with a certificate from its own
"hospital" root CA (clients must trust ``proxy.ca_path``), reads each HTTP/1.1 request, and forwards it to the
real server over a fresh TLS connection that verifies the server's CA. Two ways in:

- as a forward proxy: ``requests`` with ``proxies={"https": proxy.proxy_url}`` sends ``CONNECT host:port``, then
  TLS inside the tunnel (the proxy presents its own certificate for the host, as inspecting proxies do);
- as a reverse proxy: point the client's server URL at ``proxy.url`` (requests go to ``upstream_url``).

Faults are planned per request with :meth:`FaultProxy.plan` and used in order; unplanned requests pass through.
Every request is recorded in ``proxy.seen`` (method, path, fault, status given to the client).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import struct
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import trustme

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"}
)
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Fault:
    """What the proxy does with one request.

    ``kind``:
    - ``pass``: forward it and relay the answer;
    - ``reset``: drop the connection (TCP RST) before forwarding - the server never sees the request;
    - ``stall``: never answer, until the client gives up or the proxy stops - the server never sees it;
    - ``status``: answer ``status`` itself (with ``Retry-After`` when ``retry_after`` is set: seconds, or a
      string sent as it is, e.g. an HTTP date; and ``Date`` when ``date`` is set), not forwarding;
    - ``lose_response``: forward it (the server acts on it), then drop the connection before any answer;
    - ``cut_response``: forward it, relay the answer's head and the first ``after_bytes`` bytes of its body,
      then drop the connection (the client sees a body shorter than its Content-Length);
    - ``stall_response``: the same, but go silent instead of dropping it.
    """

    kind: str
    status: int = 503
    retry_after: float | str | None = None
    after_bytes: int = 0
    date: str | None = None


PASS = Fault("pass")
RESET = Fault("reset")
STALL = Fault("stall")
LOSE_RESPONSE = Fault("lose_response")


def status(code: int, retry_after: float | str | None = None, *, date: str | None = None) -> Fault:
    return Fault("status", status=code, retry_after=retry_after, date=date)


def cut_response(after_bytes: int) -> Fault:
    return Fault("cut_response", after_bytes=after_bytes)


def stall_response(after_bytes: int) -> Fault:
    return Fault("stall_response", after_bytes=after_bytes)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    fault: str
    status: int | None  # what the client was told; None when it got no complete answer


class _Closed(Exception):
    """The client closed the connection (or sent something the proxy does not speak)."""


class FaultProxy:
    """Use as a context manager: ``with FaultProxy(server.base_url, server.ca_path) as proxy: ...``."""

    def __init__(self, upstream_url: str, upstream_ca: Path) -> None:
        parts = urlsplit(upstream_url)
        assert parts.scheme == "https" and parts.hostname and parts.port
        self._upstream = (parts.hostname, parts.port)
        self._upstream_tls = ssl.create_default_context(cafile=str(upstream_ca))
        self._folder = Path(tempfile.mkdtemp(prefix="pso-proxy-"))
        hospital_ca = trustme.CA(organization_name="Test hospital inspecting proxy CA")
        self.ca_path = self._folder / "hospital-ca.pem"
        hospital_ca.cert_pem.write_to_path(str(self.ca_path))
        self._client_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        hospital_ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._client_tls)
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self.seen: list[Seen] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # accept() wakes up to notice close()
        port = self._listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{port}"
        self.proxy_url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    # --- control ---------------------------------------------------------------------------------------

    def plan(self, *faults: Fault) -> None:
        """Queue faults for the next requests, in order (after any still queued)."""
        with self._lock:
            self._faults.extend(faults)

    def pending(self) -> int:
        with self._lock:
            return len(self._faults)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stops accepting, wakes every connection thread and waits for them. Sockets are only ever closed
        by the thread that uses them: closing a descriptor another thread is blocked on lets the OS hand the
        number to a new socket (the next test's TLS connection), which that thread would then read from."""
        self._stopping.set()
        self._thread.join(timeout=10)  # the accept loop notices within its 0.1 s timeout
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
            workers = list(self._workers)
        for conn in connections:
            # The plain socket's shutdown (not SSLSocket's): it wakes a blocked recv() and frees nothing.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
        for worker in workers:
            worker.join(timeout=10)

    # --- connections -----------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            worker = threading.Thread(target=self._serve, args=(conn,), name="fault-proxy-conn", daemon=True)
            with self._lock:
                self._workers.add(worker)
            worker.start()

    def _serve(self, raw: socket.socket) -> None:
        self._track(raw)
        conn: socket.socket = raw
        try:
            upstream = self._upstream
            first = raw.recv(1, socket.MSG_PEEK)
            if first == b"C":  # CONNECT host:port: a forward proxy, then TLS inside the tunnel
                head, _ = _read_head(raw, b"")
                method, target, _ = _parse_head(head)
                if method != "CONNECT":
                    raise _Closed
                host, _, port = target.rpartition(":")
                upstream = (host.strip("[]"), int(port))
                raw.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            elif first != b"\x16":  # not a TLS handshake either
                raise _Closed
            conn = self._client_tls.wrap_socket(raw, server_side=True)
            self._track(conn)
            self._serve_requests(conn, upstream)
        except (_Closed, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            _close(conn)
            _close(raw)
            with self._lock:
                self._connections.discard(raw)
                self._connections.discard(conn)
                self._workers.discard(threading.current_thread())

    def _serve_requests(self, conn: socket.socket, upstream: tuple[str, int]) -> None:
        buffered = b""
        while not self._stopping.is_set():
            head, buffered = _read_head(conn, buffered)
            method, target, headers = _parse_head(head)
            if "chunked" in headers.get("transfer-encoding", "").lower():
                raise _Closed  # the sync client always sends a length; keep the proxy small
            length = int(headers.get("content-length", "0"))
            while len(buffered) < length:
                buffered += _recv(conn)
            body, buffered = buffered[:length], buffered[length:]
            with self._lock:
                fault = self._faults.popleft() if self._faults else PASS
            path = urlsplit(target).path or target
            if fault.kind == "reset":
                self._record(method, path, fault, None)
                _reset(conn)
                return
            if fault.kind == "stall":
                self._record(method, path, fault, None)
                self._stall(conn)
                return
            if fault.kind == "status":
                self._record(method, path, fault, fault.status)
                conn.sendall(_status_answer(fault))
                continue
            answer, code = self._forward(upstream, method, target, headers, body)
            if fault.kind == "lose_response":
                self._record(method, path, fault, None)
                _reset(conn)
                return
            if fault.kind in ("cut_response", "stall_response"):
                self._record(method, path, fault, None)
                head_end = answer.index(b"\r\n\r\n") + 4
                conn.sendall(answer[: head_end + fault.after_bytes])
                if fault.kind == "stall_response":
                    self._stall(conn)
                else:
                    _reset(conn)
                return
            self._record(method, path, fault, code)
            conn.sendall(answer)

    def _forward(
        self, upstream: tuple[str, int], method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[bytes, int]:
        """Sends the request to the real server; returns the whole answer re-framed with a Content-Length."""
        client = http.client.HTTPSConnection(*upstream, context=self._upstream_tls, timeout=60)
        try:
            client.putrequest(
                method, urlsplit(target).path + _query(target), skip_host=True, skip_accept_encoding=True
            )
            for name, value in headers.items():
                if name not in _HOP_BY_HOP:
                    client.putheader(name, value)
            client.endheaders(body or None)
            response = client.getresponse()
            payload = response.read()
            lines = [f"HTTP/1.1 {response.status} {response.reason}"]
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("content-length", "transfer-encoding"):
                    lines.append(f"{name}: {value}")
            lines.append(f"Content-Length: {len(payload)}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload, response.status
        finally:
            client.close()

    def _stall(self, conn: socket.socket) -> None:
        """Holds the connection open and silent until the client gives up or the proxy stops."""
        conn.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                if conn.recv(65536) == b"":
                    return
            except TimeoutError:
                continue
            except (OSError, ssl.SSLError):
                return

    def _record(self, method: str, path: str, fault: Fault, code: int | None) -> None:
        with self._lock:
            self.seen.append(Seen(method, path, fault.kind, code))

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)


# --- HTTP/1.1 framing (just what the sync client sends) -----------------------------------------------------


def _recv(conn: socket.socket) -> bytes:
    data = conn.recv(65536)
    if not data:
        raise _Closed
    return data


def _read_head(conn: socket.socket, buffered: bytes) -> tuple[bytes, bytes]:
    while b"\r\n\r\n" not in buffered:
        if len(buffered) > _MAX_HEAD:
            raise _Closed
        buffered += _recv(conn)
    head, _, rest = buffered.partition(b"\r\n\r\n")
    return head, rest


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _query(target: str) -> str:
    query = urlsplit(target).query
    return f"?{query}" if query else ""


def _status_answer(fault: Fault) -> bytes:
    body = b'{"detail": "injected by the test proxy"}'
    lines = [f"HTTP/1.1 {fault.status} Injected", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    if isinstance(fault.retry_after, str):
        lines.append(f"Retry-After: {fault.retry_after}")
    elif fault.retry_after is not None:
        lines.append(f"Retry-After: {max(0, round(fault.retry_after))}")
    if fault.date is not None:
        lines.append(f"Date: {fault.date}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _reset(conn: socket.socket) -> None:
    """Drops the connection with a TCP RST (SO_LINGER 0), as a failing middlebox does."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(conn)


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()
