"""Printing and PDF (issue 12, item 5), through Qt's own printing: a ``Printout`` (services.printout) laid out by
a ``QTextDocument`` and painted page by page onto a ``QPdfWriter`` or a ``QPrinter``, with the PSWP label at the
top and "page n of N" at the foot of every page.

A PDF is laid out and painted on the database worker (QTextDocument, QPdfWriter and QPainter work outside the
GUI thread), into memory; the services write it like an export (atomically, owner-only) with its audit entry.
Paper goes through the platform's print dialog (opened with ``open()``) and is painted on the GUI thread. File
names offered never hold PHI: no patient, no narrative, no search; the PDF's title is generic too.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QObject, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QFontMetricsF,
    QKeySequence,
    QPagedPaintDevice,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextDocument,
)
from PySide6.QtWidgets import QFileDialog, QWidget

from pso_desktop.ui.errors import user_message

if TYPE_CHECKING:
    from PySide6.QtPrintSupport import QPrintDialog, QPrinter

    from pso_desktop.services.backend import Backend
    from pso_desktop.services.printout import Printout
    from pso_desktop.storage.report_query import ReportQuery
    from pso_desktop.ui.worker import DbWorker

PDF_TITLE = "PSO Desktop printout (confidential patient safety work product)"  # no PHI in the metadata
PDF_RESOLUTION = 300
PAGE_MARGINS_MM = QMarginsF(15, 15, 15, 15)
BODY_POINTS = 9.5
LABEL_POINTS = 8.0


def to_html(printout: Printout) -> str:
    """The printout as simple HTML for QTextDocument; every value escaped."""
    esc = html.escape
    parts = [
        f"<h2 style='margin:0'>{esc(printout.title)}</h2>",
        f"<p style='color:#444'>{esc(printout.subtitle)}</p>",
    ]
    for section in printout.sections:
        parts.append(f"<h3 style='margin-bottom:2px'>{esc(section.heading)}</h3>")
        parts.append("<table cellspacing='0' cellpadding='3' width='100%'>")
        for label, value in section.rows:
            text = esc(value).replace("\n", "<br>")
            parts.append(f"<tr><td width='34%' style='color:#333'><b>{esc(label)}</b></td><td>{text}</td></tr>")
        parts.append("</table>")
    for table in printout.tables:
        parts.append(f"<h3 style='margin-bottom:2px'>{esc(table.heading)}</h3>")
        parts.append("<table border='1' cellspacing='0' cellpadding='2' width='100%' style='border-color:#999'>")
        parts.append(
            "<thead><tr>" + "".join(f"<th align='left'>{esc(c)}</th>" for c in table.columns) + "</tr></thead>"
        )
        for row in table.rows:
            parts.append("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>")
        parts.append("</table>")
    return "\n".join(parts)


def paint_printout(printout: Printout, device: QPagedPaintDevice) -> int:
    """Lays ``printout`` out for ``device``'s page and paints every page, the PSWP label at the top of each and
    the page number at the foot; returns the number of pages. Any thread that owns ``device``."""
    resolution = device.logicalDpiY()
    page = QRectF(device.pageLayout().paintRectPixels(resolution))
    page.moveTo(0, 0)
    label_font = QFont()
    label_font.setPointSizeF(LABEL_POINTS)
    label_font.setBold(True)
    foot_font = QFont()
    foot_font.setPointSizeF(LABEL_POINTS)
    label_metrics = QFontMetricsF(label_font, device)
    flags = int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft)
    label_rect = label_metrics.boundingRect(QRectF(0, 0, page.width(), page.height()), flags, printout.label)
    gap = resolution * 0.12  # about 3 mm
    header = label_rect.height() + gap
    footer = QFontMetricsF(foot_font, device).height() + gap
    body = QRectF(0, header, page.width(), page.height() - header - footer)

    document = QTextDocument()
    document.documentLayout().setPaintDevice(device)
    body_font = QFont()
    body_font.setPointSizeF(BODY_POINTS)
    document.setDefaultFont(body_font)
    document.setHtml(to_html(printout))
    document.setPageSize(QSizeF(body.width(), body.height()))
    pages = max(1, document.pageCount())

    painter = QPainter()
    if not painter.begin(device):
        raise OSError("the printer or PDF could not be opened for painting")
    try:
        for number in range(pages):
            if number:
                device.newPage()
            painter.setFont(label_font)
            painter.setPen(QColor("#8b0000"))
            painter.drawText(QRectF(0, 0, page.width(), label_rect.height()), flags, printout.label)
            painter.setPen(QColor("#8b0000"))
            painter.drawLine(0, int(header - gap / 2), int(page.width()), int(header - gap / 2))
            painter.save()
            painter.translate(body.left(), body.top() - number * body.height())
            document.drawContents(painter, QRectF(0, number * body.height(), body.width(), body.height()))
            painter.restore()
            painter.setFont(foot_font)
            painter.setPen(QColor("#333333"))
            painter.drawText(
                QRectF(0, page.height() - footer + gap, page.width(), footer - gap),
                int(Qt.AlignmentFlag.AlignRight),
                f"Page {number + 1} of {pages} · Confidential: Patient Safety Work Product",
            )
    finally:
        painter.end()
    return pages


def pdf_bytes(printout: Printout) -> bytes:
    """The printout as a PDF, in memory (US Letter). Any thread."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(PDF_RESOLUTION)
    writer.setTitle(PDF_TITLE)
    writer.setCreator("PSO Desktop")
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.Letter),
            QPageLayout.Orientation.Portrait,
            PAGE_MARGINS_MM,
            QPageLayout.Unit.Millimeter,
        )
    )
    paint_printout(printout, writer)
    del writer  # finishes the file
    buffer.close()
    return bytes(data.data())


