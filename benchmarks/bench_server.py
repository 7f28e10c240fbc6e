"""Reference server ingest benchmark: realistic reports in batches over loopback TLS, against a bare
``executemany`` of the same rows into the same SQLite schema, plus the rate of a full duplicate re-send.

    .venv/bin/python benchmarks/bench_server.py [--count 10000] [--batch-size 500] [--db postgresql://...]

The server runs in-process (``pso_server.practice.run_server``) with its production settings: argon2id,
SQLite in WAL with synchronous=FULL, validation of every report by the shared domain rules. Request bodies
are serialised before timing starts. The baseline gets the rows already built (canonical JSON, hash) and
only inserts them, one transaction per batch.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from pso_desktop.domain import canonical_json, content_hash, validate_report
from pso_desktop.domain.samples import sample_report
from pso_server.practice import run_server
from pso_server.store import Database

PASSWORD = "benchmark password 1"


def _batches(reports: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [reports[start : start + size] for start in range(0, len(reports), size)]


def _bodies(batches: list[list[dict[str, Any]]]) -> list[bytes]:
    """Request bodies built before timing starts, so the figures are the server's, not the client's JSON."""
    return [json.dumps({"reports": batch}).encode() for batch in batches]


def _post_all(session: requests.Session, url: str, bodies: list[bytes]) -> tuple[float, dict[str, int]]:
    counts: dict[str, int] = {}
    started = time.perf_counter()
    for body in bodies:
        response = session.post(
            f"{url}/api/v1/reports/batch",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        response.raise_for_status()
        for result in response.json()["results"]:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
    return time.perf_counter() - started, counts


def bare_executemany(folder: Path, batches: list[list[dict[str, Any]]]) -> float:
    """Seconds to insert the same rows the server stores (report, revision, 'received' status) with
    executemany, one transaction per batch, into a fresh database with the server's schema and pragmas."""
    db = Database.open(f"sqlite:///{folder / 'bare.db'}")
    now = time.time()
    prepared = []
    for batch in batches:
        rows = []
        for raw in batch:
            wire = validate_report(raw).export()
            rows.append(
                (
                    raw["id"],
                    content_hash(wire),
                    canonical_json(wire).decode(),
                    wire["form_version"],
                    wire["event_type"],
                    bool(wire["reporter"].get("anonymous")),
                )
            )
        prepared.append(rows)
    started = time.perf_counter()
    for rows in prepared:
        with db.transaction() as tx:
            tx.executemany(
                "INSERT INTO reports (id, received_year, latest_revision, facility, submitter_id, is_anonymous, "
                "status, status_changed_at, created_at, updated_at) VALUES (?, 2026, 1, 'Bench', NULL, ?, "
                "'received', ?, ?, ?)",
                [(r[0], int(r[5]), now, now, now) for r in rows],
            )
            tx.executemany(
                "INSERT INTO report_revisions (report_id, revision, content_hash, form_version, event_type, body, "
                "received_at) VALUES (?, 1, ?, ?, ?, ?, ?)",
                [(r[0], r[1], r[3], r[4], r[2], now) for r in rows],
            )
            tx.executemany(
                "INSERT INTO status_changes (report_id, status, changed_at) VALUES (?, 'received', ?)",
                [(r[0], now) for r in rows],
            )
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--db", help="run the server on this database URL instead of a fresh SQLite file")
    parser.add_argument("--single", type=int, default=500, help="reports sent one per request, for comparison")
    args = parser.parse_args(argv)

    rng = random.Random(20261127)
    reports = [sample_report(rng, n) for n in range(args.count)]
    batches = _batches(reports, args.batch_size)
    with tempfile.TemporaryDirectory(prefix="pso-bench-") as tmp:
        folder = Path(tmp)
        bare = bare_executemany(folder, batches)
        with run_server(data_dir=folder / "server", db_url=args.db) as server:
            server.add_user("bench", PASSWORD, role="reporter", facility="Bench")
            with requests.Session() as session:
                session.trust_env = False
                session.verify = str(server.ca_path)
                login = session.post(
                    f"{server.base_url}/api/v1/auth/login",
                    json={"username": "bench", "password": PASSWORD},
                    timeout=30,
                )
                login.raise_for_status()
                session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
                bodies = _bodies(batches)
                singles = _bodies(_batches([sample_report(rng, args.count + n) for n in range(args.single)], 1))
                ingest, first = _post_all(session, server.base_url, bodies)
                resend, second = _post_all(session, server.base_url, bodies)
                one_by_one, third = _post_all(session, server.base_url, singles)
            stats = server.stats()
    ok = (
        first == {"created": args.count}
        and second == {"duplicate": args.count}
        and third == {"created": args.single}
        and stats["reports"] == args.count + args.single
    )
    n = args.count
    backend = "postgresql" if args.db else "sqlite"
    print(
        f"ingest: {n} reports in {len(batches)} batches of {args.batch_size} over loopback TLS ({backend}), "
        f"server {n / ingest:.0f}/s, bare executemany {n / bare:.0f}/s, ratio {bare / ingest:.3f}"
    )
    print(
        f"duplicates: {n} re-sent, all duplicate: {second == {'duplicate': n}}, server {n / resend:.0f}/s, "
        f"ratio to bare executemany {bare / resend:.3f}, ratio to first ingest {ingest / resend:.2f}"
    )
    single = args.single / one_by_one
    print(
        f"single: {args.single} reports one per request, server {single:.0f}/s; "
        f"batched ingest is {n / ingest / single:.1f}x that"
    )
    print(
        f"check: created={first.get('created', 0) + third.get('created', 0)} "
        f"duplicate={second.get('duplicate', 0)} held={stats['reports']} {'OK' if ok else 'MISMATCH'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
