"""What the window asks of the services: one object per thread that does the work, each owning its own.

- ``Backend`` lives on the database worker (``ui.worker.DbWorker``): the ``Workstation`` (keyring, key
  derivation) and the one open ``Session``, whose connection is bound to the thread that opened it.
- ``SyncBackend`` lives on the sync thread: sign-in, sync and automatic backups, each on a connection of its
  own, opened from the ``ProfileAccess`` that an unlock hands over (``Unlocked``), never from the database
  worker's session.

The GUI never calls these methods directly; it submits them to the thread that owns the object. No Qt here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pso_desktop import paths

if TYPE_CHECKING:
    from pso_desktop.domain.catalogue import Catalogue
    from pso_desktop.domain.validation import FieldError
    from pso_desktop.security.profiles import KeyPolicy
    from pso_desktop.services.printout import Printout
    from pso_desktop.services.training import TrainingEnvironment
    from pso_desktop.services.trends import Trends
    from pso_desktop.services.workstation import ProfileAccess, Session, Workstation
    from pso_desktop.storage.facility import Review
    from pso_desktop.storage.report_query import ReportQuery
    from pso_desktop.storage.reports import ReportSummary
    from pso_desktop.sync.engine import Progress, SyncSummary
    from pso_desktop.sync.transport import ApiClient, ServerSettings


UNIT, REPORTER = "new_report.unit", "new_report.reporter"
# The reporter's answers a new report starts with (never "anonymous": each report chooses that afresh).
REMEMBERED_REPORTER = ("name", "job", "telephone", "email", "first_reported_by", "professional_type")


@dataclass(frozen=True)
class SignInDefaults:
    server_url: str
    fixed_by_policy: bool
    username: str
    ca_file: str = ""
    proxy: str = ""


@dataclass(frozen=True)
class Standing:
    """Where a stored report stands, for the form's header: its state and revision, the PSO's case number, and
    the PSO's latest status and note (from the status feed)."""

    state: str
    revision: int
    server_ref: str | None = None
    pso_status: str | None = None
    pso_note: str | None = None
    facility: bool = False  # a copy of the facility's report (a risk manager's): read-only here
    reviewable: bool = (
        False  # the facility's review applies (a facility copy, or a risk manager's own sent report)
    )


@dataclass(frozen=True)
class QueueState:
    """Where the unlocked profile's outbox stands, for the window's indicator: whether it is signed in to its PSO
    account, how many reports wait to be sent, and how many the PSO did not accept."""

    signed_in: bool
    waiting: int
    needs_attention: int
    reviews_waiting: int = 0  # a risk manager's review records not yet sent


@dataclass(frozen=True)
class Unlocked:
    """An unlocked profile, as the database worker hands it to the GUI: its name, and what the sync thread
    needs to open it on connections of its own (passed on to :meth:`SyncBackend.attach`)."""

    name: str
    access: ProfileAccess
    policy: KeyPolicy
    # Sentences the clinician reads once after this unlock (a draft the PSO already held: the sealed outbox).
    notices: tuple[str, ...] = ()


