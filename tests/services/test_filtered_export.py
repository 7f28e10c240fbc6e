"""Exports of what the list shows (issue 12, item 3): the services behind File -> Export and ``pso-desktop export
--view`` write exactly the reports the list's query selects, in its order, audited without the filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from pathlib import Path

from keyring.backends import null

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services.trends import trends
from pso_desktop.services.workstation import Session, Workstation
from pso_desktop.storage.report_query import ReportQuery
from tests.support.cli import SECRET as CLI_SECRET
from tests.support.cli import run_cli

QUERY = ReportQuery(units=("ICU-2", "ED"), event_types=("incident",), sort="discovered_on", descending=False)


def _reports(count: int) -> list[dict]:
    rng = random.Random(7)
    return [validate_report(sample_report(rng, i)).export() for i in range(count)]


def _expected(reports: list[dict]) -> list[str]:
    chosen = [r for r in reports if r["location"]["unit"] in QUERY.units and r["event_type"] == "incident"]
    return [r["id"] for r in sorted(chosen, key=lambda r: r["discovery"]["date"])]


def test_each_format_holds_exactly_the_filtered_reports(session: Session, tmp_path: Path) -> None:
    reports = _reports(120)
    session.add_reports(reports)
    want = _expected(reports)
    assert 5 < len(want) < 100
    listed = [s.id for s in session.store.list_summaries(query=QUERY, limit=1000)]
    assert set(listed) == set(want)

    assert session.export_json(tmp_path / "a.json", QUERY) == len(want)
    document = json.loads((tmp_path / "a.json").read_text("utf-8"))
    assert [r["id"] for r in document["reports"]] == listed and document["count"] == len(want)

    assert session.export_csv(tmp_path / "a.csv", QUERY) == len(want)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text("utf-8-sig"))))
    assert len(rows) == len(want)

    assert session.export_fhir(tmp_path / "a.fhir.json", QUERY) == len(want)
    bundle = json.loads((tmp_path / "a.fhir.json").read_text("utf-8"))
    assert len(bundle["entry"]) == len(want)

    # Without a query: everything, as before.
    assert session.export_json(tmp_path / "all.json") == 120
    details = [entry.detail for entry in session.audit.entries() if entry.action == "export"]
    assert details[-4:-1] == [
        f"{fmt}, {len(want)} report(s), as the list shows them" for fmt in ("json", "csv", "fhir")
    ]
    assert all("ICU" not in d and "incident" not in d for d in details)


def test_trends_follow_the_list(session: Session) -> None:
    reports = _reports(80)
    session.add_reports(reports)
    day = dt.date.fromisoformat(max(r["discovery"]["date"] for r in reports))
    assert trends(session, today=day).total == 0  # all drafts: events are reports sent or received
    everything = trends(session, today=day, drafts=True)
    narrowed = trends(session, today=day, query=QUERY, drafts=True)
    in_window = [r for r in reports if r["discovery"]["date"] >= everything.months[0] + "-01"]
    assert everything.total == len(in_window)
    assert narrowed.total == len([r for r in in_window if r["id"] in set(_expected(reports))])
    assert 0 < narrowed.total < everything.total


def test_cli_exports_a_saved_view(pso_home: Path, tmp_path: Path) -> None:
    home = pso_home
    assert run_cli(home, "profile", "create", "alice", "--password-stdin", stdin=CLI_SECRET + "\n").code == 0
    reports = _reports(60)
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in reports), "utf-8")
    added = run_cli(home, "report", "add", str(source), "--password-stdin", stdin=CLI_SECRET + "\n")
    assert added.code == 0, added.err
    # The view is saved the way the window saves it (inside the encrypted profile).
    ws = Workstation(home, keys=ProfileKeys(home, backend=null.Keyring()))  # the CLI's key file, as cli_env has it
    with ws.session("alice", CLI_SECRET) as opened:
        opened.views.save("ICU and ED incidents", QUERY)
    out = tmp_path / "view.json"
    result = run_cli(
        home,
        "export",
        "--format",
        "json",
        "--out",
        str(out),
        "--view",
        "ICU and ED incidents",
        "--password-stdin",
        stdin=CLI_SECRET + "\n",
    )
    assert result.code == 0, result.err
    written = json.loads(out.read_text("utf-8"))["reports"]
    assert sorted(r["id"] for r in written) == sorted(_expected(reports))
    days = [r["discovery"]["date"] for r in written]
    assert days == sorted(days)  # the view's order
    missing = run_cli(
        home,
        "export",
        "--format",
        "json",
        "--out",
        str(out),
        "--view",
        "Patient Jane Doe",
        "--password-stdin",
        stdin=CLI_SECRET + "\n",
    )
    assert missing.code == 1 and "Jane" not in missing.err and "no saved view" in missing.err
