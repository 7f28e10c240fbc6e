"""Print and PDF (issue 12, item 5): one report and the summary of what the list shows, through Qt's own printing
(QPdfWriter, and QPrinter in PDF mode standing in for paper), turned back into text with poppler's pdftotext:
the PSWP label on every page, the content there, no PHI in the file name, the PDF's title or the audit log."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtPrintSupport import QPrinter

from pso_desktop.services.workstation import PSWP_LABEL
from pso_desktop.storage.report_query import ReportQuery
from pso_desktop.ui.printing import PDF_TITLE, default_file_name
from pso_desktop.ui.window import MainWindow
from tests.support.ui import PROFILE, SECRET, unlock

pytestmark = [
    pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (scripts/setup.sh test)"),
]


def pdf_pages(path: Path) -> list[str]:
    """The text of each page (pdftotext separates pages with form feeds)."""
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.replace("\ufb01", "fi").replace("\ufb02", "fl").split("\f")  # the fonts' ligatures
    return [page for page in pages if page.strip()]


def pdf_info(path: Path) -> str:
    return subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def assert_labelled(pages: list[str]) -> None:
    label_start = " ".join(PSWP_LABEL.split()[:8])  # the label's first words, on one line at the top
    for number, page in enumerate(pages, 1):
        assert label_start in _squeezed(page), f"page {number} has no PSWP label"
        assert f"Page {number} of {len(pages)}" in page


def _audit(window: MainWindow) -> list[tuple[str, str | None, str]]:
    workstation = window.backend._get_workstation()
    with workstation.session(PROFILE, SECRET) as session:
        return [(e.action, e.report_id, e.detail) for e in session.audit.entries()]


def test_report_and_list_summary_as_pdf_with_the_label_on_every_page(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    window = make_window()
    unlock(qtbot, window)
    actions = window.print_actions
    report = stored_reports[5]

    # One report.
    name = default_file_name("report")
    assert name.startswith("pso-report-") and report["patient"]["name"] not in name
    out = tmp_path / name
    with qtbot.waitSignal(actions.done, timeout=20_000) as done:
        actions.save_report_pdf(out, report["id"])
    assert "saved to" in done.args[0]
    pages = pdf_pages(out)
    assert_labelled(pages)
    text = _squeezed(" ".join(pages))
    assert report["narrative"][:60] in text  # the content is there (it is the report itself)
    assert report["location"]["unit"] in text and "Patient safety event report" in text
    assert "Fall" in text or "Medication" in text or "Device" in text  # codes in the form's words
    info = pdf_info(out)
    assert PDF_TITLE in info and report["patient"]["name"] not in info
    assert oct(out.stat().st_mode & 0o777) == "0o600"

    # The summary of what the list shows: a long list runs over several pages, each labelled.
    query = ReportQuery(units=(report["location"]["unit"],))
    summary = tmp_path / default_file_name("report-list-summary")
    with qtbot.waitSignal(actions.done, timeout=20_000):
        actions.save_list_pdf(summary, ReportQuery())
    all_pages = pdf_pages(summary)
    assert_labelled(all_pages)
    joined = _squeezed(" ".join(all_pages))
    assert "Report list summary" in joined and f"Reports {len(stored_reports)}" in joined
    assert "By state" in joined and "Queued 4" in joined
    assert report["narrative"][:40] not in joined  # a summary has no narrative
    with qtbot.waitSignal(actions.done, timeout=20_000):
        actions.save_list_pdf(tmp_path / "unit.pdf", query)
    unit_text = _squeezed(" ".join(pdf_pages(tmp_path / "unit.pdf")))
    in_unit = [r for r in stored_reports if r["location"]["unit"] == report["location"]["unit"]]
    assert f"Reports {len(in_unit)}" in unit_text

    # Rendered, to look at (docs/screenshots use the same command).
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(out), str(tmp_path / "page")], check=True
    )
    assert (tmp_path / "page-1.png").stat().st_size > 5_000

    # Audited: what, how many, which report; never the filters or the content.
    entries = [e for e in _audit(window) if e[0] == "print"]
    assert entries == [
        ("print", report["id"], "pdf, report, 1 report(s)"),
        ("print", None, f"pdf, list summary, {len(stored_reports)} report(s)"),
        ("print", None, f"pdf, list summary, {len(in_unit)} report(s)"),
    ]


def test_paper_goes_through_qprinter_with_the_label_on_every_page(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    """QPrinter in PDF mode stands in for a paper printer: the same painting the print dialog's printer gets."""
    window = make_window()
    unlock(qtbot, window)
    actions = window.print_actions
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    target = tmp_path / "paper.pdf"
    printer.setOutputFileName(str(target))
    report = stored_reports[0]
    with qtbot.waitSignal(actions.printed, timeout=20_000) as printed:
        actions.print_to(printer, "report", lambda: window.backend.report_printout(report["id"]), report["id"])
    del printer
    pages = pdf_pages(target)
    assert printed.args[0] == len(pages) >= 1
    assert_labelled(pages)
    qtbot.waitUntil(lambda: window.worker.pending == 0, timeout=10_000)
    assert ("print", report["id"], "print, report, 1 report(s)") in _audit(window)


