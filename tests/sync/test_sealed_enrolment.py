"""Pinning the PSO's sealing key and getting a device credential, against the real reference server over TLS:
at sign-in, and at the next sync of a profile signed in before the sealed outbox existed."""

from __future__ import annotations

import json
from pathlib import Path

from pso_desktop.services import sealing, syncing
from pso_desktop.services.workstation import Session
from pso_desktop.sync.sealed import AgentFile
from pso_server.practice import RunningServer
from tests.support.reports import sample_reports
from tests.support.sync import FAST_RETRIES, link


def test_sign_in_pins_the_key_and_keeps_the_credential_in_the_keyring(
    session: Session, server: RunningServer
) -> None:
    link(session, server)
    assert session.sealed is not None
    agent = AgentFile.read(session.sealed.agent_path)
    assert agent is not None and agent.credential_id is not None
    assert agent.sealing_key is not None and agent.sealing_key.key_id == server.sealing.current().key_id
    assert agent.server_url == server.base_url and agent.ca_file == str(server.ca_path)
    # The test keyring is a secure one here: the credential lives there, not in a file.
    assert agent.credential_store == "keyring"
    assert not (session.sealed.agent_path.parent / "device-credential").exists()
    token = session.sealed.credential(agent).read()
    assert token and token not in session.sealed.agent_path.read_text()
    assert sealing.pinned_key(session) == agent.sealing_key


def test_a_profile_signed_in_before_gets_its_key_and_credential_at_the_next_sync(
    session: Session, server: RunningServer
) -> None:
    link(session, server)
    assert session.sealed is not None
    # As a profile signed in by a version without the sealed outbox: nothing pinned, no agent file.
    session.remembered.put(sealing.PINNED, None)
    session.sealed.agent_path.unlink()
    session.add_reports(sample_reports(3, seed=31), submit=True)
    assert sealing.status(session)["spooled"] == 0  # nothing is sealed without a key and a credential

    syncing.sync(session, policy=FAST_RETRIES)
    agent = AgentFile.read(session.sealed.agent_path)
    assert agent is not None and agent.credential_id is not None and agent.sealing_key is not None
    session.add_reports(sample_reports(2, seed=32), submit=True)
    assert sealing.status(session)["spooled"] == 2
    entries = [json.loads(p.read_bytes()) for p in Path(session.sealed.spool.folder).glob("*.sealed")]
    assert {e["key_id"] for e in entries} == {agent.sealing_key.key_id}
