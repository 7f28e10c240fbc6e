"""``pso-server`` commands: exit codes and messages, add-user/set-status/stats on both backends, the demo,
and the SIGTERM drain of a real ``serve`` process."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from pso_desktop.domain.samples import sample_report
from pso_server.tls import TlsFiles
from tests.server.support import PASSWORD, Api, ServerFactory, run_cli

CLI = [sys.executable, "-m", "pso_server.cli"]


def _session(ca: str | Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca)
    return session


def test_add_user_then_sign_in(
    make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        ["add-user", "nurse1", "--role", "reporter", "--facility", "St Mary", "--password-stdin", "--db", db_url],
        capsys,
        stdin=PASSWORD + "\n",
    )
    assert (code, err) == (0, "")
    assert "nurse1" in out and PASSWORD not in out
    with make_server() as server, Api(server) as api:
        assert api.login("nurse1")["user"]["facility"] == "St Mary"


def test_add_user_refusals(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["add-user", "nurse1", "--role", "reporter", "--db", db_url], capsys)
    assert code == 2 and "--password-stdin" in err
    code, _, err = run_cli(
        ["add-user", "nurse1", "--role", "reporter", "--password-stdin", "--db", db_url], capsys, stdin="short\n"
    )
    assert code == 1 and err.count("\n") == 1 and "at least 10 characters" in err
    argv = ["add-user", "nurse1", "--role", "reporter", "--password-stdin", "--db", db_url]
    assert run_cli(argv, capsys, stdin=PASSWORD + "\n")[0] == 0
    code, _, err = run_cli(argv, capsys, stdin=PASSWORD + "\n")
    assert code == 1 and "already exists" in err and "Traceback" not in err
    code, _, err = run_cli(["add-user", "x", "--role", "admin", "--password-stdin"], capsys)
    assert code == 2


def test_stats_and_set_status(make_server: ServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(3)
    reports = [sample_report(rng, n) for n in range(3)]
    with make_server() as server, Api(server) as api:
        token = api.user("nurse1")
        results = api.batch(token, reports)
        api.batch(token, reports[:2])
        code, out, _ = run_cli(["stats", "--json", "--db", db_url], capsys)
        assert code == 0
        assert json.loads(out) == {
            "reports": 3,
            "revisions": 3,
            "duplicates_refused": 2,
            "rejected": 0,
            "conflicts": 0,
            "stale": 0,
        }
        code, out, _ = run_cli(
            ["set-status", results[0]["server_ref"], "closed", "--note", "Done.", "--db", db_url], capsys
        )
        assert code == 0 and results[0]["server_ref"] in out
        changes = api.statuses(token)["changes"]
        assert [(c["id"], c["status"], c["note"]) for c in changes[-1:]] == [(reports[0]["id"], "closed", "Done.")]
        code, _, err = run_cli(["set-status", "PSO-2026-999999", "closed", "--db", db_url], capsys)
        assert code == 1 and "No report" in err


def test_storage_failures_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for url in (f"{tmp_path}/missing/dir/x.db", "postgresql://nobody:secret@127.0.0.1:9/none", "mysql://x/y"):
        code, _, err = run_cli(["stats", "--db", url], capsys)
        assert code == 1, url
        assert err.count("\n") == 1 and "Traceback" not in err and "secret" not in err


def test_serve_refuses_plain_http_except_explicit_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["serve"], capsys)
    assert code == 2 and "HTTPS is required" in err
    code, _, err = run_cli(["serve", "--insecure-loopback", "--host", "0.0.0.0"], capsys)
    assert code == 2 and "loopback" in err
    code, _, err = run_cli(["serve", "--insecure-loopback", "--workers", "0"], capsys)
    assert code == 2 and "--workers must be 1 or more" in err
    code, _, err = run_cli(["serve", "--tls-cert", "cert.pem"], capsys)
    assert code == 2 and "both" in err
    code, _, err = run_cli(["serve", "--tls-cert", "nope.pem", "--tls-key", "nope.pem"], capsys)
    assert code == 1 and "does not exist" in err


def _healthz(session: requests.Session, url: str, wanted: int, timeout: float = 20.0) -> requests.Response:
    """Polls /healthz until it answers ``wanted`` (connection refusals while starting are retried)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = session.get(f"{url}/healthz", timeout=5)
            if response.status_code == wanted:
                return response
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"/healthz did not answer {wanted} within {timeout} s")
        time.sleep(0.1)


