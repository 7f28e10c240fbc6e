"""Use cases of the workstation: profiles, unlocking, adding, submitting and exporting reports.

Qt-free and synchronous: the CLI calls these directly; the GUI calls them on its database worker thread,
never on the GUI thread. A ``Session`` owns one open database connection and must stay on the thread that
opened it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

from pso_desktop import paths
from pso_desktop.domain import CURRENT_FORM_VERSION, load_catalogue, validate_report
from pso_desktop.domain.catalogue import uninstall_catalogues
from pso_desktop.domain.validation import FieldError
from pso_desktop.errors import ExpectedError, where
from pso_desktop.files import write_private_file
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services import catalogues, csv_format, fhir_export, sealing
from pso_desktop.services.reports_input import decode_text, parse_reports, validate_all
from pso_desktop.services.sealing import SealedOutbox
from pso_desktop.storage import backup
from pso_desktop.storage.account import AccountStore
from pso_desktop.storage.audit import AuditLog
from pso_desktop.storage.database import open_database, transaction
from pso_desktop.storage.errors import INTERRUPTED_WRITE_DETAIL, DiskFullError, StorageError
from pso_desktop.storage.facility import FacilityStore
from pso_desktop.storage.remembered import Remembered
from pso_desktop.storage.report_query import ReportQuery
from pso_desktop.storage.reports import ReportStore
from pso_desktop.storage.views import SavedViews

_log = logging.getLogger(__name__)

PSWP_LABEL = (
    "CONFIDENTIAL - Patient Safety Work Product. Privileged and confidential under the Patient Safety and "
    "Quality Improvement Act of 2005 (42 U.S.C. 299b-22; 42 CFR Part 3). Contains protected health information."
)


RESUBMIT = "Check the report and submit it again; if the PSO refuses it again, contact your PSO."
CONFLICT_MESSAGE = (
    "The PSO already holds this revision of the report with different content (it may have been sent from another "
    "workstation). Change anything in the report, which makes it a new revision, and submit it again."
)


# A read-only command (``status``, ``report add --dry-run``) on a disk full to the byte: its outcome stands.
UNLOCK_NOT_RECORDED = (
    "Nothing was changed, but the audit log could not record this unlock because the disk is full; free some "
    "disk space, and tell IT if it happens again."
)
CLOSE_NOT_RECORDED = (
    "The profile was closed and what was saved before stays saved, but its audit log could not record the "
    "closing ({reason}); free some disk space, and tell IT if it happens again."
)


class ExportFailed(ExpectedError):
    """The export file could not be written (missing folder, a folder in the way, no permission, disk full)."""


class Workstation:
    """The profiles on this workstation (one per clinician) and the way into each one's reports."""

    def __init__(self, root: Path | None = None, *, keys: ProfileKeys | None = None) -> None:
        self.root = root or paths.home()
        self.keys = keys or ProfileKeys(self.root)

    def create_profile(self, name: str, secret: str) -> str:
        """A new local profile with its own key and empty encrypted database (works offline). ``name`` may be a
        display name with spaces: the profile's folder name is derived from it (see
        :func:`paths.profile_folder_name`) and returned; that is the name the profile is listed and opened by."""
        name = paths.profile_folder_name(name) or name  # nothing usable: the key store says what is wrong
        key = self.keys.create(name, secret)
        conn = open_database(self.keys.database_path(name), key, create=True)
        try:
            AuditLog(conn).append("profile_create", actor=name)
        finally:
            conn.close()
        return name

    def open(
        self,
        name: str,
        secret: str,
        *,
        full_check: bool | None = None,
        on_unlock_not_recorded: Callable[[str], None] | None = None,
    ) -> Session:
        """Unlock a profile with the clinician's secret; the caller closes the session.

        ``full_check=True`` checks every page's HMAC before anything is written (the GUI does, on its worker);
        ``None`` leaves it to the storage default (small files only), which keeps short CLI commands fast.
        ``on_unlock_not_recorded``: for a caller that only reads. When the unlock audit entry cannot be written
        because the disk is full, the session opens anyway and this receives the sentence to show after the
        caller's own outcome; without it, that failure is raised (nothing may be saved without a record).
        """
        key = self.keys.unlock(name, secret)
        path = self.keys.database_path(name)
        # The key came out of its AEAD-wrapped entry, so it is this database's: a page that cannot be read is
        # damage (not "wrong key"), and a -wal left by a crash may be replayed.
        conn = open_database(path, key, create=False, full_check=full_check, key_proven=True)
        session = Session(
            name,
            conn,
            reopen=partial(open_database, path, key, create=False, full_check=False, key_proven=True),
            back_up=partial(backup.back_up_if_due, db_path=path, key=key),
            sealed=SealedOutbox(self.root, name, self.keys),
        )
        del key
        try:
            # An interrupted write replayed at open is said once, in the unlock entry (no content, no path).
            detail = INTERRUPTED_WRITE_DETAIL if getattr(conn, "wal_replayed", False) else ""
            session.audit.append("unlock", actor=name, detail=detail)
        except DiskFullError:
            if on_unlock_not_recorded is None:
                conn.close()
                raise
            _log.warning("profile opened read-only without its unlock audit entry: the disk is full")
            on_unlock_not_recorded(UNLOCK_NOT_RECORDED)
        except BaseException:
            conn.close()  # no session to hand back: the connection and its key go now
            raise
        try:
            sealing.reconcile(session)  # orphans of an interrupted Submit, and what the agent brought back
        except (OSError, StorageError) as exc:
            _log.warning("the sealed outbox could not be reconciled at unlock: %s", type(exc).__name__)
        return session

    @contextmanager
    def session(
        self,
        name: str,
        secret: str,
        *,
        on_close_problem: Callable[[str], None] | None = None,
        read_only: bool = False,
    ) -> Iterator[Session]:
        """An unlocked session, closed when the block ends.

        Closing never replaces the block's own outcome: if the closing audit entry cannot be written (a full
        disk), the failure is logged, and after a block that succeeded its sentence goes to ``on_close_problem``
        (the CLI prints it as a warning after its result); after a block that failed, its own error is what
        propagates. ``read_only``: the block only reads, so an unlock that cannot be recorded on a full disk
        does not stop it; that sentence goes to ``on_close_problem`` too (see :meth:`open`).
        """
        notes: list[str] = []
        session = self.open(name, secret, on_unlock_not_recorded=notes.append if read_only else None)
        try:
            yield session
        except BaseException:
            session.close_noting_problem()
            raise
        problem = session.close_noting_problem()
        # An unlock not recorded for a full disk: the closing is not either, for the same reason; said once.
        for sentence in notes or ([problem] if problem is not None else []):
            if on_close_problem is not None:
                on_close_problem(sentence)


