"""Sending by itself while unlocked, against the real reference server over TLS on loopback, reached through a
network link the tests cut and restore (offscreen, Qt's reachability backend always says "online", so the
window's probe of the PSO is what finds it again). No test presses F9: the queue goes up after unlock, after
Submit and when the PSO is back; the statuses come on their timer; the status bar says where the queue stands
all along; and typing in the form meanwhile never stalls the GUI thread over 100 ms."""

from __future__ import annotations

import gc
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtNetwork import QNetworkInformation
from PySide6.QtTest import QTest

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Workstation
from pso_desktop.sync.transport import ServerSettings
from pso_desktop.ui.reports_model import COLUMNS
from pso_desktop.ui.window import MainWindow
from pso_server.practice import RunningServer
from tests.support.network_link import NetworkLink
from tests.support.reports import sample_reports
from tests.support.server_process import ServerProcess, server_process
from tests.support.stall_meter import StallMeter
from tests.support.sync import ACCOUNT, PASSWORD, practice_server
from tests.support.ui import PROFILE, SECRET, fill_fall_incident, form_of, open_new_report, unlock

QUEUED = 4  # the stored_reports fixture queues its first four reports
BACKLOG = 600
STALL_BUDGET_MS = 100
KEY_EVERY_MS = 100
# Short intervals, so that no test sleeps long: a probe a second at first, never more than two apart.
FAST = {"send_interval_seconds": 2, "status_interval_seconds": 3600, "probe_seconds": 1, "probe_max_seconds": 2}
TYPED = "patient found on the floor beside the bed "
OFFLINE = "waiting – no connection to the PSO;"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The shared server, but a 503 asks for only 2 s (the busy-PSO test waits it out)."""
    with practice_server(tmp_path / "server", retry_after_seconds=2) as running:
        yield running


@pytest.fixture
def link(server: RunningServer) -> Iterator[NetworkLink]:
    with NetworkLink(server.base_url) as running:
        yield running


@pytest.fixture
def separate_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with server_process(tmp_path / "separate-server") as running:
        yield running


@pytest.fixture
def separate_link(separate_server: ServerProcess) -> Iterator[NetworkLink]:
    with NetworkLink(separate_server.base_url) as running:
        yield running


def set_policy(pso_home: Path, **sync: float) -> None:
    (pso_home / "policy.json").write_text(json.dumps({"sync": sync}))


def sign_in(workstation: Workstation, link: NetworkLink, ca_path: Path) -> None:
    """The profile signed in to the PSO through the link (as the sign-in dialog or ``pso-desktop login`` does)."""
    with workstation.session(PROFILE, SECRET) as session:
        syncing.login(session, ServerSettings(link.url, ca_file=str(ca_path)), ACCOUNT, PASSWORD)


class Said:
    """Every sentence the queue's indicator showed, in order."""

    def __init__(self, window: MainWindow) -> None:
        self.lines: list[str] = []
        window.sync_panel.standing_changed.connect(self.lines.append)
        self._panel = window.sync_panel

    @property
    def now(self) -> str:
        return self._panel.status.full_text()


def no_f9(window: MainWindow) -> list[bool]:
    """Records every use of Send to PSO (F9), so a test can show it never pressed it."""
    pressed: list[bool] = []
    window.sync_panel.send_action.triggered.connect(lambda *_: pressed.append(True))
    return pressed


def counts(workstation: Workstation) -> dict[str, int]:
    with workstation.session(PROFILE, SECRET) as session:
        return session.status_counts()


def type_until(qtbot: Any, target: Any, done: Callable[[], bool], timeout_s: float) -> int:
    """Types into ``target`` a key at a time, as a quick typist does (ten keys a second, the event loop running
    between keys as it does for real keys), until ``done``; returns how many keys were typed."""
    deadline = time.monotonic() + timeout_s
    typed = 0
    while not done():
        assert time.monotonic() < deadline, "timed out while typing"
        qtbot.keyClick(target, TYPED[typed % len(TYPED)])
        typed += 1
        QTest.qWait(KEY_EVERY_MS)
    return typed


