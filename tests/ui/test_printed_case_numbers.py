"""The list summary's printout shows every case number whole (found by an outside test: each one was cut to
"PSO-2026-000…" to fit the page, so the printed list named no report). Real SQLCipher profile, the real
reference server over TLS on loopback (the case numbers), Qt's own PDF writer, poppler's pdftotext."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pso_desktop.services import syncing
from pso_desktop.services.printout import list_printout
from pso_desktop.services.workstation import Session
from pso_desktop.storage.report_query import ReportQuery
from pso_desktop.ui.printing import pdf_bytes
from pso_server.practice import RunningServer
from tests.support.reports import sample_reports
from tests.support.sync import FAST_RETRIES, link

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def test_every_case_number_is_printed_whole(
    qapp: object, tmp_path: Path, server: RunningServer, session: Session
) -> None:
    link(session, server)
    session.add_reports(sample_reports(30, seed=5), submit=True)
    syncing.sync(session, policy=FAST_RETRIES)
    refs = {s.server_ref for s in session.store.iter_summaries(ReportQuery()) if s.server_ref}
    assert len(refs) == 30

    printout = list_printout(session, ReportQuery())
    data = pdf_bytes(printout)
    assert data is not None
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert {ref for ref in refs if ref in text} == refs
    assert "PSO-2026-000…" not in text and "…" in text  # other columns are still narrowed to fit
