"""The sealed outbox as an unlocked profile sees it (docs/sealed-outbox.md): pinning the PSO's sealing key and
the device credential at sign-in and sync, sealing each submitted revision into the spool before the Submit
commits, and reconciling the spool with the outbox at unlock and after a sync.

Qt-free; runs where the session's connection lives (the database worker, the sync thread, the CLI).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pso_desktop import paths
from pso_desktop.errors import ExpectedError
from pso_desktop.security.errors import KeyEntryMissingError
from pso_desktop.storage.database import transaction
from pso_desktop.sync.sealed import (
    AGENT_FILE,
    AgentFile,
    SealingKey,
    SealingKeyInvalid,
    Spool,
    SpoolEntry,
    envelope_plaintext,
    seal_entry,
    spool_folder,
)

if TYPE_CHECKING:
    from pso_desktop.security.key_stores import KeyStore
    from pso_desktop.security.profiles import ProfileKeys
    from pso_desktop.services.workstation import Session
    from pso_desktop.sync.transport import ApiClient, ServerSettings

_log = logging.getLogger(__name__)
ORPHAN_AGE = 300.0  # seconds: an entry with no outbox entry older than this outlived a Submit that never committed
PINNED = "sealed_outbox"  # the key under which the profile keeps its pinned key and credential id (encrypted)


class SealedOutbox:
    """One profile's spool, agent file and device credential store."""

    def __init__(self, root: Path, profile: str, keys: ProfileKeys) -> None:
        self.profile = profile
        self._keys = keys
        self.spool = Spool(spool_folder(root, profile, keys.policy.sealed_outbox.spool_dir))
        self.agent_path = paths.profile_dir(profile, root) / AGENT_FILE

    def agent_file(self) -> AgentFile | None:
        return AgentFile.read(self.agent_path)

    def credential(self, agent: AgentFile) -> KeyStore:
        return self._keys.credential_store(self.profile, agent.credential_store or "file", agent.keyring_backend)

    def new_credential_place(self) -> tuple[KeyStore, str, str | None]:
        """Where a new device credential goes: its store, ``keyring`` or ``file``, and the keyring backend."""
        kind = self._keys.credential_kind()
        backend = self._keys.credential_backend() if kind == "keyring" else None
        return self._keys.credential_store(self.profile, kind, backend), kind, backend


def pinned(session: Session) -> dict[str, Any]:
    value = session.remembered.get(PINNED)
    return value if isinstance(value, dict) else {}


def pinned_key(session: Session) -> SealingKey | None:
    try:
        return SealingKey.from_json(pinned(session).get("sealing_key"))
    except SealingKeyInvalid:
        return None


def seal_submitted(session: Session, report_ids: Sequence[str]) -> int:
    """Seals the queued revisions of ``report_ids`` into the spool; call it inside the Submit's transaction,
    before its commit. Nothing is sealed until the profile has pinned a key and holds a device credential
    (those reports go by the normal outbox only). A spool that cannot be written is logged and the Submit goes
    on: the outbox still holds every report. Returns how many entries were written."""
    sealed = session.sealed
    if sealed is None or not report_ids:
        return 0
    state = pinned(session)
    key = pinned_key(session)
    account = session.account.get()
    if key is None or account is None or not state.get("credential_id"):
        return 0
    try:
        present = sealed.spool.keys()
    except OSError as exc:  # e.g. IT's spool_dir not readable by this user: the Submit must still go on
        _log.warning("the spool could not be read (%s); the outbox sends the reports", exc.errno)
        return 0
    entries: list[SpoolEntry] = []
    for item in session.store.queued_revisions(report_ids):
        if (item.report_id, item.revision) in present:
            continue
        anonymous = _is_anonymous(item.wire)
        plaintext = envelope_plaintext(
            item.wire_text, None if anonymous else account.username, item.owner_key if anonymous else None
        )
        entries.append(seal_entry(key, item.report_id, item.revision, plaintext, anonymous=anonymous))
        del plaintext
    try:
        sealed.spool.write(entries)
    except OSError as exc:
        _log.warning("the sealed copies could not be written to the spool (%s); the outbox sends them", exc.errno)
        return 0
    return len(entries)


