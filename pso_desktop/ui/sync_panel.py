"""Send to PSO: sending by itself while unlocked, a button (F9), a progress bar while the queue goes up, Stop, and
one quiet line in the status bar that always says where the queue stands.

The window sends the queue without being asked (``enable`` at unlock): after unlock, after Submit or an import
(``queue_changed``), when the network comes back (``QNetworkInformation``'s reachability, where the platform
has a backend), every ``send_interval``, and fetches the PSO's statuses every ``status_interval`` (IT policy,
``sync.Schedule``). An automatic run does not wait out an unreachable PSO: it ends at the first failure and
the window then only probes the server (``GET /healthz``, short timeouts) with capped exponential back-off and
jitter, honouring ``Retry-After``, until it answers; then the queue goes up. Nothing of this runs while locked
(``reset``), and a profile not signed in is told so, never asked: only F9 opens the sign-in dialog.

Every run and probe runs on the sync thread (``sync_worker``) with its own connection to the profile, so the
list and the form's autosave keep working on the database worker during a long upload. Progress comes back
through a queued signal; every answer carries the run's generation, so nothing from a run that was stopped by
a lock is shown. A profile not yet linked to its PSO account (or asked to sign in again) gets the sign-in
dialog on F9; after signing in, the sync starts by itself.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSize, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QSizePolicy, QToolButton, QWidget

from pso_desktop.services.backend import Backend, QueueState, SignInDefaults, SyncBackend
from pso_desktop.sync.schedule import Schedule
from pso_desktop.ui.errors import user_message
from pso_desktop.ui.one_line_label import OneLineLabel
from pso_desktop.ui.sign_in_dialog import SignInDialog
from pso_desktop.ui.worker import DbWorker

if TYPE_CHECKING:
    from pso_desktop.sync.engine import Progress, SyncSummary

DASH = "\u2013"  # en dash: "3 reports waiting – no connection to the PSO"


class _Indicator(OneLineLabel):
    """The status bar's queue line: as wide as its text where there is room, cut with an ellipsis where not,
    so the status bar's passing messages keep the space on its left."""

    def __init__(self) -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        width = self.fontMetrics().horizontalAdvance(self.full_text()) + 2 * self.margin() + 8
        return QSize(width, super().sizeHint().height())


class _ProgressRelay(QObject):
    """Lives on the GUI thread; the sync thread emits into it, and Qt queues each emission to the GUI."""

    progress = Signal(int, object)  # generation, Progress


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class QueueView:
    """What the indicator knows about the queue. ``waiting`` is None until the profile's outbox was read;
    ``phase`` is where a run is (idle between runs); times are already formatted (HH:MM, local)."""

    waiting: int | None = None
    needs_attention: int = 0
    signed_in: bool | None = None
    phase: str = "idle"  # idle, connecting, sending, retrying, statuses, stopping
    sent: int = 0
    total: int = 0
    reason: str | None = None  # retrying: why, in the sync error's words
    wait_seconds: float | None = None  # retrying: until the next try
    offline: bool = False  # the last try could not reach the PSO: only probes until it answers
    busy_until: str | None = None  # the PSO asked to wait (Retry-After) until then
    problem: str | None = None  # something a person must fix (a certificate, a full disk), in one sentence
    all_sent_at: str | None = None
    last_sent: int = 0  # how many the run that emptied the queue sent
    stopped: bool = False
    facility: str | None = None  # a risk manager's last run that moved the facility's reports or review, in words
    reviews_waiting: int = 0  # a risk manager's review changes made here, not yet sent


