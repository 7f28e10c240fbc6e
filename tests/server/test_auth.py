"""Sign-in, token rotation with its replay of a lost answer, sign-out and failed-login limits, over real TLS."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from pso_server.auth import hash_password
from pso_server.config import KdfParams
from pso_server.practice import RunningServer
from tests.server.support import PASSWORD, Api, ServerFactory
from tests.support.clock import FakeClock

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
REFERENCE = "/api/v1/reference"


def _refresh(api: Api, token: str) -> tuple[int, dict[str, Any]]:
    response = api.post(REFRESH, json={"refresh_token": token})
    return response.status_code, response.json()


def test_login_returns_tokens_and_the_account(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD, role="reporter", facility="St Mary")
    body = api.login("nurse1")
    assert body["user"] == {"username": "nurse1", "role": "reporter", "facility": "St Mary"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].startswith("psoa_") and body["refresh_token"].startswith("psor_")
    assert api.get(REFERENCE, body["access_token"]).status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    wrong = api.post(LOGIN, json={"username": "nurse1", "password": "not the password"})
    unknown = api.post(LOGIN, json={"username": "nobody", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["message"] == unknown.json()["message"]
    assert "password" in wrong.json()["message"]


def test_every_report_endpoint_requires_a_valid_token(api: Api) -> None:
    api.user("nurse1")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/reports/batch", {"json": {"reports": []}}),
        ("GET", "/api/v1/reports/status", {}),
        ("POST", "/api/v1/reports/status/lookup", {"json": {"ids": []}}),
        ("POST", "/api/v1/reports/7c4b7a51-3b7e-4f4e-9a43-2d7e51a0b0a1/status", {"json": {"status": "closed"}}),
        ("GET", REFERENCE, {}),
    ]
    for method, path, kwargs in calls:
        for token in (None, "psoa_not-a-real-token"):
            response = api.request(method, path, token, **kwargs)
            assert response.status_code == 401, (method, path)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert response.json()["error"] == "unauthorized"


def test_access_token_expires_and_refresh_renews_it(api: Api, clock: FakeClock) -> None:
    api.server.add_user("nurse1", PASSWORD)
    tokens = api.login("nurse1")
    clock.advance(901)
    assert api.get(REFERENCE, tokens["access_token"]).status_code == 401
    status, renewed = _refresh(api, tokens["refresh_token"])
    assert status == 200
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert renewed["user"]["username"] == "nurse1"
    assert api.get(REFERENCE, renewed["access_token"]).status_code == 200


def test_a_refresh_token_expires_after_its_lifetime(api: Api, clock: FakeClock) -> None:
    api.server.add_user("nurse1", PASSWORD)
    old = api.login("nurse1", device="old-pc")["refresh_token"]
    fresh = api.login("nurse1", device="new-pc")["refresh_token"]
    lifetime = api.server.config.refresh_token_ttl_seconds
    clock.advance(lifetime - 60)
    assert _refresh(api, fresh)[0] == 200  # still inside its lifetime
    clock.advance(61)
    status, body = _refresh(api, old)
    assert status == 401 and body["error"] == "session_ended"


def test_a_refresh_token_is_not_an_access_token_and_vice_versa(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    tokens = api.login("nurse1")
    assert api.get(REFERENCE, tokens["refresh_token"]).status_code == 401
    assert _refresh(api, tokens["access_token"])[0] == 401


def test_retries_with_the_previous_token_return_the_same_successor_until_it_is_used(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    first = api.login("nurse1")["refresh_token"]
    status, rotated = _refresh(api, first)
    assert status == 200
    # The client lost that answer (and the next one) and retries with the token it still holds: same successor.
    for _ in range(3):
        status, retried = _refresh(api, first)
        assert status == 200
        assert retried["refresh_token"] == rotated["refresh_token"]
        assert api.get(REFERENCE, retried["access_token"]).status_code == 200
    # The successor's first use: from now on the old token is a replay, and the session ends, successor included.
    status, third = _refresh(api, rotated["refresh_token"])
    assert status == 200
    status, body = _refresh(api, first)
    assert status == 401 and body["error"] == "session_ended"
    assert _refresh(api, third["refresh_token"])[0] == 401
    assert api.get(REFERENCE, third["access_token"]).status_code == 401


def test_a_client_killed_before_storing_the_successor_gets_it_again_much_later(api: Api, clock: FakeClock) -> None:
    api.server.add_user("nurse1", PASSWORD)
    first = api.login("nurse1")["refresh_token"]
    status, rotated = _refresh(api, first)  # rotated on the server; the client died before storing the answer
    assert status == 200
    clock.advance(61)  # the old 60 s grace window has long passed...
    status, retried = _refresh(api, first)
    assert status == 200 and retried["refresh_token"] == rotated["refresh_token"]
    clock.advance(3 * 24 * 3600)  # ...and a long weekend offline later, still the same successor
    status, again = _refresh(api, first)
    assert status == 200 and again["refresh_token"] == rotated["refresh_token"]
    assert api.get(REFERENCE, again["access_token"]).status_code == 200
    # Used once, the successor retires its predecessor for good: a later replay is theft.
    status, next_pair = _refresh(api, again["refresh_token"])
    assert status == 200
    clock.advance(61)
    assert _refresh(api, first)[0] == 401
    assert _refresh(api, next_pair["refresh_token"])[0] == 401
    assert api.get(REFERENCE, next_pair["access_token"]).status_code == 401


def test_a_replay_after_the_successor_was_used_ends_the_session(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    first = api.login("nurse1")["refresh_token"]
    _, second = _refresh(api, first)
    status, third = _refresh(api, second["refresh_token"])
    assert status == 200
    assert _refresh(api, first)[0] == 401  # the client had moved on: this is a replay, not a lost answer
    assert _refresh(api, third["refresh_token"])[0] == 401  # the whole device session ended


def test_a_rotated_token_expires_with_its_own_lifetime(api: Api, clock: FakeClock) -> None:
    api.server.add_user("nurse1", PASSWORD)
    first = api.login("nurse1")["refresh_token"]
    assert _refresh(api, first)[0] == 200
    clock.advance(api.server.config.refresh_token_ttl_seconds + 1)
    status, body = _refresh(api, first)
    assert status == 401 and body["error"] == "session_ended"


def test_concurrent_refreshes_with_one_token_agree_on_one_successor(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    first = api.login("nurse1")["refresh_token"]

    def call(_: int) -> tuple[int, dict[str, Any]]:
        with Api(api.server) as own:
            return _refresh(own, first)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(call, range(2)))
    assert [status for status, _ in answers] == [200, 200]
    assert answers[0][1]["refresh_token"] == answers[1][1]["refresh_token"]


def test_logout_revokes_both_tokens(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    tokens = api.login("nurse1")
    response = api.post(LOGOUT, tokens["access_token"])
    assert response.status_code == 200 and response.json() == {"signed_out": True}
    assert api.get(REFERENCE, tokens["access_token"]).status_code == 401
    assert _refresh(api, tokens["refresh_token"])[0] == 401
    again = api.post(LOGOUT, tokens["access_token"])
    assert again.json() == {"signed_out": False}


def test_logout_with_only_the_refresh_token(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    tokens = api.login("nurse1")
    response = api.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert response.json() == {"signed_out": True}
    assert api.get(REFERENCE, tokens["access_token"]).status_code == 401


def test_logout_ends_only_that_device_session(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    ward = api.login("nurse1", device="ward-pc")
    office = api.login("nurse1", device="office-pc")
    api.post(LOGOUT, ward["access_token"])
    assert api.get(REFERENCE, office["access_token"]).status_code == 200


def test_failed_logins_are_limited_per_account(api: Api, clock: FakeClock) -> None:
    api.server.add_user("nurse1", PASSWORD)
    for _ in range(5):
        assert api.post(LOGIN, json={"username": "nurse1", "password": "guess-guess"}).status_code == 401
    # Locked: even the right password is not checked until the window has passed.
    locked = api.post(LOGIN, json={"username": "nurse1", "password": PASSWORD})
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 900
    assert locked.json()["error"] == "too_many_attempts"
    clock.advance(901)
    assert api.post(LOGIN, json={"username": "nurse1", "password": PASSWORD}).status_code == 200


def test_guesses_sent_all_at_once_are_limited_too(make_server: ServerFactory) -> None:
    # A KDF slow enough (tens of ms) that parallel guesses overlap while their passwords are being checked.
    with make_server(kdf=KdfParams(time_cost=2, memory_kib=32 * 1024, parallelism=1)) as server:
        server.add_user("nurse1", PASSWORD)

        def guess(n: int) -> int:
            with Api(server) as own:
                return own.post(LOGIN, json={"username": "nurse1", "password": f"guess-{n}"}).status_code

        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(guess, range(20)))
    assert codes.count(401) <= server.config.limits.login_failures_per_account
    assert codes.count(429) == len(codes) - codes.count(401)


def test_failed_logins_are_limited_per_client_address(make_server: ServerFactory) -> None:
    with make_server(login_failures_per_address=4) as server, Api(server) as api:
        server.add_user("nurse1", PASSWORD)
        for n in range(4):
            api.post(LOGIN, json={"username": f"guess{n}", "password": "guess-guess"})
        refused = api.post(LOGIN, json={"username": "nurse1", "password": PASSWORD})
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1


def test_a_successful_login_clears_the_account_count(api: Api) -> None:
    api.server.add_user("nurse1", PASSWORD)
    for _ in range(4):
        api.post(LOGIN, json={"username": "nurse1", "password": "guess-guess"})
    api.login("nurse1")
    for _ in range(4):
        api.post(LOGIN, json={"username": "nurse1", "password": "guess-guess"})
    api.login("nurse1")


def test_the_database_holds_no_password_or_token_in_clear(api: Api, server: RunningServer) -> None:
    api.server.add_user("nurse1", PASSWORD)
    tokens = api.login("nurse1")
    _refresh(api, tokens["refresh_token"])
    with server.db.reader() as tx:
        (password_hash,) = tx.one("SELECT password_hash FROM users WHERE username = 'nurse1'") or ("",)
        rows = tx.all("SELECT token_hash FROM access_tokens") + tx.all("SELECT token_hash FROM refresh_tokens")
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash
    stored = {row[0] for row in rows}
    assert stored and tokens["access_token"] not in stored and tokens["refresh_token"] not in stored


def test_production_password_hash_is_memory_hard_argon2id() -> None:
    encoded = hash_password("a long enough password", KdfParams())
    assert encoded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_the_server_speaks_only_verified_tls(server: RunningServer) -> None:
    with requests.Session() as plain:
        plain.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(f"{server.base_url}/healthz", verify=True, timeout=10)  # the system trust store
        http_url = server.base_url.replace("https://", "http://")
        with pytest.raises(requests.exceptions.ConnectionError):  # plain HTTP gets no answer at all
            plain.get(f"{http_url}/healthz", timeout=10)