def _is_anonymous(report: dict[str, Any]) -> bool:
    reporter = report.get("reporter")
    return isinstance(reporter, dict) and reporter.get("anonymous") is True


def enrol(
    session: Session,
    api: ApiClient,
    access_token: Callable[[], str],
    settings: ServerSettings,
    sealing_key: Any,
    device_name: str,
) -> None:
    """At sign-in and at sync: pins ``sealing_key`` (from the server this profile is linked to, over verified TLS)
    and, when the profile holds no device credential yet, asks for one and stores it; then writes the agent
    file. A server without the sealed outbox, or a failure here, leaves the profile on the normal outbox."""
    sealed = session.sealed
    if sealed is None:
        return
    state = pinned(session)
    changed = False
    try:
        key = SealingKey.from_json(sealing_key) if sealing_key is not None else pinned_key(session)
    except SealingKeyInvalid:
        _log.warning("the PSO server's sealing key was not understood; the sealed outbox stays as it was")
        key = pinned_key(session)
    if key is not None and state.get("sealing_key") != key.to_json():
        state["sealing_key"] = key.to_json()
        changed = True
    agent = sealed.agent_file()
    linked = session.account.get()
    account = linked.username if linked is not None else None
    if key is not None and not _credential_held(sealed, state, agent, settings, account):
        if state.pop("credential_id", None) is not None:
            changed = True  # nothing more is sealed for a credential this profile cannot use any more
        try:
            answer = api.device_credential(access_token(), device_name)
        except ExpectedError as exc:
            _log.warning("no device credential this time: %s", type(exc).__name__)
        else:
            store, kind, backend = sealed.new_credential_place()
            try:
                store.replace(str(answer["token"]))
                store.settle()
            except (OSError, ExpectedError) as exc:
                _log.warning("the device credential could not be stored: %s", type(exc).__name__)
            else:
                state.update(
                    credential_id=str(answer["credential_id"]),
                    credential_store=kind,
                    keyring_backend=backend,
                    server_url=settings.url,
                    account=account,
                )
                changed = True
    if changed:
        session.remembered.put(PINNED, state)
    if key is not None and state.get("credential_id"):
        new_agent = AgentFile(
            settings.url,
            os.path.abspath(settings.ca_file) if settings.ca_file else None,
            settings.proxy,
            key,
            str(state["credential_id"]),
            str(state.get("credential_store") or "file"),
            state.get("keyring_backend"),
            str(sealed.spool.folder),
        )
        if new_agent != agent:
            try:
                new_agent.write(sealed.agent_path)
            except OSError as exc:
                _log.warning("the agent file could not be written: %s", type(exc).__name__)


def _credential_held(
    sealed: SealedOutbox,
    state: dict[str, Any],
    agent: AgentFile | None,
    settings: ServerSettings,
    account: str | None,
) -> bool:
    """A credential of this server and this account (a profile linked to another account needs its own: the
    server refuses envelopes of one account sent with another's credential)."""
    if (
        not state.get("credential_id")
        or state.get("server_url") != settings.url
        or state.get("account") != account
    ):
        return False
    if agent is None or agent.credential_id != state.get("credential_id"):
        return True  # the agent file is rewritten from the pinned state
    try:
        return bool(sealed.credential(agent).read())
    except (KeyEntryMissingError, ExpectedError):
        return False


def forget_credential(session: Session) -> None:
    """The credential was revoked: the next sign-in or sync asks for a new one."""
    state = pinned(session)
    if state.pop("credential_id", None) is not None:
        session.remembered.put(PINNED, state)


def already_sent(server_ref: str | None) -> str:
    """The one sentence a clinician reads when a draft of theirs had reached the PSO as the app stopped."""
    case = f" as case {server_ref}" if server_ref else ""
    return (
        f"This report was already sent to the PSO{case} when PSO Desktop stopped during its Submit; "
        "it stays here as a draft you can change and submit again as an update."
    )


