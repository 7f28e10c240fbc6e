"""Outbox processing: push every queued revision to the PSO server exactly once, then pull statuses.

The outbox (``ReportStore``) is the source of truth. Each batch is claimed (``queued → sending``), sent, and
its per-report results recorded in one transaction: that checkpoint is what makes an interrupted upload
resumable. Whatever is still ``sending`` when a run ends - crash, kill, give-up - goes back to ``queued`` and
is re-sent next time; the server's permanent dedupe on (id, revision) turns those re-sends into harmless
``duplicate`` results, so each revision lands exactly once.

Transient failures are retried: the server's ``Retry-After`` when it gives one, otherwise capped exponential
back-off with full jitter, for as long as the policy's time budget allows (minutes by default: a server restart
or a short outage is waited out); a stop request ends any wait at once. An expired access token is renewed once from the stored refresh token (rotated and
stored at once). A 413 halves the batch. Runs on a worker thread or in the CLI; never on the GUI thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from pso_desktop.domain.catalogue import catalogue_json, install_catalogue, is_version_name, parse_catalogue
from pso_desktop.storage.account import AccountStore
from pso_desktop.storage.facility import FacilityStore
from pso_desktop.storage.reports import SUCCESS_STATUSES, OutboxItem, ReportStore
from pso_desktop.sync.errors import (
    NotLinked,
    PayloadTooLarge,
    ServerRefused,
    ServerUnreachable,
    SignInRequired,
    Transient,
)
from pso_desktop.sync.transport import ApiClient

_log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BATCH_REPORTS = 500  # the reference server's default limit; a smaller server answers 413 and we halve
DEFAULT_BATCH_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_WAIT = 600.0  # the window and the agent: a restart or a short outage is waited out; Stop ends it
LOOKUP_IDS = 1000  # the most report ids the server's status lookup takes in one request
WAIT_SLICE = 0.25  # a long wait is slept in slices this short, so a stop request ends it at once
TOO_LARGE = (
    "This report is larger than the PSO server accepts in one request; shorten its narrative or ask the PSO "
    "to raise the limit, then submit it again."
)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying within one run before leaving the rest queued for the next.

    ``max_wait_seconds`` is a time budget, not a number of tries: a request that keeps failing is tried again
    until that long after its first failure (the last wait is shortened to end at the budget), then the run
    stops with the reason. 0 means no retries.
    """

    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    max_wait_seconds: float = DEFAULT_MAX_WAIT
    max_retry_after: float = 300.0  # a Retry-After beyond this is capped (a server's clock may be far off)

    def delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return rng.uniform(0.0, min(self.cap_seconds, self.base_seconds * 2 ** (failures - 1)))


@dataclass(frozen=True)
class Progress:
    """Where a run is. ``phase``: sending, waiting (``wait_seconds``, ``reason``), statuses or done."""

    phase: str
    sent: int
    total: int
    submitted: int
    needs_attention: int
    wait_seconds: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SyncSummary:
    submitted: int  # accepted by the server in this run (created, duplicate, updated, stale)
    needs_attention: int  # rejected or in conflict in this run: the server's reasons are kept per report
    remaining: int  # still queued when the run ended (0 means everything was sent)
    status_changes: int
    problem: str | None  # why the run stopped early, in one sentence (None when it finished)
    facility_reports: int = 0  # copies of the facility's reports added or updated (risk managers)
    review_records: int = 0  # review records sent or received
    facility_purged: int = 0  # copies removed: no longer a risk manager, session ended, or IT's retention
    # The PSO could not be reached (or was busy) when the run gave up; ``retry_after`` is what it last asked for.
    unreachable: bool = False
    retry_after: float | None = None


@dataclass(frozen=True)
class _Flight:
    """A batch on its way: what was claimed, the request body, the token it was sent with, its answer."""

    items: Sequence[OutboxItem]
    body: bytes
    token: str
    future: Future[list[dict[str, Any]]]