class Backend:
    """The workstation and the one open session of the window. Database worker only."""

    def __init__(
        self, workstation_factory: Callable[[], Workstation] | None = None, *, root: Path | None = None
    ) -> None:
        """``workstation_factory`` defaults to ``Workstation()`` (the data root and keyring of this user);
        ``root`` is the data root whose profiles are listed (default: ``PSO_DESKTOP_HOME`` or the platform's)."""
        self._root = root
        # Built lazily on the worker: constructing a Workstation already asks the keyring for its backend, and
        # importing the services loads pydantic, SQLCipher and the crypto libraries, which the window need not
        # wait for.
        self._factory = workstation_factory
        self._workstation: Workstation | None = None
        self._session: Session | None = None

    @property
    def unlocked(self) -> bool:
        return self._session is not None

    def list_profiles(self) -> list[str]:
        """The profiles on this workstation. Only a folder listing: the window is usable at once, before the
        services (pydantic, SQLCipher, crypto, keyring discovery) are loaded by :meth:`keyring_warning`."""
        return paths.profile_names(self._root)

    def keyring_warning(self) -> str | None:
        """A plain sentence when no secure OS keyring is available (the key-file fallback is used), else None.
        Loads the services and asks the keyring for its backend: the slow part of start-up."""
        return self._get_workstation().keys.warning

    def window_policy(self) -> tuple[float | None, float | None]:
        """What IT policy sets for the window: the idle lock's minutes and the clipboard's clearing time in
        seconds (``idle_lock_minutes``, ``clipboard_clear_seconds``); None where the default applies."""
        policy = self._get_workstation().keys.policy
        return policy.idle_lock_minutes, policy.clipboard_clear_seconds

    def unlock(self, name: str, secret: str) -> Unlocked:
        """Opens profile ``name`` (slow: memory-hard key derivation). Any session that was open is closed
        first, so at most one profile is ever unlocked."""
        self.lock()
        workstation = self._get_workstation()
        # Every page's HMAC is checked before the session writes anything; this runs on the worker thread.
        self._session = workstation.open(name, secret, full_check=True)
        return Unlocked(name, self._session.access(), workstation.keys.policy, self.take_notices())

    def take_notices(self) -> tuple[str, ...]:
        """The sentences the sealed outbox's reconciling left for the clinician since last asked (a draft the PSO
        already held: at unlock, or settled by a Submit); each is handed over once."""
        if self._session is None:
            return ()
        notices = tuple(self._session.notices)
        self._session.notices.clear()
        return notices

    def create_profile(self, name: str, secret: str) -> Unlocked:
        """Creates profile ``name`` (a display name gives its folder name) protected by ``secret`` and unlocks
        it; the unlocked profile is named by its folder."""
        self.lock()
        folder = self._get_workstation().create_profile(name, secret)
        return self.unlock(folder, secret)

    def list_reports(
        self,
        *,
        text: str | None = None,
        limit: int,
        offset: int,
        state: str | None = None,
        query: ReportQuery | None = None,
    ) -> list[ReportSummary]:
        """One page of report summaries (no PHI) for ``query`` (filters, search, sort; default newest edit first);
        ``text`` and ``state`` are shorthands for a search and one state. All in SQL, here on the worker."""
        return self._require_session().store.list_summaries(
            limit=limit, offset=offset, state=state, text=text, query=query
        )

    def list_first_page(
        self, query: ReportQuery, limit: int, counts_for: ReportQuery | None
    ) -> tuple[list[ReportSummary], tuple[dict[str, int], int] | None]:
        """The list's first page for ``query`` and, with ``counts_for``, the counts beside it (see
        :meth:`list_counts`), in one worker job: the window shows both at once, one round trip after a change."""
        rows = self.list_reports(limit=limit, offset=0, query=query)
        return rows, None if counts_for is None else self.list_counts(counts_for)

    def list_counts(self, query: ReportQuery) -> tuple[dict[str, int], int]:
        """The counts beside the list: reports per state passing every filter of ``query`` but its states, and
        how many the list shows."""
        store = self._require_session().store
        per_state = store.count_by_state(query)
        shown = sum(per_state[s] for s in query.states) if query.states else sum(per_state.values())
        return per_state, shown

    def units(self) -> list[str]:
        """The units the profile's reports name (for the unit filter)."""
        return self._require_session().store.units()

    def view_names(self) -> list[str]:
        return self._require_session().views.names()

    def load_view(self, name: str) -> ReportQuery | None:
        return self._require_session().views.get(name)

    def save_view(self, name: str, query: ReportQuery) -> list[str]:
        """Saves the list's view under ``name`` in the encrypted profile; returns every view's name."""
        views = self._require_session().views
        views.save(name, query)
        return views.names()

    def delete_view(self, name: str) -> list[str]:
        views = self._require_session().views
        views.delete(name)
        return views.names()

    def catalogue(self, version: str | None = None) -> Catalogue:
        """The form catalogue of ``version`` (default: the bundled form): bundled, or published by the PSO and
        kept in the profile (installed at unlock)."""
        from pso_desktop.domain.catalogue import CURRENT_FORM_VERSION, load_catalogue

        return load_catalogue(version or CURRENT_FORM_VERSION)

    def open_report(self, report_id: str) -> tuple[Catalogue, dict[str, Any], list[FieldError], Standing]:
        """A stored report, the catalogue of its form version, why the PSO did not accept it (if so), and where
        it stands (state, case number, the PSO's status)."""
        from pso_desktop.services import review
        from pso_desktop.storage.errors import StorageError

        session = self._require_session()
        report = review.open_report(session, report_id)  # opening a facility report is audited
        standing = self.standing(report_id)
        if report is None or standing is None:
            raise StorageError("This report is no longer in the profile; refresh the list.")
        version = report.get("form_version")
        try:
            catalogue = self.catalogue(version if isinstance(version, str) else None)
        except KeyError:
            raise StorageError(
                "This report uses a form version this app does not know; update PSO Desktop to open it."
            ) from None
        return catalogue, report, session.pso_problems(report_id), standing

    def standing(self, report_id: str) -> Standing | None:
        """Where a stored report stands now (state, case number, the PSO's status and note); None when gone."""
        session = self._require_session()
        summary = session.store.summary(report_id)
        if summary is None:
            return None
        status = session.account.server_status(report_id)
        facility = session.facility.is_facility_copy(report_id)
        server_ref = summary.server_ref or (status.server_ref if status else None)
        return Standing(
            summary.state,
            summary.revision,
            server_ref,
            status.status if status else None,
            status.note if status else None,
            facility=facility,
            reviewable=facility or (server_ref is not None and session.facility.cursors()[0] is not None),
        )

    # --- the facility's review (risk managers; services/review.py) ------------------------------------------

    def review(self, report_id: str) -> Review:
        from pso_desktop.services import review

        return review.review(self._require_session(), report_id)

    def change_review(self, report_id: str, field: str, value: str | None) -> Review:
        from pso_desktop.services import review

        return review.change_field(self._require_session(), report_id, field, value)

    def add_review_note(self, report_id: str, text: str) -> Review:
        from pso_desktop.services import review

        return review.add_note(self._require_session(), report_id, text)

    def add_review_action(self, report_id: str, text: str, owner: str | None, due: dt.date | None) -> Review:
        from pso_desktop.services import review

        return review.add_action(self._require_session(), report_id, text, owner, due)

    def save_draft(self, report: dict[str, Any]) -> int:
        """Autosave: the form's report as a draft; returns the revision stored."""
        return self._require_session().save_draft(report)

    def import_file(self, path: Path, submit: bool) -> int:
        """Imports a CSV or JSON-lines file (all rows or none; InputRejected lists every problem); returns how
        many reports were stored."""
        from pso_desktop.services import importing

        data, fmt = importing.read_import_file(path)
        return importing.import_file(self._require_session(), data, fmt, submit=submit).count

    def export(self, path: Path, fmt: str, query: ReportQuery | None = None) -> int:
        """Writes every report (with ``query``: exactly what the list shows, in its order) to ``path`` as
        ``json``, ``csv``, ``csv-readable`` or ``fhir`` (audited); returns how many."""
        session = self._require_session()
        exporters = {
            "json": session.export_json,
            "csv": session.export_csv,
            "csv-readable": session.export_csv_readable,
            "fhir": session.export_fhir,
        }
        return exporters[fmt](path, query)

    def trends(self, query: ReportQuery | None = None, drafts: bool = False) -> Trends:
        """Counts per month, kind, category, unit and harm over the last 12 months (no report content); with
        ``query``, of the reports the list shows; with ``drafts``, drafts count as events too."""
        from pso_desktop.services.trends import trends

        return trends(self._require_session(), query=query, drafts=drafts)

    def report_printout(self, report_id: str) -> Printout:
        """One report, in the form's words, ready to lay out for printing (services.printout)."""
        from pso_desktop.services.printout import report_printout

        return report_printout(self._require_session(), report_id)

    def list_printout(self, query: ReportQuery) -> Printout:
        """The summary of what the list shows for ``query``: filters, counts, every row."""
        from pso_desktop.services.printout import list_printout

        return list_printout(self._require_session(), query)

    def save_printout(self, path: Path, data: bytes, kind: str, count: int, report_id: str | None = None) -> None:
        """Writes a printout's PDF to ``path`` with its audit entry (no PHI in it)."""
        self._require_session().save_printout(path, data, kind, count, report_id)

    def record_print(self, kind: str, count: int, report_id: str | None = None) -> None:
        """Audits a printout sent to a printer."""
        self._require_session().record_print(kind, count, report_id)

    def delete_draft(self, report_id: str) -> None:
        """Deletes a never-submitted draft (audited); a submitted report is kept and StorageError says so."""
        self._require_session().delete_draft(report_id)

    def submit_report(self, report: dict[str, Any]) -> int:
        """Save, validate and queue the form's report (ReportInvalid lists what to fix; the draft is kept); its
        unit and reporter are remembered for the next new report (inside the encrypted profile)."""
        session = self._require_session()
        revision = session.submit_report(report)
        unit = (report.get("location") or {}).get("unit")
        if isinstance(unit, str) and unit.strip():
            session.remembered.put(UNIT, unit)
        reporter = report.get("reporter") or {}
        if reporter.get("anonymous") is not True:
            kept = {k: v for k, v in reporter.items() if k in REMEMBERED_REPORTER and v not in (None, "")}
            if kept.get("name"):
                session.remembered.put(REPORTER, kept)
        return revision

    def new_draft_version(self) -> str:
        """The form version new reports start on (the PSO's current one, unless withdrawn)."""
        return self._require_session().new_draft_version()

    def move_draft(
        self, report_id: str, version: str
    ) -> tuple[Catalogue, dict[str, Any], list[FieldError], Standing, list[str]]:
        """Moves a draft to ``version`` and reads it back as :meth:`open_report` does, with one sentence per
        answer that no longer fitted and was left out."""
        said = self._require_session().move_draft(report_id, version)
        return (*self.open_report(report_id), said)

    def new_report_start(self) -> tuple[Catalogue, dict[str, Any]]:
        """The catalogue and what a new report starts with: the unit and the reporter remembered by this profile
        (``{"location": {"unit": ...}, "reporter": {...}}``, parts left out when nothing is remembered)."""
        session = self._require_session()
        start: dict[str, Any] = {}
        unit = session.remembered.get(UNIT)
        if isinstance(unit, str):
            start["location"] = {"unit": unit}
        reporter = session.remembered.get(REPORTER)
        if isinstance(reporter, dict):
            start["reporter"] = {k: v for k, v in reporter.items() if k in REMEMBERED_REPORTER}
        return self.catalogue(session.new_draft_version()), start

    def sign_in_defaults(self) -> SignInDefaults:
        """What the sign-in dialog starts with: the server (and whether IT's policy fixes it) and the account
        name last used. Database worker."""
        policy = self._get_workstation().keys.policy.server
        account = self._require_session().account.get()
        if policy is not None:
            return SignInDefaults(policy.url, True, account.username if account else "")
        if account is not None:
            return SignInDefaults(
                account.server_url, False, account.username, account.ca_file or "", account.proxy or ""
            )
        return SignInDefaults("", False, "")

    def status_counts(self) -> dict[str, int]:
        return self._require_session().status_counts()

    def lock(self) -> str | None:
        """Closes the open session, if any: the connection and its key go away. Safe to call twice. Returns a
        sentence when the closing could not be recorded in the audit log (e.g. a full disk): the lock itself
        still happened, and the drafts saved before it stay saved."""
        session, self._session = self._session, None
        if session is not None:
            return session.close_noting_problem()
        return None

    def _get_workstation(self) -> Workstation:
        if self._workstation is None:
            if self._factory is None:
                from pso_desktop.services.workstation import Workstation

                self._workstation = Workstation()
            else:
                self._workstation = self._factory()
        return self._workstation

    def _require_session(self) -> Session:
        if self._session is None:
            # Reaching here means the GUI asked for reports while locked: a bug, not a user error.
            raise RuntimeError("no profile is unlocked")
        return self._session