def default_file_name(kind: str, today: dt.date | None = None) -> str:
    """A PDF name with no PHI: what it is and the day, e.g. ``pso-report-2026-12-06.pdf``."""
    day = (today or dt.date.today()).isoformat()
    return f"pso-{kind}-{day}.pdf"


def _save_pdf_job(
    backend: Backend, make: Callable[[], Printout], path: Path, kind: str, report_id: str | None
) -> int:
    """Database worker: reads the printout, lays it out into a PDF in memory, writes it with its audit entry."""
    printout = make()
    data = pdf_bytes(printout)
    backend.save_printout(path, data, kind, printout.report_count, report_id)
    return printout.report_count


class PrintActions(QObject):
    """File menu: print or save as PDF the report open or selected, and the summary of what the list shows."""

    done = Signal(str)  # a plain message for the status bar
    printed = Signal(int)  # pages sent to a printer (for tests)

    def __init__(self, worker: DbWorker, backend: Backend, parent: QWidget) -> None:
        super().__init__(parent)
        self._worker = worker
        self._backend = backend
        self._parent = parent
        # The report to print (the one open in the form, else the list's current row) and what the list shows;
        # the window connects both.
        self.report_source: Callable[[], str | None] = lambda: None
        self.query_source: Callable[[], ReportQuery | None] = lambda: None
        self.print_dialog: QPrintDialog | None = None
        self.print_report_action = QAction("&Print report…", self)
        self.print_report_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Print))
        self.print_report_action.setToolTip("Print the report that is open, or selected in the list (Ctrl+P)")
        self.print_report_action.triggered.connect(partial(self._choose_printer, "report"))
        self.pdf_report_action = QAction("Save report as P&DF…", self)
        self.pdf_report_action.setToolTip("Save the open or selected report as a PDF labelled confidential")
        self.pdf_report_action.triggered.connect(partial(self._choose_pdf, "report"))
        self.print_list_action = QAction("Print the list's s&ummary…", self)
        self.print_list_action.setToolTip("Print what the list shows: its filters, counts and rows")
        self.print_list_action.triggered.connect(partial(self._choose_printer, "list"))
        self.pdf_list_action = QAction("Save the list's summary as PDF…", self)
        self.pdf_list_action.setToolTip("Save what the list shows (filters, counts, rows) as a PDF")
        self.pdf_list_action.triggered.connect(partial(self._choose_pdf, "list"))
        self.actions = [
            self.print_report_action,
            self.pdf_report_action,
            self.print_list_action,
            self.pdf_list_action,
        ]
        self.set_enabled(False)

    def set_enabled(self, enabled: bool) -> None:
        for action in self.actions:
            action.setEnabled(enabled)
        if not enabled and self.print_dialog is not None:
            self.print_dialog.reject()

    # --- what to print -----------------------------------------------------------------------------------

    def _maker(self, what: str) -> tuple[Callable[[], Printout], str | None] | None:
        if what == "report":
            report_id = self.report_source()
            if report_id is None:
                self.done.emit("Open or select a report to print it.")
                return None
            return partial(self._backend.report_printout, report_id), report_id
        query = self.query_source()
        if query is None:
            return None
        return partial(self._backend.list_printout, query), None

    # --- PDF ---------------------------------------------------------------------------------------------

    def _choose_pdf(self, what: str) -> None:
        made = self._maker(what)
        if made is None:
            return
        name = default_file_name("report" if what == "report" else "report-list-summary")
        path, _ = QFileDialog.getSaveFileName(self._parent, "Save as PDF", name, "PDF (*.pdf)")
        if path:
            self.save_pdf(Path(path), what, *made)

    def save_pdf(self, path: Path, what: str, make: Callable[[], Printout], report_id: str | None) -> None:
        """Lays out and writes the PDF on the worker (audited); ``done`` says where it went."""
        kind = "pdf, report" if what == "report" else "pdf, list summary"
        self._worker.submit(
            partial(_save_pdf_job, self._backend, make, path, kind, report_id),
            owner=self,
            on_done=partial(self._on_saved, path),
            on_error=lambda exc: self.done.emit(user_message(exc)),
        )

    def save_report_pdf(self, path: Path, report_id: str) -> None:
        self.save_pdf(path, "report", partial(self._backend.report_printout, report_id), report_id)

    def save_list_pdf(self, path: Path, query: ReportQuery) -> None:
        self.save_pdf(path, "list", partial(self._backend.list_printout, query), None)

    def _on_saved(self, path: Path, count: int) -> None:
        noun = "report" if count == 1 else "reports"
        self.done.emit(
            f"PDF of {count:,} {noun} saved to {path}. It is confidential patient safety work product: keep it "
            "where only authorised staff can read it."
        )

    # --- paper -------------------------------------------------------------------------------------------

    def _choose_printer(self, what: str) -> None:
        from PySide6.QtPrintSupport import QPrintDialog, QPrinter

        made = self._maker(what)
        if made is None:
            return
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setDocName("PSO Desktop printout")  # what the print queue shows: no PHI
        dialog = QPrintDialog(printer, self._parent)
        dialog.accepted.connect(partial(self.print_to, printer, what, *made))
        self.print_dialog = dialog
        # What QDialog.open() does (PySide's QPrintDialog.open overload wants a receiver): window-modal, no
        # nested event loop.
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.show()

    def print_to(self, printer: QPrinter, what: str, make: Callable[[], Printout], report_id: str | None) -> None:
        """Reads the printout on the worker, then paints it onto ``printer`` here and audits it."""
        self._worker.submit(
            make,
            owner=self,
            on_done=partial(self._paint_on, printer, what, report_id),
            on_error=lambda exc: self.done.emit(user_message(exc)),
        )

    def _paint_on(self, printer: QPrinter, what: str, report_id: str | None, printout: Printout) -> None:
        try:
            pages = paint_printout(printout, printer)
        except OSError:
            self.done.emit("The printer could not be used; check it and try again.")
            return
        kind = "print, report" if what == "report" else "print, list summary"
        self._worker.submit(
            partial(self._backend.record_print, kind, printout.report_count, report_id),
            owner=self,
            on_error=lambda exc: self.done.emit(user_message(exc)),
        )
        self.done.emit(f"Sent {pages} page{'' if pages == 1 else 's'} to the printer.")
        self.printed.emit(pages)
