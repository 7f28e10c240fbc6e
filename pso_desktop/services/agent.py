"""The sealed outbox's agent (``pso-desktop agent``): sends the spool of every profile on the workstation with
each profile's device credential, and no clinician secret (docs/sealed-outbox.md, docs/sync.md).

For each profile with an agent file, the spool's entries go to ``/sealed/batch`` in batches; each entry is held
under its OS file lock while on its way (the window and another agent skip it), and leaves the spool once the
server's answer is final: accepted (created, duplicate, updated, stale) removes it, rejected or in conflict
moves it to ``rejected/`` for its author's next unlock. A kill at any point leaves the entries not yet answered
in place; the server's dedupe on (report id, revision) makes sending them again harmless, so each report lands
exactly once. The log names profiles and counts only, never report contents.

Qt-free; the window runs :func:`run_forever` on a worker thread, the CLI in its main thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pso_desktop import paths
from pso_desktop.errors import ExpectedError
from pso_desktop.security.errors import KeyEntryMissingError
from pso_desktop.security.key_stores import KeyStore
from pso_desktop.security.profiles import KeyPolicy, ProfileKeys
from pso_desktop.sync.errors import (
    CredentialRevoked,
    PayloadTooLarge,
    ServerBusy,
    SignInRequired,
    SyncError,
    Transient,
)
from pso_desktop.sync.sealed import (
    AGENT_FILE,
    FINAL_STATUSES,
    REJECTED_STATUSES,
    AgentFile,
    Claim,
    Spool,
    SpoolEntry,
    parse_name,
    sealed_batch_body,
    spool_folder,
)
from pso_desktop.sync.transport import ApiClient, ServerSettings

_log = logging.getLogger(__name__)

BATCH_ENVELOPES = 500
BATCH_BYTES = 4 * 1024 * 1024
BUSY_BUDGET = 120.0  # how long --once waits out a busy server (429/503 with Retry-After) before giving up


class AgentFailure(ExpectedError):
    """``agent --once`` could not finish: the server cannot be reached, or a credential was revoked."""


@dataclass
class AgentRound:
    """What one pass over every profile's spool did."""

    sent: int = 0  # accepted by the server (created, duplicate, updated, stale)
    rejected: int = 0  # moved to rejected/ for their author
    left: int = 0  # still in a spool (not sent: unreachable, revoked, locked by another sender)
    problems: list[str] = field(default_factory=list)  # one sentence per profile that could not be sent
    unreachable: bool = False
    retry_after: float | None = None


@dataclass(frozen=True)
class _Profile:
    name: str
    agent: AgentFile
    spool: Spool


