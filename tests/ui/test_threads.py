"""The threading rule: key derivation, keyring and database work never run on the GUI thread; the worker runs
jobs in order, hands outcomes back on the GUI thread and drops callbacks whose owner is gone."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import shiboken6
from PySide6.QtWidgets import QWidget

from pso_desktop.security import WrongSecretError
from pso_desktop.security.kdf import derive_kek
from pso_desktop.services.backend import Backend, SyncBackend
from pso_desktop.services.workstation import Session
from pso_desktop.storage.database import open_database
from pso_desktop.storage.reports import ReportStore
from pso_desktop.ui.errors import UNEXPECTED_MESSAGE
from pso_desktop.ui.window import MainWindow
from pso_desktop.ui.worker import DbWorker
from tests.support.memory_keyring import MemoryKeyring
from tests.support.ui import unlock


def _recording(calls: dict[str, set[int]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.setdefault(name, set()).add(threading.get_ident())
        return fn(*args, **kwargs)

    return wrapper


def test_kdf_keyring_and_database_run_only_on_the_worker_thread(
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    memory_keyring: MemoryKeyring,
) -> None:
    calls: dict[str, set[int]] = {}
    monkeypatch.setattr("pso_desktop.security.envelope.derive_kek", _recording(calls, "kdf", derive_kek))
    monkeypatch.setattr("pso_desktop.services.workstation.open_database", _recording(calls, "open", open_database))
    monkeypatch.setattr(memory_keyring, "get_password", _recording(calls, "keyring", memory_keyring.get_password))
    for method in ("list_summaries", "count_by_state", "units"):
        monkeypatch.setattr(ReportStore, method, _recording(calls, method, getattr(ReportStore, method)))
    monkeypatch.setattr(Session, "close", _recording(calls, "close", Session.close))

    window = make_window()
    with qtbot.waitSignal(window.unlock_failed, timeout=10_000):
        window.profile_screen.unlock_requested.emit("alice", "wrong secret")
    unlock(qtbot, window)
    qtbot.keyClicks(window.reports_screen.search, "patient")
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        pass
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    sync_thread: list[int] = []
    window.sync_worker.submit(threading.get_ident, on_done=sync_thread.append)
    qtbot.waitUntil(lambda: bool(sync_thread), timeout=10_000)
    window.shutdown()

    gui = threading.get_ident()
    assert set(calls) == {"kdf", "open", "keyring", "list_summaries", "count_by_state", "units", "close"}
    threads = set().union(*calls.values())
    assert gui not in threads
    # One worker owns the profile's connection for its whole life; the automatic backup after unlock opens and
    # closes a second connection of its own on the sync thread.
    assert len(threads - set(sync_thread)) == 1


def test_each_thread_uses_only_its_own_backend(
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
) -> None:
    """The database worker's Backend and the sync thread's SyncBackend are never called from another thread:
    the sync thread gets the profile at unlock (attach), backs it up on its own connection, and lets go at lock."""
    calls: dict[str, set[int]] = {}
    for cls, side in ((Backend, "db"), (SyncBackend, "sync")):
        for name, fn in list(vars(cls).items()):
            if callable(fn) and not name.startswith("__"):
                monkeypatch.setattr(cls, name, _recording(calls, f"{side}.{name}", fn))

    window = make_window()
    with qtbot.waitSignal(window.backup_done, timeout=10_000):
        unlock(qtbot, window)
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    threads: dict[str, list[int]] = {"db": [], "sync": []}
    window.worker.submit(threading.get_ident, on_done=threads["db"].append)
    window.sync_worker.submit(threading.get_ident, on_done=threads["sync"].append)
    qtbot.waitUntil(lambda: bool(threads["db"] and threads["sync"]), timeout=10_000)

    assert {"db.unlock", "db.lock", "sync.attach", "sync.back_up_if_due", "sync.detach"} <= set(calls)
    assert threads["db"] != threads["sync"]
    for name, used_on in calls.items():
        assert used_on == set(threads[name.split(".")[0]]), name


def _lookup(table: dict[str, str], key: str) -> str:
    return table[key]  # a KeyError whose message would carry PHI


def test_jobs_run_in_order_and_outcomes_arrive_on_the_gui_thread(qtbot: Any) -> None:
    worker = DbWorker()
    try:
        ran: list[tuple[int, int]] = []
        delivered: list[tuple[object, int]] = []

        def job(i: int) -> Callable[[], int]:
            def run() -> int:
                ran.append((i, threading.get_ident()))
                return i

            return run

        for i in range(20):
            worker.submit(job(i), on_done=lambda result: delivered.append((result, threading.get_ident())))
        worker.submit(lambda: 1 / 0, on_error=lambda exc: delivered.append((exc, threading.get_ident())))
        qtbot.waitUntil(lambda: len(delivered) == 21, timeout=10_000)

        assert [i for i, _ in ran] == list(range(20))
        assert {t for _, t in ran} != {threading.get_ident()}
        assert len({t for _, t in ran}) == 1
        assert [r for r, _ in delivered[:20]] == list(range(20))
        assert isinstance(delivered[20][0], ZeroDivisionError)
        assert {t for _, t in delivered} == {threading.get_ident()}
        assert worker.pending == 0
    finally:
        worker.shutdown()


def test_callback_of_a_deleted_owner_is_dropped(qtbot: Any) -> None:
    worker = DbWorker()
    try:
        gate = threading.Event()
        owner = QWidget()
        called: list[str] = []

        def slow() -> str:
            gate.wait(10)
            return "late"

        worker.submit(slow, owner=owner, on_done=called.append)
        survivor = QWidget()
        qtbot.addWidget(survivor)
        worker.submit(lambda: "next", owner=survivor, on_done=called.append)
        shiboken6.delete(owner)  # the widget goes away while its job is still running
        gate.set()
        qtbot.waitUntil(lambda: called == ["next"], timeout=10_000)
        assert worker.pending == 0
    finally:
        worker.shutdown()


def test_failure_without_handler_is_reported_plainly(qtbot: Any, caplog: pytest.LogCaptureFixture) -> None:
    worker = DbWorker()
    try:
        with qtbot.waitSignal(worker.failed, timeout=10_000) as expected:
            worker.submit(lambda: (_ for _ in ()).throw(WrongSecretError()))
        assert expected.args == [str(WrongSecretError())]

        with caplog.at_level(logging.ERROR), qtbot.waitSignal(worker.failed, timeout=10_000) as bug:
            worker.submit(lambda: _lookup({}, "Jane Doe MRN 12345"))
        assert bug.args == [UNEXPECTED_MESSAGE]
        assert "KeyError" in caplog.text
        assert "Jane" not in caplog.text and "12345" not in caplog.text
    finally:
        worker.shutdown()


def test_shutdown_finishes_submitted_jobs_and_refuses_new_ones() -> None:
    worker = DbWorker()
    ran: list[int] = []
    for i in range(5):
        worker.submit(partial(ran.append, i))
    worker.shutdown()
    assert ran == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        worker.submit(lambda: None)
    worker.shutdown()  # twice is harmless
