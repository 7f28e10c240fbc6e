"""Issue 9, item 9: the server scales out. Two real ``pso-server serve`` commands over TLS on loopback (one of
them with ``--workers 2``) share one PostgreSQL database, as machines behind one load balancer would, and every guarantee holds across them:
the same reports sent to both at once are stored once, each answer has one result per report (one `created`
in all, the rest `duplicate`, the same case number everywhere); a refresh token rotated on one server is
retried and then replayed on the other (same successor, then theft ends the session); failed sign-ins on both
count together; and a reporter following the status feed through both, while a risk manager sets statuses
through both at once, sees every change exactly once, in cursor order."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from pso_desktop.domain.samples import sample_report
from pso_server.tls import TlsFiles
from tests.server.support import PASSWORD, run_cli
from tests.support.postgres import POSTGRES_ENV, postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
CLI = [sys.executable, "-m", "pso_server.cli"]
REFRESH = "/api/v1/auth/refresh"
BATCH = "/api/v1/reports/batch"


@pytest.fixture
def shared_db() -> Iterator[str]:
    import os

    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"needs PostgreSQL: set {POSTGRES_ENV}=postgresql://user:pw@host/db")
    with postgres_schema(base) as url:
        yield url


class Node:
    """One ``pso-server serve`` process and a TLS client pinned to the test CA."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str, ca: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.local = threading.local()
        self.ca = ca

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self.local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.verify = str(self.ca)
            self.local.session = session
        return session

    def post(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._session().post(self.base_url + path, headers=headers, timeout=60, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._session().get(self.base_url + path, headers=headers, timeout=60, **kwargs)

    def login(self, username: str, password: str = PASSWORD, device: str = "ward-pc") -> requests.Response:
        body = {"username": username, "password": password, "device_name": device}
        return self.post("/api/v1/auth/login", json=body)


@contextmanager
def _serve(db_url: str, tls: TlsFiles, workers: int) -> Iterator[Node]:
    args = ["serve", "--port", "0", "--db", db_url, "--no-access-log", "--drain-seconds", "0"]
    args += ["--workers", str(workers)]
    args += ["--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key)]
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PSO server listening on https://127.0.0.1:"), (
            line,
            proc.stderr and proc.stderr.read(),
        )
        if workers > 1:  # the command's own process forked its workers, which serve the one socket
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            assert len(children) == workers, children
        yield Node(proc, line.split()[4], tls.ca_cert)
    finally:
        proc.terminate()  # SIGTERM: a drain (0 s here), then a clean exit, workers included
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            raise
    assert proc.returncode == 0, err


@pytest.fixture
def two_nodes(shared_db: str, tls_files: TlsFiles, capsys: pytest.CaptureFixture[str]) -> Iterator[list[Node]]:
    for name, role in (("nurse1", "reporter"), ("rm1", "risk_manager")):
        code, _, err = run_cli(
            ["add-user", name, "--role", role, "--password-stdin", "--db", shared_db],
            capsys,
            stdin=PASSWORD + "\n",
        )
        assert code == 0, err
    with ExitStack() as stack:
        # One server with two worker processes (--workers 2) and one plain one: three processes in all.
        yield [stack.enter_context(_serve(shared_db, tls_files, workers)) for workers in (2, 1)]


def _token(node: Node, username: str) -> str:
    response = node.login(username)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_the_same_reports_sent_to_both_servers_at_once_are_stored_once(
    two_nodes: list[Node], shared_db: str
) -> None:
    a, b = two_nodes
    tokens = {a: _token(a, "nurse1"), b: _token(b, "nurse1")}
    rng = random.Random(9)
    reports = [sample_report(rng, i) for i in range(60)]
    ids = {r["id"] for r in reports}

    def send(node: Node) -> list[dict[str, Any]]:
        response = node.post(BATCH, tokens[node], json={"reports": reports})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    with ThreadPoolExecutor(6) as pool:  # three copies of the batch through each server, all at once
        answers = list(pool.map(send, [a, b, a, b, a, b]))
    outcomes: Counter[str] = Counter()
    refs: dict[str, set[str]] = {}
    for results in answers:
        assert sorted(r["id"] for r in results) == sorted(ids)  # one result per report
        for r in results:
            outcomes[r["status"]] += 1
            refs.setdefault(r["id"], set()).add(r["server_ref"])
    assert outcomes == {"created": len(ids), "duplicate": 5 * len(ids)}, outcomes
    assert all(len(found) == 1 for found in refs.values())  # one case number per report, whichever answered
    assert len({next(iter(found)) for found in refs.values()}) == len(ids)
    with psycopg.connect(shared_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM reports").fetchone() == (len(ids),)
        assert conn.execute("SELECT count(*) FROM report_revisions").fetchone() == (len(ids),)
    # Dedupe is forever, on either server: sent again later, every one is a duplicate.
    for node in (a, b):
        assert {r["status"] for r in send(node)} == {"duplicate"}


def test_token_rotation_and_reuse_detection_hold_across_servers(two_nodes: list[Node]) -> None:
    a, b = two_nodes
    first = a.login("nurse1")
    assert first.status_code == 200
    old = first.json()["refresh_token"]
    rotated = a.post(REFRESH, json={"refresh_token": old})
    assert rotated.status_code == 200
    successor = rotated.json()["refresh_token"]
    # The client lost that answer and retries on the other server: the same successor.
    again = b.post(REFRESH, json={"refresh_token": old})
    assert again.status_code == 200 and again.json()["refresh_token"] == successor
    # The successor's first use (on B) retires the old token; a replay on A is theft and ends the session.
    third = b.post(REFRESH, json={"refresh_token": successor})
    assert third.status_code == 200
    replay = a.post(REFRESH, json={"refresh_token": old})
    assert replay.status_code == 401 and replay.json()["error"] == "session_ended"
    assert b.post(REFRESH, json={"refresh_token": third.json()["refresh_token"]}).status_code == 401
    assert a.get("/api/v1/reference", third.json()["access_token"]).status_code == 401


def test_failed_sign_ins_on_both_servers_count_together(two_nodes: list[Node]) -> None:
    a, b = two_nodes
    for i in range(5):  # the per-account limit (5), split between the two servers
        assert (a if i % 2 else b).login("nurse1", "guess-guess", device="unknown-pc").status_code == 401
    for node in (a, b):
        assert node.login("nurse1", device="unknown-pc").status_code == 429


def test_the_status_feed_misses_nothing_while_both_servers_write(two_nodes: list[Node]) -> None:
    a, b = two_nodes
    nurse = {a: _token(a, "nurse1"), b: _token(b, "nurse1")}
    rm = {a: _token(a, "rm1"), b: _token(b, "rm1")}
    rng = random.Random(99)
    reports = [sample_report(rng, i) for i in range(20)]
    reports = [r for r in reports if not r["reporter"].get("anonymous")]
    assert a.post(BATCH, nurse[a], json={"reports": reports}).status_code == 200
    statuses = ["under_review", "more_info_requested", "closed"]
    jobs = [(node, r["id"], s) for s in statuses for r in reports for node in ([a] if hash(r["id"]) % 2 else [b])]
    seen: list[int] = []
    done = threading.Event()
    cursor: str | None = None

    def poll(node: Node) -> None:
        nonlocal cursor
        params = {"since": cursor} if cursor else {}
        response = node.get("/api/v1/reports/status", nurse[node], params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(1 for _ in body["changes"])
        cursor = body["cursor"]

    failed: list[BaseException] = []

    def reader() -> None:
        turn = 0
        try:
            while not done.is_set():
                poll((a, b)[turn % 2])
                turn += 1
        except BaseException as exc:  # reported by the test below, not lost with the thread
            failed.append(exc)

    def write(job: tuple[Node, str, str]) -> None:
        node, report_id, status = job
        response = node.post(f"/api/v1/reports/{report_id}/status", rm[node], json={"status": status})
        assert response.status_code == 200, response.text

    polling = threading.Thread(target=reader)
    polling.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(write, jobs))
    finally:
        done.set()
        polling.join(60)
    assert not failed, failed
    poll(a)
    poll(b)
    received = a.get("/api/v1/reports/status", nurse[a]).json()["changes"]
    # Every change the feed holds was seen exactly once by the reader that followed its cursor through both.
    assert len(seen) == len(received) >= len(jobs)