class Agent:
    """Sends the spools of the profiles under ``root``. ``keys`` reads the device credentials (no secret)."""

    def __init__(
        self,
        root: Path,
        keys: ProfileKeys | Callable[[], ProfileKeys],
        *,
        policy: KeyPolicy | None = None,
        should_stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """``keys`` may be a factory: the window's agent asks the OS keyring only once a profile has a spool."""
        self._root = root
        self._keys_or_factory = keys
        self._policy: KeyPolicy = (
            policy
            if policy is not None
            else keys.policy
            if isinstance(keys, ProfileKeys)
            else KeyPolicy.load(root)
        )
        self._should_stop = should_stop or (lambda: False)
        self._stop_event = threading.Event()
        self._sleep = sleep
        self._revoked: set[str] = set()  # credential ids the server refused: skipped until a new one is issued

    # --- one pass -------------------------------------------------------------------------------------------

    def profiles(self) -> list[_Profile]:
        """Every profile with an agent file naming a credential."""
        found = []
        spool_dir = self._policy.sealed_outbox.spool_dir
        for name in paths.profile_names(self._root):
            agent = AgentFile.read(paths.profile_dir(name, self._root) / AGENT_FILE)
            if agent is None or agent.credential_id is None:
                continue
            found.append(_Profile(name, agent, Spool(spool_folder(self._root, name, spool_dir))))
        return found

    def run_round(self) -> AgentRound:
        """Sends what every spool holds now, once."""
        outcome = AgentRound()
        for profile in self.profiles():
            if self._should_stop():
                break
            try:
                self._round_for(profile, outcome)
            except OSError as exc:  # the spool folder cannot be read or written (IT's permissions)
                _log.warning("agent: the spool of profile %s cannot be used: %s", profile.name, type(exc).__name__)
                outcome.problems.append(
                    f"Profile '{profile.name}': the spool folder {profile.spool.folder} cannot be used "
                    f"({exc.strerror or type(exc).__name__}); ask IT to check its permissions."
                )
                outcome.left += 1
        return outcome

    def _round_for(self, profile: _Profile, outcome: AgentRound) -> None:
        profile.spool.sweep_locks()
        if not profile.spool.names():
            return
        if profile.agent.credential_id in self._revoked:
            outcome.left += len(profile.spool.names())
            return
        try:
            sent, rejected = self._send_profile(profile)
        except CredentialRevoked as exc:
            assert profile.agent.credential_id is not None
            self._revoked.add(profile.agent.credential_id)
            _log.warning("agent: the device credential of profile %s was refused", profile.name)
            outcome.problems.append(f"Profile '{profile.name}': {exc}")
        except SignInRequired:
            assert profile.agent.credential_id is not None
            self._revoked.add(profile.agent.credential_id)
            _log.warning("agent: the device credential of profile %s was refused", profile.name)
            outcome.problems.append(
                f"Profile '{profile.name}': the PSO server did not accept this workstation's device "
                "credential; the next sign-in to the profile gets a new one. Sealed reports stay in the spool."
            )
        except Transient as exc:
            _log.info(
                "agent: the PSO server cannot be reached for profile %s: %s", profile.name, type(exc).__name__
            )
            outcome.unreachable = True
            outcome.retry_after = exc.retry_after
            outcome.problems.append(str(exc))
        except ExpectedError as exc:
            _log.warning("agent: profile %s not sent: %s", profile.name, type(exc).__name__)
            outcome.problems.append(f"Profile '{profile.name}': {exc}")
        else:
            outcome.sent += sent
            outcome.rejected += rejected
            damaged = _unreadable(profile.spool)
            if damaged:
                _log.warning("agent: %d spool entries of profile %s cannot be read", len(damaged), profile.name)
                outcome.problems.append(
                    f"Profile '{profile.name}': {len(damaged)} file(s) in the spool folder {profile.spool.folder} "
                    f"cannot be read as sealed reports (damaged, or not PSO Desktop's), e.g. {damaged[0]}; they "
                    "stay in place, the profile's outbox still sends its reports at the next unlock, and IT may "
                    "delete them."
                )
        outcome.left += len(profile.spool.names())

    def _settings(self, agent: AgentFile) -> ServerSettings:
        server = self._policy.server
        if server is not None and server.url.rstrip("/") != agent.server_url.rstrip("/"):
            raise SyncError(
                "IT policy now names a different PSO server; sign in to the profile again. Its sealed reports "
                "stay in the spool."
            )
        return ServerSettings(
            agent.server_url,
            ca_file=(server.ca_file if server else None) or agent.ca_file,
            proxy=(server.proxy if server else None) or agent.proxy,
            proxy_from_environment=self._policy.proxy_from_environment,
        )

    @property
    def _keys(self) -> ProfileKeys:
        if not isinstance(self._keys_or_factory, ProfileKeys):
            self._keys_or_factory = self._keys_or_factory()
        return self._keys_or_factory

    def _send_profile(self, profile: _Profile) -> tuple[int, int]:
        """Claims, sends and settles batch after batch, in three overlapping steps: while one batch is on the
        wire (the sender thread), the next is claimed (this thread: its locks taken, its entries read) and the
        answer of the one before is settled (the settler thread: entries removed, locks given back). The file
        work costs as much as the request itself, so it hides behind it."""
        store = self._keys.credential_store(
            profile.name, profile.agent.credential_store or "file", profile.agent.keyring_backend
        )
        try:
            token = store.read().strip()
        except KeyEntryMissingError:
            raise SyncError(
                "this workstation holds no device credential for it (the PSO revoked it, or it was removed); the "
                "next sign-in or sync of the profile gets a new one. Sealed reports stay in the spool."
            ) from None
        try:
            return self._send_with(profile, token)
        except SignInRequired:
            _discard_refused(store, token)
            raise

    def _send_with(self, profile: _Profile, token: str) -> tuple[int, int]:
        """Named envelopes first, then anonymous ones, each kind in batches of its own: one request never carries
        an anonymous report with its author's named ones (docs/sealed-outbox.md)."""
        counts = [0, 0]  # sent, rejected
        with ApiClient(self._settings(profile.agent)) as api:
            deferred: dict[str, None] = {}  # anonymous entries met while sending the named ones, in their order
            self._send_kind(profile, api, token, profile.spool.names(), False, counts, deferred)
            if deferred and not self._should_stop():
                self._send_kind(profile, api, token, list(deferred), True, counts, {})
        sent, rejected = counts
        if sent or rejected:
            _log.info(
                "agent: profile %s: %d sealed report(s) delivered, %d rejected", profile.name, sent, rejected
            )
        return sent, rejected

    def _send_kind(
        self,
        profile: _Profile,
        api: ApiClient,
        token: str,
        names: list[str],
        anonymous: bool,
        counts: list[int],
        deferred: dict[str, None],
    ) -> None:
        """Sends the entries of ``names`` that are ``anonymous`` (or named); the others are noted in ``deferred``."""
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="pso-agent-send") as sender,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="pso-agent-settle") as settler,
        ):
            flights: deque[tuple[list[Claim], Future[list[dict[str, object]]]]] = deque()
            settling: Future[None] | None = None
            start, limit = 0, BATCH_ENVELOPES
            try:
                while True:
                    claims: list[Claim] = []
                    if start < len(names) and not self._should_stop():
                        claims, start = self._claim_batch(profile.spool, names, start, limit, anonymous, deferred)
                    if claims:
                        entries = [claim.entry for claim in claims]
                        flights.append((claims, sender.submit(self._post, api, token, entries)))
                    elif start < len(names) and not self._should_stop():
                        continue  # every entry of that stretch was held by another sender, or gone
                    if not flights:
                        break
                    if len(flights) < 2 and claims:
                        continue  # one more batch on its way before waiting for the first answer
                    landed, answer = flights[0]
                    try:
                        results = answer.result()
                    except PayloadTooLarge:
                        if len(landed) == 1:
                            raise
                        self._drain(profile.spool, flights)
                        limit = max(1, len(landed) // 2)  # the same entries again, in smaller batches
                        wanted = set(names)
                        names, start = [n for n in profile.spool.names() if n in wanted], 0
                        continue
                    flights.popleft()
                    if settling is not None:
                        settling.result()
                    settling = settler.submit(self._settle, profile, landed, results, counts)
            finally:
                self._drain(profile.spool, flights)
                if settling is not None:
                    settling.result()

    @staticmethod
    def _drain(spool: Spool, flights: deque[tuple[list[Claim], Future[list[dict[str, object]]]]]) -> None:
        """Waits for every batch still on its way and gives back its locks, its entries unsettled (sent again
        later: the server's dedupe keeps each report once)."""
        while flights:
            claims, answer = flights.popleft()
            with contextlib.suppress(Exception):
                answer.result()
            for claim in claims:
                spool.release(claim, done=False)

    @staticmethod
    def _claim_batch(
        spool: Spool,
        names: Sequence[str],
        start: int,
        limit: int,
        anonymous: bool = False,
        deferred: dict[str, None] | None = None,
    ) -> tuple[list[Claim], int]:
        """Up to ``limit`` entries (and about BATCH_BYTES) from ``names[start:]``, each held under its lock;
        entries another sender holds, or that are gone, are skipped, and so are those of the other kind
        (anonymous or named), which are noted in ``deferred``. Returns the claims and where to go on."""
        first = start
        claims: list[Claim] = []
        while start < len(names) and len(claims) < limit:  # filled up to the limit with entries of its kind
            stretch = names[start : start + limit - len(claims)]
            start += len(stretch)
            found = spool.claim_all(stretch)
            other = [claim for claim in found if claim.entry.anonymous != anonymous]
            if other:
                spool.release_all(other, set())
                if deferred is not None:
                    deferred.update(dict.fromkeys(claim.name for claim in other))
            claims += [claim for claim in found if claim.entry.anonymous == anonymous]
        size = 0
        for kept, claim in enumerate(claims):
            size += len(claim.entry.sealed) + 120
            if size > BATCH_BYTES and kept:  # over the request size: the rest waits for the next batch
                spool.release_all(claims[kept:], set())
                return claims[:kept], names.index(claim.name, first)
        return claims, start

    def _post(self, api: ApiClient, token: str, batch: Sequence[SpoolEntry]) -> list[dict[str, object]]:
        body = sealed_batch_body(batch)
        waited = 0.0
        failures = 0
        while True:
            try:
                return api.post_sealed(token, body)
            except ServerBusy as exc:  # the server asked to come back later: waited out within a budget
                failures += 1
                delay = exc.retry_after if exc.retry_after is not None else min(30.0, 2.0**failures)
                delay = min(delay, 60.0)
                if waited + delay > BUSY_BUDGET or not self.wait(delay):
                    raise
                waited += delay

    def _settle(
        self, profile: _Profile, claims: Sequence[Claim], results: Sequence[object], counts: list[int]
    ) -> None:
        """Applies the server's answer to a batch: an accepted entry leaves the spool, a rejected one moves to
        ``rejected/``, one without a (final) result stays for the next try; every lock is given back."""
        by_envelope = {claim.entry.envelope_id: claim for claim in claims}
        done: set[str] = set()
        held: list[dict[str, object]] = []
        try:
            for result in results:
                if not isinstance(result, dict):
                    continue
                claim = by_envelope.get(str(result.get("envelope_id")))
                if claim is None:
                    continue
                status = str(result.get("status") or "")
                if status in FINAL_STATUSES:
                    counts[0] += 1
                    held.append(
                        {
                            "report_id": claim.entry.report_id,
                            "revision": claim.entry.revision,
                            "status": status,
                            "server_ref": result.get("server_ref"),
                        }
                    )
                elif status in REJECTED_STATUSES and result.get("id") is None:
                    # The copy could not be opened (a key the server no longer knows): the outbox sends the report
                    # itself at the next unlock; the sealed copy is of no more use.
                    _log.warning(
                        "agent: a sealed envelope of profile %s could not be opened by the server", profile.name
                    )
                elif status in REJECTED_STATUSES:
                    profile.spool.keep_rejection(claim.entry, status, result.get("errors"))
                    counts[1] += 1
                else:
                    continue
                done.add(claim.name)
            try:
                profile.spool.record_delivered(held)
            except OSError as exc:  # the entries stay and go again: the server's dedupe answers once more
                _log.warning("agent: what profile %s delivered could not be recorded: %s", profile.name, exc.errno)
                done.clear()
            profile.spool.note_success(_now())
        finally:
            profile.spool.release_all(claims, done)
        by_envelope = {k: v for k, v in by_envelope.items() if v.name not in done}
        if by_envelope:
            _log.warning(
                "agent: %d envelope(s) of profile %s had no result; sent again later",
                len(by_envelope),
                profile.name,
            )

    # --- the loop -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop_event.set()

    def stopped(self) -> bool:
        return self._stop_event.is_set() or self._should_stop()

    def wait(self, seconds: float) -> bool:
        """Sleeps up to ``seconds`` unless asked to stop; False when stopped."""
        if self._sleep is not None:
            self._sleep(seconds)
            return not self.stopped()
        deadline = seconds
        while deadline > 0 and not self.stopped():
            step = min(deadline, 0.25)
            self._stop_event.wait(step)
            deadline -= step
        return not self.stopped()

    def run_forever(self, *, on_round: Callable[[AgentRound], None] | None = None) -> None:
        """Sends every spool as soon as the PSO is reachable, and keeps going until stopped: a spool with
        nothing in it is looked at again after the policy's probe interval; an unreachable or busy server is
        tried again after a capped, jittered back-off (or its Retry-After)."""
        probe = self._policy.sealed_outbox.probe_seconds
        rng = random.Random()  # noqa: S311 - jitter spreads retries; it guards no secret
        failures = 0
        while not self.stopped():
            outcome = self.run_round()
            if on_round is not None:
                on_round(outcome)
            if outcome.unreachable:
                failures += 1
                delay = outcome.retry_after or rng.uniform(0.0, min(probe, 2.0 ** min(failures, 16)))
                delay = min(max(delay, 0.5), probe)
            else:
                failures = 0
                delay = probe
            self.wait(delay)


def _unreadable(spool: Spool) -> list[str]:
    """The entries left in the spool that no sender can ever send: a name that is not ``<report id>.<revision>``,
    or content that is not an entry (entries are renamed into place whole, so reading without the lock is safe)."""
    return [
        name
        for name in spool.names()
        if parse_name(name) is None or (spool.read(name) is None and (spool.folder / name).exists())
    ]


def _discard_refused(store: KeyStore, token: str) -> None:
    """Forgets a credential the server refused, so the profile's next sign-in or sync asks for a new one (the
    profile holds no other sign of the refusal: the agent cannot unlock it). Left alone when the store already
    holds another credential (a sign-in replaced it meanwhile)."""
    try:
        if store.read().strip() == token:
            store.discard()
    except Exception as exc:  # a keyring's own errors too: the revoked sentence still goes out
        _log.warning("agent: the refused device credential could not be forgotten: %s", type(exc).__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def spool_status(root: Path, policy: KeyPolicy | None = None) -> list[dict[str, object]]:
    """``agent --status``: per profile, what its spool holds and the agent's last success, read from the spool
    folder and the agent's state file alone (no secret, no keyring, no network), so IT can monitor the outbox."""
    spool_dir = (policy if policy is not None else KeyPolicy.load(root)).sealed_outbox.spool_dir
    out: list[dict[str, object]] = []
    for name in paths.profile_names(root):
        spool = Spool(spool_folder(root, name, spool_dir))
        row: dict[str, object] = {"profile": name}
        try:
            row.update(
                spooled=len(spool.names()),
                rejected=len(spool.rejected()),
                agent_last_success=spool.last_success(),
                problem=None,
            )
        except OSError as exc:  # IT's spool_dir not readable by this user: said, not a traceback
            row.update(
                spooled=None,
                rejected=None,
                agent_last_success=None,
                problem=f"the spool folder {spool.folder} cannot be read ({exc.strerror or type(exc).__name__})",
            )
        out.append(row)
    return out


def run_once(root: Path, keys: ProfileKeys) -> AgentRound:
    """``agent --once``: sends what is there; raises AgentFailure with one sentence when something is left
    because the server cannot be reached or a credential was refused."""
    outcome = Agent(root, keys).run_round()
    if outcome.problems and outcome.left:
        raise AgentFailure(outcome.problems[0])
    if outcome.left:
        raise AgentFailure(
            f"{outcome.left} sealed report(s) are being sent by another sender (the window or another agent); "
            "run the agent again."
        )
    return outcome
