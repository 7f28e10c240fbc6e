"""An anonymous report sent by the agent leaves no link to its author on the server: the real CLI in
subprocesses (``agent --once``, no secret), the real reference server over TLS, real SQLCipher.

A nurse submits named and anonymous reports together; the agent sends the anonymous ones in requests of their
own, and every server database row that mentions an anonymous report holds no account, credential, device or
address, and no time finer than the day (the batch tallies included)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from tests.cli.test_sealed_agent import ACCOUNT, _agent, _signed_in, _submit, pso
from tests.support.relay import ComingBack

__all__ = ["pso"]  # the fixture, shared with the agent's own tests
DAY = 86400
# Columns that name who did something: an anonymous report's rows must leave them empty.
WHO = ("user_id", "submitter_id", "changed_by", "author")


def _reports(named: int, anonymous: int) -> list[dict[str, Any]]:
    rng = random.Random(5)
    out = []
    for i in range(named + anonymous):
        report = validate_report(sample_report(rng, i)).export()
        if i % 2 and anonymous:  # interleaved with the named ones, as a shift writes them
            report["reporter"] = {"anonymous": True, "first_reported_by": "A288"}
            anonymous -= 1
        elif named:
            report["reporter"] = {"name": "Pat Nurse", "job": "A042", "first_reported_by": "A288"}
            named -= 1
        else:
            report["reporter"] = {"anonymous": True, "first_reported_by": "A288"}
            anonymous -= 1
        out.append(validate_report(report).export())
    return out


def _rows(db: Any) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every table of the server's database with its column names and rows."""
    out = {}
    with db.reader() as tx:
        for (table,) in tx.all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
            columns = [row[1] for row in tx.all(f"PRAGMA table_info({table})")]
            out[table] = (columns, tx.all(f"SELECT * FROM {table}"))  # table names from the schema itself
    return out


def test_an_anonymous_report_keeps_no_link_to_its_author(pso_home: Path, pso: ComingBack) -> None:
    home = pso_home
    _signed_in(home, pso)
    pso.down()
    reports = _reports(named=4, anonymous=3)
    anonymous = {r["id"] for r in reports if r["reporter"].get("anonymous")}
    named = {r["id"] for r in reports} - anonymous
    assert len(anonymous) == 3 and len(named) == 4
    _submit(home, reports)

    server = pso.up()
    delivered = _agent(home, "--once")
    assert delivered.code == 0, delivered.err
    assert "7 sealed report(s) delivered" in delivered.out
    tables = _rows(server.db)

    users = dict(zip(tables["users"][0], tables["users"][1][0], strict=True))
    assert users["username"] == ACCOUNT
    credential = dict(zip(tables["device_credentials"][0], tables["device_credentials"][1][0], strict=True))
    identifiers = {ACCOUNT, str(credential["id"]), str(credential["token_hash"]), "127.0.0.1"}
    if credential.get("device_name"):
        identifiers.add(str(credential["device_name"]))
    identifiers |= {str(row[0]) for row in tables["sessions"][1]}
    identifiers |= {str(row[0]) for row in tables["known_devices"][1]}

    mentioned = 0
    for table, (columns, rows) in tables.items():
        for row in rows:
            if not anonymous & {cell for cell in row if isinstance(cell, str)}:
                continue
            mentioned += 1
            for column, cell in zip(columns, row, strict=True):
                where = f"{table}.{column}"
                if column in WHO:
                    assert cell is None, where
                if isinstance(cell, str):
                    assert not any(ident in cell for ident in identifiers), where
                if isinstance(cell, float) and cell > 1e9:
                    assert cell % DAY == 0, f"{where} pins a time within the day"
    assert mentioned >= 3 * 4  # reports, report_revisions, status_changes, revision_feed
    # The batch tallies keep the day only, and show the anonymous reports went in a request of their own.
    tally_columns, tally = tables["intake_tally"]
    assert all(row[tally_columns.index("recorded_at")] % DAY == 0 for row in tally)
    created = sorted(
        row[tally_columns.index("n")] for row in tally if row[tally_columns.index("outcome")] == "created"
    )
    assert created == [3, 4]
    # Named reports keep their account and exact time, as before.
    for report_id in named:
        held = server.report(report_id)
        assert held.submitter_id == users["id"]
