"""Report validation (``validate_report``) against a JSON round trip of the same reports, in the same run.

Run from the repository root:  .venv/bin/python benchmarks/bench_validation.py
(a few seconds; ``--help`` for more or fewer reports). The reports are the realistic, fictitious ones of
``pso_desktop.domain.samples`` (falls, medication events, unsafe conditions), all valid, as in a bulk upload.
The baseline is ``json.loads(json.dumps(report))`` of each report, the least a server does with one; rounds
alternate which goes first and the figures are medians. Validation is also split into its two stages: the
pydantic models alone (``Report.model_validate``) and the catalogue rules that follow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from pso_desktop.domain import Report, validate_report
from pso_desktop.domain.samples import sample_report


def _seconds(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2_000, help="reports per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per measure (default 9)")
    args = parser.parse_args(argv)
    if args.reports < 1 or args.rounds < 1:
        parser.error("--reports and --rounds must be at least 1")

    today = dt.date.today()
    rng = random.Random(1)
    reports = [sample_report(rng, i, today=today) for i in range(args.reports)]
    measures: dict[str, Callable[[], Any]] = {
        "json round trip": lambda: [json.loads(json.dumps(r)) for r in reports],
        "validate_report": lambda: [validate_report(r, today=today) for r in reports],
        "models only": lambda: [Report.model_validate(r) for r in reports],
    }
    for run in measures.values():  # warm up: catalogue load, lazily built indexes, pydantic schemas
        run()
    times: dict[str, list[float]] = {name: [] for name in measures}
    for round_no in range(args.rounds):
        names = list(measures) if round_no % 2 == 0 else list(reversed(measures))
        for name in names:
            times[name].append(_seconds(measures[name]))

    per_report = {name: statistics.median(t) / args.reports * 1e3 for name, t in times.items()}
    base = per_report["json round trip"]
    rules = per_report["validate_report"] - per_report["models only"]
    print(f"{args.reports} sample reports, {args.rounds} rounds, medians (python {sys.version.split()[0]}):")
    print(f"  json round trip (baseline)   {base:.4f} ms/report")
    print(
        f"  validate_report              {per_report['validate_report']:.4f} ms/report   "
        f"{per_report['validate_report'] / base:.1f}x the JSON round trip"
    )
    print(
        f"    models only (pydantic)     {per_report['models only']:.4f} ms/report   {per_report['models only'] / base:.1f}x"
    )
    print(f"    catalogue rules (the rest) {rules:.4f} ms/report   {rules / base:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