@contextmanager
def _cli_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Starts ``pso-server ARGS`` and yields it with its first output line; killed afterwards if still up."""
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.readline()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_sigterm_drains_with_503_then_exits_cleanly(tls_files: TlsFiles, tmp_path: Path) -> None:
    serve = [
        "serve",
        "--port",
        "0",
        "--db",
        str(tmp_path / "served.db"),
        "--drain-seconds",
        "2",
    ]
    tls = ["--tls-cert", str(tls_files.server_cert), "--tls-key", str(tls_files.server_key)]
    token, phi = "psoa_secret-token-value", "Jane Roe MRN 99887766"
    with _cli_process(*serve, *tls) as (proc, line), _session(tls_files.ca_cert) as session:
        assert line.startswith("PSO server listening on https://127.0.0.1:"), line
        url = line.split()[4]
        _healthz(session, url, 200)
        sent = session.post(
            f"{url}/api/v1/reports/batch",
            json={"reports": [{"narrative": phi}]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert sent.status_code == 401
        proc.send_signal(signal.SIGTERM)
        draining = _healthz(session, url, 503, timeout=5)
        assert draining.headers["Retry-After"] == "5"
        assert draining.json()["error"] == "draining"
        assert proc.wait(timeout=15) == 0
        assert proc.stdout is not None and proc.stderr is not None
        log = proc.stdout.read() + proc.stderr.read()
    # The access log (on by default, on standard output) names the request, never its headers or body.
    assert '"POST /api/v1/reports/batch HTTP/1.1" 401' in log
    assert token not in log and "secret-token" not in log and "Jane" not in log


def test_demo_gives_a_working_tls_server_in_one_command(server_home: Path) -> None:
    with _cli_process("demo", "--port", "0", "--json") as (proc, line):
        details = json.loads(line)
        assert details["url"].startswith("https://127.0.0.1:")
        assert Path(details["ca_file"]).is_relative_to(server_home)
        demo = details["accounts"]["demo"]
        with _session(details["ca_file"]) as session:
            _healthz(session, details["url"], 200)
            login = session.post(
                f"{details['url']}/api/v1/auth/login",
                json={"username": "demo", "password": demo["password"]},
                timeout=10,
            )
            assert login.status_code == 200
            token = login.json()["access_token"]
            report = sample_report(random.Random(1))
            sent = session.post(
                f"{details['url']}/api/v1/reports/batch",
                json={"reports": [report]},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert sent.json()["results"][0]["status"] == "created"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def test_demo_refuses_a_busy_port(server_home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([*CLI, "demo", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Cannot listen" in done.stderr


def test_set_units_replaces_the_reference_list(
    make_server: ServerFactory, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    units_csv = tmp_path / "units.csv"
    units_csv.write_text("code,name\n3N-CARD,3 North Cardiology\nED,Emergency Department\n", encoding="utf-8")
    code, out, err = run_cli(["set-units", str(units_csv), "--db", db_url], capsys)
    assert (code, err) == (0, "") and "2 units" in out
    with make_server() as server, Api(server) as api:
        token = api.user("nurse1")
        units = api.get("/api/v1/reference", token).json()["units"]
        assert units == [
            {"code": "3N-CARD", "name": "3 North Cardiology"},
            {"code": "ED", "name": "Emergency Department"},
        ]
    units_json = tmp_path / "units.json"
    for bad in ('[{"code": "ED"}]', '[{"code": "ED", "name": "A"}, {"code": "ED", "name": "B"}]', "[]", "{"):
        units_json.write_text(bad, encoding="utf-8")
        code, _, err = run_cli(["set-units", str(units_json), "--db", db_url], capsys)
        assert code == 1 and err.count("\n") == 1, bad
    code, _, err = run_cli(["set-units", str(tmp_path / "missing.csv"), "--db", db_url], capsys)
    assert code == 1 and "Cannot read" in err


def test_a_newer_database_is_refused_untouched(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["stats", "--db", db_url], capsys)[0] == 0  # creates the schema
    from pso_server.store import Database

    db = Database(db_url)
    with db.transaction() as tx:
        tx.execute("UPDATE schema_meta SET value = '99' WHERE key = 'version'")
    db.close()
    code, _, err = run_cli(["stats", "--db", db_url], capsys)
    assert code == 1 and "newer pso-server" in err and err.count("\n") == 1


def test_insecure_loopback_serves_plain_http_on_loopback_only(tmp_path: Path) -> None:
    serve = ["serve", "--port", "0", "--insecure-loopback", "--db", str(tmp_path / "dev.db"), "--no-access-log"]
    with _cli_process(*serve) as (proc, line), requests.Session() as session:
        assert line.startswith("PSO server listening on http://127.0.0.1:"), line
        session.trust_env = False
        assert _healthz(session, line.split()[4], 200).json()["status"] == "ok"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
