"""Issue 11, item 3 end to end: the PSO publishes a catalogue with the real `pso-server catalogue publish`, the
real client fetches it at sync over TLS, keeps it in the encrypted profile and uses it offline after the server
is gone; a report on the new version is accepted, one claiming a version never published is refused with a
sentence, and a draft started on the old version moves to the new one with a sentence per answer that no longer
fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from pso_desktop.domain.catalogue import install_catalogue, load_catalogue, parse_catalogue
from pso_desktop.domain.validation import UNPUBLISHED
from pso_desktop.services import syncing
from pso_desktop.services.workstation import Session
from pso_desktop.sync.transport import ServerSettings
from pso_server.cli import main as pso_server
from tests.support.catalogues import CHANGED_TEXT, NEW_QUESTION_TEXT, changed_catalogue, fall_report, write
from tests.support.memory_keyring import MemoryKeyring
from tests.support.sync import PASSWORD, SECRET, make_workstation, practice_server


def test_publish_sync_then_the_form_uses_it_offline(
    pso_home: Path, memory_keyring: MemoryKeyring, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workstation = make_workstation(pso_home, memory_keyring)
    workstation.create_profile("nurse1", SECRET)
    old_draft = fall_report("hospital-2.0", DE204="A906")  # Intracranial injury: 2.1 no longer offers it
    with practice_server(tmp_path / "server") as server, workstation.session("nurse1", SECRET) as session:
        session.save_draft(old_draft)
        assert session.new_draft_version() == "hospital-2.0"
        syncing.login(session, ServerSettings(server.base_url, ca_file=str(server.ca_path)), "nurse1", PASSWORD)

        # The PSO publishes hospital-2.1 with the real command, on the running server's database.
        new = write(tmp_path / "hospital-2.1.json", changed_catalogue())
        db = f"sqlite:///{server.data_dir / 'server.db'}"
        assert pso_server(["catalogue", "publish", str(new), "--db", db]) == 0
        assert "Published hospital-2.1" in capsys.readouterr().out

        summary = syncing.sync(session)
        assert summary.problem is None
        assert [v for v, _ in session.account.catalogues()] == ["hospital-2.1"]
        assert session.new_draft_version() == "hospital-2.1"

        # A report written on the new version (its new question answered) is accepted.
        on_new = fall_report("hospital-2.1", bed_alarm="alarm_on")
        session.submit_report(on_new)
        # A report claiming a version the PSO never published (this workstation has a catalogue of that
        # name from elsewhere) is refused by the server with a sentence.
        stray = changed_catalogue("hospital-2.2")
        install_catalogue(parse_catalogue(stray))
        claimed = fall_report("hospital-2.2")
        session.submit_report(claimed)
        summary = syncing.sync(session)
        assert (summary.submitted, summary.needs_attention) == (1, 1)
        assert server.report(on_new["id"]).latest_revision == 1
        problems = session.pso_problems(claimed["id"])
        assert [(p.field, p.message) for p in problems] == [("form_version", UNPUBLISHED)]
    # The server is stopped. The installed catalogues went with the lock; unlocking brings them back from the
    # encrypted profile, offline.
    with pytest.raises(KeyError):
        load_catalogue("hospital-2.1")
    with workstation.session("nurse1", SECRET) as session:
        version = session.new_draft_version()
        assert version == "hospital-2.1"
        fall = load_catalogue(version).modules["fall"]
        assert fall.questions[0].text == CHANGED_TEXT
        assert fall.by_id["bed_alarm"].text == NEW_QUESTION_TEXT
        # The draft started on hospital-2.0 is still on it, and can be finished there or moved.
        assert session.get_report(old_draft["id"])["form_version"] == "hospital-2.0"  # type: ignore[index]
        said = session.move_draft(old_draft["id"])
        assert len(said) == 1 and '"Intracranial injury" is no longer offered' in said[0]
        moved = session.get_report(old_draft["id"])
        assert moved is not None and moved["form_version"] == "hospital-2.1"
        assert "DE204" not in moved["modules"]["fall"]
        assert session.move_draft(old_draft["id"]) == []  # already there


def test_a_withdrawn_version_starts_no_draft_and_its_queued_report_is_accepted(
    session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with practice_server(tmp_path / "server") as server:
        db = f"sqlite:///{server.data_dir / 'server.db'}"
        for version in ("hospital-2.1", "hospital-2.2"):
            path = write(tmp_path / f"{version}.json", changed_catalogue(version))
            assert pso_server(["catalogue", "publish", str(path), "--db", db]) == 0
        syncing.login(session, ServerSettings(server.base_url, ca_file=str(server.ca_path)), "nurse1", PASSWORD)
        assert syncing.sync(session).problem is None
        assert session.new_draft_version() == "hospital-2.2"
        queued = fall_report("hospital-2.2", bed_alarm="alarm_off")
        session.submit_report(queued)  # written offline on 2.2, still queued when the PSO withdraws it
        assert pso_server(["catalogue", "withdraw", "hospital-2.2", "--db", db]) == 0
        assert "new ones start on hospital-2.1" in capsys.readouterr().out
        summary = syncing.sync(session)
        assert (summary.submitted, summary.needs_attention) == (1, 0)
        assert server.report(queued["id"]).latest_revision == 1
        assert session.new_draft_version() == "hospital-2.1"
