"""Training mode (``pso-desktop --demo``): a practice workstation that cannot touch real data or the real PSO.

Everything lives in a new temporary folder that is deleted at the end: its own data root, a training profile
whose key is in a password-protected key file there (the OS keyring is left alone), and a reference PSO server
running in this process on loopback with a throwaway CA and a demo account the profile is signed in to.
Fictitious sample reports are waiting in it, some already sent. Qt-free; the window starts it on its worker.
Importing this module is cheap (the GUI thread reads its constants); the services load in :meth:`start`.

The practice server (:mod:`pso_server.practice`) and its web stack come with the client's optional ``training``
extra, which ``make run`` and the packaged build include; without it, ``--demo`` says so and exits.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pso_desktop.errors import ExpectedError

if TYPE_CHECKING:
    from pso_desktop.services.workstation import Workstation

TRAINING_PROFILE = "trainee"
TRAINING_SECRET = "practice makes perfect"  # noqa: S105 - shown on screen: a training profile's only guard
TRAINING_ACCOUNT = "trainee"
SAMPLE_DRAFTS = 6
SAMPLE_SENT = 6


# The practice server's web stack, which the client's ``training`` extra installs (pyproject.toml); a plain
# install of the client has none of it, and then has no training mode.
PRACTICE_SERVER_MODULES = ("fastapi", "starlette", "uvicorn", "trustme")
UNAVAILABLE = (
    "Training mode needs the practice server, which this installation does not include: install PSO Desktop "
    "with its training extra (pip install 'pso-desktop[training]'), or ask IT for the full installation."
)


class TrainingUnavailable(ExpectedError):
    """This installation lacks the practice server (the ``training`` extra) that training mode runs."""


def training_available() -> bool:
    """Whether the practice server's packages are installed (found, not imported: cheap, any thread)."""
    for name in PRACTICE_SERVER_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):  # ValueError: blocked in sys.modules (None), as a test does
            return False
    return True


class TrainingEnvironment:
    """Create, then :meth:`start` (slow: starts a server, derives a key, signs in) on the worker; :meth:`close`
    at exit (stops the server, deletes every file). Safe to close without starting, and to close twice."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pso-desktop-training-"))
        self.home = self.folder / "home"
        self._stack = ExitStack()
        self._workstation: Workstation | None = None
        self.server_url: str | None = None

    def workstation(self) -> Workstation:
        """The training workstation (starting the environment on first use)."""
        if self._workstation is None:
            self.start()
        assert self._workstation is not None
        return self._workstation

    def start(self) -> None:
        if self._workstation is not None:
            return
        try:
            from pso_server.config import ServerConfig
            from pso_server.practice import CHEAP_KDF, run_server
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] not in PRACTICE_SERVER_MODULES:
                raise  # a bug, not a missing extra
            raise TrainingUnavailable(UNAVAILABLE) from None
        from keyring.backends import fail

        from pso_desktop.domain import validate_report
        from pso_desktop.domain.samples import sample_report
        from pso_desktop.security.kdf import KdfParams
        from pso_desktop.security.profiles import KeyPolicy, ProfileKeys
        from pso_desktop.services import syncing
        from pso_desktop.services.workstation import Workstation
        from pso_desktop.sync.transport import ServerSettings

        server = self._stack.enter_context(
            run_server(data_dir=self.folder / "server", config=ServerConfig(kdf=CHEAP_KDF))
        )
        account_password = "training account password"  # noqa: S105 - a throwaway account on a throwaway server
        server.add_user(TRAINING_ACCOUNT, account_password)
        self.server_url = server.base_url
        # Key file in the training folder (not the OS keyring), cheap KDF, default policy: the data is fictitious
        # and deleted at the end, and IT's policy for real profiles must not stop training.
        keys = ProfileKeys(
            self.home,
            backend=fail.Keyring(),  # type: ignore[no-untyped-call]
            policy=KeyPolicy(),
            kdf=KdfParams(memory_kib=8 * 1024, time_cost=1, parallelism=1),
        )
        workstation = Workstation(self.home, keys=keys)
        workstation.create_profile(TRAINING_PROFILE, TRAINING_SECRET)
        rng = random.Random()  # noqa: S311 - fictitious sample data, no secret
        samples = [validate_report(sample_report(rng, n)).export() for n in range(SAMPLE_DRAFTS + SAMPLE_SENT)]
        with workstation.session(TRAINING_PROFILE, TRAINING_SECRET) as session:
            syncing.login(
                session,
                ServerSettings(server.base_url, ca_file=str(server.ca_path)),
                TRAINING_ACCOUNT,
                account_password,
                device_name="PSO Desktop training",
            )
            session.add_reports(samples[:SAMPLE_SENT], submit=True)
            syncing.sync(session)
            session.add_reports(samples[SAMPLE_SENT:])
        self._workstation = workstation

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TrainingEnvironment:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
