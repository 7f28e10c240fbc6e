"""Issue 9, item 7: one person cannot lock out a hospital.

The attack: 20 failed sign-ins with made-up names from one address (a whole hospital behind one NAT or proxy)
locked every user behind that address out for 15 minutes. Now the per-address limit holds back unknown devices
only; an account on a device it signed in from before (it presents its device token) signs in at once. Behind a
load balancer the client's address comes from X-Forwarded-For, but only when the peer is a configured proxy.
"""

from __future__ import annotations

from typing import Any

import pytest

from pso_server.auth import token_hash
from pso_server.proxies import TrustedProxies, parse_networks
from tests.server.support import PASSWORD, Api, ServerFactory, run_cli
from tests.support.clock import FakeClock

LOGIN = "/api/v1/auth/login"
REFERENCE = "/api/v1/reference"


def _login(api: Api, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    headers = extra.pop("headers", {})
    return api.post(LOGIN, json={"username": username, "password": password, **extra}, headers=headers)


def _flood(api: Api, count: int = 20, headers: dict[str, str] | None = None) -> None:
    for n in range(count):
        made_up = _login(api, f"made-up-{n}", "not the password", headers=headers or {})
        assert made_up.status_code in (401, 429)


def test_guesses_with_made_up_names_do_not_lock_out_a_known_account_on_a_known_device(
    make_server: ServerFactory, clock: FakeClock
) -> None:
    with make_server() as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        server.add_user("nurse2", PASSWORD)
        first = _login(api, "nurse1", device_name="ward-pc")
        assert first.status_code == 200
        device = first.json()["device_token"]
        assert device.startswith("psod_")

        _flood(api, 25)  # from the same address: the attacker shares the hospital's NAT

        # The known account on its known device: at once, and the device stays known (same token back).
        again = _login(api, "nurse1", device_token=device)
        assert again.status_code == 200, again.text
        assert again.json()["device_token"] == device
        assert api.get(REFERENCE, again.json()["access_token"]).status_code == 200
        # An unknown device (or another account's device token) behind that address is held back.
        for extra in ({}, {"device_token": "psod_made-up"}):
            held = _login(api, "nurse2", **extra)
            assert held.status_code == 429 and 1 <= int(held.headers["Retry-After"]) <= 900
        assert _login(api, "nurse2", device_token=device).status_code == 429  # nurse1's device is not nurse2's
        clock.advance(901)
        assert _login(api, "nurse2").status_code == 200


def test_a_known_device_has_a_bucket_of_its_own_and_the_account_limit_still_holds_elsewhere(
    make_server: ServerFactory,
) -> None:
    with make_server() as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        device = _login(api, "nurse1").json()["device_token"]
        # Guesses at nurse1 from unknown devices lock nurse1 there ...
        for _ in range(5):
            assert _login(api, "nurse1", "guess-guess").status_code == 401
        assert _login(api, "nurse1").status_code == 429
        # ... but not on nurse1's own device.
        assert _login(api, "nurse1", device_token=device).status_code == 200
        # Guesses with the device token itself (a stolen profile) are limited per device.
        for _ in range(5):
            assert _login(api, "nurse1", "guess-guess", device_token=device).status_code == 401
        assert _login(api, "nurse1", device_token=device).status_code == 429


def test_a_password_change_or_revoked_sessions_make_devices_unknown(
    make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_server(login_failures_per_address=3) as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        device = _login(api, "nurse1").json()["device_token"]
        with server.db.reader() as tx:
            stored = tx.all("SELECT token_hash FROM known_devices")
        assert stored == [(token_hash(device),)]  # only its hash is kept
        code, _out, _err = run_cli(["revoke-sessions", "nurse1", "--db", db_url], capsys)
        assert code == 0
        _flood(api, 3)
        assert _login(api, "nurse1", device_token=device).status_code == 429


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(make_server: ServerFactory) -> None:
    # The test client connects from 127.0.0.1, which plays the hospital's load balancer here.
    with make_server(login_failures_per_address=3, trusted_proxies=("127.0.0.1",)) as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        _flood(api, 3, headers={"X-Forwarded-For": "198.51.100.7"})  # one client behind the balancer
        blocked = _login(api, "nurse1", headers={"X-Forwarded-For": "198.51.100.7"})
        assert blocked.status_code == 429
        # Another client behind the same balancer is not held back by the first one's failures; a forged
        # entry left of the proxy's own does not change who the client is.
        assert _login(api, "nurse1", headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 200
        forged = _login(api, "nurse1", headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.7"})
        assert forged.status_code == 429


@pytest.mark.parametrize("trusted", [(), ("10.9.9.9",)], ids=["default", "another-proxy"])
def test_x_forwarded_for_from_anyone_else_is_ignored(make_server: ServerFactory, trusted: tuple[str, ...]) -> None:
    with make_server(login_failures_per_address=3, trusted_proxies=trusted) as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        # The peer is not a trusted proxy: the header is the client's own say-so, so varying it does not
        # spread the guesses over many addresses.
        for n in range(3):
            _login(api, f"made-up-{n}", "x" * 10, headers={"X-Forwarded-For": f"192.0.2.{n}"})
        assert _login(api, "nurse1", headers={"X-Forwarded-For": "192.0.2.200"}).status_code == 429


def test_the_request_rate_bucket_follows_the_same_address(make_server: ServerFactory) -> None:
    limits = {"requests_per_second": 0.01, "request_burst": 2}
    with make_server(trusted_proxies=("127.0.0.1",), **limits) as server, Api(server) as api:
        for _ in range(2):
            assert api.get(REFERENCE, headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 401
        assert api.get(REFERENCE, headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 429
        assert api.get(REFERENCE, headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 401


def test_which_hop_is_the_client() -> None:
    proxies = TrustedProxies(parse_networks(["10.0.0.0/24", "fd00::1"]))
    assert proxies.client("10.0.0.5", ["198.51.100.7"]) == "198.51.100.7"
    assert proxies.client("10.0.0.5", ["203.0.113.1, 198.51.100.7, 10.0.0.9"]) == "198.51.100.7"
    assert proxies.client("10.0.0.5", ["203.0.113.1", "198.51.100.7"]) == "198.51.100.7"  # two headers, in order
    assert proxies.client("10.0.0.5", ["Jane Doe"]) == "10.0.0.5"  # not an address: the hop before it
    assert proxies.client("10.0.0.5", []) == "10.0.0.5"
    assert proxies.client("192.0.2.1", ["198.51.100.7"]) == "192.0.2.1"  # the peer is no proxy
    assert proxies.client("fd00::1", ["::ffff:198.51.100.7"]) == "198.51.100.7"
    assert TrustedProxies().client("10.0.0.5", ["198.51.100.7"]) == "10.0.0.5"


def test_serve_refuses_a_trusted_proxy_that_is_not_an_address(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(["serve", "--insecure-loopback", "--trusted-proxy", "proxy.hospital"], capsys)
    assert code == 2 and "trusted proxy must be an IP address" in err and "proxy.hospital" not in err


def test_names_and_tokens_no_account_can_have_are_a_wrong_sign_in_not_a_500(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    for body in (
        {"username": "nurse\ud800", "password": "x" * 10},
        {"username": "nurse\u0000one", "password": "x" * 10},
        {"username": "nurse1", "password": "x" * 10, "device_token": "psod_\udfff"},
    ):
        assert api.post(LOGIN, json=body).status_code in (401, 422)  # a refusal, never a 500
    odd_device = api.post(LOGIN, json={"username": "nurse1", "password": PASSWORD, "device_name": "ward\x00pc"})
    assert odd_device.status_code == 200
