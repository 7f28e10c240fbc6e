"""Helpers for server tests: an HTTP client that talks to the real server over TLS, and a test clock."""

from __future__ import annotations

import base64
import io
import json
import sys
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import requests

from pso_server.cli import main
from pso_server.practice import RunningServer
from pso_server.sealing import seal

PASSWORD = "correct horse battery staple"

ServerFactory = Callable[..., AbstractContextManager[RunningServer]]
"""The ``make_server`` fixture: keyword arguments override Limits or ServerConfig fields."""


class Api:
    """A requests session pinned to the test CA. ``trust_env=False`` because requests otherwise lets
    REQUESTS_CA_BUNDLE override ``verify`` (and proxies from the environment would apply)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(server.ca_path)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, token, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, token, **kwargs)

    def login(self, username: str, password: str = PASSWORD, device: str = "ward-pc") -> dict[str, Any]:
        response = self.post(
            "/api/v1/auth/login", json={"username": username, "password": password, "device_name": device}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def user(self, username: str, *, role: str = "reporter", facility: str = "General Hospital") -> str:
        """Creates an account and signs it in; returns its access token."""
        self.server.add_user(username, PASSWORD, role=role, facility=facility)
        token: str = self.login(username)["access_token"]
        return token

    def batch(
        self, token: str, reports: list[Any], owner_keys: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"reports": reports}
        if owner_keys is not None:
            body["owner_keys"] = owner_keys
        response = self.post("/api/v1/reports/batch", token, json=body)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def device_credential(self, token: str, device: str = "ward-pc agent") -> dict[str, Any]:
        """A device credential for the account signed in with ``token``: {"credential_id", "token", "account"}."""
        response = self.post("/api/v1/auth/device-credential", token, json={"device_name": device})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def sealed_post(self, device_token: str | None, envelopes: list[dict[str, Any]]) -> requests.Response:
        headers = {"Authorization": f"Device {device_token}"} if device_token else {}
        return self.session.post(
            self.url("/api/v1/sealed/batch"), json={"envelopes": envelopes}, headers=headers, timeout=30
        )

    def sealed(self, device_token: str, envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.sealed_post(device_token, envelopes)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def sealing_key(self) -> dict[str, Any]:
        response = self.get("/api/v1/sealing-key")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def statuses(self, token: str, since: str | None = None) -> dict[str, Any]:
        params = {"since": since} if since else {}
        response = self.get("/api/v1/reports/status", token, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def envelope(
    key: dict[str, Any], report: dict[str, Any], account: str | None, owner_key: str | None = None
) -> dict[str, Any]:
    """What a client puts in its spool and uploads: ``report`` sealed for ``key`` (the /sealing-key answer) as
    docs/sealed-outbox.md says, with a new envelope id."""
    content: dict[str, Any] = {"v": 1, "account": account, "report": report}
    if owner_key is not None:
        content["owner_key"] = owner_key
    sealed = seal(json.dumps(content).encode("utf-8"), base64.b64decode(key["public_key"]))
    return {"envelope_id": str(uuid.uuid4()), "key_id": key["key_id"], "sealed": base64.b64encode(sealed).decode()}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str, str]:
    """Runs ``pso-server`` in-process with ``stdin`` as standard input; returns (exit code, stdout, stderr)."""
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err