def standing_text(view: QueueView) -> str:
    """The indicator's one sentence: where the queue stands. One voice for everything about sending, so "1
    report sent" and "queued" never stand side by side."""
    if view.phase == "connecting":
        return "Connecting to the PSO…"
    if view.phase == "sending" and view.total:
        return f"Sending {view.sent:,} of {view.total:,} to the PSO…"
    if view.phase == "retrying" and view.wait_seconds is not None:
        return f"{view.reason or 'The PSO is busy.'} Trying again in {view.wait_seconds:.0f} s."
    if view.phase == "statuses":
        return "Fetching the PSO's statuses…"
    if view.phase == "stopping":
        return "Stopping after the batch on its way…"
    if view.waiting is None:
        return ""
    # Review changes wait in the same queue as far as the person is concerned: never "All sent" while they wait.
    r = view.reviews_waiting
    n = view.waiting + r
    things = " and ".join(
        [_plural(view.waiting, "report")] * bool(view.waiting) + [_plural(r, "review change")] * bool(r)
    )
    they = "it goes" if n == 1 else "they go"
    waiting = f"{things} waiting {DASH} "
    if view.signed_in is False:
        text = (waiting if n else "") + ("not signed in" if n else "Not signed in")
        text += " to the PSO; press Send to PSO (F9) to sign in."
    elif view.problem:
        text = waiting + view.problem if n else view.problem
    elif view.offline and view.busy_until and n:
        text = f"{waiting}the PSO asked to wait; {they} at {view.busy_until}."
    elif view.offline:
        text = (
            f"{waiting}no connection to the PSO; {they} as soon as it is back."
            if n
            else "Nothing waiting to be sent; no connection to the PSO for its statuses just now."
        )
    elif view.stopped and n:
        text = f"{waiting}stopped; {they} at the next automatic send, or press Send to PSO (F9)."
    elif n:
        text = f"{things} waiting to be sent."
    elif view.all_sent_at:
        sent = f"{_plural(view.last_sent, 'report')} sent to the PSO; all" if view.last_sent else "All"
        text = f"{sent} sent at {view.all_sent_at}."
    else:
        text = "Nothing waiting to be sent."
    if view.needs_attention:
        m = view.needs_attention
        verb, which = ("needs", "it") if m == 1 else ("need", "each")
        text += f" {_plural(m, 'report')} {verb} attention (open {which} from the list to see why)."
    if view.facility and text:
        text += f" Facility: {view.facility}."
    return text


def facility_words(summary: SyncSummary) -> str | None:
    """What a run did with the facility's reports and review (a risk manager's), or None when nothing."""
    parts = []
    if summary.facility_reports:
        parts.append(f"{_plural(summary.facility_reports, 'report')} fetched")
    if summary.review_records:
        parts.append(f"{_plural(summary.review_records, 'review change')} sent or received")
    if summary.facility_purged:
        parts.append(f"{_plural(summary.facility_purged, 'copy', 'copies')} removed")
    return f"{', '.join(parts)} at {_clock()}" if parts else None


def _clock() -> str:
    return datetime.now().strftime("%H:%M")


