"""The window's sealed-outbox agent (docs/sealed-outbox.md): :class:`pso_desktop.services.agent.Agent`'s loop on a
thread of its own. This module imports nothing heavy: the HTTP stack loads on that thread, never the GUI's."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pso_desktop import paths
from pso_desktop.errors import ExpectedError

_log = logging.getLogger(__name__)


class AgentRunner:
    """The window's agent: the same loop as ``pso-desktop agent``, on a daemon thread of its own (never the GUI
    thread), sending only while allowed (the window is locked or minimised; unlocked, the outbox sends)."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._allowed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pso-sealed-agent", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def allow(self, allowed: bool) -> None:
        if allowed:
            self._allowed.set()
        else:
            self._allowed.clear()

    @property
    def allowed(self) -> bool:
        return self._allowed.is_set()

    def stop(self, timeout: float = 1.0) -> None:
        """Ends the loop; a request on its way is abandoned with the thread at exit (the spool survives that)."""
        self._stop.set()
        self._allowed.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            # Imported here: the HTTP stack loads on this thread, not the GUI's.
            from pso_desktop.security.profiles import ProfileKeys
            from pso_desktop.services.agent import Agent

            root = self._root or paths.home()
            agent = Agent(
                root,
                lambda: ProfileKeys(root),
                should_stop=lambda: self._stop.is_set() or not self._allowed.is_set(),
            )
        except ExpectedError as exc:  # a broken IT policy: the window says so elsewhere
            _log.warning("agent: not started in the window: %s", type(exc).__name__)
            return
        while not self._stop.is_set():
            if not self._allowed.wait(0.5):
                continue
            try:
                agent.run_forever()
            except Exception as exc:  # a bug must not end the thread silently for the rest of the day
                _log.error("agent: round failed: %s", type(exc).__name__)
                self._stop.wait(5.0)