class SyncEngine:
    def __init__(
        self,
        reports: ReportStore,
        account: AccountStore,
        api: ApiClient,
        *,
        batch_reports: int = DEFAULT_BATCH_REPORTS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        policy: RetryPolicy | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        statuses: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        facility: FacilityStore | None = None,
        keep_closed_days: float | None = None,
    ) -> None:
        self._reports = reports
        self._facility = facility
        self._keep_closed_days = keep_closed_days
        self._fetched = self._reviewed = self._purged = 0
        self._account = account
        self._api = api
        self._batch_reports = batch_reports
        self._batch_bytes = batch_bytes
        self._policy = policy or RetryPolicy()
        self._on_progress = on_progress
        self._should_stop = should_stop or (lambda: False)
        self._statuses = statuses
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter spreads retries; it guards no secret
        self._access: str | None = None
        self._sent = self._submitted = self._attention = self._total = 0

    @property
    def purged(self) -> int:
        """The facility's copies removed so far by this engine (also when the run then raised)."""
        return self._purged

    def run(self) -> SyncSummary:
        """Pushes the outbox, then pulls statuses and reference data. Raises only for what a person must fix
        (sign in again, certificate not trusted, not linked, a batch the server refuses for good); a network
        that stays down ends the run with ``problem`` set and the rest queued, and so does any failure of the
        status pull once the upload is done. Without ``statuses`` (the window's timer, which fetches them on a
        timer of its own) only the upload is done."""
        if self._account.get() is None:
            raise NotLinked()
        self._reports.requeue_sending()  # left over from a crash: resume where the last checkpoint left off
        self._total = self._reports.outbox_counts().get("queued", 0)
        problem: str | None = None
        gave_up: Transient | None = None
        changes = 0
        try:
            self._push()
        except Transient as exc:
            problem, gave_up = str(exc), exc
        finally:
            self._reports.requeue_sending()
        if problem is None and self._statuses and not self._should_stop():
            try:
                changes = self._pull_statuses()
                if not self._should_stop():
                    self._sync_facility()
                if not self._should_stop():
                    self._refresh_reference()
            except (Transient, ServerRefused) as exc:  # the upload is done: say so, with what went wrong after
                problem = f"Reports were sent, but their PSO statuses could not be updated: {exc}"
                gave_up = exc if isinstance(exc, Transient) else None
        remaining = self._reports.outbox_counts().get("queued", 0)
        if remaining and self._should_stop():  # asked for: a wait it cut short is not the reason to give
            problem = "Stopped; the remaining reports stay queued."
        self._report("done")
        return SyncSummary(
            self._submitted,
            self._attention,
            remaining,
            changes,
            problem,
            self._fetched,
            self._reviewed,
            self._purged,
            unreachable=gave_up is not None and not self._should_stop(),
            retry_after=gave_up.retry_after if gave_up is not None else None,
        )

    # --- upload ------------------------------------------------------------------------------------------

    def _push(self) -> None:
        """Claims, sends and checkpoints batch after batch. Two batches are in flight at most: while the server
        works on one, the next is claimed and queued behind it on the sender thread, and the previous answer is
        checkpointed, so the client's own work hides behind the server's. Only this thread touches the
        database; the sender thread only does HTTP."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pso-sync-sender") as sender:
            in_flight: deque[_Flight] = deque()
            while True:
                items = (
                    []
                    if self._should_stop()
                    else self._reports.claim_batch(self._batch_reports, self._batch_bytes)
                )
                if items:
                    in_flight.append(self._launch(sender, items))
                if not in_flight:
                    return
                if len(in_flight) == 2 or not items:
                    self._land(sender, in_flight.popleft())

    def _launch(self, sender: ThreadPoolExecutor, items: Sequence[OutboxItem]) -> _Flight:
        # The frozen canonical JSON goes out byte for byte, as it was hashed when queued; each report's owner key
        # goes beside it (the server keeps only its hash: it proves a later revision comes from this profile).
        reports = ",".join(item.wire_text for item in items)
        keys = json.dumps({item.report_id: item.owner_key for item in items if item.owner_key})
        body = f'{{"reports":[{reports}],"owner_keys":{keys}}}'.encode()
        token = self._access or self._renew_access()
        return _Flight(items, body, token, sender.submit(self._api.post_batch, token, body))

    def _land(self, sender: ThreadPoolExecutor, flight: _Flight) -> None:
        """Waits for a batch's answer (retrying and renewing the token as needed) and checkpoints it."""
        try:
            results = self._answer(sender, flight)
        except PayloadTooLarge:
            items = flight.items
            if len(items) == 1:
                rejected = {"id": items[0].report_id, "revision": items[0].revision, "status": "rejected"}
                self._checkpoint(items, [{**rejected, "errors": [{"field": "", "message": TOO_LARGE}]}])
                return
            half = len(items) // 2
            self._batch_reports = max(1, min(self._batch_reports, half))  # later batches start smaller
            _log.info("The server refused a batch as too large; sending batches of %d.", self._batch_reports)
            self._land(sender, self._launch(sender, items[:half]))
            self._land(sender, self._launch(sender, items[half:]))
            return
        self._checkpoint(flight.items, results)

    def _answer(self, sender: ThreadPoolExecutor, flight: _Flight) -> list[dict[str, Any]]:
        failures = 0
        first_failure = 0.0
        renewed = False
        token, future = flight.token, flight.future
        while True:
            try:
                return future.result()
            except SignInRequired:
                if token == self._access:  # not yet renewed since this request left: renew, once per batch
                    if renewed:
                        raise
                    self._access, renewed = None, True
            except Transient as exc:
                failures += 1
                first_failure = self._clock() if failures == 1 else first_failure
                self._back_off(exc, failures, first_failure)
            token = self._access or self._renew_access()
            future = sender.submit(self._api.post_batch, token, flight.body)

    def _checkpoint(self, items: Sequence[OutboxItem], results: Sequence[dict[str, Any]]) -> None:
        claimed = {(item.report_id, item.revision) for item in items}
        matching = [r for r in results if isinstance(r, dict) and (str(r.get("id")), r.get("revision")) in claimed]
        if len(matching) != len(results) or len(matching) != len(items):
            _log.warning(
                "The server answered %d results for %d reports; unmatched ones stay queued.",
                len(results),
                len(items),
            )
        self._reports.record_results(matching)
        accepted = sum(1 for r in matching if r.get("status") in SUCCESS_STATUSES)
        self._sent += len(matching)
        self._submitted += accepted
        self._attention += len(matching) - accepted
        self._report("sending")

    # --- statuses and reference data -----------------------------------------------------------------------

    def _pull_statuses(self) -> int:
        changes = 0
        while True:
            account = self._account.get()
            cursor = account.status_cursor if account else None
            try:
                feed = self._authorised(partial(self._feed_page, since=cursor))
            except ServerRefused as exc:
                if exc.status not in (400, 422) or not cursor:
                    raise
                # A cursor this server did not issue (restored, replaced or downgraded; 422 when too long to
                # take): read the feed from the beginning again; replayed changes are harmless.
                _log.warning("The PSO server did not accept the status cursor; reading its feed from the start.")
                self._account.set_status_cursor(None)
                continue
            listed = feed.get("changes")
            page = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
            after = feed.get("cursor")
            after = after if isinstance(after, str) and after else None  # None keeps the stored cursor
            changes += self._account.record_statuses(page, after)
            self._report("statuses")
            if not feed.get("has_more") or not page or after in (None, cursor) or self._should_stop():
                break  # the cursor is stored: a stopped run's successor goes on from here
        anonymous = [] if self._should_stop() else self._account.anonymous_to_follow()
        for start in range(0, len(anonymous), LOOKUP_IDS):
            ids = anonymous[start : start + LOOKUP_IDS]
            keys = self._reports.owner_keys(ids)  # the server shows an anonymous report's status only with its key
            found = self._authorised(partial(self._api.status_lookup, report_ids=ids, owner_keys=keys))
            changes += self._account.record_statuses(found, None)
        return changes

    # --- the facility's reports and review records (risk managers) -----------------------------------------

    def _sync_facility(self) -> None:
        """Fetches the facility's reports, sends the review records made here, fetches everyone's, and applies
        IT's retention. A server that refuses (403: the account is not a risk manager, or no longer one) has the
        profile's copies purged, so a reporter's profile never holds anyone else's report."""
        facility = self._facility
        if facility is None:
            return
        try:
            self._follow_feed(self._api.facility_reports, 0, "reports", facility.save_reports)
            while not self._should_stop():
                records = facility.unsent()
                if not records:
                    break
                results = self._authorised(partial(self._api.send_reviews, records=records))
                facility.record_sent(results)
                self._reviewed += len(results)
                if len(results) < len(records):
                    break  # an answer that left records out: they are sent again by the next sync
            if not self._should_stop():
                self._follow_feed(self._api.review_feed, 1, "records", self._save_reviews)
        except ServerRefused as exc:
            if exc.status != 403:
                raise
            self._purged += facility.purge()
            return
        if self._keep_closed_days is not None:
            self._purged += facility.forget_closed(self._keep_closed_days)

    def _save_reviews(self, page: Sequence[dict[str, Any]], cursor: str | None) -> int:
        assert self._facility is not None
        new = self._facility.save_review_page(page, cursor)
        self._reviewed += new
        return 0

    def _follow_feed(
        self,
        fetch: Callable[..., dict[str, Any]],
        which: int,
        key: str,
        save: Callable[[Sequence[dict[str, Any]], str | None], int],
    ) -> None:
        """Pages through one facility feed from its stored cursor (``which``: 0 reports, 1 review records),
        keeping each page with its cursor in one transaction. A cursor the server does not accept is dropped
        and the feed read from its beginning (a replay changes nothing)."""
        assert self._facility is not None
        while not self._should_stop():
            cursor = self._facility.cursors()[which]
            try:
                page = self._authorised(partial(fetch, since=cursor))
            except ServerRefused as exc:
                if exc.status not in (400, 422) or not cursor:
                    raise
                _log.warning("The PSO server did not accept a facility cursor; reading that feed from the start.")
                save([], "")  # an empty cursor reads from the start
                continue
            listed = page.get(key)
            items = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
            after = page.get("cursor")
            after = after if isinstance(after, str) and after else None
            self._fetched += save(items, after)
            self._report("statuses")
            if not page.get("has_more") or not items or after in (None, cursor):
                return

    def _feed_page(self, token: str, *, since: str | None) -> dict[str, Any]:
        return self._api.status_feed(token, since)

    def _refresh_reference(self) -> None:
        reference = self._authorised(self._api.reference)
        # The catalogues first: cached reference data that names a current version always has it kept.
        held = self._account.catalogue_hashes()
        listed = reference.get("catalogues")
        for version, digest in listed.items() if isinstance(listed, dict) else ():
            if not is_version_name(version) or not isinstance(digest, str) or held.get(version) == digest:
                continue
            if self._should_stop():
                return
            answer = self._authorised(partial(self._api.catalogue, version=version))
            body = catalogue_json(answer)
            if hashlib.sha256(body.encode("utf-8")).hexdigest() != digest:
                raise ServerUnreachable("A form catalogue arrived damaged; it will be fetched at the next sync.")
            try:
                catalogue = parse_catalogue(answer)
            except (KeyError, TypeError, ValueError, AttributeError):
                raise ServerUnreachable(
                    "A form catalogue from the PSO could not be read; the forms stay as they were."
                ) from None
            if catalogue.version != version:
                raise ServerUnreachable("A form catalogue from the PSO did not match its version; not kept.")
            self._account.save_catalogue(version, body, digest)
            install_catalogue(catalogue)
        self._account.save_reference(reference)

    # --- tokens and retries --------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A current access token (renewed from the stored refresh token when needed), for a request the
        engine itself does not make (the sealed outbox's device credential)."""
        return self._access or self._renew_access()

    def _authorised(self, call: Callable[[str], T]) -> T:
        """``call(access_token)`` with retries; renews the access token once if the server says it expired."""
        renewed = False
        while True:
            token = self._access or self._renew_access()
            try:
                return self._retrying(partial(call, token))
            except SignInRequired:
                if renewed:
                    raise
                self._access, renewed = None, True

    def _renew_access(self) -> str:
        account = self._account.get()
        if account is None:
            raise NotLinked()
        if not account.refresh_token:
            raise SignInRequired("This profile is signed out of the PSO; sign in again with 'pso-desktop login'.")
        refresh_token = account.refresh_token
        try:
            tokens = self._retrying(lambda: self._api.refresh(refresh_token))
        except SignInRequired:
            self._account.set_refresh_token(None)  # dead for good: the app should ask for a sign-in
            if self._facility is not None:
                # Ended by the server (the account disabled, its sessions revoked, or expired): the facility's
                # reports are held only for a live risk manager's session; the next sign-in fetches them again.
                self._purged += self._facility.purge()
            raise
        self._account.set_refresh_token(tokens.refresh_token)  # rotated: store the successor at once
        self._access = tokens.access_token
        return tokens.access_token

    def _retrying(self, call: Callable[[], T]) -> T:
        failures = 0
        first_failure = 0.0
        while True:
            try:
                return call()
            except Transient as exc:
                failures += 1
                first_failure = self._clock() if failures == 1 else first_failure
                self._back_off(exc, failures, first_failure)

    def _back_off(self, exc: Transient, failures: int, first_failure: float) -> None:
        """Waits before the next try after ``failures`` consecutive transient failures, the first of them at
        ``first_failure`` (``clock`` time); raises when the time budget is spent or a stop was asked for."""
        if self._should_stop():
            raise exc
        budget = self._policy.max_wait_seconds
        left = budget - (self._clock() - first_failure)
        if left <= 0:
            raise _gave_up(exc, budget)
        wait = min(self._policy.delay(failures, exc.retry_after, self._rng), left)
        self._report("waiting", wait_seconds=wait, reason=str(exc))
        if not self._wait(wait):
            raise exc

    def _wait(self, seconds: float) -> bool:
        """Sleeps ``seconds`` unless asked to stop meanwhile (a Retry-After can be minutes); False if stopped."""
        left = seconds
        while left > 0 and not self._should_stop():
            step = min(left, WAIT_SLICE)
            self._sleep(step)
            left -= step
        return not self._should_stop()

    def _report(self, phase: str, *, wait_seconds: float | None = None, reason: str | None = None) -> None:
        if self._on_progress is not None:
            self._on_progress(
                Progress(phase, self._sent, self._total, self._submitted, self._attention, wait_seconds, reason)
            )


def _gave_up(exc: Transient, budget: float) -> Transient:
    """``exc`` with how long it was retried, for the one line the user reads."""
    if budget <= 0:
        return exc
    return type(exc)(f"{exc} Still failing after {_duration(budget)} of retries.", retry_after=exc.retry_after)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} minutes"
