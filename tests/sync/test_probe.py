"""The window's cheap probe of the PSO (``ApiClient.probe``: ``GET /healthz``, no token, short timeouts) against the
real server over TLS, and through the fault proxy for what a restricted network does instead of answering."""

from __future__ import annotations

import socket
import time

import pytest

from pso_desktop.sync.errors import CertificateNotTrusted, ServerBusy, ServerUnreachable
from pso_server.practice import RunningServer
from tests.support.fault_proxy import STALL, FaultProxy, status
from tests.support.sync import make_client


def test_the_pso_answers_the_probe_without_a_token(server: RunningServer) -> None:
    with FaultProxy(server.base_url, server.ca_path) as proxy, make_client(proxy.url, proxy.ca_path) as api:
        api.probe()
        assert [(seen.method, seen.path, seen.status) for seen in proxy.seen] == [("GET", "/healthz", 200)]


def test_a_draining_pso_says_how_long_to_wait(server: RunningServer) -> None:
    server.start_draining()
    with make_client(server.base_url, server.ca_path) as api, pytest.raises(ServerBusy) as busy:
        api.probe()
    assert busy.value.retry_after == server.config.retry_after_seconds


@pytest.mark.parametrize("code", [200, 404, 407])
def test_an_answer_that_is_not_the_psos_is_no_connection(server: RunningServer, code: int) -> None:
    """A proxy's error page or a network's sign-in page: the network is "online", the PSO is not reached."""
    with FaultProxy(server.base_url, server.ca_path) as proxy, make_client(proxy.url, proxy.ca_path) as api:
        proxy.plan(status(code))
        with pytest.raises(ServerUnreachable, match="answers, but not as the PSO server does"):
            api.probe()


def test_a_silent_network_ends_the_probe_within_its_timeout(server: RunningServer) -> None:
    with FaultProxy(server.base_url, server.ca_path) as proxy, make_client(proxy.url, proxy.ca_path) as api:
        proxy.plan(STALL)
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match="did not answer in time"):
            api.probe(timeout=0.5)
        assert time.monotonic() - started < 3


def test_a_closed_port_and_an_untrusted_certificate(server: RunningServer) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed = spare.getsockname()[1]
    with make_client(f"https://127.0.0.1:{closed}", server.ca_path) as api, pytest.raises(ServerUnreachable):
        api.probe()
    # The proxy's own CA is not the one this client trusts: never a connection, a person must act.
    with (
        FaultProxy(server.base_url, server.ca_path) as proxy,
        make_client(proxy.url, server.ca_path) as api,
        pytest.raises(CertificateNotTrusted),
    ):
        api.probe()
