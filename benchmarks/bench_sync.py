"""Bulk upload: the sync engine sending realistic reports from the encrypted store to the reference server over
loopback TLS, against (a) a bare client that posts the same reports as pre-built batch bodies with no client
logic, and (b) the same engine sending one report per request.

    .venv/bin/python benchmarks/bench_sync.py [--count 10000] [--rounds 3] [--single 300] [--no-sealed]

DESIGN.md's goals: the engine reaches at least half the bare client's throughput (ratio >= 0.5) and at least
20x the throughput of one request per report. The sealed outbox (issue 7): the agent sending the same reports
sealed, from the spool, with the device credential (``pso-desktop agent --once``'s code) against the same bare
client; goal at least 0.5x too. Every round starts from a fresh server database (so every report
is ``created``) and a freshly queued outbox; bare and engine rounds alternate so machine drift hits both, and
ratios are of medians. The server runs as ``pso-server serve`` in its own process (production settings, SQLite), so
the figures include the server's own work; both sides pay it alike. The data is fictitious and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from keyring.backends import fail
from server_process import PASSWORD, server_process  # benchmarks/ is the script's folder

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.security.kdf import KdfParams
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services import syncing
from pso_desktop.services.workstation import Session, Workstation
from pso_desktop.sync.engine import Progress
from pso_desktop.sync.transport import ServerSettings

SECRET = "benchmark profile secret"
BATCH = 500


@contextmanager
def _queued_profile(folder: Path, reports: list[dict[str, Any]]) -> Iterator[Session]:
    """A fresh encrypted profile with ``reports`` submitted (frozen and queued)."""
    # The password-protected key file instead of an OS keyring, and a cheap KDF: neither is what is measured.
    keys = ProfileKeys(folder, backend=fail.Keyring(), kdf=KdfParams(1024, 1, 1))  # type: ignore[no-untyped-call]
    workstation = Workstation(folder, keys=keys)
    workstation.create_profile("bench", SECRET)
    with workstation.session("bench", SECRET) as session:
        session.add_reports(reports, submit=True)
        yield session


def bare_upload(folder: Path, bodies: list[bytes]) -> float:
    """Seconds for a plain requests session to post pre-built batch bodies (login excluded)."""
    with server_process(folder) as server, requests.Session() as http:
        http.trust_env = False
        http.verify = str(server.ca_path)
        answer = http.post(
            f"{server.base_url}/api/v1/auth/login", json={"username": "bench", "password": PASSWORD}, timeout=30
        )
        answer.raise_for_status()
        http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        http.headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        for body in bodies:
            http.post(f"{server.base_url}/api/v1/reports/batch", data=body, timeout=120).raise_for_status()
        elapsed = time.perf_counter() - started
    assert server.reports_held() == sum(len(json.loads(b)["reports"]) for b in bodies)
    return elapsed


def engine_upload(folder: Path, reports: list[dict[str, Any]], batch_reports: int) -> tuple[float, float]:
    """Seconds for ``pso-desktop sync``'s engine to empty an outbox of ``reports`` (sign-in excluded): the
    upload (token refresh included, up to the last batch's checkpoint), and the whole run (with the status
    pull and the reference fetch that follow)."""
    with server_process(folder / "server") as server, _queued_profile(folder / "client", reports) as session:
        syncing.login(session, ServerSettings(server.base_url, ca_file=str(server.ca_path)), "bench", PASSWORD)
        last_checkpoint = 0.0

        def note(progress: Progress) -> None:
            nonlocal last_checkpoint
            if progress.phase == "sending":
                last_checkpoint = time.perf_counter()

        started = time.perf_counter()
        summary = syncing.sync(session, batch_reports=batch_reports, on_progress=note)
        finished = time.perf_counter()
        assert (summary.submitted, summary.remaining, summary.problem) == (len(reports), 0, None), summary
    assert server.reports_held() == len(reports)
    return last_checkpoint - started, finished - started


def agent_upload(folder: Path, reports: list[dict[str, Any]]) -> float:
    """Seconds for the sealed outbox's agent to empty a spool of ``reports`` (sealed at Submit, before the timer
    starts), as ``pso-desktop agent --once`` does: no secret, only the device credential."""
    from pso_desktop.services.agent import Agent

    with server_process(folder / "server") as server:
        keys = ProfileKeys(folder / "client", backend=fail.Keyring(), kdf=KdfParams(1024, 1, 1))  # type: ignore[no-untyped-call]
        workstation = Workstation(folder / "client", keys=keys)
        workstation.create_profile("bench", SECRET)
        with workstation.session("bench", SECRET) as session:
            syncing.login(session, ServerSettings(server.base_url, ca_file=str(server.ca_path)), "bench", PASSWORD)
            session.add_reports(reports, submit=True)
            assert session.sealed is not None and len(session.sealed.spool.names()) == len(reports)
        started = time.perf_counter()
        outcome = Agent(folder / "client", keys).run_round()
        elapsed = time.perf_counter() - started
        assert (outcome.sent, outcome.left, outcome.problems) == (len(reports), 0, []), outcome
        assert server.reports_held() == len(reports)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="reports per bulk upload")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=300, help="reports sent one per request, for comparison")
    parser.add_argument("--no-sealed", action="store_true", help="leave out the sealed outbox's agent")
    args = parser.parse_args(argv)

    rng = random.Random(20261127)
    reports = [validate_report(sample_report(rng, n)).export() for n in range(args.count)]
    bodies = [json.dumps({"reports": reports[i : i + BATCH]}).encode() for i in range(0, len(reports), BATCH)]
    singles = reports[: args.single]
    times: dict[str, list[float]] = {"bare": [], "engine": [], "whole sync": [], "agent": []}
    variants = ("bare", "engine") if args.no_sealed else ("bare", "engine", "agent")
    with tempfile.TemporaryDirectory(prefix="pso-bench-sync-") as tmp:
        for round_no in range(args.rounds):
            order = variants if round_no % 2 == 0 else variants[::-1]
            for variant in order:
                folder = Path(tmp) / f"{variant}-{round_no}"
                if variant == "bare":
                    times["bare"].append(bare_upload(folder, bodies))
                elif variant == "agent":
                    times["agent"].append(agent_upload(folder, reports))
                else:
                    upload, whole = engine_upload(folder, reports, BATCH)
                    times["engine"].append(upload)
                    times["whole sync"].append(whole)
                print(
                    f"round {round_no + 1}: {variant} {args.count / times[variant][-1]:.0f} reports/s",
                    file=sys.stderr,
                )
        one_by_one, _ = engine_upload(Path(tmp) / "single", singles, 1)

    bare = statistics.median(times["bare"])
    engine = statistics.median(times["engine"])
    whole = statistics.median(times["whole sync"])
    single_rate = args.single / one_by_one
    engine_rate = args.count / engine
    print(
        f"bulk upload: {args.count} reports from the encrypted store in batches of {BATCH} over loopback TLS, "
        f"median of {args.rounds}"
    )
    print(f"  engine upload {engine_rate:.0f}/s, bare client {args.count / bare:.0f}/s")
    print(f"  engine / bare throughput ratio: {bare / engine:.2f}   (goal >= 0.5)")
    print(f"  engine / one-request-per-report ratio: {engine_rate / single_rate:.1f}x   (goal >= 20x)")
    print(f"  one request per report: {single_rate:.0f}/s ({args.single} reports, same engine, batch size 1)")
    print(f"  whole sync (upload, then statuses and reference data): {whole:.2f} s, {args.count / whole:.0f}/s")
    if times["agent"]:
        agent = statistics.median(times["agent"])
        print(f"  sealed outbox agent {args.count / agent:.0f}/s (from the spool, device credential, no secret)")
        print(f"  agent / bare throughput ratio: {bare / agent:.2f}   (goal >= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
