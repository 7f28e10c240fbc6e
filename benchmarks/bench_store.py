"""Encrypted store vs plain SQLite on the same code path: autosave, bulk queue, unlock.

Run from the repository root:  .venv/bin/python benchmarks/bench_store.py
(about a minute on 2 cores; ``--help`` for smaller or larger runs). Both variants go through
``open_database``'s code path and the same ``ReportStore``: the plain variant only skips the key
(``_open_unencrypted_for_benchmark``). Runs are interleaved (encrypted, plain, plain, encrypted, ...) so that
disk-cache and CPU-frequency drift hit both alike; ratios are of medians. Goals (DESIGN.md / issue 2):
autosave within 1.3x of plain SQLite, unlock (open + key check, after the KDF) under 5 ms.
The data is fictitious (``pso_desktop.domain.samples``) and lives in a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pso_desktop.domain.samples import sample_report
from pso_desktop.storage import database
from pso_desktop.storage.database import current_settings, open_database
from pso_desktop.storage.reports import ReportStore

KEY = os.urandom(32)
VARIANTS = ("encrypted", "plain")


def _open(variant: str, path: Path, *, create: bool = False) -> Any:
    if variant == "encrypted":
        return open_database(path, KEY, create=create)
    return database._open_unencrypted_for_benchmark(path, create=create)


def _interleaved(rounds: int, run: Callable[[str, int], float]) -> dict[str, list[float]]:
    """Call run(variant, round) alternating which variant goes first; returns the seconds per variant."""
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for round_no in range(rounds):
        order = VARIANTS if round_no % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            times[variant].append(run(variant, round_no))
    return times


def bench_autosave(
    folder: Path, saves: int, rounds: int, background: list[dict[str, Any]]
) -> dict[str, list[float]]:
    """``saves`` autosaves of one growing draft per round, one transaction each, in a database that
    already holds ``background`` reports (the state of a workstation in use)."""
    rng = random.Random(7)
    draft = sample_report(rng, 999_999)
    base = draft["narrative"]

    def run(variant: str, round_no: int) -> float:
        path = folder / f"autosave-{variant}-{round_no}.db"
        conn = _open(variant, path, create=True)
        store = ReportStore(conn)
        store.add_reports(background, submit=True)
        started = time.perf_counter()
        for n in range(saves):
            # What the form sends while a nurse types: the narrative grows a few characters at a time.
            store.save_draft({**draft, "narrative": f"{base} {'x' * (n % 400)} {n}"})
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed

    return _interleaved(rounds, run)


def bench_bulk(folder: Path, reports: list[dict[str, Any]], chunk: int, rounds: int) -> dict[str, list[float]]:
    """Queue all ``reports`` with ``add_reports(submit=True)`` in chunks (what a backlog import does)."""

    def run(variant: str, round_no: int) -> float:
        path = folder / f"bulk-{variant}-{round_no}.db"
        conn = _open(variant, path, create=True)
        store = ReportStore(conn)
        started = time.perf_counter()
        for start in range(0, len(reports), chunk):
            store.add_reports(reports[start : start + chunk], submit=True)
        elapsed = time.perf_counter() - started
        assert store.outbox_counts()["queued"] == len(reports)
        conn.close()
        return elapsed

    return _interleaved(rounds, run)


def bench_unlock(path: Path, repeats: int, *, full_check: bool | None) -> list[float]:
    """Seconds for open_database (key check by first read, settings, schema check) + close."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        conn = open_database(path, KEY, full_check=full_check)
        samples.append(time.perf_counter() - started)
        conn.close()
    return samples


def _rounds(samples: list[float]) -> str:
    return " ".join(f"{sample:.2f}" for sample in samples)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=400, help="autosaves per round (default 400)")
    parser.add_argument("--autosave-rounds", type=int, default=6, help="rounds per variant (default 6)")
    parser.add_argument("--reports", type=int, default=10_000, help="reports in the bulk queue (default 10000)")
    parser.add_argument("--bulk-rounds", type=int, default=2, help="rounds per variant (default 2)")
    parser.add_argument("--chunk", type=int, default=1_000, help="reports per add_reports call (default 1000)")
    args = parser.parse_args(argv)

    rng = random.Random(2026)
    reports = [sample_report(rng, index) for index in range(args.reports)]
    background = reports[:1_000]

    with tempfile.TemporaryDirectory(prefix="pso-bench-") as tmp:
        folder = Path(tmp)
        probe = open_database(folder / "probe.db", KEY, create=True)
        settings = current_settings(probe)
        probe.close()
        print(
            f"bench_store: Python {platform.python_version()}, SQLCipher {settings['cipher_version']}, "
            f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
        )
        print(
            f"settings: journal_mode={settings['journal_mode']} synchronous={settings['synchronous']} (FULL) "
            f"secure_delete={settings['secure_delete']} temp_store={settings['temp_store']} "
            f"cipher_memory_security={settings['cipher_memory_security']}"
        )

        autosave = bench_autosave(folder, args.saves, args.autosave_rounds, background)
        enc, plain = (statistics.median(autosave[v]) for v in VARIANTS)
        print(
            f"\nautosave: {args.saves} saves x {args.autosave_rounds} rounds per variant, one transaction each, "
            f"in a database holding {len(background)} reports"
        )
        print(
            f"  encrypted {_ms(enc / args.saves)}/save   plain {_ms(plain / args.saves)}/save   "
            f"ratio {enc / plain:.2f}x   (goal <= 1.30x)"
        )
        print(f"  per round (s): encrypted {_rounds(autosave['encrypted'])}   plain {_rounds(autosave['plain'])}")

        bulk = bench_bulk(folder, reports, args.chunk, args.bulk_rounds)
        enc_b, plain_b = (statistics.median(bulk[v]) for v in VARIANTS)
        print(
            f"\nbulk queue: {len(reports)} reports, add_reports(submit=True) in chunks of {args.chunk}, "
            f"{args.bulk_rounds} rounds per variant"
        )
        print(
            f"  encrypted {enc_b:.2f} s ({len(reports) / enc_b:,.0f} reports/s)   plain {plain_b:.2f} s "
            f"({len(reports) / plain_b:,.0f} reports/s)   ratio {enc_b / plain_b:.2f}x"
        )
        print(f"  per round (s): encrypted {_rounds(bulk['encrypted'])}   plain {_rounds(bulk['plain'])}")

        big = folder / "bulk-encrypted-0.db"
        size_mb = big.stat().st_size / 1e6
        quick = bench_unlock(big, 30, full_check=None)
        full = bench_unlock(big, 5, full_check=True)
        small = folder / "autosave-encrypted-0.db"
        small_auto = bench_unlock(small, 30, full_check=None)
        print("\nunlock = open_database + key check (first read) + settings + schema check, after the KDF:")
        print(
            f"  {len(reports)}-report database ({size_mb:.1f} MB, above the full-check threshold): "
            f"median {_ms(statistics.median(quick))}   (goal < 5 ms)"
        )
        print(
            f"  same file with every page's HMAC checked at open (full_check=True): "
            f"median {_ms(statistics.median(full))} = {statistics.median(full) * 1000 / size_mb:.1f} ms/MB"
        )
        print(
            f"  {len(background) + 1}-report database ({small.stat().st_size / 1e6:.1f} MB, full check at open "
            f"by default): median {_ms(statistics.median(small_auto))}"
        )

    ok = enc / plain <= 1.3 and statistics.median(quick) < 0.005
    print(f"\ngoals {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