class SyncPanel(QWidget):
    """The sync controls of the report list and the queue's indicator (``status``, which the window shows in its
    status bar). ``enable`` at unlock starts sending by itself; ``reset`` on lock stops a run, the timers and
    forgets what it showed."""

    finished = Signal(object)  # SyncSummary of a run that ended (the list and counts are worth reloading)
    signed_in = Signal(str)  # the account name
    probed = Signal(bool)  # a probe of the PSO ended: whether it answered
    standing_changed = Signal(str)  # the indicator's new sentence

    def __init__(
        self,
        sync_worker: DbWorker,
        db_worker: DbWorker,
        backend: Backend,
        sync_backend: SyncBackend,
        parent: QWidget | None = None,
    ) -> None:
        """``backend`` runs on ``db_worker`` (the sign-in dialog's defaults); ``sync_backend`` on
        ``sync_worker`` (sync, probes, sign-in)."""
        super().__init__(parent)
        self.setObjectName("syncPanel")
        self._sync_worker = sync_worker
        self._db_worker = db_worker
        self._backend = backend
        self._sync_backend = sync_backend
        self._generation = 0
        self._stop = threading.Event()
        self.running = False
        self.automatic_run = False  # the run on its way was started by the window, not by F9
        self.dialog: SignInDialog | None = None

        self.send_action = QAction("&Send to PSO", self)
        self.send_action.setShortcut(QKeySequence("F9"))
        self.send_action.setToolTip(
            "Reports go to the PSO by themselves; this sends every queued report now and fetches their "
            "statuses (F9)"
        )
        self.send_action.triggered.connect(self.start)
        self.addAction(self.send_action)
        send_button = QToolButton()
        send_button.setObjectName("sendButton")
        send_button.setDefaultAction(self.send_action)
        self.progress = QProgressBar()
        self.progress.setObjectName("syncProgress")
        self.progress.setAccessibleName("Sending progress")
        self.progress.setFormat("%v of %m sent")
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the batch on its way; the rest stays queued")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.hide()
        # The queue's one line; the window shows it in its status bar, where it stays on every screen.
        self.status = _Indicator()
        self.status.setObjectName("syncStatus")
        self.status.setAccessibleName("Sending to the PSO")

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(send_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.stop_button)
        layout.addStretch(1)

        self._relay = _ProgressRelay(self)
        self._relay.progress.connect(self._on_progress)

        # Sending by itself (enabled at unlock).
        self.schedule = Schedule()
        self.view = QueueView()
        self._auto = False
        self._failures = 0  # failed tries in a row to reach the PSO (the probe's back-off)
        self._rng = random.Random()  # noqa: S311 - jitter spreads the probes; it guards no secret
        self._again: bool | None = None  # an automatic send asked for during a run (True: with statuses)
        self._manual_asked = False  # F9 during an automatic run: a run of its own follows if that one fell short
        self._probing = False
        self._send_timer = QTimer(self)
        self._send_timer.timeout.connect(self._on_send_timer)
        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self._on_status_timer)
        self._probe_timer = QTimer(self)
        self._probe_timer.setSingleShot(True)
        self._probe_timer.timeout.connect(self.probe_now)

    # --- the indicator ---------------------------------------------------------------------------------

    def _show(self, **changes: Any) -> None:
        self.view = replace(self.view, **changes)
        text = standing_text(self.view)
        if text != self.status.full_text():
            self.status.setText(text)
            self.standing_changed.emit(text)

    # --- sending by itself -----------------------------------------------------------------------------

    def enable(self, schedule: Schedule) -> None:
        """At unlock: reads where the queue stands, sends it (and fetches statuses) at once, then keeps sending
        by itself on ``schedule``."""
        self.schedule = schedule
        self._auto = True
        self._failures = 0
        self._send_timer.start(round(schedule.send_interval * 1000))
        self._status_timer.start(round(schedule.status_interval * 1000))
        self._read_queue(send=True, statuses=True)

    @property
    def enabled(self) -> bool:
        return self._auto

    def queue_changed(self) -> None:
        """A report was submitted or imported: the indicator counts it, and it goes up at once when the PSO can
        be reached (else as soon as it is back)."""
        if self._auto:
            self._read_queue(send=True, statuses=False)

    def review_changed(self) -> None:
        """A review change was stored: it goes up at once when the PSO can be reached (else as soon as it is
        back), with the facility's feeds, which only a run with statuses reads."""
        if self._auto:
            self._read_queue(send=True, statuses=True)  # counted in the indicator, then sent

    def network_changed(self, online: bool) -> None:
        """The operating system says the network came back (``online``) or went away. Back: probe the PSO now
        instead of at the end of the back-off; gone: the indicator says so, and the probes go on (the OS can be
        wrong, and a restricted network can be "online" without reaching the PSO)."""
        if not self._auto:
            return
        if online:
            if self.view.offline and not self.running:
                self._probe_timer.stop()
                self.probe_now()
            elif self.view.waiting or self.view.reviews_waiting:
                self._send_by_itself(statuses=bool(self.view.reviews_waiting))  # reviews go with statuses
        elif not self.running:
            self._show(offline=True, busy_until=None)
            if not self._probe_timer.isActive() and not self._probing:
                self._schedule_probe(None)

    def watch_network(self) -> None:
        """Follows the operating system's reachability (``QNetworkInformation``) where the platform has a
        backend for it; without one, the probes alone find the PSO again. GUI thread, once."""
        from PySide6.QtNetwork import QNetworkInformation

        if QNetworkInformation.instance() is None and not QNetworkInformation.loadBackendByFeatures(
            QNetworkInformation.Feature.Reachability
        ):
            return
        info = QNetworkInformation.instance()
        if info is not None:
            info.reachabilityChanged.connect(self._on_reachability)

    def _on_reachability(self, reachability: Any) -> None:
        from PySide6.QtNetwork import QNetworkInformation

        kind = QNetworkInformation.Reachability
        if reachability == kind.Disconnected:
            self.network_changed(False)
        elif reachability in (kind.Online, kind.Site, kind.Local):  # a PSO on the hospital's own network is "Site"
            self.network_changed(True)

    def _read_queue(self, *, send: bool, statuses: bool) -> None:
        self._sync_worker.submit(
            self._sync_backend.queue_state,
            owner=self,
            on_done=partial(self._on_queue_state, self._generation, send, statuses),
            on_error=partial(self._on_queue_failed, self._generation),
        )

    def _on_queue_state(self, generation: int, send: bool, statuses: bool, state: QueueState) -> None:
        if generation != self._generation or not self._auto:
            return
        self._show(
            waiting=state.waiting,
            needs_attention=state.needs_attention,
            signed_in=state.signed_in,
            reviews_waiting=state.reviews_waiting,
        )
        if send:
            self._send_by_itself(statuses=statuses)

    def _on_queue_failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation and self._auto:
            self._show(problem=user_message(exc))

    def _send_by_itself(self, *, statuses: bool) -> None:
        """An automatic run now, unless one is on its way (then another follows it), the profile is not signed
        in, or the PSO is unreachable (then the probe decides when)."""
        if not self._auto or self.view.signed_in is False:
            return
        if self.running or self._probing:
            self._again = bool(self._again) or statuses
            return
        if self.view.offline:
            return
        self._begin(automatic=True, statuses=statuses)

    def _on_send_timer(self) -> None:
        if self.view.waiting is None or self.view.waiting > 0:
            self._send_by_itself(statuses=False)

    def _on_status_timer(self) -> None:
        self._send_by_itself(statuses=True)

    def probe_now(self) -> None:
        """Asks the PSO whether it answers (on the sync thread); when it does, the queue goes up."""
        if not self._auto or self.running or self._probing or self.view.signed_in is False:
            return
        self._probing = True
        self._sync_worker.submit(
            self._sync_backend.probe,
            owner=self,
            on_done=partial(self._on_probed, self._generation),
            on_error=partial(self._on_probe_failed, self._generation),
        )

    def _on_probed(self, generation: int, _none: None) -> None:
        if generation != self._generation:
            return
        self._probing = False
        self.probed.emit(True)
        if self.running or not self._auto:
            return  # F9 started a run meanwhile: it tells
        # Still "offline" until a run gets through: a PSO that answers the probe but not the upload backs off too.
        self._again = None
        self._begin(automatic=True, statuses=True)

    def _on_probe_failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._probing = False
        from pso_desktop.sync.errors import NotLinked, SignInRequired, Transient

        if isinstance(exc, NotLinked | SignInRequired):
            self._show(signed_in=False)
        else:
            self._failures += 1
            retry_after = exc.retry_after if isinstance(exc, Transient) else None
            self._show(offline=True, problem=None if isinstance(exc, Transient) else user_message(exc))
            self._schedule_probe(retry_after)
        self.probed.emit(False)

    def _schedule_probe(self, retry_after: float | None) -> None:
        delay = self.schedule.probe_delay(max(self._failures, 1), retry_after, self._rng)
        self._probe_timer.start(round(delay * 1000))
        if retry_after is not None:
            at = datetime.now().timestamp() + delay
            self._show(busy_until=datetime.fromtimestamp(at).strftime("%H:%M"))

    # --- running ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Send to PSO (F9): a run now that waits out a busy or unreachable PSO (IT policy's time budget), and
        asks to sign in when the profile is not signed in."""
        if self.running:
            if self.automatic_run:
                self._manual_asked = True  # F9's own run follows the automatic one at once
            return
        self._probe_timer.stop()
        self._begin(automatic=False, statuses=True)

    def _begin(self, *, automatic: bool, statuses: bool) -> None:
        self._generation += 1
        self._stop = threading.Event()
        self.automatic_run = automatic
        self._set_running(True)
        self._show(phase="connecting", stopped=False)
        job = partial(
            self._sync_backend.run_sync,
            partial(self._relay.progress.emit, self._generation),
            self._stop.is_set,
            automatic=automatic,
            statuses=statuses,
        )
        self._sync_worker.submit(
            job,
            owner=self,
            on_done=partial(self._on_done, self._generation),
            on_error=partial(self._on_error, self._generation),
        )

    def stop(self) -> None:
        if self.running:
            self._stop.set()
            self._show(phase="stopping")

    def reset(self) -> None:
        """On lock: the run and the timers stop, answers are ignored, the indicator is emptied, and the sign-in
        dialog (it may hold a typed password) is closed."""
        self._stop.set()
        self._generation += 1
        self._auto = False
        self._probing = False
        self._again = None
        self._manual_asked = False
        for timer in (self._send_timer, self._status_timer, self._probe_timer):
            timer.stop()
        self._set_running(False)
        self._show_nothing()
        if self.dialog is not None:
            self.dialog.reject()
            self.dialog.deleteLater()
            self.dialog = None

    def _show_nothing(self) -> None:
        self.view = QueueView()
        self._show()

    def _set_running(self, running: bool) -> None:
        self.running = running
        quiet = running and self.automatic_run
        # F9 stays available during an automatic run (it asks for a run of its own if that one falls short).
        self.send_action.setEnabled(not running or quiet)
        # An automatic run shows its bar only once it has something to send: a status fetch stays quiet.
        self.progress.setVisible(running and not quiet)
        self.stop_button.setVisible(running and not quiet)
        if running:
            self.progress.setRange(0, 0)  # busy until the first progress says how many

    def _on_progress(self, generation: int, progress: Progress) -> None:
        if generation != self._generation or not self.running:
            return
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.sent)
            if progress.phase == "sending" and not self.progress.isVisible():
                self.progress.show()
                self.stop_button.show()
        if self._stop.is_set():
            return  # "Stopping…" stays until the run ends
        if progress.phase == "waiting" and progress.wait_seconds is not None:
            self._show(phase="retrying", reason=progress.reason, wait_seconds=progress.wait_seconds)
        elif progress.phase == "sending":
            self._show(phase="sending", sent=progress.sent, total=progress.total)
        elif progress.phase == "statuses":
            self._show(phase="statuses")

    def _on_done(self, generation: int, summary: SyncSummary) -> None:
        if generation != self._generation:
            return
        automatic = self.automatic_run
        self._set_running(False)
        stopped = self._stop.is_set() and summary.remaining > 0
        changes: dict[str, Any] = {
            "phase": "idle",
            "waiting": summary.remaining,
            "stopped": stopped,
            # Until the queue is read again after the run (below), the run's own refusals are counted in.
            "needs_attention": self.view.needs_attention + summary.needs_attention,
        }
        if summary.unreachable:
            self._failures += 1
            changes.update(offline=True, problem=None, busy_until=None)
        else:
            self._failures = 0
            self._probe_timer.stop()
            changes.update(offline=False, busy_until=None, signed_in=True)
            if summary.problem and not stopped:
                changes["problem"] = summary.problem
            else:
                changes["problem"] = None
            if summary.remaining == 0 and (summary.submitted or self.view.all_sent_at is None):
                changes.update(all_sent_at=_clock(), last_sent=summary.submitted)
            facility = facility_words(summary)
            if facility is not None:  # kept until a run moves the facility's again, like "all sent at"
                changes["facility"] = facility
        self._show(**changes)
        if summary.unreachable:
            self._schedule_probe(summary.retry_after)
        self.finished.emit(summary)
        self._after_run(automatic)

    def _after_run(self, automatic: bool) -> None:
        """What follows a run: F9 pressed during an automatic run gets its own run (it asked for everything up to
        the moment it was pressed); an automatic send asked for meanwhile goes now; and the indicator re-reads
        the queue (needs attention)."""
        manual, self._manual_asked = self._manual_asked, False
        again, self._again = self._again, None
        if automatic and manual:
            self.start()
        elif again is not None and self._auto and (again or self.view.waiting):
            self._send_by_itself(statuses=again)  # (a send asked for with nothing left waiting is done)
        if self._auto and not self.running:
            self._read_queue(send=False, statuses=False)

    def _on_error(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        automatic = self.automatic_run
        self._set_running(False)
        from pso_desktop.sync.errors import NotLinked, SignInRequired

        if isinstance(exc, NotLinked | SignInRequired):
            self._show(phase="idle", signed_in=False, offline=False, problem=None)
            if not automatic or self._manual_asked:
                self._manual_asked = False
                self._ask_sign_in(str(exc) if isinstance(exc, SignInRequired) else "")
            return
        # Something a person must fix (a certificate, a full disk): said until a run gets through; the timers
        # try again meanwhile.
        self._show(phase="idle", problem=user_message(exc))
        self._after_run(automatic)

    # --- signing in ------------------------------------------------------------------------------------

    def _ask_sign_in(self, reason: str) -> None:
        self._db_worker.submit(
            self._backend.sign_in_defaults,
            owner=self,
            on_done=partial(self._show_dialog, self._generation, reason),
        )

    def _show_dialog(self, generation: int, reason: str, defaults: SignInDefaults) -> None:
        if generation != self._generation:
            return
        if self.dialog is None:
            self.dialog = SignInDialog(self.window())
            self.dialog.sign_in_requested.connect(self._sign_in)
        self.dialog.prepare(defaults, reason)
        self.dialog.open()

    def _sign_in(self, server_url: str, username: str, password: str, ca_file: str, proxy: str) -> None:
        assert self.dialog is not None
        self.dialog.set_busy(True)
        job = partial(
            self._sync_backend.sign_in, server_url or None, username, password, ca_file or None, proxy or None
        )
        del password
        self._sync_worker.submit(
            job,
            owner=self,
            on_done=partial(self._on_signed_in, self._generation),
            on_error=partial(self._on_sign_in_failed, self._generation),
        )

    def _on_signed_in(self, generation: int, account: Any) -> None:
        if generation != self._generation or self.dialog is None:
            return
        self.dialog.accept()
        self._show(signed_in=True, problem=None)
        self.signed_in.emit(str(account))
        self.start()

    def _on_sign_in_failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation or self.dialog is None:
            return
        self.dialog.set_busy(False)
        self.dialog.show_error(user_message(exc))
