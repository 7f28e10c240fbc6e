"""The headless commands, run for real in a subprocess: exit codes, messages, nothing half-done."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from pso_desktop.domain.samples import sample_report
from pso_desktop.paths import resources_dir
from tests.support.cli import SECRET, assert_clean_failure, run_cli, status

EXAMPLES = sorted((resources_dir() / "examples").glob("*.json"))


@pytest.fixture
def profile(pso_home: Path) -> Path:
    result = run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    return pso_home


def db_hash(home: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((home / "profiles" / "alice").glob("reports.db*")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_profile_report_status_export_round_trip(profile: Path, tmp_path: Path):
    for example in EXAMPLES:
        result = run_cli(profile, "report", "add", str(example), "--password-stdin", stdin=SECRET + "\n")
        assert result.code == 0, result.err
        assert "1 report(s) added" in result.out
    assert status(profile) == {
        "draft": len(EXAMPLES),
        "queued": 0,
        "sending": 0,
        "submitted": 0,
        "needs_attention": 0,
        "sealed": {"spooled": 0, "rejected": 0, "agent_last_success": None},
    }

    out = tmp_path / "export.json"
    result = run_cli(
        profile, "export", "--format", "json", "--out", str(out), "--password-stdin", stdin=SECRET + "\n"
    )
    assert result.code == 0, result.err
    document = json.loads(out.read_text(encoding="utf-8"))
    assert "Patient Safety Work Product" in document["confidentiality"]
    exported = {r["id"]: r for r in document["reports"]}
    for example in EXAMPLES:
        original = json.loads(example.read_text(encoding="utf-8"))
        assert exported[original["id"]] == original
    assert out.stat().st_mode & 0o077 == 0


def test_add_array_from_stdin_with_submit_queues_all(profile: Path):
    rng = random.Random(5)
    reports = [sample_report(rng, i) for i in range(25)]
    result = run_cli(
        profile, "report", "add", "-", "--submit", "--password-stdin", stdin=SECRET + "\n" + json.dumps(reports)
    )
    assert result.code == 0, result.err
    assert "25 report(s) added and queued" in result.out
    assert status(profile)["queued"] == 25


def test_json_lines_input(profile: Path, tmp_path: Path):
    rng = random.Random(6)
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(json.dumps(sample_report(rng, i)) for i in range(5)) + "\n", encoding="utf-8")
    result = run_cli(profile, "report", "add", str(path), "--password-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    assert status(profile)["draft"] == 5


def test_one_bad_report_means_nothing_is_added(profile: Path, tmp_path: Path):
    rng = random.Random(7)
    reports = [sample_report(rng, i) for i in range(10)]
    reports[6]["narrative"] = "Canary Zorblax fell \x00 here"
    reports[8]["event_type"] = "near_miss"
    reports[8]["categories"] = ["A48"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(reports), encoding="utf-8")
    result = run_cli(profile, "report", "add", str(path), "--submit", "--password-stdin", stdin=SECRET + "\n")
    assert_clean_failure(result)
    assert "report 7" in result.err and "narrative" in result.err
    assert "report 9" in result.err and "always reported as Incident" in result.err
    assert "Zorblax" not in result.err + result.out
    assert "Nothing was stored" in result.err
    assert sum(v for k, v in status(profile).items() if k != "sealed") == 0


def test_dry_run_checks_without_storing(profile: Path):
    result = run_cli(
        profile, "report", "add", str(EXAMPLES[0]), "--dry-run", "--password-stdin", stdin=SECRET + "\n"
    )
    assert result.code == 0, result.err
    assert "would be added" in result.out
    assert sum(v for k, v in status(profile).items() if k != "sealed") == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"event_type": "incident",', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"   ", "empty"),
    ],
)
def test_bad_files_get_a_clear_message(profile: Path, tmp_path: Path, content: bytes, expected: str):
    path = tmp_path / "input.json"
    path.write_bytes(content)
    result = run_cli(profile, "report", "add", str(path), "--password-stdin", stdin=SECRET + "\n")
    assert_clean_failure(result)
    assert expected in result.err


def test_missing_file(profile: Path):
    result = run_cli(profile, "report", "add", "/nonexistent/file.json", "--password-stdin", stdin=SECRET + "\n")
    assert_clean_failure(result)
    assert "File not found" in result.err


def test_wrong_password_is_refused_and_file_untouched(profile: Path):
    before = db_hash(profile)
    result = run_cli(profile, "status", "--json", "--password-stdin", stdin="not the secret at all\n")
    assert_clean_failure(result)
    assert "wrong" in result.err.lower()
    assert db_hash(profile) == before


def test_unknown_profile_never_creates_a_database(pso_home: Path):
    result = run_cli(pso_home, "status", "--profile", "bob", "--password-stdin", stdin=SECRET + "\n")
    assert_clean_failure(result)
    assert not (pso_home / "profiles" / "bob" / "reports.db").exists()


def test_profile_from_environment_and_no_secret(profile: Path):
    result = run_cli(profile, "status", "--json", "--password-stdin", stdin="", PSO_DESKTOP_PROFILE="alice")
    assert_clean_failure(result)
    assert "secret" in result.err


def test_usage_errors_exit_2(pso_home: Path):
    assert_clean_failure(run_cli(pso_home, "frobnicate"), code=2)
    assert_clean_failure(run_cli(pso_home, "export", "--format", "xml", "--out", "x"), code=2)


def test_schema_is_json_schema(pso_home: Path):
    result = run_cli(pso_home, "report", "schema")
    assert result.code == 0
    schema = json.loads(result.out)
    assert schema["type"] == "object" and "narrative" in schema["properties"]


def test_export_can_be_added_back_in_another_profile(profile: Path, tmp_path: Path):
    run_cli(profile, "report", "add", str(EXAMPLES[0]), "--password-stdin", stdin=SECRET + "\n")
    out = tmp_path / "e.json"
    assert (
        run_cli(
            profile, "export", "--format", "json", "--out", str(out), "--password-stdin", stdin=SECRET + "\n"
        ).code
        == 0
    )
    assert run_cli(profile, "profile", "create", "bob", "--password-stdin", stdin="bobs own secret\n").code == 0
    result = run_cli(
        profile, "report", "add", str(out), "--profile", "bob", "--password-stdin", stdin="bobs own secret\n"
    )
    assert result.code == 0, result.err


def test_export_to_a_missing_folder_or_onto_a_folder_fails_cleanly(profile: Path, tmp_path: Path):
    for out in (tmp_path / "no-such-folder" / "e.json", tmp_path):
        result = run_cli(
            profile, "export", "--format", "json", "--out", str(out), "--password-stdin", stdin=SECRET + "\n"
        )
        assert_clean_failure(result)
        assert "folder" in result.err.splitlines()[-1]
    assert not list(tmp_path.glob(".*.part"))


def test_unusable_data_folder_fails_cleanly(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for home in (blocker / "below", blocker):
        result = run_cli(home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n")
        assert_clean_failure(result)
        assert "data folder" in result.err or "log file" in result.err
    assert blocker.read_text() == "not a folder"


def test_secret_that_is_not_utf8_fails_cleanly(profile: Path):
    before = db_hash(profile)
    result = run_cli(profile, "status", "--password-stdin", stdin=b"\xffcorrect horse\n")
    assert_clean_failure(result)
    assert "UTF-8" in result.err
    assert db_hash(profile) == before


def test_a_reader_that_stops_early_ends_the_command_quietly(pso_home: Path) -> None:
    """``pso-desktop report schema | head -c 10``: exit 0 and nothing on stderr (no "Exception ignored")."""
    import subprocess
    import sys

    from tests.support.cli import cli_env

    with subprocess.Popen(
        [sys.executable, "-m", "pso_desktop", "report", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(pso_home),
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader goes away before the schema is written, like a "head" that is done
        errors = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert (code, errors) == (0, b"")


def test_a_profile_named_with_spaces_gets_a_folder_name_and_either_name_opens_it(pso_home: Path):
    created = run_cli(pso_home, "profile", "create", "Jordan Example", "--password-stdin", stdin=SECRET + "\n")
    assert created.code == 0, created.err
    assert "Created profile jordan-example." in created.out
    assert (pso_home / "profiles" / "jordan-example").is_dir()
    for name in ("Jordan Example", "jordan-example"):
        result = run_cli(pso_home, "status", "--json", "--profile", name, "--password-stdin", stdin=SECRET + "\n")
        assert result.code == 0, result.err
    again = run_cli(pso_home, "profile", "create", "jordan example", "--password-stdin", stdin=SECRET + "\n")
    assert again.code == 1 and "already exists" in again.err and "Traceback" not in again.err