class ProfileAccess:
    """What another thread needs to open an unlocked profile on connections of its own (the sync thread's
    uploads and backups), handed over at unlock instead of the session itself, whose connection belongs to the
    thread that opened it. It holds the key until the session that handed it out closes (lock); after that,
    :meth:`second_connection` raises RuntimeError. Thread-safe."""

    def __init__(
        self,
        profile: str,
        reopen: Callable[[], Any] | None,
        back_up: Callable[..., backup.BackupFile | None] | None,
        sealed: SealedOutbox | None = None,
    ) -> None:
        self.profile = profile
        self._guard = threading.Lock()
        self._reopen = reopen
        self._back_up = back_up
        self.sealed = sealed

    def second_connection(self) -> Session:
        """The profile on a new connection, for the calling thread; closing it does not lock the profile."""
        with self._guard:
            reopen, back_up = self._reopen, self._back_up
        if reopen is None:
            raise RuntimeError("the profile is locked")
        return Session(self.profile, reopen(), main=False, back_up=back_up, sealed=self.sealed)

    def revoke(self) -> None:
        """Drops the key: called when the session that handed this out closes."""
        with self._guard:
            self._reopen = None
            self._back_up = None


class Session:
    """One clinician's unlocked database: reports, outbox and audit log."""

    def __init__(
        self,
        profile: str,
        conn: Any,
        *,
        reopen: Callable[[], Any] | None = None,
        main: bool = True,
        back_up: Callable[..., backup.BackupFile | None] | None = None,
        sealed: SealedOutbox | None = None,
    ) -> None:
        """``reopen`` opens another connection to the same database and ``back_up`` backs it up
        (:func:`storage.backup.back_up_if_due` bound to its path and key); both hold the key while the profile is
        unlocked. ``main`` is False for a second connection, whose closing is not a lock. ``sealed`` is the
        profile's sealed outbox (its spool and agent file), None where a copy is never sealed."""
        self.profile = profile
        self.sealed = sealed
        # Sentences for the clinician from the sealed outbox's reconciling (a draft the PSO already held).
        self.notices: list[str] = []
        self._conn = conn
        self._reopen = reopen
        self._backup = back_up
        self._main = main
        self._access = ProfileAccess(profile, reopen, back_up, sealed)
        self.store = ReportStore(conn)
        self.audit = AuditLog(conn)
        self.account = AccountStore(conn)
        self.facility = FacilityStore(conn)
        self.views = SavedViews(conn)
        self.remembered = Remembered(conn)
        if main:
            # The catalogues the PSO published, kept in this profile: the form uses them offline from now on.
            catalogues.install_kept(self.account)

    def write(self) -> Any:
        """One write transaction on this session's connection, for several repositories' writes together."""
        return transaction(self._conn)

    def new_draft_version(self) -> str:
        """The form version a new report starts on (the PSO's current one, unless withdrawn)."""
        return catalogues.new_draft_version(self.account.reference())

    def move_draft(self, report_id: str, version: str | None = None) -> list[str]:
        """Moves a draft to ``version`` (default: the one new drafts start on) and saves it; returns one sentence
        per answer that no longer fits and was left out. A report already submitted is not moved (its frozen
        revision stays on its version); submit a draft and it is checked against its new version."""
        report = self.store.get(report_id)
        summary = self.store.summary(report_id)
        if report is None or summary is None:
            raise StorageError("This report is no longer in the profile; refresh the list.")
        if summary.state != "draft":
            raise StorageError(
                "Only a draft can move to another form version; this report was submitted on its own."
            )
        target = load_catalogue(version or self.new_draft_version())
        if report.get("form_version") == target.version:
            return []
        moved, said = catalogues.move_report(report, target)
        self.save_draft(moved)
        return said

    def second_connection(self) -> Session:
        """The same unlocked profile on a new connection, for another thread (a sync running beside the form's
        autosave: SQLite's WAL lets one write while the other reads). Call it on the thread that will use it;
        closing it does not lock the profile. Raises RuntimeError once this session is closed."""
        if self._reopen is None:
            raise RuntimeError("this session cannot open a second connection")
        return Session(self.profile, self._reopen(), main=False, back_up=self._backup, sealed=self.sealed)

    def access(self) -> ProfileAccess:
        """The way for another thread to open this profile on connections of its own, until this session
        closes (see :class:`ProfileAccess`)."""
        return self._access

    def back_up_if_due(
        self, *, max_age: dt.timedelta = backup.DUE_AFTER, should_stop: Callable[[], bool] | None = None
    ) -> backup.BackupFile | None:
        """Takes an encrypted backup into the profile's ``backups/`` folder when the newest is older than
        ``max_age`` (see docs/storage.md, "Backups and recovery"); returns it, or None when none was due.

        Reads one snapshot on this session's connection, so run it where that connection lives (the GUI: the
        sync thread, on a second connection, so a lock never waits for it). ``should_stop`` abandons it
        (BackupAbandoned); a failure raises BackupError and is audited. Nothing is done once locked.
        """
        take = self._backup
        if take is None:
            return None
        try:
            taken: backup.BackupFile | None = take(self._conn, max_age=max_age, should_stop=should_stop)
        except backup.BackupError as exc:
            with suppress(StorageError):  # the audit entry must not replace the reason the backup failed
                self.audit.append("backup", actor=self.profile, detail=f"failed: {type(exc).__name__}")
            raise
        if taken is not None:
            self.audit.append("backup", actor=self.profile, detail="written")
        return taken

    def replace_backups_after_purge(self) -> None:
        """After the facility's copies were purged: one fresh backup replaces every older one, which still held
        them (:func:`storage.backup.replace_after_purge`; when it fails the older ones are removed anyway).
        Never raises for the backup; the purge stands either way. Audited."""
        take = self._backup
        if take is None:
            return
        taken = take(self._conn, after_purge=True)
        detail = "replaced after purge" if taken is not None else "older removed after purge; none written"
        with suppress(StorageError):
            self.audit.append("backup", actor=self.profile, detail=detail)

    def add_from_bytes(self, data: bytes, *, submit: bool = False, dry_run: bool = False) -> list[dict[str, Any]]:
        """Parse, validate and store every report in ``data`` in one transaction; InputRejected stores nothing."""
        items = parse_reports(decode_text(data))
        for _, raw in items:
            if isinstance(raw, dict):
                raw.setdefault("id", str(uuid.uuid4()))
        reports = validate_all(items)
        if not dry_run:
            self.add_reports(reports, submit=submit)
        return reports

    def add_reports(self, reports: list[dict[str, Any]], *, submit: bool = False) -> None:
        """Store already-validated wire-form reports in one transaction (queued for sending with ``submit``)."""
        if submit:  # committed first: a killed Submit's sealed copy carries these keys
            self.store.ensure_owner_keys([str(report["id"]) for report in reports])
        with transaction(self._conn):  # the reports and their audit entry, or neither
            if submit:  # a draft a killed Submit sealed goes above the PSO's copy of it
                self.notices += sealing.settle_orphans(self, [str(report["id"]) for report in reports])
            self.store.add_reports(reports, submit=submit)
            self.audit.append(
                "submit" if submit else "create", actor=self.profile, detail=f"{len(reports)} report(s)"
            )
            if submit:  # sealed into the spool before the commit (docs/sealed-outbox.md)
                sealing.seal_submitted(self, [str(report["id"]) for report in reports])

    def import_reports(self, reports: list[dict[str, Any]], *, submit: bool, detail: str) -> None:
        """Store validated reports as :meth:`add_reports` does, plus an ``import`` audit entry (``detail``: the
        format and counts, never content), all in one transaction."""
        with transaction(self._conn):
            self.add_reports(reports, submit=submit)
            self.audit.append("import", actor=self.profile, detail=detail)

    def save_draft(self, report: Mapping[str, Any]) -> int:
        """Autosave one report's draft (complete or not) in one transaction; returns the revision now stored.

        The first save of a new report is audited as ``create``; later autosaves are not, so the audit log
        records what happened to a report rather than every keystroke pause. Drafts are not validated here:
        the form may be half-filled. Validation belongs to submitting.
        """
        with transaction(self._conn):
            is_new = self.store.get(str(report.get("id"))) is None
            revision = self.store.save_draft(report)
            if is_new:
                self.audit.append("create", actor=self.profile, report_id=str(report["id"]))
        return revision

    def submit_report(self, report: Mapping[str, Any], *, today: dt.date | None = None) -> int:
        """The form's Submit: save the draft, then validate what is stored and queue it; returns the revision.

        The draft is saved first, in its own transaction, so nothing typed is lost when the report cannot be
        sent yet: an incomplete report raises ReportInvalid (every problem, each with what to fix) and stays a
        draft.
        """
        report_id = str(report.get("id"))
        revision = self.save_draft(report)
        stored = self.store.get(report_id)
        assert stored is not None  # just saved
        validate_report(stored, today=today)
        self.submit([report_id])
        submitted = self.store.get(report_id)
        return int(submitted["revision"]) if submitted is not None else revision

    def pso_problems(self, report_id: str) -> list[FieldError]:
        """Why the PSO did not accept the report's last submitted revision, as problems the form can list
        ([] unless it needs attention). The server's messages use validation's wording."""
        attention = self.store.attention(report_id)
        if attention is None:
            return []
        status, errors = attention
        problems = [
            FieldError(str(error.get("field") or "report"), str(error["message"]))
            for error in errors
            if isinstance(error, dict) and error.get("message")
        ]
        if problems:
            return problems
        if status == "conflict":
            return [FieldError("report", CONFLICT_MESSAGE)]
        return [
            FieldError("report", f"The PSO did not accept this report (its answer: {status[:40]!r}). " + RESUBMIT)
        ]

    def get_report(self, report_id: str) -> dict[str, Any] | None:
        """The report's current content (its draft, or its last submitted revision), or ``None``."""
        return self.store.get(report_id)

    def submit(self, report_ids: list[str]) -> None:
        """Freeze and queue each report's current draft, with one audit entry per report, in one transaction."""
        self.store.ensure_owner_keys(report_ids)  # committed first: a killed Submit's sealed copy carries them
        with transaction(self._conn):
            # A draft a killed Submit sealed goes above the PSO's copy of it, never as a conflicting copy.
            self.notices += sealing.settle_orphans(self, report_ids)
            self.store.submit(report_ids)
            for report_id in report_ids:
                self.audit.append("submit", actor=self.profile, report_id=report_id)
            sealing.seal_submitted(self, report_ids)  # into the spool before the commit (docs/sealed-outbox.md)

    def delete_draft(self, report_id: str) -> None:
        """Delete a never-submitted draft and record it in the audit log (by its ID only), in one transaction.

        A submitted report raises StorageError and nothing changes; an unknown ID deletes nothing and is
        not audited.
        """
        with transaction(self._conn):
            if self.store.get(report_id) is None:
                return
            self.store.delete(report_id)
            self.audit.append("delete", actor=self.profile, report_id=report_id)

    def status_counts(self) -> dict[str, int]:
        return self.store.outbox_counts()

    def reports_to_export(self, query: ReportQuery | None = None) -> Iterator[dict[str, Any]]:
        """Every report (oldest first), or with ``query`` exactly the reports the list shows for it, in its order."""
        return self.store.export_all() if query is None else self.store.export_matching(query)

    def export_json(self, out: Path, query: ReportQuery | None = None) -> int:
        """Write every report (or, with ``query``, what the list shows), under the PSWP label, to ``out``
        atomically; returns how many were written."""
        reports = list(self.reports_to_export(query))
        document = {
            "confidentiality": PSWP_LABEL,
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            # The versions the reports were written on (each report keeps its own): a V1.2 report or one on a
            # published version is not on the bundled form this header named before.
            "form_versions": sorted({str(r.get("form_version", CURRENT_FORM_VERSION)) for r in reports}),
            "count": len(reports),
            "reports": reports,
        }
        data = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
        # The audit entry commits only if the file was written: no export without its entry, and no entry
        # for an export that failed (the commit itself failing after the rename is the one remaining gap).
        with transaction(self._conn):
            self.audit.append("export", actor=self.profile, detail=_export_detail("json", len(reports), query))
            _write_atomically(out, data)
        return len(reports)

    def export_csv(self, out: Path, query: ReportQuery | None = None) -> int:
        """Write every report (or, with ``query``, what the list shows) as CSV (docs/import-export.md), the PSWP
        label in its first column, to ``out`` atomically; returns how many were written. A report the CSV
        columns cannot carry writes nothing."""
        data, count = csv_format.write_csv(self.reports_to_export(query), PSWP_LABEL)
        with transaction(self._conn):  # as export_json: no file without its audit entry, and no entry without it
            self.audit.append("export", actor=self.profile, detail=_export_detail("csv", count, query))
            _write_atomically(out, data)
        return count

    def export_csv_readable(self, out: Path, query: ReportQuery | None = None) -> int:
        """Write every report (or, with ``query``, what the list shows) as the readable CSV: the CSV columns with
        the answers' words beside their codes, and each report's case number, state and status at the PSO
        (docs/import-export.md); for reading, not for import. Atomically, with its audit entry."""
        data, count = csv_format.write_readable_csv(self.store.export_with_status(query), PSWP_LABEL)
        with transaction(self._conn):  # as export_json: no file without its audit entry, and no entry without it
            self.audit.append("export", actor=self.profile, detail=_export_detail("csv-readable", count, query))
            _write_atomically(out, data)
        return count

    def export_fhir(self, out: Path, query: ReportQuery | None = None) -> int:
        """Write every report (or, with ``query``, what the list shows) as one FHIR R4 Bundle (type
        ``collection``) of AdverseEvents, labelled PSWP and restricted (docs/import-export.md, "FHIR"), to
        ``out`` atomically; returns how many were written."""
        document = fhir_export.bundle(self.reports_to_export(query), PSWP_LABEL)
        count = len(document.get("entry", []))
        data = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
        with transaction(self._conn):  # as export_json: no file without its audit entry, and no entry without it
            self.audit.append("export", actor=self.profile, detail=_export_detail("fhir", count, query))
            _write_atomically(out, data)
        return count

    def record_print(self, kind: str, count: int, report_id: str | None = None) -> None:
        """Audits a printout or PDF (``kind``: e.g. ``pdf, report`` or ``print, list summary``) of ``count``
        reports; never its content or the list's search."""
        self.audit.append("print", actor=self.profile, report_id=report_id, detail=f"{kind}, {count} report(s)")

    def save_printout(self, out: Path, data: bytes, kind: str, count: int, report_id: str | None = None) -> None:
        """Writes a printout's PDF (made by the window) to ``out`` as exports are written (atomically, readable by
        its owner only, never through a link or onto a device) with its audit entry: both, or neither."""
        with transaction(self._conn):
            self.record_print(kind, count, report_id)
            _write_atomically(out, data)

    def close(self) -> None:
        """Records the lock in the audit log and closes the connection. The connection is closed even when the
        entry cannot be written; that failure is raised afterwards (see :meth:`close_noting_problem`)."""
        self._reopen = None  # the key goes with it
        self._backup = None
        self._access.revoke()
        if self._main:
            uninstall_catalogues()
        try:
            if self._main:
                self.audit.append("lock", actor=self.profile)
        finally:
            self._conn.close()

    @property
    def connection(self) -> Any:
        """The session's database connection, for a caller's transaction spanning several stores."""
        return self._conn

    def close_noting_problem(self) -> str | None:
        """:meth:`close`, for callers whose own outcome must stay what the user sees: a failure to record the
        closing is logged (its type and place only) and returned as a sentence to show beside that outcome,
        never raised. ``None`` when all went well."""
        try:
            self.close()
        except Exception as exc:
            _log.warning("profile closed without its lock audit entry: %s at %s", type(exc).__name__, where(exc))
            reason = "the disk is full" if isinstance(exc, DiskFullError) else "the database could not be written"
            return CLOSE_NOT_RECORDED.format(reason=reason)
        return None


