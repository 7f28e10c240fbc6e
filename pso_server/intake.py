"""Batch intake: validate each report with the shared domain rules, then store the batch in one transaction.

Validation (CPU only) happens before the transaction opens, so the write lock is held only for the inserts.
One bad report never fails its batch: it gets its own ``rejected`` result and the rest are stored. Nothing
the client typed comes back: a rejected report's ``id`` is echoed only when it is a report ID (a UUID), and
the errors are the shared rules' wording, which locates unknown names by position (a lone surrogate in an id
once made the answer unencodable: a 500 after the rest of the batch was committed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pso_desktop.domain import Catalogue, ReportInvalid, canonical_json, validate_report
from pso_server import store
from pso_server.config import Clock
from pso_server.store import Database, IncomingRevision, Uploader

log = logging.getLogger("pso_server")

UNREADABLE = (
    "This report could not be read by the server; check it in the app and send it again, or contact the PSO "
    "if it keeps happening."
)
NOT_YOURS = (
    "This report id is already held for another sender; only the account or app that first sent a report "
    "can send new versions of it. Submit your report as a new one."
)
ANONYMITY = (
    "This report was first sent {was}, and a report stays as it was first sent: send the change {was} too, "
    "or submit it as a new report."
)
BAD_KEY = (
    "The owner key sent with this report is not one this app generates; send the report again from the app "
    "that first sent it."
)
# What a client's owner key looks like: at least 256 bits, URL-safe base64 (secrets.token_urlsafe(32) gives 43).
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{43,128}")


def owner_key_hash(key: Any) -> str | None:
    """The SHA-256 (hex) the server keeps of a client's per-report owner key; None when ``key`` is not one."""
    if not isinstance(key, str) or _KEY_SHAPE.fullmatch(key) is None:
        return None
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def owner_key_hashes(keys: Mapping[str, Any] | None) -> dict[str, str | None]:
    """Report id (canonical UUID text) → hash of the key sent for it, or None for a malformed key. Entries
    whose name is not a report id are dropped (they can match no report)."""
    hashes: dict[str, str | None] = {}
    for name, key in (keys or {}).items():
        try:
            report_id = str(uuid.UUID(name))
        except (ValueError, TypeError, AttributeError):
            continue
        hashes[report_id] = owner_key_hash(key)
    return hashes


@dataclass(frozen=True)
class ItemResult:
    """The answer for one report of a batch (the ``BatchResult`` schema)."""

    id: str | None
    revision: int | None
    status: str
    server_ref: str | None
    errors: list[dict[str, str]] = field(default_factory=list)


