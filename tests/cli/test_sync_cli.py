"""``pso-desktop login`` and ``sync`` as IT scripts run them: the real CLI in a subprocess against the real
reference server over TLS, including a kill -9 in the middle of a bulk upload."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_server.practice import RunningServer
from tests.support.cli import SECRET, Result, assert_clean_failure, login, run_cli, start_cli, status
from tests.support.fault_proxy import PASS, RESET, FaultProxy, stall_response
from tests.support.fault_proxy import status as answer
from tests.support.sync import practice_server

PASSWORD = "nurse account password"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with practice_server(tmp_path / "server", {"alice": PASSWORD}) as running:
        yield running


@pytest.fixture
def profile(pso_home: Path) -> Path:
    assert run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n").code == 0
    return pso_home


def _queue(home: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = "\n".join(json.dumps(validate_report(sample_report(rng, i)).export()) for i in range(count))
    result = run_cli(home, "report", "add", "-", "--submit", "--password-stdin", stdin=f"{SECRET}\n{lines}\n")
    assert result.code == 0, result.err


def _login(home: Path, server: RunningServer, password: str = PASSWORD) -> Result:
    return login(home, server, "alice", password)


def test_login_sync_status_round_trip(profile: Path, server: RunningServer) -> None:
    _queue(profile, 40, seed=1)
    result = _login(profile, server)
    assert result.code == 0, result.err
    assert "Signed in" in result.out
    synced = run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert synced.code == 0, synced.err
    assert "40 report(s) sent" in synced.out
    assert status(profile)["submitted"] == 40
    assert server.stats()["reports"] == 40
    assert PASSWORD not in synced.out + synced.err + result.out + result.err


def test_progress_json_is_one_object_per_line(profile: Path, server: RunningServer) -> None:
    _queue(profile, 30, seed=2)
    assert _login(profile, server).code == 0
    synced = run_cli(profile, "sync", "--progress", "json", "--password-stdin", stdin=SECRET + "\n")
    assert synced.code == 0, synced.err
    events = [json.loads(line) for line in synced.out.splitlines()]
    sending = [e for e in events if e["event"] == "sending"]
    assert sending[-1]["sent"] == sending[-1]["total"] == 30
    assert events[-1]["event"] == "done"


def test_wrong_account_password_and_unreachable_server_fail_cleanly(profile: Path, server: RunningServer) -> None:
    assert_clean_failure(_login(profile, server, password="not the password"))
    assert_clean_failure(run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n"))  # not linked yet
    assert _login(profile, server).code == 0
    _queue(profile, 5, seed=3)
    down = run_cli(
        profile,
        "login",
        "--server",
        "https://127.0.0.1:9",  # nothing listens on the discard port
        "--user",
        "alice",
        "--password-stdin",
        stdin=f"{SECRET}\n{PASSWORD}\n",
    )
    assert_clean_failure(down)
    assert "cannot be reached" in down.err
    assert status(profile)["queued"] == 5


def test_plain_http_and_missing_password_line_are_refused(profile: Path, server: RunningServer) -> None:
    http = run_cli(
        profile,
        "login",
        "--server",
        server.base_url.replace("https", "http"),
        "--user",
        "alice",
        "--password-stdin",
        stdin=f"{SECRET}\n{PASSWORD}\n",
    )
    assert_clean_failure(http)
    assert "https://" in http.err
    no_password = run_cli(
        profile, "login", "--server", server.base_url, "--user", "alice", "--password-stdin", stdin=f"{SECRET}\n"
    )
    assert_clean_failure(no_password)


def test_kill_9_mid_upload_resumes_and_every_report_lands_exactly_once(
    profile: Path, server: RunningServer
) -> None:
    count = 2000
    _queue(profile, count, seed=4)
    assert _login(profile, server).code == 0
    child = start_cli(profile, "sync", "--progress", "json", "--password-stdin")
    assert child.stdout is not None
    for line in child.stdout:
        if json.loads(line)["event"] == "sending":  # the first checkpoint is committed
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    held = server.stats()["reports"]
    assert 0 < held < count, "the kill came too late to interrupt the upload"

    resumed = run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert resumed.code == 0, resumed.err
    assert status(profile) == {**status(profile), "submitted": count, "queued": 0, "sending": 0}
    stats = server.stats()
    assert stats["reports"] == count and stats["revisions"] == count


def test_it_policy_fixes_the_server_and_its_ca(profile: Path, server: RunningServer, tmp_path: Path) -> None:
    policy = tmp_path / "it-policy.json"
    policy.write_text(json.dumps({"pso_server": {"url": server.base_url, "ca_file": str(server.ca_path)}}))
    env = {"PSO_DESKTOP_POLICY": str(policy)}
    _queue(profile, 5, seed=5)
    # No --server and no --ca-file: both come from IT's policy.
    signed_in = run_cli(
        profile, "login", "--user", "alice", "--password-stdin", stdin=f"{SECRET}\n{PASSWORD}\n", **env
    )
    assert signed_in.code == 0, signed_in.err
    other = run_cli(
        profile,
        "login",
        "--server",
        "https://pso.elsewhere.example",
        "--user",
        "alice",
        "--password-stdin",
        stdin=f"{SECRET}\n{PASSWORD}\n",
        **env,
    )
    assert_clean_failure(other)
    assert "IT policy fixes the PSO server" in other.err
    assert run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n", **env).code == 0
    assert server.stats()["reports"] == 5
    # IT moves the workstation to another server: sync asks for a new sign-in and keeps the reports.
    policy.write_text(json.dumps({"pso_server": {"url": "https://pso.elsewhere.example"}}))
    _queue(profile, 2, seed=6)
    moved = run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n", **env)
    assert_clean_failure(moved)
    assert "sign in again" in moved.err
    assert status(profile)["queued"] == 2


def test_login_without_a_server_or_policy_says_what_to_give(profile: Path) -> None:
    result = run_cli(profile, "login", "--user", "alice", "--password-stdin", stdin=f"{SECRET}\n{PASSWORD}\n")
    assert_clean_failure(result)
    assert "--server" in result.err


def _login_through(home: Path, proxy: FaultProxy) -> None:
    """Signs in with the fault proxy as the server (a reverse proxy with the hospital's own CA)."""
    result = run_cli(
        home,
        "login",
        "--server",
        proxy.url,
        "--user",
        "alice",
        "--ca-file",
        str(proxy.ca_path),
        "--password-stdin",
        stdin=f"{SECRET}\n{PASSWORD}\n",
    )
    assert result.code == 0, result.err


def test_sync_waits_out_a_server_busy_for_more_than_six_tries(profile: Path, server: RunningServer) -> None:
    _queue(profile, 10, seed=7)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        _login_through(profile, proxy)
        proxy.plan(PASS, *[answer(503, retry_after=0)] * 9)  # the renewal, then a restart answering 503
        synced = run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n")
        assert proxy.pending() == 0
    assert synced.code == 0, synced.err
    assert "10 report(s) sent" in synced.out
    assert server.stats()["reports"] == 10


@pytest.mark.parametrize("how", ["flag", "policy"])
def test_sync_gives_up_after_its_time_budget_with_one_line(
    profile: Path, server: RunningServer, tmp_path: Path, how: str
) -> None:
    _queue(profile, 5, seed=8)
    policy = tmp_path / "it-policy.json"
    policy.write_text(json.dumps({"sync": {"max_wait_seconds": 2}}))
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        _login_through(profile, proxy)
        proxy.plan(*[RESET] * 10_000)  # the server stays down
        started = time.monotonic()
        if how == "flag":
            down = run_cli(profile, "sync", "--max-wait", "2", "--password-stdin", stdin=SECRET + "\n")
        else:
            down = run_cli(
                profile, "sync", "--password-stdin", stdin=SECRET + "\n", PSO_DESKTOP_POLICY=str(policy)
            )
        took = time.monotonic() - started
    assert_clean_failure(down)
    reason = down.err.strip().splitlines()[-1]  # after the waits it announced on the way
    assert reason.startswith("pso-desktop: ") and "cannot be reached" in reason, down.err
    assert reason.endswith("Still failing after 2 s of retries.")
    assert 2 <= took < 20, took
    assert status(profile)["queued"] == 5


def test_max_wait_must_be_a_number_of_seconds(profile: Path) -> None:
    for bad in ("soon", "-1", "nan", "100000"):
        result = run_cli(profile, "sync", "--max-wait", bad, "--password-stdin", stdin=SECRET + "\n")
        assert_clean_failure(result, code=2)


SLOW_SYNC = ("--max-wait", "600", "--progress", "json", "--password-stdin")


def test_ctrl_c_ends_a_long_wait_at_once_and_keeps_the_queue(profile: Path, server: RunningServer) -> None:
    _queue(profile, 5, seed=9)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        _login_through(profile, proxy)
        proxy.plan(PASS, answer(503, retry_after=300))  # the renewal, then "come back in 5 minutes"
        child = start_cli(profile, "sync", *SLOW_SYNC, stderr=subprocess.PIPE)
        assert child.stdout is not None and child.stderr is not None
        for line in child.stdout:
            event = json.loads(line)
            if event["event"] == "waiting":
                assert event["wait_seconds"] == 300
                break
        started = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
        took = time.monotonic() - started
        err = child.stderr.read().decode()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == 1 and took < 5, (child.returncode, took, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        "pso-desktop: Stopped; the remaining reports stay queued."
    )
    assert status(profile) == {**status(profile), "queued": 5, "sending": 0}


def test_a_second_ctrl_c_quits_at_once_with_a_request_hanging_and_nothing_is_lost(
    profile: Path, server: RunningServer
) -> None:
    _queue(profile, 5, seed=10)
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        _login_through(profile, proxy)
        # The renewal passes; the batch reaches the server, which stores it, but its answer hangs (the client's
        # read timeout is a minute).
        proxy.plan(PASS, stall_response(0))
        child = start_cli(profile, "sync", "--password-stdin", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert child.stderr is not None
        deadline = time.monotonic() + 30
        while server.stats()["reports"] < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.stats()["reports"] == 5  # the batch is on the server; the client waits for its answer
        child.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert child.poll() is None  # the first Ctrl+C waits for the request on its way
        started = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
        took = time.monotonic() - started
        err = child.stderr.read().decode()
        child.stderr.close()
        assert child.returncode == 1 and took < 5, (child.returncode, took, err)
        lines = err.strip().splitlines()
        assert "Traceback" not in err and lines[-2:] == [
            "pso-desktop: stopping after the request on its way; Ctrl+C again to quit now.",
            "pso-desktop: Interrupted; unsent reports stay queued and are sent by the next sync.",
        ]
        # The next sync (the proxy now passes everything) resends the batch whose answer never came: the
        # server's dedupe answers 'duplicate', and each report is held once.
        resumed = run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n")
    assert resumed.code == 0, resumed.err
    assert status(profile) == {**status(profile), "submitted": 5, "queued": 0, "sending": 0}
    assert server.stats()["reports"] == 5 and server.stats()["duplicates_refused"] == 5


def test_a_risk_manager_gets_the_facility_and_it_policy_limits_how_long_closed_ones_stay(
    pso_home: Path, server: RunningServer, tmp_path: Path
) -> None:
    """Issue 12 through the real CLI: alice (a reporter) sends three reports; the risk manager's ``sync`` fetches
    them (not counted as its own in ``status``); another risk manager closes one's review; with IT's policy
    ``facility_reports.keep_closed_days`` at 0 the next sync removes that copy. A policy value out of range is one
    sentence."""
    import uuid

    from pso_server import store

    server.add_user("rm", "risk manager password", role="risk_manager")
    server.add_user("rm2", "risk manager password", role="risk_manager")
    for name in ("alice", "rm"):
        assert run_cli(pso_home, "profile", "create", name, "--password-stdin", stdin=SECRET + "\n").code == 0
    rng = random.Random(12)
    sent = [validate_report(sample_report(rng, i)).export() for i in range(3)]
    lines = "\n".join(json.dumps(r) for r in sent)
    added = run_cli(
        pso_home,
        "report",
        "add",
        "-",
        "--submit",
        "--password-stdin",
        stdin=f"{SECRET}\n{lines}\n",
        PSO_DESKTOP_PROFILE="alice",
    )
    assert added.code == 0, added.err
    login = ["login", "--server", server.base_url, "--ca-file", str(server.ca_path), "--password-stdin"]
    assert (
        run_cli(
            pso_home, *login, "--user", "alice", stdin=f"{SECRET}\n{PASSWORD}\n", PSO_DESKTOP_PROFILE="alice"
        ).code
        == 0
    )
    assert (
        run_cli(pso_home, "sync", "--password-stdin", stdin=SECRET + "\n", PSO_DESKTOP_PROFILE="alice").code == 0
    )
    assert (
        run_cli(
            pso_home, *login, "--user", "rm", stdin=f"{SECRET}\nrisk manager password\n", PSO_DESKTOP_PROFILE="rm"
        ).code
        == 0
    )
    synced = run_cli(pso_home, "sync", "--password-stdin", stdin=SECRET + "\n", PSO_DESKTOP_PROFILE="rm")
    assert synced.code == 0, synced.err
    assert "Facility: 3 report(s) fetched, 0 review record(s) sent or received, 0 copy(ies) removed." in synced.out
    counted = run_cli(
        pso_home, "status", "--json", "--password-stdin", stdin=SECRET + "\n", PSO_DESKTOP_PROFILE="rm"
    )
    assert json.loads(counted.out)["submitted"] == 0  # the copies are not its own reports

    with server.db.transaction() as tx:
        found = store.find_user(tx, "rm2")
        assert found is not None
        change = store.ReviewChange(str(uuid.uuid4()), sent[1]["id"], "field", "state", '"closed"', 0)
        assert store.record_review(tx, change, found[0], time.time()) is not None
    policy = tmp_path / "it-policy.json"
    policy.write_text(json.dumps({"facility_reports": {"keep_closed_days": 0}}))
    kept = run_cli(
        pso_home,
        "sync",
        "--password-stdin",
        stdin=SECRET + "\n",
        PSO_DESKTOP_POLICY=str(policy),
        PSO_DESKTOP_PROFILE="rm",
    )
    assert kept.code == 0, kept.err
    assert "Facility: 0 report(s) fetched, 1 review record(s) sent or received, 1 copy(ies) removed." in kept.out

    policy.write_text(json.dumps({"facility_reports": {"keep_closed_days": -1}}))
    refused = run_cli(
        pso_home,
        "sync",
        "--password-stdin",
        stdin=SECRET + "\n",
        PSO_DESKTOP_POLICY=str(policy),
        PSO_DESKTOP_PROFILE="rm",
    )
    assert_clean_failure(refused)
    assert '"facility_reports" as {"keep_closed_days": N}' in refused.err