def settle_orphans(session: Session, report_ids: Sequence[str] | None = None) -> list[str]:
    """Numbers above the PSO's copy every draft whose current revision was sealed by a Submit that never
    committed (call it inside a write transaction: a Submit committing on another connection has then
    committed). A copy the agent delivered gives the draft its case number and a sentence for the clinician
    (returned); an orphan entry not delivered is removed under its lock, and its draft is renumbered too, as a
    killed sender may have delivered it unrecorded (the PSO takes a first revision at any number).
    ``report_ids`` limits it to those reports (a Submit's)."""
    sealed = session.sealed
    if sealed is None:
        return []
    wanted = None if report_ids is None else set(report_ids)
    try:
        delivered = {k: v for k, v in sealed.spool.delivered().items() if wanted is None or k[0] in wanted}
        spooled = sealed.spool.keys()
    except OSError as exc:  # IT's spool_dir not readable by this user: nothing of it was written by this one
        _log.warning("the spool could not be read (%s); orphans are settled at a later unlock", exc.errno)
        return []
    orphans = sorted(k for k in spooled if wanted is None or k[0] in wanted)
    notices: list[str] = []
    for (report_id, revision), ref in sorted(delivered.items()):
        if session.store.renumber_orphan_draft(report_id, revision, ref):
            _log.info("sealed outbox: a draft the PSO already holds was numbered above its copy")
            notices.append(already_sent(ref))
    states = session.store.revision_states(orphans) if orphans else {}
    for report_id, revision in orphans:
        if states.get((report_id, revision)) is not None or (report_id, revision) in delivered:
            continue
        claim = sealed.spool.claim(f"{report_id}.{revision}.sealed")
        if claim is None:
            continue  # a sender holds it: its answer is recorded as delivered, acted on next time
        renumbered = False
        try:
            renumbered = session.store.renumber_orphan_draft(report_id, revision, None)
        finally:
            sealed.spool.release(claim, done=renumbered)
    return notices


def reconcile(session: Session) -> tuple[int, int]:
    """Brings the spool in line with the outbox: an entry whose revision was sent (or needs attention, or was
    never committed) is removed; a rejection the agent brought back marks its revision as needing attention,
    with the PSO's reasons, for its author. Returns (entries removed, rejections shown)."""
    sealed = session.sealed
    if sealed is None:
        return 0, 0
    removed = shown = 0
    try:
        with transaction(session.connection):
            session.notices += settle_orphans(session)
        sealed.spool.forget_delivered(ORPHAN_AGE)
        keys = sorted(sealed.spool.keys())
    except OSError as exc:  # IT's spool_dir not readable by this user: the outbox still sends every report
        _log.warning("the spool could not be read (%s); it is reconciled at a later unlock", exc.errno)
        return 0, 0
    states = session.store.revision_states(keys) if keys else {}
    for report_id, revision in keys:
        state = states.get((report_id, revision))
        if state in ("queued", "sending"):
            continue
        if state is None and sealed.spool.age(report_id, revision) < ORPHAN_AGE:
            continue  # perhaps a Submit on another connection between its spool write and its commit
        sealed.spool.remove(report_id, revision)
        removed += 1
    removed += sealed.spool.sweep_temporary(ORPHAN_AGE)
    sealed.spool.sweep_locks()
    for record in sealed.spool.rejected():
        report_id, revision = record["report_id"], record["revision"]
        listed = record.get("errors")
        errors: list[Any] = listed if isinstance(listed, list) else []
        if session.store.record_sealed_rejection(
            report_id, revision, str(record.get("status") or "rejected"), errors
        ):
            shown += 1
        sealed.spool.forget_rejected(report_id, revision)
    if removed or shown:
        _log.info("sealed outbox reconciled: %d entries removed, %d rejections shown", removed, shown)
    return removed, shown


def status(session: Session) -> dict[str, Any]:
    """``status --json``'s ``sealed`` object."""
    sealed = session.sealed
    if sealed is None:
        return {"spooled": 0, "rejected": 0, "agent_last_success": None}
    try:
        return {
            "spooled": len(sealed.spool.names()),
            "rejected": len(sealed.spool.rejected()),
            "agent_last_success": sealed.spool.last_success(),
        }
    except OSError as exc:  # IT's spool_dir not readable by this user: said, not a traceback
        return {
            "spooled": None,
            "rejected": None,
            "agent_last_success": None,
            "problem": f"the spool folder {sealed.spool.folder} cannot be read ({exc.strerror or type(exc).__name__})",
        }