class SyncBackend:
    """The window's link to the PSO: sign-in, sync and automatic backups. Sync thread only: it opens the
    unlocked profile on connections of its own, from what :meth:`attach` was given at unlock, so the form's
    autosave and the list keep working on the database worker meanwhile."""

    def __init__(self) -> None:
        self._unlocked: Unlocked | None = None
        self._probe_api: ApiClient | None = None  # kept between probes: one TLS context, not one per probe

    def attach(self, unlocked: Unlocked) -> None:
        """Takes over what the unlock handed out. Once that profile locks, its access opens nothing more."""
        self._unlocked = unlocked

    def detach(self) -> None:
        """Forgets the profile (at lock)."""
        self._unlocked = None
        self._forget_probe()

    def run_sync(
        self,
        on_progress: Callable[[Progress], None],
        should_stop: Callable[[], bool],
        *,
        automatic: bool = False,
        statuses: bool = True,
    ) -> SyncSummary:
        """Sends the queue and, with ``statuses``, pulls statuses (see ``services.syncing.sync``). Sync thread
        only: it opens its own connection, so the form's autosave and the list keep working on the database
        worker meanwhile. An ``automatic`` run does not wait out an unreachable or busy PSO: it ends at the first
        such failure (``SyncSummary.unreachable``) and the window probes the server until it answers again."""
        from pso_desktop.services import syncing
        from pso_desktop.sync.engine import DEFAULT_MAX_WAIT, RetryPolicy

        unlocked = self._require_unlocked()
        policy = unlocked.policy
        max_wait = DEFAULT_MAX_WAIT if policy.sync_max_wait_seconds is None else policy.sync_max_wait_seconds
        session = unlocked.access.second_connection()
        try:
            return syncing.sync(
                session,
                on_progress=on_progress,
                should_stop=should_stop,
                policy=RetryPolicy(max_wait_seconds=0.0 if automatic else max_wait),
                server_policy=policy.server,
                proxy_from_environment=policy.proxy_from_environment,
                keep_closed_days=policy.facility_keep_closed_days,
                statuses=statuses,
            )
        finally:
            session.close()

    def queue_state(self) -> QueueState:
        """Whether the profile is signed in, and how many reports wait (queued, or left ``sending`` by a run
        that ended badly) or need attention, and how many review records wait. Sync thread; no network."""
        unlocked = self._require_unlocked()
        session = unlocked.access.second_connection()
        try:
            account = session.account.get()
            counts = session.status_counts()
            reviews = session.facility.unsent_count()
        finally:
            session.close()
        return QueueState(
            bool(account is not None and account.refresh_token),
            counts.get("queued", 0) + counts.get("sending", 0),
            counts.get("needs_attention", 0),
            reviews,
        )

    def probe(self) -> None:
        """Asks the signed-in account's PSO server whether it answers (``ApiClient.probe``: no token, short
        timeouts); raises the sync errors when it does not. Sync thread; reads the account on the first probe
        after an unlock or a sign-in only."""
        api = self._probe_api
        if api is None:
            from pso_desktop.services import syncing
            from pso_desktop.sync.errors import NotLinked
            from pso_desktop.sync.transport import ApiClient

            unlocked = self._require_unlocked()
            session = unlocked.access.second_connection()
            try:
                account = session.account.get()
            finally:
                session.close()
            if account is None:
                raise NotLinked()
            policy = unlocked.policy
            settings: ServerSettings = syncing.settings_of(
                account, policy.server, proxy_from_environment=policy.proxy_from_environment
            )
            api = self._probe_api = ApiClient(settings)
        api.probe()

    def _forget_probe(self) -> None:
        api, self._probe_api = self._probe_api, None
        if api is not None:
            api.close()

    def back_up_if_due(self, after_sync: bool, should_stop: Callable[[], bool]) -> Path | None:
        """The automatic encrypted backup when one is due (docs/storage.md); the file written, or None. Sync thread:
        it reads on a connection of its own, so a lock on the database worker never waits for it, and
        ``should_stop`` (set at lock) abandons it at its next step."""
        from pso_desktop.storage import backup

        unlocked = self._unlocked
        if unlocked is None or should_stop():
            return None
        try:
            second = unlocked.access.second_connection()
        except RuntimeError:
            return None  # locked in the meantime
        try:
            taken = second.back_up_if_due(
                max_age=backup.DUE_AFTER_SYNC if after_sync else backup.DUE_AFTER, should_stop=should_stop
            )
        except backup.BackupAbandoned:
            return None
        finally:
            second.close()
        return taken.path if taken is not None else None

    def sign_in(
        self, server_url: str | None, username: str, password: str, ca_file: str | None, proxy: str | None = None
    ) -> str:
        """Links the profile to its PSO account (IT's policy server, CA and proxy win); returns the account name.
        Sync thread."""
        from pso_desktop.services import syncing

        unlocked = self._require_unlocked()
        policy = unlocked.policy
        settings = syncing.choose_server(
            policy.server,
            server_url,
            ca_file=ca_file,
            proxy=proxy,
            proxy_from_environment=policy.proxy_from_environment,
        )
        session = unlocked.access.second_connection()
        try:
            user = syncing.login(session, settings, username, password)
        finally:
            session.close()
        self._forget_probe()  # the next probe asks the server this sign-in named
        return user.get("username", username)

    def _require_unlocked(self) -> Unlocked:
        if self._unlocked is None:
            # Reaching here means the GUI asked for a sync while locked: a bug, not a user error.
            raise RuntimeError("no profile is unlocked")
        return self._unlocked


class TrainingBackend(Backend):
    """Training mode (``--demo``): the practice environment starts on the worker, before the profiles are
    listed, so the window opens at once and says what it is doing."""

    def __init__(self, environment: TrainingEnvironment) -> None:
        super().__init__(environment.workstation, root=environment.home)
        self._environment = environment

    def list_profiles(self) -> list[str]:
        self._environment.start()
        return super().list_profiles()

    def keyring_warning(self) -> str | None:
        """None: the practice profile is thrown away when the window closes, so where its key is kept does not
        matter, and the warning meant for real profiles would only alarm a trainee."""
        return None
