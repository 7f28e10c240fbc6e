"""Issue 11, item 3 on the server: `pso-server catalogue publish|withdraw`, /reference offering the versions,
and each report validated against the version it names (a version never published refused with a sentence)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pso_desktop.domain.catalogue import catalogue_path
from pso_desktop.domain.validation import UNPUBLISHED
from pso_desktop.paths import resources_dir
from tests.server.support import Api, ServerFactory, run_cli
from tests.support.catalogues import NEW_QUESTION_TEXT, bundled, changed_catalogue, fall_report, write


def test_publish_then_reports_are_checked_against_their_own_version(
    make_server: ServerFactory, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = write(tmp_path / "hospital-2.1.json", changed_catalogue())
    code, out, err = run_cli(["catalogue", "publish", str(new), "--db", db_url], capsys)
    assert (code, err) == (0, "") and "Published hospital-2.1" in out
    # The same file again changes nothing; other content under the same version is refused.
    code, out, err = run_cli(["catalogue", "publish", str(new), "--db", db_url], capsys)
    assert code == 0 and "already published" in out
    other = changed_catalogue()
    other["title"] = "Something else"
    code, _, err = run_cli(
        ["catalogue", "publish", str(write(tmp_path / "x.json", other)), "--db", db_url], capsys
    )
    assert code == 1 and err.count("\n") == 1 and "never changes" in err
    # The bundled version cannot be replaced.
    code, _, err = run_cli(
        ["catalogue", "publish", str(write(tmp_path / "b.json", bundled())), "--db", db_url], capsys
    )
    assert code == 1 and "cannot be replaced" in err

    with make_server() as server, Api(server) as api:
        token = api.user("nurse1")
        reference = api.get("/api/v1/reference", token).json()
        assert reference["form_catalogue_version"] == "hospital-2.1"
        assert reference["form_versions"] == ["hospital-1.2", "hospital-2.0", "hospital-2.1"]
        assert reference["withdrawn_versions"] == ["hospital-1.2"]  # imported V1.2 reports only
        fetched = api.get("/api/v1/reference/catalogues/hospital-2.1", token)
        assert fetched.status_code == 200
        assert hashlib.sha256(fetched.content).hexdigest() == reference["catalogues"]["hospital-2.1"]
        assert NEW_QUESTION_TEXT in fetched.json()["modules"]["fall"]["questions"][-1]["text"]
        assert api.get("/api/v1/reference/catalogues/hospital-2.0", token).status_code == 404
        assert api.get("/api/v1/reference/catalogues/hospital-9.9", token).status_code == 404
        assert api.get("/api/v1/reference/catalogues/hospital-2.1").status_code == 401

        on_new = fall_report("hospital-2.1", bed_alarm="alarm_on")
        new_on_old = fall_report("hospital-2.0", bed_alarm="alarm_on")
        dropped = fall_report("hospital-2.1", DE204="A906")
        old = fall_report("hospital-2.0", DE204="A906")
        claimed = fall_report("hospital-7.3-Grace-Castillo")
        results = api.batch(token, [on_new, new_on_old, dropped, old, claimed])
        assert [r["status"] for r in results] == ["created", "rejected", "rejected", "created", "rejected"]
        assert results[4]["errors"] == [{"field": "form_version", "message": UNPUBLISHED}]
        assert "Grace" not in json.dumps(results)
        held = server.stats()
        assert held["reports"] == 2


def test_a_withdrawn_version_starts_no_draft_and_still_takes_reports(
    make_server: ServerFactory, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = write(tmp_path / "hospital-2.1.json", changed_catalogue())
    assert run_cli(["catalogue", "publish", str(new), "--db", db_url], capsys)[0] == 0
    code, _, err = run_cli(["catalogue", "withdraw", "hospital-9.9", "--db", db_url], capsys)
    assert code == 1 and "never published" in err
    code, out, err = run_cli(["catalogue", "withdraw", "hospital-2.0", "--db", db_url], capsys)
    assert (code, err) == (0, "") and "hospital-2.1" in out
    # The last version a draft can start on cannot be withdrawn.
    code, _, err = run_cli(["catalogue", "withdraw", "hospital-2.1", "--db", db_url], capsys)
    assert code == 1 and err.count("\n") == 1 and "publish its successor" in err
    with make_server() as server, Api(server) as api:
        token = api.user("nurse1")
        reference = api.get("/api/v1/reference", token).json()
        assert reference["form_catalogue_version"] == "hospital-2.1"
        assert reference["withdrawn_versions"] == ["hospital-1.2", "hospital-2.0"]
        assert reference["form_versions"] == ["hospital-1.2", "hospital-2.0", "hospital-2.1"]
        results = api.batch(
            token, [fall_report("hospital-2.0"), fall_report("hospital-2.1", bed_alarm="alarm_off")]
        )
        assert [r["status"] for r in results] == ["created", "created"]


def test_publish_checks_the_file_first(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = changed_catalogue()
    broken["modules"]["fall"]["questions"][-1]["enable_when"] = [{"question": "DE999", "in": ["A1"]}]
    code, out, err = run_cli(
        ["catalogue", "publish", str(write(tmp_path / "b.json", broken)), "--db", db_url], capsys
    )
    assert code == 1 and err.count("\n") == 1 and "nothing was published" in err
    assert out.startswith("$.modules.fall.questions[") and "enable_when[0].question" in out
    # The same problems, in the same words, as `catalogue check`.
    assert run_cli(["catalogue", "check", str(tmp_path / "b.json")], capsys)[:2] == (1, out)
    code, out, _ = run_cli(["catalogue", "withdraw", "hospital-2.1", "--db", db_url], capsys)
    assert code == 1  # nothing was published


def test_v12_reports_are_accepted_with_their_version_and_not_offered_for_drafts(
    make_server: ServerFactory, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The PSOPPC still accepts Hospital V1.2: the bundled hospital-1.2 is accepted on every server, checked
    against its own catalogue, listed as withdrawn (no new draft starts on it) and cannot be replaced."""
    examples = resources_dir() / "examples" / "hospital-1.2"
    v12 = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(examples.glob("*.json"))]
    v12_catalogue = json.loads(catalogue_path("hospital-1.2").read_text(encoding="utf-8"))
    code, _, err = run_cli(
        ["catalogue", "publish", str(write(tmp_path / "v12.json", v12_catalogue)), "--db", db_url], capsys
    )
    assert code == 1 and "cannot be replaced" in err
    code, _, _ = run_cli(["catalogue", "withdraw", "hospital-1.2", "--db", db_url], capsys)
    assert code == 0  # already withdrawn: nothing changes
    with make_server() as server, Api(server) as api:
        token = api.user("nurse1")
        reference = api.get("/api/v1/reference", token).json()
        assert reference["form_catalogue_version"] == "hospital-2.0"
        assert "hospital-1.2" in reference["form_versions"] and "hospital-1.2" in reference["withdrawn_versions"]
        # A V1.2 category on a report claiming V2.0 is refused; on its own version it is accepted.
        wrong = dict(v12[0], id="7a1d01ff-5c2e-4f3a-9b1c-1d2e3f4a01ff", form_version="hospital-2.0")
        results = api.batch(token, [*v12, wrong])
        assert [r["status"] for r in results] == ["created"] * len(v12) + ["rejected"]
        assert server.stats()["reports"] == len(v12)
