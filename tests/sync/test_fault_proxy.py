"""The fault-injecting proxy the sync tests use works as specified, against the real TLS server: each fault
shows the client the failure a hospital network produces, and says whether the server saw the request."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
import requests

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_server.practice import RunningServer
from tests.support.fault_proxy import (
    LOSE_RESPONSE,
    RESET,
    STALL,
    FaultProxy,
    cut_response,
    stall_response,
    status,
)
from tests.support.sync import PASSWORD, practice_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with practice_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture
def proxy(server: RunningServer) -> Iterator[FaultProxy]:
    with FaultProxy(server.base_url, server.ca_path) as running:
        yield running


def _session(proxy: FaultProxy, *, forward: bool) -> requests.Session:
    """A client that trusts only the hospital CA of the inspecting proxy (as a ward PC behind it would)."""
    http = requests.Session()
    http.trust_env = False
    http.verify = str(proxy.ca_path)
    if forward:
        http.proxies = {"https": proxy.proxy_url}
    return http


def _login(http: requests.Session, base: str) -> None:
    answer = http.post(
        f"{base}/api/v1/auth/login",
        json={"username": "nurse1", "password": PASSWORD, "device_name": "ward-pc"},
        timeout=10,
    )
    answer.raise_for_status()
    http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"


def _batch(count: int = 3) -> dict[str, object]:
    rng = random.Random(uuid.uuid4().int)
    return {"reports": [validate_report(sample_report(rng, i)).export() for i in range(count)]}


@pytest.mark.parametrize("forward", [True, False], ids=["connect-proxy", "reverse-proxy"])
def test_passes_requests_through_both_ways_in(server: RunningServer, proxy: FaultProxy, forward: bool) -> None:
    base = server.base_url if forward else proxy.url
    with _session(proxy, forward=forward) as http:
        _login(http, base)
        answer = http.post(f"{base}/api/v1/reports/batch", json=_batch(), timeout=30)
    assert answer.status_code == 200
    assert {r["status"] for r in answer.json()["results"]} == {"created"}
    assert [(s.method, s.path, s.fault, s.status) for s in proxy.seen] == [
        ("POST", "/api/v1/auth/login", "pass", 200),
        ("POST", "/api/v1/reports/batch", "pass", 200),
    ]


def test_a_server_certificate_the_client_does_not_trust_is_refused(
    server: RunningServer, proxy: FaultProxy
) -> None:
    with requests.Session() as http:  # trusts the server's CA, but not the proxy's hospital CA
        http.trust_env = False
        http.verify = str(server.ca_path)
        with pytest.raises(requests.exceptions.SSLError):
            http.get(f"{proxy.url}/healthz", timeout=10)


def test_injected_status_carries_retry_after_and_never_reaches_the_server(
    server: RunningServer, proxy: FaultProxy
) -> None:
    with _session(proxy, forward=True) as http:
        _login(http, server.base_url)
        before = server.stats()["reports"]
        proxy.plan(status(503, retry_after=7), status(429, retry_after=2))
        for code, retry_after in ((503, "7"), (429, "2")):
            answer = http.post(f"{server.base_url}/api/v1/reports/batch", json=_batch(), timeout=10)
            assert (answer.status_code, answer.headers["Retry-After"]) == (code, retry_after)
        assert http.post(f"{server.base_url}/api/v1/reports/batch", json=_batch(), timeout=30).status_code == 200
    assert server.stats()["reports"] == before + 3  # only the batch that went through


def test_reset_and_stall_mean_the_server_never_saw_the_request(server: RunningServer, proxy: FaultProxy) -> None:
    with _session(proxy, forward=False) as http:
        _login(http, proxy.url)
        before = server.stats()["reports"]
        proxy.plan(RESET, STALL)
        with pytest.raises(requests.exceptions.ConnectionError):
            http.post(f"{proxy.url}/api/v1/reports/batch", json=_batch(), timeout=10)
        with pytest.raises(requests.exceptions.ReadTimeout):
            http.post(f"{proxy.url}/api/v1/reports/batch", json=_batch(), timeout=(5, 0.5))
        assert server.stats()["reports"] == before


@pytest.mark.parametrize(
    "fault",
    [LOSE_RESPONSE, cut_response(after_bytes=20), stall_response(after_bytes=20)],
    ids=["lost", "cut", "stalled"],
)
def test_a_lost_answer_means_the_server_did_store_the_batch_and_a_resend_is_a_duplicate(
    server: RunningServer, proxy: FaultProxy, fault: object
) -> None:
    batch = _batch(4)
    with _session(proxy, forward=False) as http:
        _login(http, proxy.url)
        before = server.stats()["reports"]
        proxy.plan(fault)  # type: ignore[arg-type]
        with pytest.raises(
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
            )
        ):
            http.post(f"{proxy.url}/api/v1/reports/batch", json=batch, timeout=(5, 1))
        assert server.stats()["reports"] == before + 4
        again = http.post(f"{proxy.url}/api/v1/reports/batch", json=batch, timeout=30)
    assert {r["status"] for r in again.json()["results"]} == {"duplicate"}
    assert server.stats()["reports"] == before + 4


def test_unplanned_requests_pass_and_every_request_is_recorded(server: RunningServer, proxy: FaultProxy) -> None:
    proxy.plan(status(500))
    with _session(proxy, forward=False) as http:
        assert http.get(f"{proxy.url}/healthz", timeout=10).status_code == 500
        assert http.get(f"{proxy.url}/healthz", timeout=10).status_code == 200
    assert proxy.pending() == 0
    assert [(s.fault, s.status) for s in proxy.seen] == [("status", 500), ("pass", 200)]


def test_stop_ends_stalled_connections(server: RunningServer) -> None:
    with FaultProxy(server.base_url, server.ca_path) as proxy, _session(proxy, forward=False) as http:
        proxy.plan(STALL)
        with pytest.raises(requests.exceptions.ReadTimeout):
            http.get(f"{proxy.url}/healthz", timeout=(5, 0.3))
    # leaving the block closed the proxy and its stalled connection without hanging the test