def test_nothing_to_print_says_so(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list
) -> None:
    window = make_window()
    unlock(qtbot, window)
    window.reports_screen.table.setCurrentIndex(window.reports_screen.model.index(-1, -1))
    with qtbot.waitSignal(window.print_actions.done, timeout=5_000) as done:
        window.print_actions.pdf_report_action.trigger()
    assert done.args[0] == "Open or select a report to print it."


def test_the_report_open_in_the_form_prints_with_its_last_edits(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    """File > Print on the form: the edits typed a moment ago (before the autosave's delay) are in the printout."""
    window = make_window()
    unlock(qtbot, window)
    report = stored_reports[6]  # a draft: it opens editable
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        window.open_report(report["id"])
    editor = window.editor
    assert editor is not None and editor.form is not None and not editor.read_only
    target = editor.form.fields["narrative"].focus_target()
    target.setFocus()
    qtbot.keyClicks(target, " Zebracanary.")
    report_id = window._report_to_print()
    assert report_id == report["id"]
    out = tmp_path / "open.pdf"
    with qtbot.waitSignal(window.print_actions.done, timeout=20_000):
        window.print_actions.save_report_pdf(out, report_id)
    pages = pdf_pages(out)
    assert_labelled(pages)
    assert "Zebracanary" in " ".join(pages)


def test_the_list_summary_prints_every_row_of_a_long_list(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    workstation_factory: Callable[[], Any],
    tmp_path: Path,
) -> None:
    """More rows than the old 500-row cap, each on one line, through the PDF (worker) and paper (the GUI thread,
    a few pages per turn of the event loop); the label and page numbers on every page."""
    from pso_desktop.domain.samples import sample_report

    rng = random.Random(5)
    more = [sample_report(rng, 1_000 + n) for n in range(640)]
    with workstation_factory().session(PROFILE, SECRET) as session:
        session.add_reports(more)
    total = len(stored_reports) + len(more)
    window = make_window()
    unlock(qtbot, window)
    actions = window.print_actions
    query = ReportQuery(sort="unit", descending=False)

    def rows_of(path: Path) -> list[str]:
        text = subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
        return [line for line in text.splitlines() if re.search(r"\s(Draft|Queued)\s*$", line)]

    pdf = tmp_path / "list.pdf"
    with qtbot.waitSignal(actions.done, timeout=60_000):
        actions.save_list_pdf(pdf, query)
    pages = pdf_pages(pdf)
    assert_labelled(pages)
    assert len(pages) > 10 and f"all {total:,}, in the list's order" in _squeezed(" ".join(pages))
    rows = rows_of(pdf)
    assert len(rows) == total  # every report, one line each
    units = [unit for unit in (r["location"]["unit"] for r in stored_reports + more)]
    assert [next(u for u in sorted(set(units)) if f" {u} " in row) for row in rows] == sorted(units)

    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    paper = tmp_path / "paper-list.pdf"
    printer.setOutputFileName(str(paper))
    with qtbot.waitSignal(actions.printed, timeout=60_000) as printed:
        actions.print_to(printer, "list", lambda: window.backend.list_printout(query), None)
    del printer
    assert printed.args[0] == len(pdf_pages(paper)) and len(rows_of(paper)) == total
    assert_labelled(pdf_pages(paper))


def test_a_summary_cut_short_says_how_many_rows_it_left_out(
    stored_reports: list[dict[str, Any]], workstation_factory: Callable[[], Any]
) -> None:
    from pso_desktop.services.printout import list_printout

    with workstation_factory().session(PROFILE, SECRET) as session:
        printout = list_printout(session, ReportQuery(), max_rows=5)
    assert len(printout.tables[0].rows) == 5
    assert printout.tables[0].heading.startswith(f"The reports (the first 5 of {len(stored_reports)}")
    left = dict(next(s for s in printout.sections if s.heading == "Not printed").rows)
    assert left == {"Rows left out": f"{len(stored_reports) - 5} reports after the first 5"}


def test_a_lock_abandons_a_pdf_on_its_way(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The PDF is painted on a thread of its own (the database worker stays free for the list); a lock before it
    is written leaves no file and no audit entry, and the next one is written as usual."""
    window = make_window()
    unlock(qtbot, window)
    actions = window.print_actions
    target = tmp_path / "abandoned.pdf"
    actions.save_list_pdf(target, ReportQuery())
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    qtbot.waitUntil(lambda: window.worker.pending == 0 and actions._painter.pending == 0, timeout=20_000)
    assert not target.exists()
    unlock(qtbot, window)
    assert not [e for e in _audit(window) if e[0] == "print"]
    with qtbot.waitSignal(actions.done, timeout=20_000) as done:
        actions.save_list_pdf(tmp_path / "kept.pdf", ReportQuery())
    assert "saved to" in done.args[0] and (tmp_path / "kept.pdf").exists()
