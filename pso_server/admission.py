"""Back-pressure at the door: drain, overload, per-client rate and body size, before any parsing.

One pure ASGI middleware, outermost, so a refused request costs almost nothing: no routing, no JSON, no
database. It runs on the event loop thread only, so its counters need no locks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from pso_server.config import Limits
from pso_server.proxies import TrustedProxies

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("pso_server")

_UNLIMITED_PATHS = frozenset({"/healthz"})  # probes from a load balancer must never be rate-limited
DISCARD_FACTOR = 4  # a refused streamed body is read and dropped up to this many times the byte limit...
DISCARD_SECONDS = 10.0  # ...or for this long, whichever comes first


class TokenBucket:
    """Per-key token buckets: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Spends one token; returns 0 when allowed, otherwise the seconds until a token is available."""
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            self._forget_full(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self._rate if self._rate > 0 else 3600.0

    def _forget_full(self, now: float) -> None:
        # Keeps memory bounded under many client addresses: a bucket that has refilled is the default state.
        if len(self._buckets) > 10_000:
            refill = self._burst / self._rate if self._rate > 0 else math.inf
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}


@dataclass
class AdmissionState:
    """Shared with the server runner: ``draining`` is set on SIGTERM (or by tests)."""

    draining: bool = False
    in_flight: int = 0


def problem_body(error: str, message: str, limit: int | None = None) -> bytes:
    """The JSON error body every refusal uses (the ``Problem`` schema in the OpenAPI document)."""
    return json.dumps({"error": error, "message": message, "limit": limit}).encode()


class AdmissionMiddleware:
    """Refuses requests the server should not start on, in this order:

    503 while draining or with ``max_in_flight`` requests already running; 429 past the client's request
    rate; 408 when the body has not arrived within ``body_timeout_seconds``; 413 when the declared or actual body exceeds ``max_body_bytes`` (the body is read from the stream,
    counted and buffered before the application parses a byte of it). A refused body of up to
    ``DISCARD_FACTOR`` times the limit is read to its end and dropped first, so the client can read the 413.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: AdmissionState,
        limits: Limits,
        retry_after: int,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self._app = app
        self._proxies = proxies or TrustedProxies()
        self._state = state
        self._limits = limits
        self._retry_after = retry_after
        self._bucket = TokenBucket(limits.requests_per_second, limits.request_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        state = self._state
        if state.draining:
            await self._refuse(
                send,
                503,
                "draining",
                "The server is restarting; try again shortly.",
                retry_after=self._retry_after,
            )
            return
        if state.in_flight >= self._limits.max_in_flight:
            await self._refuse(
                send, 503, "overloaded", "The server is busy; try again shortly.", retry_after=self._retry_after
            )
            return
        if scope["path"] not in _UNLIMITED_PATHS:
            wait = self._bucket.take(self._proxies.client_of_scope(scope))
            if wait > 0:
                await self._refuse(
                    send,
                    429,
                    "rate_limited",
                    "Too many requests; slow down and try again.",
                    retry_after=max(1, math.ceil(wait)),
                )
                return
        max_bytes = self._limits.max_body_bytes
        too_big = f"The request is larger than the server accepts ({max_bytes} bytes); send smaller batches."
        declared = _content_length(scope)
        state.in_flight += 1
        try:
            if declared is not None and declared > max_bytes:
                # A client that asked "Expect: 100-continue" waits for this answer before sending anything;
                # reading would make the server invite the body it is about to refuse.
                if declared <= DISCARD_FACTOR * max_bytes and not _expects_continue(scope):
                    await _discard_rest(receive, declared, DISCARD_SECONDS)
                await self._refuse(send, 413, "payload_too_large", too_big, limit=max_bytes)
                return
            try:
                # A client that announces a body and sends it slowly, or never, must not hold one of the
                # max_in_flight places for ever: a few such connections would make the server 503 everyone.
                async with asyncio.timeout(self._limits.body_timeout_seconds):
                    body, ended = await _read_body(receive, max_bytes)
            except TimeoutError:
                await self._refuse(
                    send,
                    408,
                    "request_timeout",
                    "The request arrived too slowly; send it again.",
                )
                return
            if body is None:
                if not ended:
                    # Most HTTP clients send a streamed body to the end before reading any answer: closing
                    # on them mid-body gives them a reset connection instead of this 413 and its limit.
                    await _discard_rest(receive, DISCARD_FACTOR * max_bytes, DISCARD_SECONDS)
                await self._refuse(send, 413, "payload_too_large", too_big, limit=max_bytes)
                return
            await self._guarded(scope, _replay(body, receive), send)
        finally:
            state.in_flight -= 1

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Runs the application; a bug becomes a plain 500 Problem on a connection that stays usable."""
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        except Exception:
            # Logged with its traceback (exception text and code lines, never request bodies).
            log.exception("Unexpected error while answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await self._refuse(send, 500, "internal_error", "The server failed unexpectedly; try again later.")

    async def _refuse(
        self,
        send: Send,
        status: int,
        error: str,
        message: str,
        *,
        retry_after: int | None = None,
        limit: int | None = None,
    ) -> None:
        headers: list[tuple[bytes, bytes]] = []
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        if status in (408, 413):
            headers.append((b"connection", b"close"))  # the unread rest of the body makes the stream unusable
        await send_problem(send, status, problem_body(error, message, limit), headers)


async def send_problem(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Answers a refusal made before the application ran: ``body`` (see :func:`problem_body`) as JSON."""
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def _expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers", ()))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(receive: Receive, max_bytes: int) -> tuple[bytes | None, bool]:
    """The whole request body, or None as soon as it grows past ``max_bytes``; and whether the stream ended
    (the last chunk or a disconnect was received)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        more = bool(message.get("more_body", False))
        size += len(chunk)
        if size > max_bytes:
            return None, not more
        chunks.append(chunk)
        if not more:
            return b"".join(chunks), True


async def _discard_rest(receive: Receive, budget: int, seconds: float) -> None:
    """Reads and drops the rest of a refused body: at most ``budget`` bytes for at most ``seconds``, so a
    client cannot hold the connection open for free; past either bound the connection is simply closed."""
    try:
        async with asyncio.timeout(seconds):
            while budget > 0:
                message = await receive()
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    return
                budget -= len(message.get("body", b""))
    except TimeoutError:
        return


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body to the application, then waits for the disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class DeviceCredentialGate:
    """A device credential (``Authorization: Device <token>``, the sealed outbox's upload-only credential) is
    taken by one path only, ``only_path``: any other request carrying one is answered 401 here, before routing,
    so no endpoint (public ones, the OpenAPI document and any added later included) can accept it by mistake."""

    def __init__(self, app: ASGIApp, *, only_path: str) -> None:
        self._app = app
        self._path = only_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != self._path and _device_credential(scope):
            message = f"A device credential can only upload sealed reports (POST {self._path}); sign in for anything else."
            await send_problem(
                send, 401, problem_body("unauthorized", message), [(b"www-authenticate", b"Bearer")]
            )
            return
        await self._app(scope, receive, send)


def _device_credential(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and value.lstrip()[:7].lower() == b"device ":
            return True
    return False
