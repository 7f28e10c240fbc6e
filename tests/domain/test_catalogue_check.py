"""``catalogue check``: the shipped catalogue is clean, and each broken catalogue is refused at the right path."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from pso_desktop.domain.catalogue import catalogue_path, parse_catalogue
from pso_desktop.domain.catalogue_check import catalogue_schema, check_catalogue, check_file
from pso_server.cli import main as server_main

SHIPPED = catalogue_path("hospital-2.0")


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHIPPED.read_text(encoding="utf-8"))
    return data


def _question(data: dict[str, Any], module: str, qid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(q for q in data["modules"][module]["questions"] if q["id"] == qid)
    return found


def _index(data: dict[str, Any], module: str, qid: str) -> int:
    return next(i for i, q in enumerate(data["modules"][module]["questions"]) if q["id"] == qid)


def test_the_shipped_catalogue_has_no_problems_and_fits_its_schema() -> None:
    assert check_catalogue(shipped()) == []
    # The JSON Schema file itself, read by a full JSON Schema implementation, agrees with the built-in reader.
    validator = jsonschema_rs.validator_for(dict(catalogue_schema()))
    assert list(validator.iter_errors(shipped())) == []
    catalogue = parse_catalogue(shipped())
    assert {c.module for c in catalogue.categories if c.module} == set(catalogue.modules)
    assert len(catalogue.modules) == 9


def test_every_module_element_says_where_it_comes_from() -> None:
    catalogue = parse_catalogue(shipped())
    for module in catalogue.modules.values():
        assert module.source and all(s in catalogue.sources for s in module.source), module.key
        for question in module.questions:
            assert question.cf_version, (module.key, question.id)
            assert all(s in catalogue.sources for s in question.source), (module.key, question.id)
            for answer in question.answers:
                # An answer that claims to be verified AHRQ content must be under an AHRQ or NullFlavor code.
                if answer.system == "local":
                    assert answer.code not in ("A15", "A18", "A66"), (module.key, question.id)


def test_medication_answers_carry_their_loinc_answer_codes() -> None:
    catalogue = parse_catalogue(shipped())
    medication = catalogue.modules["medication"]
    assert medication.loinc_panel == "74080-3" and medication.cf_version == "1.2"
    stage = medication.by_id["stage"]
    administering = stage.answer("administering")
    assert administering is not None
    assert [(c.system, c.code) for c in administering.codings] == [("ahrq", "A1398"), ("loinc", "LA20296-2")]
    for question in medication.questions:
        if question.loinc and question.type in ("choice", "multi"):
            assert all(a.codings for a in question.answers), question.id
    # ...and the AHRQ V1.2 answer codes of the HL7 SDC copy (secondary: unverified) beside the local ones.
    substance = medication.by_id["substance_type"]
    assert substance.data_element == "DE270"
    medications = substance.answer("medications")
    assert medications is not None and medications.codings[0].system == "ahrq"
    assert (medications.codings[0].code, medications.codings[0].verified) == ("A1197", False)


Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _unknown_target(data: dict[str, Any]) -> None:
    _question(data, "fall", "DE213")["enable_when"] = [{"question": "DE999", "in": ["A15"]}]


def _unknown_field_target(data: dict[str, Any]) -> None:
    _question(data, "vte", "onset")["enable_when"] = [{"field": "modules.vte.nowhere", "in": ["A15"]}]


def _later_target(data: dict[str, Any]) -> None:
    _question(data, "fall", "DE192")["enable_when"] = [{"question": "DE213", "in": ["A15"]}]


def _duplicate_answer_code(data: dict[str, Any]) -> None:
    answers = _question(data, "blood", "product_types")["answers"]
    answers.append(copy.deepcopy(answers[0]))


def _duplicate_category(data: dict[str, Any]) -> None:
    data["categories"][1]["code"] = data["categories"][0]["code"]


def _duplicate_question(data: dict[str, Any]) -> None:
    _question(data, "surgery", "count_correct")["id"] = "DE513"


def _duplicate_loinc_coding(data: dict[str, Any]) -> None:
    answers = _question(data, "medication", "stage")["answers"]
    answers[1]["codings"] = copy.deepcopy(answers[0]["codings"])


def _unreachable_question(data: dict[str, Any]) -> None:
    _question(data, "fall", "DE213")["enable_when"] = [{"question": "DE210", "in": ["A999"]}]


def _unreachable_by_event(data: dict[str, Any]) -> None:
    # The Fall category takes only incidents: a question asked only for near misses can never appear.
    _question(data, "fall", "DE213")["enable_when"] = [{"event_type": ["near_miss"]}]


def _unreachable_module(data: dict[str, Any]) -> None:
    del next(c for c in data["categories"] if c["code"] == "A64")["module"]


def _missing_answer_set(data: dict[str, Any]) -> None:
    _question(data, "fall", "DE210")["answer_set"] = "yes_no_maybe"


def _missing_answers(data: dict[str, Any]) -> None:
    del _question(data, "anesthesia", "asa_class")["answers"]


def _missing_harm_definition(data: dict[str, Any]) -> None:
    data["harm_scale"]["levels"][2]["definition"] = ""


def _missing_source(data: dict[str, Any]) -> None:
    _question(data, "device", "device_type")["source"] = ["S99"]


def _missing_module(data: dict[str, Any]) -> None:
    next(c for c in data["categories"] if c["code"] == "A57")["module"] = "obstetrics"


def _missing_verified(data: dict[str, Any]) -> None:
    del _question(data, "perinatal", "affected")["verified"]


def _unknown_system(data: dict[str, Any]) -> None:
    _question(data, "medication", "stage")["answers"][0]["codings"][0]["system"] = "snomed"


def _unk_not_nullflavor(data: dict[str, Any]) -> None:
    _question(data, "vte", "dvt_location")["answers"][-1]["system"] = "ahrq"


def _min_above_max(data: dict[str, Any]) -> None:
    _question(data, "perinatal", "birthweight")["min"] = 9000


def _bad_type(data: dict[str, Any]) -> None:
    _question(data, "surgery", "procedure_start")["type"] = "timestamp"


def _extra_key(data: dict[str, Any]) -> None:
    _question(data, "blood", "DE117")["answerz"] = []


def _missing_text(data: dict[str, Any]) -> None:
    del _question(data, "pressure_injury", "DE408")["text"]


def _bad_code(data: dict[str, Any]) -> None:
    _question(data, "fall", "DE204")["answers"][0]["code"] = "A9 10"


def _answers_on_text(data: dict[str, Any]) -> None:
    _question(data, "surgery", "procedure_start")["answer_set"] = "yes_no_unknown"


def _condition_code_not_an_answer(data: dict[str, Any]) -> None:
    _question(data, "anesthesia", "DE474")["enable_when"][0]["in"].append("spinal")


def _not_in_and_in(data: dict[str, Any]) -> None:
    _question(data, "blood", "product_types")["enable_when"][0]["in"] = ["A570"]


def _specify_in_group(data: dict[str, Any]) -> None:
    children = _question(data, "device", "devices")["questions"]
    children.append(
        {
            "id": "kind",
            "text": "Kind",
            "type": "choice",
            "verified": False,
            "answers": [{"code": "A66", "display": "Other: please specify", "specify": True}],
        }
    )


M = "$.modules"


def _fhir_event_on_a_number(data: dict[str, Any]) -> None:
    _question(data, "perinatal", "birthweight")["fhir"] = "event"


def _fhir_date_on_a_choice(data: dict[str, Any]) -> None:
    _question(data, "vte", "DE1003")["fhir"] = "date"


BROKEN: list[tuple[str, Mutation, str, str]] = [
    (
        "unknown condition target",
        _unknown_target,
        f"{M}.fall.questions[3].enable_when[0].question",
        "Unknown condition target",
    ),
    (
        "unknown field target",
        _unknown_field_target,
        f"{M}.vte.questions[4].enable_when[0].field",
        "Unknown condition target",
    ),
    (
        "condition on a later question",
        _later_target,
        f"{M}.fall.questions[0].enable_when[0].question",
        "later question",
    ),
    (
        "duplicate answer code",
        _duplicate_answer_code,
        f"{M}.blood.questions[1].answers[10].code",
        "Duplicate answer code",
    ),
    ("duplicate category code", _duplicate_category, "$.categories[1].code", "Duplicate category code"),
    ("duplicate question id", _duplicate_question, f"{M}.surgery.questions[3].id", "Duplicate question id"),
    (
        "duplicate LOINC answer code",
        _duplicate_loinc_coding,
        f"{M}.medication.questions[17].answers[1].codings[0].code",
        "Duplicate code",
    ),
    ("unreachable question", _unreachable_question, f"{M}.fall.questions[3]", "Unreachable question"),
    ("unreachable by event type", _unreachable_by_event, f"{M}.fall.questions[3]", "Unreachable question"),
    ("unreachable module", _unreachable_module, f"{M}.vte", "Unreachable module"),
    ("missing answer set", _missing_answer_set, f"{M}.fall.questions[2].answer_set", "Missing definition"),
    ("choice without answers", _missing_answers, f"{M}.anesthesia.questions[4].answers", "Missing definition"),
    (
        "harm level without definition",
        _missing_harm_definition,
        "$.harm_scale.levels[2].definition",
        "Missing definition",
    ),
    ("undefined source", _missing_source, f"{M}.device.questions[0].source[0]", "source"),
    ("category opens an undefined module", _missing_module, "$.categories[5].module", "Missing definition"),
    ("no verified flag", _missing_verified, f"{M}.perinatal.questions[5].verified", "Missing provenance"),
    (
        "undefined code system",
        _unknown_system,
        f"{M}.medication.questions[17].answers[0].codings[0].system",
        "code system",
    ),
    ("Unknown outside NullFlavor", _unk_not_nullflavor, f"{M}.vte.questions[1].answers[2].system", "NullFlavor"),
    ("min above max", _min_above_max, f"{M}.perinatal.questions[7].min", "larger than 'max'"),
    ("schema: unknown question type", _bad_type, f"{M}.surgery.questions[4].type", "Must be one of"),
    ("schema: unknown key", _extra_key, f"{M}.blood.questions[0].answerz", "not part of the catalogue format"),
    ("schema: missing question text", _missing_text, f"{M}.pressure_injury.questions[0].text", "required"),
    ("schema: code with a space", _bad_code, f"{M}.fall.questions[1].answers[0].code", "pattern"),
    ("answers on a date-time question", _answers_on_text, f"{M}.surgery.questions[4]", "no answer list"),
    (
        "condition code not an answer",
        _condition_code_not_an_answer,
        f"{M}.anesthesia.questions[3].enable_when[0].in[3]",
        "not an answer",
    ),
    (
        "specify inside a group",
        _specify_in_group,
        f"{M}.device.questions[3].questions[4].answers[0].specify",
        "repeating group",
    ),
    ("both in and not_in", _not_in_and_in, f"{M}.blood.questions[1].enable_when[0]", "either 'in' or 'not_in'"),
    ("fhir event on a number", _fhir_event_on_a_number, f"{M}.perinatal.questions[7].fhir", "'event' fits"),
    ("fhir date on a choice", _fhir_date_on_a_choice, f"{M}.vte.questions[0].fhir", "'date' a date"),
]


def test_the_paths_in_the_table_point_where_the_mutations_act() -> None:
    data = shipped()
    assert _index(data, "fall", "DE213") == 3 and _index(data, "surgery", "count_correct") == 3
    assert _index(data, "medication", "stage") == 17 and _index(data, "vte", "onset") == 4
    assert _index(data, "perinatal", "birthweight") == 7 and _index(data, "anesthesia", "DE474") == 3
    assert data["categories"][5]["code"] == "A57"


@pytest.mark.parametrize(("name", "mutate", "path", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_catalogue_is_refused_at_its_path(name: str, mutate: Mutation, path: str, words: str) -> None:
    data = shipped()
    mutate(data)
    problems = check_catalogue(data)
    assert problems, name
    assert any(p.path == path and words in p.message for p in problems), [str(p) for p in problems]


def test_duplicate_keys_and_bad_json_are_problems_too(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace('"fall": {', '"vte": {"title": "x"}, "fall": {', 1)
    doubled = tmp_path / "doubled.json"
    doubled.write_text(text, encoding="utf-8")
    problems, _ = check_file(doubled)
    assert any(p.path == "$.modules.vte" and "more than once" in p.message for p in problems)
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": ', encoding="utf-8")
    problems, data = check_file(broken)
    assert data is None and [p.path for p in problems] == ["$"] and "line 1" in problems[0].message


def test_server_command_lists_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server_main(["catalogue", "check", str(SHIPPED)]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "no problems" in out and "9 modules" in out and err == ""

    data = shipped()
    _unknown_target(data)
    _duplicate_category(data)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data), encoding="utf-8")
    assert server_main(["catalogue", "check", str(broken)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert "$.categories[1].code: Duplicate category code; each code may appear once." in lines
    assert any(line.startswith("$.modules.fall.questions[3].enable_when[0].question: Unknown") for line in lines)
    assert err.strip() == f"pso-server: broken.json: {len(lines)} problems; the catalogue is not valid."

    assert server_main(["catalogue", "check", str(tmp_path / "missing.json")]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("$: The catalogue file cannot be checked") and "1 problem;" in err


def test_a_question_that_depends_on_an_unreachable_one_is_unreachable_too() -> None:
    data = shipped()
    perinatal = data["modules"]["perinatal"]["questions"]
    gate = _index(data, "perinatal", "mode_of_birth")
    perinatal[gate]["enable_when"] = [{"event_type": ["unsafe_condition"]}]  # Perinatal takes incidents only
    paths = [p.path for p in check_catalogue(data) if p.message.startswith("Unreachable question")]
    assert paths == [f"$.modules.perinatal.questions[{gate}]", f"$.modules.perinatal.questions[{gate + 1}]"]


def test_the_real_command_exits_with_its_codes_and_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pso_server", *args], capture_output=True, text=True, timeout=60, check=False
        )

    clean = run("catalogue", "check", str(SHIPPED))
    assert (clean.returncode, clean.stderr) == (0, "") and "no problems" in clean.stdout
    data = shipped()
    _missing_answer_set(data)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data), encoding="utf-8")
    refused = run("catalogue", "check", str(broken))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stdout.startswith("$.modules.fall.questions[2].answer_set: Missing definition")
    folder = run("catalogue", "check", str(tmp_path))
    assert folder.returncode == 1 and "Traceback" not in folder.stderr and "cannot be read" in folder.stdout
    assert run("catalogue").returncode == 2
