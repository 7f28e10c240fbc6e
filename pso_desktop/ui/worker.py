"""The database worker: one QThread that owns the profile's database connection and runs jobs in order.

SQLCipher connections are bound to the thread that opened them, and key derivation and keyring calls are
slow or may block, so none of that may run on the GUI thread. The GUI submits plain callables; they run one
after another on the worker thread, and each outcome (result or exception) comes back to the GUI thread
through a queued signal. A callback whose owner widget was deleted in the meantime is dropped.

Jobs must never touch widgets: read what they need from the widgets on the GUI thread before submitting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from pso_desktop.ui.errors import user_message

T = TypeVar("T")
_log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Job:
    """One submitted callable and, after it has run, its outcome."""

    fn: Callable[[], Any] | None
    owner: QObject | None
    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None] | None
    result: Any = None
    error: BaseException | None = None


class _Executor(QObject):
    """Lives in the worker thread and runs each job it receives, in the order they were submitted."""

    job_finished = Signal(object)

    @Slot(object)
    def run(self, job: _Job) -> None:
        """Runs on the worker thread."""
        fn, job.fn = job.fn, None  # the closure may hold a secret: drop it as soon as it has run
        assert fn is not None
        try:
            job.result = fn()
        except Exception as exc:  # every failure goes back to the GUI thread, which classifies it
            job.error = exc
        del fn
        self.job_finished.emit(job)


class DbWorker(QObject):
    """The GUI thread's handle on the worker thread. Create it, ``submit`` jobs, ``shutdown`` at exit.

    ``failed`` carries the plain message of a job that failed without an ``on_error`` callback.
    """

    failed = Signal(str)
    _dispatch = Signal(object)

    def __init__(self, parent: QObject | None = None, *, name: str = "pso-database") -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._executor = _Executor()
        self._executor.moveToThread(self._thread)
        # Explicitly queued both ways: jobs run in the worker's event loop, outcomes in the GUI's.
        self._dispatch.connect(self._executor.run, Qt.ConnectionType.QueuedConnection)
        self._executor.job_finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        # Deleted in its own thread just before the thread ends, as Qt's documentation recommends.
        self._thread.finished.connect(self._executor.deleteLater)
        self._pending = 0
        self._stopped = False
        self._thread.start()

    @property
    def stopped(self) -> bool:
        """True once ``shutdown`` has begun: nothing more can be submitted."""
        return self._stopped

    @property
    def pending(self) -> int:
        """Jobs submitted whose outcome has not been delivered yet."""
        return self._pending

    def submit(
        self,
        fn: Callable[[], T],
        *,
        owner: QObject | None = None,
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Queue ``fn`` to run on the worker thread after every job submitted before it.

        GUI thread only. ``on_done(result)`` or ``on_error(exception)`` is then called on the GUI thread,
        unless ``owner`` has been deleted by then (the callbacks are dropped). Raises RuntimeError after
        ``shutdown``.
        """
        if self._stopped:
            raise RuntimeError("the database worker has been shut down")
        self._pending += 1
        self._dispatch.emit(_Job(fn, owner, on_done, on_error))

    def shutdown(self) -> None:
        """Run the jobs already submitted, then stop the thread; blocks the caller until it has stopped.

        GUI thread only, at exit: no callback is delivered afterwards. Waits without a time limit because
        a job may be flushing the database; stopping a thread in the middle of a write is never safe.
        """
        if self._stopped:
            return
        self._stopped = True
        # QThread.quit is thread-safe; running it as the last job lets every earlier job finish first.
        self._dispatch.emit(_Job(self._thread.quit, None, None, None))
        self._thread.wait()

    @Slot(object)
    def _deliver(self, job: _Job) -> None:
        """Runs on the GUI thread for every finished job, in submission order."""
        self._pending = max(0, self._pending - 1)
        if self._stopped:
            return
        if job.owner is not None and not shiboken6.isValid(job.owner):
            return  # the widget that asked is gone; nobody is left to show the outcome
        if job.error is None:
            if job.on_done is not None:
                job.on_done(job.result)
        elif job.on_error is not None:
            job.on_error(job.error)
        else:
            self.failed.emit(user_message(job.error))