def _export_detail(fmt: str, count: int, query: ReportQuery | None) -> str:
    """The audit detail of an export: format, count, and whether the list's filters chose the reports (never
    which filters: a search can be PHI)."""
    return f"{fmt}, {count} report(s)" + (", as the list shows them" if query is not None else "")


def _write_atomically(out: Path, data: bytes) -> None:
    """Write beside the target and rename, so an interrupted export never leaves half a file. Exports go only
    to files: a new name, or a regular file to replace (see :func:`_refuse_non_file`)."""
    out = out.expanduser()
    _refuse_non_file(out)
    if not out.parent.is_dir():
        raise ExportFailed(f"The folder {out.parent} does not exist; create it or choose another place.")
    try:
        write_private_file(out, data)
    except PermissionError:
        raise ExportFailed(f"No permission to write {out}; choose a folder you may write to.") from None
    except OSError as exc:
        # Disk full, read-only medium, a name the file system refuses: the reason, never the file's contents.
        reason = exc.strerror or type(exc).__name__
        raise ExportFailed(f"The export could not be written to {out} ({reason}); choose another place.") from None


_NOT_A_FILE = {
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFIFO: "a pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
}


def _refuse_non_file(out: Path) -> None:
    """Refuses an export target that is not a regular file or a new name: the rename that publishes an export
    would replace a device node (as root: /dev/full, /dev/null), a pipe or a socket with the file, and would
    replace a symbolic link itself rather than what it points to. Nothing is touched. The check looks at the
    name itself (``lstat``); what appears there between this check and the rename is replaced, never written
    through, and only someone who may write to that folder can put it there."""
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return  # a new name
    except OSError:
        return  # e.g. a parent that is not a folder: the write says why
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise ExportFailed(f"{out} is a folder; give the export a file name, like {out / 'reports.json'}.")
    if stat.S_ISLNK(mode):
        raise ExportFailed(
            f"{out} is a symbolic link, and exports go only to files; give the path of a regular file or a new name."
        )
    kind = _NOT_A_FILE.get(stat.S_IFMT(mode), "not a regular file")
    raise ExportFailed(f"{out} is {kind}, and exports go only to files; give a new file name instead.")
