"""Import and export from the window (the File menu): a backlog from CSV or JSON lines, all rows or none, and
the profile's reports as JSON, CSV or a FHIR R4 Bundle, labelled PSWP.

The file dialogs run on the GUI thread; reading, validating, storing and writing run on the database worker,
through the same services as ``pso-desktop import`` and ``export``. An import that is refused lists every
problem by row and column (never a cell's contents) and stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from pso_desktop.services.backend import Backend
from pso_desktop.ui.errors import user_message
from pso_desktop.ui.ui_settings import last_export, remember_export
from pso_desktop.ui.worker import DbWorker

if TYPE_CHECKING:
    from pso_desktop.storage.report_query import ReportQuery

MAX_PROBLEMS_SHOWN = 30
EXPORT_FORMATS = {  # the file dialog's filter -> the export format
    "JSON (*.json)": "json",
    "CSV spreadsheet (*.csv)": "csv",
    "CSV to read, with the answers' words (*.readable.csv)": "csv-readable",
    "FHIR R4 Bundle (*.fhir.json)": "fhir",
}


class FileActions(QObject):
    """The File menu's actions; ``set_enabled(False)`` while locked."""

    done = Signal(str)  # a plain message for the status bar, after an import or export
    imported = Signal(int)  # reports imported (the list is worth reloading)
    refused = Signal(object)  # an import's problems (list[str]), also shown in a message box

    def __init__(self, worker: DbWorker, backend: Backend, parent: QWidget) -> None:
        super().__init__(parent)
        self._worker = worker
        self._backend = backend
        self._parent = parent
        self.problems_box: QMessageBox | None = None
        self.import_action = QAction("&Import reports…", self)
        self.import_action.setToolTip("Add reports from a CSV or JSON-lines file, as drafts")
        self.import_action.triggered.connect(partial(self._choose_import, False))
        self.import_submit_action = QAction("Import and &queue for sending…", self)
        self.import_submit_action.setToolTip(
            "Add reports from a CSV or JSON-lines file and queue them for the PSO"
        )
        self.import_submit_action.triggered.connect(partial(self._choose_import, True))
        self.export_action = QAction("&Export reports…", self)
        self.export_action.setToolTip("Write every report to a file (JSON, CSV or FHIR), labelled confidential")
        self.export_action.triggered.connect(partial(self._choose_export, False))
        self.export_shown_action = QAction("Export the &list as shown…", self)
        self.export_shown_action.setToolTip(
            "Write exactly the reports the list shows (its filters, search and order) to a file, labelled confidential"
        )
        self.export_shown_action.triggered.connect(partial(self._choose_export, True))
        # What the list shows; the window connects it to the report list.
        self.query_source: Callable[[], ReportQuery | None] = lambda: None
        self.actions = [
            self.import_action,
            self.import_submit_action,
            self.export_action,
            self.export_shown_action,
        ]
        self.set_enabled(False)

    def set_enabled(self, enabled: bool) -> None:
        for action in self.actions:
            action.setEnabled(enabled)

    # --- the dialogs (GUI thread) ------------------------------------------------------------------------

    def _choose_import(self, submit: bool) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._parent, "Import reports", "", "Reports (*.csv *.jsonl);;All files (*)"
        )
        if path:
            self.import_file(Path(path), submit=submit)

    def _choose_export(self, as_shown: bool) -> None:
        query = self.query_source() if as_shown else None  # read now: the list may change while the dialog is open
        title = "Export the list as shown" if as_shown else "Export reports"
        # A default name with no PHI in it (never the search or a filter).
        # The last export's folder and format are remembered (settings.ini; no PHI in them).
        folder, fmt = last_export()
        kind = fmt if fmt in EXPORT_FORMATS.values() else "json"
        suffix = {"fhir": ".fhir.json", "csv-readable": ".readable.csv"}.get(kind, f".{kind}")
        name = ("reports-as-listed" if as_shown else "reports") + suffix
        default = str(Path(folder) / name) if folder and Path(folder).is_dir() else name
        chosen_filter = next(label for label, value in EXPORT_FORMATS.items() if value == kind)
        path, chosen = QFileDialog.getSaveFileName(
            self._parent, title, default, ";;".join(EXPORT_FORMATS), chosen_filter
        )
        if path:
            fmt = EXPORT_FORMATS.get(chosen, "json")
            remember_export(str(Path(path).parent), fmt)
            self.export_file(Path(path), fmt, query)

    # --- the work (database worker) ----------------------------------------------------------------------

    def import_file(self, path: Path, *, submit: bool) -> None:
        self.done.emit("Checking every row of the file…")
        self._worker.submit(
            partial(self._backend.import_file, path, submit),
            owner=self,
            on_done=partial(self._on_imported, submit),
            on_error=self._on_import_failed,
        )

    def export_file(self, path: Path, fmt: str, query: ReportQuery | None = None) -> None:
        """Exports every report, or with ``query`` exactly what the list shows for it, on the worker."""
        self._worker.submit(
            partial(self._backend.export, path, fmt, query),
            owner=self,
            on_done=partial(self._on_exported, path),
            on_error=lambda exc: self.done.emit(user_message(exc)),
        )

    def _on_imported(self, submit: bool, count: int) -> None:
        queued = " and submitted" if submit else " as drafts"  # where they stand: the queue's own line
        self.done.emit(f"{count:,} report{'' if count == 1 else 's'} imported{queued}.")
        self.imported.emit(count)

    def _on_import_failed(self, exc: BaseException) -> None:
        from pso_desktop.services.reports_input import InputRejected

        message = user_message(exc)
        self.done.emit(message)
        if not isinstance(exc, InputRejected):
            return
        problems = [str(problem) for problem in exc.problems]
        shown = problems[:MAX_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"… and {len(problems) - len(shown)} more")
        box = QMessageBox(QMessageBox.Icon.Warning, "Nothing was imported", message, parent=self._parent)
        box.setInformativeText("Fix these in the file, then import it again:\n" + "\n".join(shown))
        self.problems_box = box
        box.open()
        self.refused.emit(problems)

    def _on_exported(self, path: Path, count: int) -> None:
        self.done.emit(
            f"{count:,} report{'' if count == 1 else 's'} exported to {path}. The file is confidential patient "
            "safety work product: keep it where only authorised staff can read it."
        )