def test_the_queue_goes_up_by_itself_when_the_pso_comes_back_and_typing_never_stalls(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    separate_server: ServerProcess,
    separate_link: NetworkLink,
    pso_home: Path,
    workstation_factory: Callable[[], Workstation],
) -> None:
    """The PSO runs in a process of its own here, as a real one does: in this process its work would hold the
    GIL against the window and be counted as the window's stall."""
    server, link = separate_server, separate_link
    set_policy(pso_home, **FAST)
    workstation = workstation_factory()
    sign_in(workstation, link, server.ca_path)
    with workstation.session(PROFILE, SECRET) as session:  # a backlog: more than one batch (500) to send
        session.add_reports(sample_reports(BACKLOG, seed=5), submit=True)
    waiting = QUEUED + BACKLOG
    link.cut()  # the ward's network goes down before the nurse unlocks

    window = make_window()
    said = Said(window)
    pressed = no_f9(window)
    panel = window.sync_panel
    unlock(qtbot, window)
    qtbot.waitUntil(
        lambda: said.now == f"{waiting} reports {OFFLINE} they go as soon as it is back.", timeout=10_000
    )
    assert window.statusBar().isAncestorOf(panel.status) and panel.status.isVisible()

    # The nurse writes a new report meanwhile; the window keeps probing the PSO in the background.
    editor = open_new_report(qtbot, window)
    narrative = form_of(editor).fields["narrative"].focus_target()
    narrative.setFocus()
    probes: list[bool] = []
    panel.probed.connect(probes.append)
    meter = StallMeter()
    # This process also holds the whole suite's objects (pytest's, earlier tests'); a full garbage collection of
    # them, 165-380 ms here, is no pause of the window's. They are kept out of the collector while measuring
    # (gc.freeze); everything made from here on, the upload's objects among them, is collected as usual.
    gc.collect()
    gc.freeze()
    try:
        with meter.running():
            type_until(qtbot, narrative, lambda: len(probes) >= 2, timeout_s=15)
            assert probes == [False, False] and said.now.startswith(f"{waiting} reports {OFFLINE}")
            link.restore()  # the network is back: nobody presses anything
            type_until(qtbot, narrative, lambda: said.now.startswith(f"{waiting} reports sent to the PSO;"), 60)
    finally:
        gc.unfreeze()
    assert meter.largest_gap_ms <= STALL_BUDGET_MS, f"the GUI thread stalled {meter.largest_gap_ms:.0f} ms"
    assert said.now.startswith(f"{waiting} reports sent to the PSO; all sent at ")
    assert server.reports_held() == waiting
    sending = [line for line in said.lines if line.startswith("Sending ")]
    assert sending[-2:] == [f"Sending 500 of {waiting} to the PSO…", f"Sending {waiting} of {waiting} to the PSO…"]
    assert panel.progress.isHidden()  # the bar showed while sending, and went with the run
    assert counts(workstation_factory())["queued"] == 0

    # The nurse submits during a second outage: the report waits, and goes once the PSO is back.
    link.cut()
    form = form_of(editor)
    fill_fall_incident(qtbot, form)
    with qtbot.waitSignal(editor.submitted, timeout=10_000):
        qtbot.keyClick(
            form.fields["reporter.name"].focus_target(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )
    qtbot.waitUntil(lambda: said.now == f"1 report {OFFLINE} it goes as soon as it is back.", timeout=10_000)
    assert window.statusBar().currentMessage() == "The report is submitted."  # nothing there about the queue
    link.restore()
    qtbot.waitUntil(lambda: said.now.startswith("1 report sent to the PSO; all sent at "), timeout=15_000)
    assert server.reports_held() == waiting + 1
    assert pressed == []  # F9 was never used
    model = window.reports_screen.model
    qtbot.waitUntil(lambda: all(model.summary(r).state in ("submitted", "draft") for r in range(model.rowCount())))


def test_submit_sends_at_once_and_the_statuses_come_on_their_timer(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    server: RunningServer,
    link: NetworkLink,
    pso_home: Path,
    workstation_factory: Callable[[], Workstation],
) -> None:
    set_policy(pso_home, send_interval_seconds=3600, status_interval_seconds=1, probe_seconds=1)
    sign_in(workstation_factory(), link, server.ca_path)
    window = make_window()
    said = Said(window)
    pressed = no_f9(window)
    unlock(qtbot, window)  # the unlock sends what was waiting
    qtbot.waitUntil(lambda: said.now.startswith(f"{QUEUED} reports sent to the PSO; all sent at "), timeout=15_000)

    # The PSO asks for more about one report: the status timer brings it into the list, no key pressed.
    asked = stored_reports[0]["id"]
    server.set_status(asked, "more_info_requested")
    model = window.reports_screen.model
    column = [key for key, _ in COLUMNS].index("pso_status")

    def shown_status() -> str | None:
        rows = [r for r in range(model.rowCount()) if model.summary(r).id == asked]
        return model.index(rows[0], column).data() if rows else None

    qtbot.waitUntil(lambda: shown_status() == "More information requested", timeout=15_000)
    assert said.now.startswith(f"{QUEUED} reports sent to the PSO; all sent at ")  # a status fetch is quiet
    assert not window.sync_panel.progress.isVisible()
    assert pressed == []


def test_a_busy_pso_is_given_the_time_it_asks_for(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    server: RunningServer,
    link: NetworkLink,
    pso_home: Path,
    workstation_factory: Callable[[], Workstation],
) -> None:
    """A PSO restarting answers 503 with Retry-After (2 s here): the window waits that long before it asks
    again, and says until when."""
    set_policy(pso_home, **FAST)
    sign_in(workstation_factory(), link, server.ca_path)
    server.start_draining()
    window = make_window()
    said = Said(window)
    panel = window.sync_panel
    probes: list[float] = []
    panel.probed.connect(lambda _ok: probes.append(time.monotonic()))
    unlock(qtbot, window)
    qtbot.waitUntil(lambda: "waiting – the PSO asked to wait; they go at " in said.now, timeout=10_000)
    asked_at = time.monotonic()
    qtbot.waitUntil(lambda: len(probes) >= 1, timeout=10_000)
    assert probes[0] - asked_at >= 1.5  # not before the Retry-After (2 s, less the time to show it)
    server.stop_draining()
    qtbot.waitUntil(lambda: said.now.startswith(f"{QUEUED} reports sent to the PSO;"), timeout=15_000)
    assert server.stats()["reports"] == QUEUED


def test_an_unreachable_pso_is_probed_less_and_less_and_not_at_all_once_locked(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    server: RunningServer,
    link: NetworkLink,
    pso_home: Path,
    workstation_factory: Callable[[], Workstation],
) -> None:
    set_policy(pso_home, send_interval_seconds=1, status_interval_seconds=1, probe_seconds=1, probe_max_seconds=4)
    sign_in(workstation_factory(), link, server.ca_path)
    link.cut()
    window = make_window()
    panel = window.sync_panel
    probes: list[float] = []
    panel.probed.connect(lambda _ok: probes.append(time.monotonic()))
    unlock(qtbot, window)
    qtbot.waitUntil(lambda: len(probes) >= 4, timeout=20_000)
    gaps = [later - earlier for earlier, later in itertools.pairwise(probes)]
    # Back-off with jitter: each wait between half and all of 1, 2, 4, 4 s (the timers' 1 s do not add tries).
    assert all(gap >= 0.45 for gap in gaps), gaps
    assert gaps[-1] >= 1.9, gaps
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock_action.trigger()
    assert panel.status.full_text() == ""
    seen = len(probes)
    QTest.qWait(3_000)  # longer than the longest wait: a probe would have come
    assert len(probes) == seen and not panel.running


def test_a_profile_not_signed_in_is_told_so_and_never_asked(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    pso_home: Path,
) -> None:
    set_policy(pso_home, send_interval_seconds=1, status_interval_seconds=1, probe_seconds=1)
    window = make_window()
    said = Said(window)
    runs: list[object] = []
    window.sync_panel.finished.connect(runs.append)
    unlock(qtbot, window)
    expected = f"{QUEUED} reports waiting – not signed in to the PSO; press Send to PSO (F9) to sign in."
    qtbot.waitUntil(lambda: said.now == expected, timeout=10_000)
    QTest.qWait(2_500)  # both timers have fired twice
    assert said.now == expected
    assert window.sync_panel.dialog is None  # no sign-in dialog pops up by itself
    assert runs == []


def test_the_network_coming_back_is_not_waited_for(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    server: RunningServer,
    link: NetworkLink,
    pso_home: Path,
    workstation_factory: Callable[[], Workstation],
) -> None:
    """The operating system's reachability (QNetworkInformation) says the network is back: the window probes the
    PSO at once instead of at the end of its back-off (a minute here), and the queue goes up."""
    set_policy(pso_home, send_interval_seconds=3600, status_interval_seconds=3600, probe_seconds=60)
    sign_in(workstation_factory(), link, server.ca_path)
    link.cut()
    window = make_window()
    said = Said(window)
    unlock(qtbot, window)
    qtbot.waitUntil(
        lambda: said.now == f"{QUEUED} reports {OFFLINE} they go as soon as it is back.", timeout=10_000
    )
    info = QNetworkInformation.instance()
    assert info is not None and info.supports(QNetworkInformation.Feature.Reachability)
    link.restore()
    started = time.monotonic()
    info.reachabilityChanged.emit(QNetworkInformation.Reachability.Online)  # as the platform's backend does
    qtbot.waitUntil(lambda: said.now.startswith(f"{QUEUED} reports sent to the PSO;"), timeout=10_000)
    assert time.monotonic() - started < 10  # the back-off's first wait would have been 30 to 60 s

    # The network goes away: said at once, with nothing waiting; back again, the statuses are fetched.
    info.reachabilityChanged.emit(QNetworkInformation.Reachability.Disconnected)
    assert said.now.startswith("Nothing waiting to be sent; no connection to the PSO")
    info.reachabilityChanged.emit(QNetworkInformation.Reachability.Online)
    qtbot.waitUntil(lambda: said.now.startswith(f"{QUEUED} reports sent to the PSO;"), timeout=10_000)
    assert server.stats()["reports"] == QUEUED
