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
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QObject, QRectF, QSizeF, Qt, QTimer, Signal
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
from pso_desktop.ui.worker import DbWorker

if TYPE_CHECKING:
    from PySide6.QtPrintSupport import QPrintDialog, QPrinter

    from pso_desktop.services.backend import Backend
    from pso_desktop.services.printout import Printout, Table
    from pso_desktop.storage.report_query import ReportQuery

PDF_TITLE = "PSO Desktop printout (confidential patient safety work product)"  # no PHI in the metadata
PDF_RESOLUTION = 300
PAGE_MARGINS_MM = QMarginsF(15, 15, 15, 15)
BODY_POINTS = 9.5
LABEL_POINTS = 8.0
PAPER_SLICE_S = 0.03  # painting on the GUI thread yields to the event loop after this long


def to_html(printout: Printout) -> str:
    """The printout's title and sections as simple HTML for QTextDocument; every value escaped. Tables are not in
    it: they are painted row by row (:class:`_Layout`), since a QTextDocument of a 100,000-row list would take
    minutes and gigabytes to lay out."""
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
    return "\n".join(parts)


class _Layout:
    """A printout laid out for one device's page: the sections through a QTextDocument, then each table on pages
    of its own, one line per row (a cell too long for its column ends in an ellipsis), its column headings repeated
    on every page. Knows the page count before painting, for "page n of N"."""

    def __init__(self, printout: Printout, device: QPagedPaintDevice) -> None:
        self.printout = printout
        self.device = device
        resolution = device.logicalDpiY()
        page = QRectF(device.pageLayout().paintRectPixels(resolution))
        page.moveTo(0, 0)
        self.page = page
        self.label_font = QFont()
        self.label_font.setPointSizeF(LABEL_POINTS)
        self.label_font.setBold(True)
        self.foot_font = QFont()
        self.foot_font.setPointSizeF(LABEL_POINTS)
        self.flags = int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft)
        metrics = QFontMetricsF(self.label_font, device)
        self.label_rect = metrics.boundingRect(
            QRectF(0, 0, page.width(), page.height()), self.flags, printout.label
        )
        self.gap = resolution * 0.12  # about 3 mm
        self.header = self.label_rect.height() + self.gap
        self.footer = QFontMetricsF(self.foot_font, device).height() + self.gap
        self.body = QRectF(0, self.header, page.width(), page.height() - self.header - self.footer)

        self.document = QTextDocument()
        self.document.documentLayout().setPaintDevice(device)
        body_font = QFont()
        body_font.setPointSizeF(BODY_POINTS)
        self.document.setDefaultFont(body_font)
        self.document.setHtml(to_html(printout))
        self.document.setPageSize(QSizeF(self.body.width(), self.body.height()))
        self.document_pages = max(1, self.document.pageCount())

        self.cell_font = QFont(body_font)
        self.heading_font = QFont(body_font)
        self.heading_font.setBold(True)
        self.title_font = QFont(body_font)
        self.title_font.setPointSizeF(BODY_POINTS * 1.3)
        self.title_font.setBold(True)
        self.cell_metrics = QFontMetricsF(self.cell_font, device)
        self.heading_metrics = QFontMetricsF(self.heading_font, device)
        self.row_height = self.cell_metrics.height() * 1.45
        self.title_height = QFontMetricsF(self.title_font, device).height() * 1.6
        # Rows on a table's first page (under its title) and on the next ones (under its column headings).
        usable = self.body.height() - self.row_height  # the column headings
        self.first_rows = max(1, int((usable - self.title_height) // self.row_height))
        self.more_rows = max(1, int(usable // self.row_height))
        self.table_pages = [self._pages_of(len(table.rows)) for table in printout.tables]
        self.pages = self.document_pages + sum(self.table_pages)

    def _pages_of(self, rows: int) -> int:
        return 1 + max(0, -(-(rows - self.first_rows) // self.more_rows))

    def _widths(self, table: Table) -> list[float]:
        """Each column as wide as its heading and its longest text among the first rows; when they do not fit the
        page, the widest columns are narrowed to one common width (short columns, dates and states, stay whole)."""
        sample = table.rows[:500]
        pad = 2 * self.cell_metrics.horizontalAdvance(" ")
        wanted = []
        for column, name in enumerate(table.columns):
            texts = [row[column] for row in sample if column < len(row)]
            longest = max((self.cell_metrics.horizontalAdvance(t) for t in texts), default=0.0)
            wanted.append(max(self.heading_metrics.horizontalAdvance(name), longest) + pad)
        room = self.body.width()
        if sum(wanted) <= room:
            return [w * room / sum(wanted) for w in wanted]
        # Whole columns (case numbers, dates) keep their width; the others are narrowed in what remains.
        whole = [c for c in table.whole if c < len(wanted)]
        room -= sum(wanted[c] for c in whole)
        cut = sorted(w for c, w in enumerate(wanted) if c not in whole)
        cap = room / max(1, len(cut))
        for count, width in enumerate(cut):
            rest = len(cut) - count  # columns at least this wide share what the narrower ones leave
            level = (room - sum(cut[:count])) / rest
            if width >= level:
                cap = level
                break
        return [w if c in whole else min(w, cap) for c, w in enumerate(wanted)]

    def paint(self) -> Generator[int, None, None]:
        """Paints page after page, yielding each page's number once it is painted (the caller may let the event
        loop run between pages). Any thread that owns the device."""
        painter = QPainter()
        if not painter.begin(self.device):
            raise OSError("the printer or PDF could not be opened for painting")
        try:
            number = 0
            for index in range(self.document_pages):
                number = self._start_page(painter, number)
                painter.save()
                painter.translate(self.body.left(), self.body.top() - index * self.body.height())
                self.document.drawContents(
                    painter, QRectF(0, index * self.body.height(), self.body.width(), self.body.height())
                )
                painter.restore()
                yield number
            for table, pages in zip(self.printout.tables, self.table_pages, strict=True):
                widths = self._widths(table)
                start = 0
                for page_index in range(pages):
                    number = self._start_page(painter, number)
                    top = self.body.top()
                    if page_index == 0:
                        painter.setFont(self.title_font)
                        painter.setPen(QColor("#000000"))
                        painter.drawText(
                            QRectF(0, top, self.body.width(), self.title_height),
                            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                            table.heading,
                        )
                        top += self.title_height
                    count = self.first_rows if page_index == 0 else self.more_rows
                    self._paint_rows(painter, table, widths, top, table.rows[start : start + count])
                    start += count
                    yield number
        finally:
            painter.end()

    def _start_page(self, painter: QPainter, number: int) -> int:
        if number:
            self.device.newPage()
        number += 1
        page = self.page
        painter.setFont(self.label_font)
        painter.setPen(QColor("#8b0000"))
        painter.drawText(QRectF(0, 0, page.width(), self.label_rect.height()), self.flags, self.printout.label)
        painter.drawLine(0, int(self.header - self.gap / 2), int(page.width()), int(self.header - self.gap / 2))
        painter.setFont(self.foot_font)
        painter.setPen(QColor("#333333"))
        painter.drawText(
            QRectF(0, page.height() - self.footer + self.gap, page.width(), self.footer - self.gap),
            int(Qt.AlignmentFlag.AlignRight),
            f"Page {number} of {self.pages} · Confidential: Patient Safety Work Product",
        )
        return number

    def _paint_rows(
        self, painter: QPainter, table: Table, widths: list[float], top: float, rows: Sequence[tuple[str, ...]]
    ) -> None:
        pad = self.cell_metrics.horizontalAdvance(" ")
        align = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        grid = QColor("#999999")

        def line(cells: Sequence[str], y: float, metrics: QFontMetricsF) -> None:
            x = self.body.left()
            for text, width in zip(cells, widths, strict=False):
                shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, width - 2 * pad)
                painter.drawText(QRectF(x + pad, y, width - 2 * pad, self.row_height), align, shown)
                x += width
            painter.setPen(grid)
            painter.drawLine(
                int(self.body.left()), int(y + self.row_height), int(self.body.right()), int(y + self.row_height)
            )

        painter.fillRect(QRectF(self.body.left(), top, self.body.width(), self.row_height), QColor("#eeeeee"))
        painter.setFont(self.heading_font)
        painter.setPen(QColor("#000000"))
        line(table.columns, top, self.heading_metrics)
        painter.setFont(self.cell_font)
        for number, row in enumerate(rows, 1):
            painter.setPen(QColor("#000000"))
            line(row, top + number * self.row_height, self.cell_metrics)


def paint_printout(printout: Printout, device: QPagedPaintDevice) -> int:
    """Lays ``printout`` out for ``device``'s page and paints every page, the PSWP label at the top of each and
    the page number at the foot; returns the number of pages. Any thread that owns ``device``."""
    layout = _Layout(printout, device)
    for _ in layout.paint():
        pass
    return layout.pages


def pdf_bytes(printout: Printout, cancelled: Callable[[], bool] = lambda: False) -> bytes | None:
    """The printout as a PDF, in memory (US Letter); None when ``cancelled()`` turned true between two pages. Any
    thread."""
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
    pages = _Layout(printout, writer).paint()
    for _ in pages:
        if cancelled():
            pages.close()
            return None
    del writer  # finishes the file
    buffer.close()
    return bytes(data.data())


def default_file_name(kind: str, today: dt.date | None = None) -> str:
    """A PDF name with no PHI: what it is and the day, e.g. ``pso-report-2026-12-06.pdf``."""
    day = (today or dt.date.today()).isoformat()
    return f"pso-{kind}-{day}.pdf"


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
        self._paper: _PaperJob | None = None
        # PDFs are painted on a thread of their own; a lock bumps the generation, which abandons them.
        self._painter = DbWorker(self, name="pso-print")
        self._generation = 0
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
        if not enabled:
            self._generation += 1
            if self.print_dialog is not None:
                self.print_dialog.reject()
            self.stop_printing()

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
        """Reads the printout on the database worker, paints the PDF on the printing thread (thousands of pages
        for a long list: the database worker stays free for the list meanwhile), then writes it on the database
        worker, audited; ``done`` says where it went."""
        kind = "pdf, report" if what == "report" else "pdf, list summary"
        generation = self._generation
        self._worker.submit(
            make,
            owner=self,
            on_done=partial(self._paint_pdf, generation, path, kind, report_id),
            on_error=self._failed,
        )

    def _paint_pdf(
        self, generation: int, path: Path, kind: str, report_id: str | None, printout: Printout
    ) -> None:
        if generation != self._generation:
            return  # locked meanwhile

        def cancelled() -> bool:
            return generation != self._generation  # read on the printing thread: an int, set here at lock

        self._painter.submit(
            partial(pdf_bytes, printout, cancelled),
            owner=self,
            on_done=partial(self._write_pdf, generation, path, kind, printout.report_count, report_id),
            on_error=self._failed,
        )

    def _write_pdf(
        self, generation: int, path: Path, kind: str, count: int, report_id: str | None, data: bytes | None
    ) -> None:
        if data is None or generation != self._generation:
            return
        self._worker.submit(
            partial(self._backend.save_printout, path, data, kind, count, report_id),
            owner=self,
            on_done=lambda _none: self._on_saved(path, count),
            on_error=self._failed,
        )

    def _failed(self, exc: BaseException) -> None:
        self.done.emit(user_message(exc))

    def shutdown(self) -> None:
        """At exit: abandons a PDF being painted and stops the printing thread."""
        self._generation += 1
        self._painter.shutdown()

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
        """Paints the printout onto ``printer`` a few pages per turn of the event loop (a list summary of 100,000
        reports is thousands of pages; the window keeps answering meanwhile)."""
        try:
            layout = _Layout(printout, printer)
        except OSError:
            self.done.emit("The printer could not be used; check it and try again.")
            return
        self._paper = _PaperJob(layout, layout.paint(), printer, what, report_id, printout.report_count)
        self._paint_some()

    def _paint_some(self) -> None:
        job = self._paper
        if job is None:
            return
        deadline = time.monotonic() + PAPER_SLICE_S
        try:
            for number in job.pages:
                if time.monotonic() > deadline and number < job.layout.pages:
                    self.done.emit(f"Printing: page {number:,} of {job.layout.pages:,}…")
                    QTimer.singleShot(0, self._paint_some)
                    return
        except OSError:
            self._paper = None
            self.done.emit("The printer could not be used; check it and try again.")
            return
        self._paper = None
        kind = "print, report" if job.what == "report" else "print, list summary"
        self._worker.submit(
            partial(self._backend.record_print, kind, job.count, job.report_id),
            owner=self,
            on_error=lambda exc: self.done.emit(user_message(exc)),
        )
        pages = job.layout.pages
        self.done.emit(f"Sent {pages:,} page{'' if pages == 1 else 's'} to the printer.")
        self.printed.emit(pages)

    def stop_printing(self) -> None:
        """Abandons a printout being painted (on lock: the printout holds PHI); the printer drops the job."""
        job, self._paper = self._paper, None
        if job is not None:
            job.printer.abort()
            job.pages.close()  # ends the painter
            self.done.emit("Printing was stopped.")


@dataclass
class _PaperJob:
    """A printout being painted onto paper, page by page, on the GUI thread."""

    layout: _Layout
    pages: Generator[int, None, None]
    printer: QPrinter
    what: str
    report_id: str | None
    count: int
