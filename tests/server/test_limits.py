"""Back-pressure over real TLS: 413 by count and by bytes (before parsing), 429 and 503 with Retry-After."""

from __future__ import annotations

import json
import random
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pso_desktop.domain.samples import sample_report
from pso_server.tls import TlsFiles
from tests.server.support import Api, ServerFactory

BATCH = "/api/v1/reports/batch"


def _reports(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [sample_report(rng, n) for n in range(count)]


def test_too_many_reports_is_413_with_the_limit(make_server: ServerFactory) -> None:
    with make_server(max_reports_per_batch=3) as server, Api(server) as api:
        token = api.user("nurse1")
        refused = api.post(BATCH, token, json={"reports": _reports(4)})
        assert refused.status_code == 413
        body = refused.json()
        assert body["error"] == "too_many_reports" and body["limit"] == 3
        assert "at most 3 reports" in body["message"]
        assert server.stats()["reports"] == 0
        assert {r["status"] for r in api.batch(token, _reports(3))} == {"created"}


def test_too_many_bytes_is_413_before_parsing(make_server: ServerFactory) -> None:
    with make_server(max_body_bytes=20_000) as server, Api(server) as api:
        token = api.user("nurse1")
        payload = json.dumps({"reports": _reports(30)}).encode()
        assert len(payload) > 20_000
        refused = api.post(BATCH, token, data=payload, headers={"Content-Type": "application/json"})
        assert refused.status_code == 413
        assert refused.json() == {
            "error": "payload_too_large",
            "message": refused.json()["message"],
            "limit": 20_000,
        }
        assert "20000 bytes" in refused.json()["message"]
        assert server.stats()["reports"] == 0


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(make_server: ServerFactory) -> None:
    with make_server(max_body_bytes=20_000) as server, Api(server) as api:
        token = api.user("nurse1")
        payload = json.dumps({"reports": _reports(30)}).encode()
        payload += b" " * (70_000 - len(payload))  # several times the limit, so the server must cut it off

        def chunks() -> Iterator[bytes]:  # a generator body is sent chunked, with no Content-Length
            for start in range(0, len(payload), 4096):
                yield payload[start : start + 4096]

        # requests sends the whole body before reading the answer: the 413 must still reach it, every time.
        for _ in range(3):
            refused = api.post(BATCH, token, data=chunks(), headers={"Content-Type": "application/json"})
            assert refused.status_code == 413
            assert refused.json()["limit"] == 20_000
            declared = api.post(BATCH, token, data=payload, headers={"Content-Type": "application/json"})
            assert declared.status_code == 413
        assert server.stats()["reports"] == 0


def test_a_client_expecting_100_continue_gets_the_413_without_sending_its_body(
    make_server: ServerFactory, tls_files: TlsFiles
) -> None:
    with make_server(max_body_bytes=20_000) as server:
        answer = _raw_answer_head(server, tls_files, b"Content-Length: 30000\r\nExpect: 100-continue\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:40]


def test_body_just_under_the_limit_is_accepted(make_server: ServerFactory) -> None:
    reports = _reports(5)
    size = len(json.dumps({"reports": reports}).encode())
    with make_server(max_body_bytes=size) as server, Api(server) as api:
        token = api.user("nurse1")
        response = api.post(
            BATCH,
            token,
            data=json.dumps({"reports": reports}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200


def test_past_the_request_rate_the_client_gets_429_with_retry_after(make_server: ServerFactory) -> None:
    with make_server(requests_per_second=0.5, request_burst=5) as server, Api(server) as api:
        answers = [api.get("/api/v1/reference") for _ in range(6)]
        assert [a.status_code for a in answers[:5]] == [401] * 5
        limited = answers[5]
        assert limited.status_code == 429
        assert limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 2
        # Health probes are never rate limited: a load balancer must see the truth.
        assert api.get("/healthz").status_code == 200


def test_the_default_rate_does_not_throttle_a_normal_sync(api: Api) -> None:
    token = api.user("nurse1")
    for start in range(0, 60, 3):
        api.batch(token, _reports(3, seed=start))
    assert api.statuses(token)["changes"]


def test_draining_answers_503_with_retry_after(api: Api) -> None:
    token = api.user("nurse1")
    api.server.start_draining()
    for method, path in (("GET", "/healthz"), ("GET", "/api/v1/reference"), ("POST", BATCH)):
        response = api.request(method, path, token, json={"reports": []})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json()["error"] == "draining"
    api.server.stop_draining()
    assert api.get("/healthz").status_code == 200


def test_overload_answers_503_while_the_server_is_full(make_server: ServerFactory, tls_files: TlsFiles) -> None:
    with make_server(max_in_flight=1) as server, Api(server) as api:
        port = int(server.base_url.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
        # A slow client: headers announce a body that arrives only partly, so its request stays in flight.
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as slow,
        ):
            slow.sendall(
                b"POST /api/v1/reports/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"reports": ['
            )
            busy = _wait_for_status(api, 503)
            assert busy.json()["error"] == "overloaded"
            assert busy.headers["Retry-After"] == "5"
        assert _wait_for_status(api, 200).json()["status"] == "ok"


def test_a_body_that_never_arrives_times_out_and_frees_its_place(
    make_server: ServerFactory, tls_files: TlsFiles
) -> None:
    with make_server(max_in_flight=1, body_timeout_seconds=0.5) as server, Api(server) as api:
        answer = _raw_answer_head(server, tls_files, b'Content-Length: 100\r\n\r\n{"reports": [')
        assert answer.startswith(b"HTTP/1.1 408 ")
        # Its place is given back as the handler unwinds, which may be just after the 408 left the server.
        _wait_for_status(api, 200)


def _raw_answer_head(server: Any, tls_files: TlsFiles, rest: bytes, timeout: float = 10) -> bytes:
    """POST a batch by hand over TLS (headers end with ``rest``, which may hold a partial body); return the
    answer's status line and headers. For what an HTTP client library will not send."""
    port = int(server.base_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        conn.settimeout(timeout)
        conn.sendall(
            b"POST /api/v1/reports/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + rest
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(4096)
            assert chunk, answer
            answer += chunk
    return answer


def _wait_for_status(api: Api, wanted: int) -> Any:
    deadline = time.monotonic() + 5
    while True:
        response = api.get("/healthz")
        if response.status_code == wanted or time.monotonic() > deadline:
            assert response.status_code == wanted
            return response
        time.sleep(0.05)


def test_a_lost_database_connection_is_503_then_recovers(api: Api, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("needs a database server whose connections can be cut (PostgreSQL)")
    import psycopg

    token = api.user("nurse1")
    assert api.get("/api/v1/reference", token).status_code == 200
    with psycopg.connect(db_url, autocommit=True) as admin:
        # Cut every other connection to this database: the server's pooled connections die under it.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    answers = [api.get("/api/v1/reference", token) for _ in range(10)]
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 503}
    assert 503 in codes, codes
    failed = answers[codes.index(503)]
    assert failed.json()["error"] == "storage_unavailable"
    assert failed.headers["Retry-After"] == "5"
    assert codes[-1] == 200  # broken connections are discarded, fresh ones work