def _echo_id(raw: Any) -> str | None:
    """The report's id in canonical form when it is a UUID; anything else may be typed text (a name)."""
    value = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _echo_revision(raw: Any) -> int | None:
    value = raw.get("revision") if isinstance(raw, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def prepare(
    raw: Any, today: dt.date, catalogues: Callable[[str], Catalogue | None] | None = None
) -> IncomingRevision | ItemResult:
    """A storable revision, or the ``rejected`` result carrying the client's own wording of each problem.
    ``catalogues`` resolves the form versions this server published (default: the bundled ones)."""
    try:
        report = validate_report(raw, today=today, catalogues=catalogues)
        body = canonical_json(report.export())
    except ReportInvalid as exc:
        return _rejected(raw, exc.as_json())
    except Exception as exc:  # one bad report must never fail its batch
        # The shared rules raised something other than ReportInvalid for a malformed value (e.g. an object
        # where a code belongs). Only the exception type is logged: its text may quote the report's content.
        log.warning(
            "Report validation failed unexpectedly (%s); the report is answered 'rejected'.", type(exc).__name__
        )
        return ItemResult(
            _echo_id(raw), _echo_revision(raw), "rejected", None, [{"field": "", "message": UNREADABLE}]
        )
    return IncomingRevision(
        report_id=str(report.id),
        revision=report.revision,
        # content_hash() is defined as the SHA-256 of these very bytes; hashing them here saves a second
        # serialisation per report (the tests compare the two).
        content_hash=hashlib.sha256(body).hexdigest(),
        body=body.decode("utf-8"),
        form_version=report.form_version,
        event_type=report.event_type,
        is_anonymous=report.is_anonymous,
    )


def _rejected(raw: Any, errors: list[dict[str, str]]) -> ItemResult:
    """The ``rejected`` result; errors that could not be sent as UTF-8 (a rule that let a lone surrogate
    through) are replaced by the plain sentence, so the answer can always be encoded."""
    try:
        for error in errors:
            error["field"].encode("utf-8")
            error["message"].encode("utf-8")
    except (UnicodeEncodeError, KeyError, AttributeError):
        log.warning("A rejection message could not be encoded; the report is answered with a plain sentence.")
        errors = [{"field": "", "message": UNREADABLE}]
    return ItemResult(_echo_id(raw), _echo_revision(raw), "rejected", None, errors)


def ingest_batch(
    db: Database,
    reports: Sequence[Any],
    uploader: Uploader,
    clock: Clock,
    owner_keys: Mapping[str, Any] | None = None,
    catalogues: Callable[[str], Catalogue | None] | None = None,
    admit: Callable[[int, IncomingRevision], ItemResult | None] | None = None,
) -> list[ItemResult]:
    """Validates and stores a batch; returns one result per report, in the order received. ``owner_keys`` maps
    report ids to the per-report owner keys the client sent (only their hashes go further). An item that is
    already an :class:`ItemResult` (refused before intake, such as a sealed envelope that did not open) is
    answered as it is and counted with the rest; ``admit(index, revision)`` may refuse a validated report
    before it is stored (the sealed upload's account check) by returning its result.

    All accepted revisions and the outcome tally are committed in one transaction; if it fails nothing is
    stored and the error propagates (the client re-sends the batch, and dedupe makes that safe).
    """
    now = clock()
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    results: list[ItemResult | None] = [None] * len(reports)
    ready: list[tuple[int, IncomingRevision]] = []
    hashes = owner_key_hashes(owner_keys)
    resolve = _memo(catalogues) if catalogues is not None else None
    for index, raw in enumerate(reports):
        prepared = raw if isinstance(raw, ItemResult) else prepare(raw, moment.date(), resolve)
        if not isinstance(prepared, ItemResult) and admit is not None:
            prepared = admit(index, prepared) or prepared
        if isinstance(prepared, ItemResult):
            results[index] = prepared
        elif prepared.report_id in hashes and hashes[prepared.report_id] is None:
            results[index] = ItemResult(
                prepared.report_id, prepared.revision, "rejected", None, [{"field": "id", "message": BAD_KEY}]
            )
        else:
            ready.append((index, replace(prepared, owner_key_hash=hashes.get(prepared.report_id))))
    # A fixed lock order (by id, then revision) keeps concurrent PostgreSQL batches from deadlocking.
    ready.sort(key=lambda pair: (pair[1].report_id, pair[1].revision))
    with db.transaction() as tx:
        received: list[tuple[str, float]] = []
        stored: list[tuple[str, int]] = []
        for index, item in ready:
            outcome = store.ingest_revision(tx, item, uploader, now, moment.year)
            errors = _refusal(outcome.refused, item.is_anonymous)
            results[index] = ItemResult(item.report_id, item.revision, outcome.status, outcome.server_ref, errors)
            if outcome.received_at is not None:
                received.append((item.report_id, outcome.received_at))
            if outcome.status in ("created", "updated"):
                stored.append((item.report_id, item.revision))
        final = [r for r in results if r is not None]
        store.record_tally(tx, Counter(r.status for r in final), now)
        store.record_in_feed(tx, stored)  # last two: both serialise with the feeds' other writers until commit
        store.record_received(tx, received)  # last: it serialises with every other status writer until commit
    assert len(final) == len(reports)
    return final


def _memo(catalogues: Callable[[str], Catalogue | None]) -> Callable[[str], Catalogue | None]:
    """One lookup per form version per batch (a version never published is looked up once, not per report)."""
    seen: dict[str, Catalogue | None] = {}

    def resolve(version: str) -> Catalogue | None:
        if version not in seen:
            seen[version] = catalogues(version)
        return seen[version]

    return resolve


def _refusal(refused: str | None, anonymous: bool) -> list[dict[str, str]]:
    if refused == store.NOT_OWNER:
        return [{"field": "id", "message": NOT_YOURS}]
    if refused == store.ANONYMITY:
        # Said only to the report's proven owner: the held report is the opposite of this revision.
        was = "named" if anonymous else "anonymously"
        return [{"field": "reporter", "message": ANONYMITY.format(was=was)}]
    return []


# --- the sealed outbox (docs/sealed-outbox.md) -----------------------------------------------------------------

UNSEALABLE = (
    "This sealed report could not be opened by the PSO (altered, or sealed for a key this server does not "
    "hold); submit it again from the app."
)
ACCOUNT_MISMATCH = (
    "This sealed report names another account than the device credential it was sent with; sign in to the app "
    "as its author and send it again."
)


@dataclass(frozen=True)
class SealedItem:
    """One envelope as received: its key id and the HPKE output (``enc || ciphertext``), or None when the
    ``sealed`` text was not base64."""

    key_id: str
    sealed: bytes | None


def ingest_sealed(
    db: Database,
    envelopes: Sequence[SealedItem],
    uploader: Uploader,
    username: str,
    open_envelope: Callable[[str, bytes], bytes | None],
    clock: Clock,
    catalogues: Callable[[str], Catalogue | None] | None = None,
) -> list[ItemResult]:
    """Opens each envelope (``open_envelope(key_id, sealed)``: the plaintext or None) and takes the reports in
    through :func:`ingest_batch`, with its validation, ownership rules and dedupe; one result per envelope, in
    order. An envelope that does not open, or is not an envelope once opened, is ``rejected`` (``unsealable``,
    id and revision null). A report is taken in only when its envelope names the credential's account
    (``username``) for a named report, or no account for an anonymous one; otherwise ``rejected``
    (``account_mismatch``).

    Nothing here is logged or stored about who sent an envelope: an anonymous report is stored exactly as one
    sent through ``/reports/batch`` (no account, arrival day only), and the envelope itself is not kept.
    """
    items: list[Any] = []
    accounts: dict[int, str | None] = {}
    owner_keys: dict[str, Any] = {}
    unopened = 0
    for index, envelope in enumerate(envelopes):
        plaintext = None if envelope.sealed is None else open_envelope(envelope.key_id, envelope.sealed)
        content = _envelope_content(plaintext)
        if content is None:
            unopened += 1
            items.append(
                ItemResult(None, None, "rejected", None, [{"field": "unsealable", "message": UNSEALABLE}])
            )
            continue
        accounts[index], report, owner_key = content
        if owner_key is not None and isinstance(report.get("id"), str):
            owner_keys[report["id"]] = owner_key
        items.append(report)
    if unopened:
        # A count only: which envelope, account or device it came from stays out of the log.
        log.warning("%d sealed envelope(s) could not be opened; answered 'rejected' (unsealable).", unopened)

    def admit(index: int, revision: IncomingRevision) -> ItemResult | None:
        if accounts[index] == (None if revision.is_anonymous else username):
            return None
        errors = [{"field": "account_mismatch", "message": ACCOUNT_MISMATCH}]
        return ItemResult(revision.report_id, revision.revision, "rejected", None, errors)

    return ingest_batch(db, items, uploader, clock, owner_keys, catalogues, admit)


def _envelope_content(plaintext: bytes | None) -> tuple[str | None, dict[str, Any], Any] | None:
    """(account, report, owner key) of an opened envelope, or None when it is not one."""
    if plaintext is None:
        return None
    try:
        content = json.loads(plaintext)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(content, dict) or content.get("v") != 1:
        return None
    account, report = content.get("account"), content.get("report")
    if not isinstance(report, dict) or not (account is None or isinstance(account, str)):
        return None
    return account, report, content.get("owner_key")
