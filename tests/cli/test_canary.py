"""Canary scan: no patient identifier or narrative is readable in any file the app leaves on disk."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable
from pathlib import Path

import pytest

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.logs import configure_logging
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services.workstation import Workstation
from tests.support.kdf import CHEAP_KDF

SECRET = "canary secret for the ward pc"


def canary_reports(count: int) -> tuple[list[dict], list[str]]:
    rng = random.Random(50)
    reports, canaries = [], []
    for i in range(count):
        name, mrn, story = f"Qzvrax Canary{i:03d}", f"MRNCANARY{i:05d}", f"Narrativecanary{i:03d} slipped"
        data = sample_report(rng, i)
        while data["event_type"] == "unsafe_condition":
            data = sample_report(rng, i)
        data["patient"] = data["patient"] | {"name": name, "mrn": mrn}
        data["narrative"] = f"{story} near the nurses' station."
        reports.append(validate_report(data).export())
        canaries += [name, mrn, story]
    return reports, canaries


def encodings(canary: str) -> Iterable[bytes]:
    raw = canary.encode("utf-8")
    yield raw
    yield canary.encode("utf-16-le")
    yield canary.encode("utf-16-be")
    # base64 depends on alignment: the stable middle of each of the three possible alignments.
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw)
        yield encoded[4:-4]


def scan(folders: list[Path], canaries: list[str]) -> list[str]:
    patterns = [(c, e) for c in canaries for e in encodings(c)]
    hits: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            hits |= {f"{path.name}: {c}" for c, e in patterns if e in data}
    return sorted(hits)


@pytest.mark.slow
def test_no_phi_readable_on_disk_while_open_and_after_close(pso_home: Path, tmp_path: Path, memory_keyring):
    configure_logging(pso_home)
    keys = ProfileKeys(pso_home, backend=memory_keyring, kdf=CHEAP_KDF)
    workstation = Workstation(pso_home, keys=keys)
    workstation.create_profile("ward", SECRET)
    reports, canaries = canary_reports(50)
    folders = [pso_home, tmp_path / "tmp"]

    session = workstation.open("ward", SECRET)
    try:
        session.add_reports(reports[:25], submit=True)
        for report in reports[25:]:
            session.store.save_draft(report)  # the autosave path, one transaction each
        assert session.store.list_summaries(text="Narrativecanary007")  # the data really is in there
        assert scan(folders, canaries) == []
    finally:
        session.close()
    assert scan(folders, canaries) == []
    database = keys.database_path("ward")
    assert not database.read_bytes().startswith(b"SQLite format 3")
    assert list(folders[1].iterdir()) == []  # nothing spilled into the temp folder
    assert canaries[0] not in str(memory_keyring.entries)


def test_scanner_finds_plain_text(tmp_path: Path):
    (tmp_path / "leak.txt").write_bytes(b"xx" + base64.b64encode(b"a" + b"MRNCANARY00001") + b"yy")
    (tmp_path / "leak16.txt").write_bytes("..Qzvrax Canary001..".encode("utf-16-le"))
    assert len(scan([tmp_path], ["MRNCANARY00001", "Qzvrax Canary001"])) == 2
