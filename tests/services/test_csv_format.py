"""The CSV column mapping, both ways: exports import back unchanged, and bad files are refused row by row."""

from __future__ import annotations

import copy
import csv
import io
import json
import random
import typing
import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from pso_desktop.domain import ReportInvalid, load_catalogue, validate_report
from pso_desktop.domain.models import Report
from pso_desktop.domain.samples import sample_report
from pso_desktop.paths import resources_dir
from pso_desktop.services import csv_format, importing
from pso_desktop.services.reports_input import InputRejected, validate_all
from pso_desktop.services.workstation import PSWP_LABEL

EXAMPLES = [
    json.loads(p.read_text(encoding="utf-8")) for p in sorted((resources_dir() / "examples").glob("*.json"))
]


def samples(count: int, seed: int = 3) -> list[dict[str, typing.Any]]:
    rng = random.Random(seed)
    return validate_all([(0, sample_report(rng, i)) for i in range(count)] + [(0, e) for e in EXAMPLES])


def round_trip(reports: list[dict[str, typing.Any]]) -> list[dict[str, typing.Any]]:
    data, count = csv_format.write_csv(reports, PSWP_LABEL)
    assert count == len(reports)
    return importing.read_reports(data, "csv")


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def problems_of(text: str) -> list[str]:
    with pytest.raises(InputRejected) as info:
        importing.read_reports(text.encode("utf-8"), "csv")
    return [str(p) for p in info.value.problems]


def _model_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, info in model.model_fields.items():
        nested = [a for a in typing.get_args(info.annotation) or (info.annotation,) if isinstance(a, type)]
        sub = next((a for a in nested if issubclass(a, BaseModel)), None)
        if sub is not None:
            paths |= _model_paths(sub, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


def test_every_report_field_has_a_column():
    generic = {path for _, path, _ in csv_format.GENERIC_COLUMNS}
    assert _model_paths(Report) - {"modules"} == generic


def test_module_columns_come_from_the_catalogue():
    names = set(csv_format.header())
    for key, module in load_catalogue().modules.items():
        for q in module.questions:
            if q.type == "group":
                for n in range(1, q.max_items + 1):
                    assert {f"module.{key}.{q.id}.{n}.{child.id}" for child in q.questions} <= names
            elif q.type == "text_list":
                assert f"module.{key}.{q.id}.{q.max_items}" in names
            else:
                assert f"module.{key}.{q.id}" in names
            assert (f"module.{key}.{q.id}_specify" in names) == bool(q.specify_codes)
    assert csv_format.header()[0] == "confidentiality"
    assert len(names) == len(csv_format.header())


def test_samples_and_examples_round_trip_exactly():
    reports = samples(300)
    assert round_trip(reports) == reports


def test_label_is_the_first_column_of_every_row_and_the_file_has_a_bom():
    data, _ = csv_format.write_csv(samples(5), PSWP_LABEL)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = rows_of(data)
    assert rows[0][0] == "confidentiality"
    assert all(row[0] == PSWP_LABEL for row in rows[1:])
    assert len(rows) == 1 + len(samples(5))


free_text = st.text(
    alphabet=st.one_of(st.sampled_from("=+-@'\t\r\n\",; é中"), st.characters(codec="utf-8")),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    narrative=free_text,
    description=free_text,
    name=free_text,
    product=free_text,
)
def test_any_valid_text_round_trips_exactly(seed, narrative, description, name, product):
    report = sample_report(random.Random(seed))
    report["narrative"] = narrative
    report["location"]["description"] = description
    report["reporter"] = {"name": name, "first_reported_by": "A288", "professional_type": "A306"}
    medication = report.get("modules", {}).get("medication")
    if medication:
        medication["products"][0]["generic_name"] = product
    try:
        wire = validate_report(report).export()
    except ReportInvalid:
        assume(False)
        raise
    assert round_trip([wire]) == [wire]


@given(st.text())
def test_restore_undoes_neutralise(text):
    assert csv_format.restore(csv_format.neutralise(text)) == text
    assert not csv_format.neutralise(text).startswith(("=", "+", "-", "@", "\t", "\r"))


def test_formula_cells_are_neutralised_in_the_file_and_restored_on_import():
    reports = samples(1)
    risky = ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "'quoted", "'=already quoted"]
    tried = []
    for text in risky:
        wire = dict(reports[0], id=str(uuid.uuid4()), narrative=text)
        data, _ = csv_format.write_csv([wire], PSWP_LABEL)
        row = dict(zip(*rows_of(data), strict=True))
        assert row["narrative"] == "'" + text
        tried.append(wire)
    plain = dict(reports[0], narrative="Patient said 'no'")
    tried.append(plain)
    assert round_trip(tried) == tried


def test_a_hand_made_sheet_with_some_columns_imports_and_gets_ids():
    text = (
        "event_type,report_date,categories,discovery_date,discovery_time_unknown,location_unit,narrative,"
        "reporter_anonymous,contributing_factors\n"
        "unsafe_condition,2026-11-20,A45,2026-11-20,TRUE,ICU-2,Broken bed alarm,yes,equipment ; staffing\n"
        "unsafe_condition,2026-11-21,A45,2026-11-21,true,ED,Spill near the door,true,\n"
    )
    reports = importing.read_reports(text.encode(), "csv")
    assert len({r["id"] for r in reports}) == 2
    assert reports[0]["contributing_factors"] == ["equipment", "staffing"]
    assert reports[0]["discovery"]["time_unknown"] is True
    assert reports[1]["contributing_factors"] == []


def test_multi_line_cells_keep_their_text_and_later_rows_their_file_lines():
    good = samples(1)[0]
    data, _ = csv_format.write_csv([dict(good, narrative="line one\nline two\r\nline three")], PSWP_LABEL)
    header, row = data.decode("utf-8-sig").split("\r\n", 1)
    bad = row.replace(good["id"], "")  # a second report without id...
    bad = bad.replace(good["location"]["unit"], "", 1)  # ...and without its unit
    text = header + "\r\n" + row + bad
    with pytest.raises(InputRejected) as info:
        importing.read_reports(text.encode(), "csv")
    assert [str(p) for p in info.value.problems] == [
        "row 3 (line 5): location_unit: 'Unit where the event occurred' is required; fill it in."
    ]
    assert importing.read_reports((header + "\r\n" + row).encode(), "csv")[0]["narrative"] == (
        "line one\nline two\r\nline three"
    )


def test_every_row_problem_is_listed_by_row_line_and_column_without_cell_contents():
    text = (
        "event_type,report_date,categories,discovery_date,location_unit,narrative,patient_mrn,patient_age_years,"
        "module.fall.DE192,module.medication.products.2.given,Secret Column,discovery_time_unknown,"
        "reporter_anonymous\n"
        "incident,2026-11-20,A48,2026-11-20,4W,SECRET-NARRATIVE,SECRET-MRN,SECRET-AGE,SECRET-CODE,,x,true,true\n"
        "near_miss,not a date,A54,2026-11-20,,x,,,,SECRET-GIVEN,,true,true\n"
        "unsafe_condition,2026-11-20,A45,2026-11-20,ED,fine,,,,,,true,true\n"
        "incident,2026-11-20,A48,2026-11-20,4W,fine,,,SECRET-CODE,,,true,true\n"
    )
    problems = problems_of(text)
    assert problems[0].startswith("line 1: column 11: is not a column")  # by position: never repeated
    assert sum("is not a column" in p for p in problems) == 1  # reported once, not per row
    assert any(p.startswith("row 2 (line 2): patient_age_years:") for p in problems)
    assert any(p.startswith("row 3 (line 3): report_date:") for p in problems)
    assert any(p.startswith("row 3 (line 3): location_unit:") for p in problems)
    assert not any(p.startswith("row 4") for p in problems)
    assert any(p.startswith("row 5 (line 5): module.fall.DE192:") for p in problems)
    assert not any("SECRET" in p.upper() for p in problems), problems


def test_broken_files_are_refused_with_a_reason():
    assert problems_of("") == ["file: the file is empty; give a header row and one row per report"]
    assert problems_of("id,narrative\n") == ["file: the file has a header row but no reports"]
    assert "separated by ';'" in problems_of("id;narrative\n1;x\n")[0]
    assert problems_of('id,narrative\n,"never closed\n')[0].startswith("row 2 (line 2): a quoted cell")
    assert problems_of("narrative\nx,y\n")[0].startswith("row 2 (line 2): has 2 cells but the header has 1")
    assert "appears twice" in problems_of("narrative,narrative\nx,y\n")[0]


def test_encodings_and_size():
    report = samples(1)[0]
    data, _ = csv_format.write_csv([report], PSWP_LABEL)
    assert importing.read_reports(data, "csv") == [report]  # with the BOM
    assert importing.read_reports(data.removeprefix(b"\xef\xbb\xbf"), "csv") == [report]
    latin = "narrative\nCaf\u00e9\n".encode("cp1252")
    with pytest.raises(InputRejected) as info:
        importing.read_reports(latin, "csv")
    assert str(info.value.problems[0]) == (
        "line 2: the file is not UTF-8 text (perhaps Windows-1252 or Latin-1); save it as UTF-8 "
        "(in a spreadsheet: 'CSV UTF-8')"
    )
    with pytest.raises(InputRejected) as info:
        importing.read_reports("narrative\nx\n".encode("utf-16"), "csv")
    assert "UTF-16" in str(info.value.problems[0])
    with pytest.raises(InputRejected) as info:
        importing.read_reports(b" " * (importing.MAX_IMPORT_BYTES + 1), "csv")
    assert "larger than 100 MiB" in str(info.value.problems[0])


def test_json_lines_problems_name_the_report_and_line():
    good, other = samples(2)[:2]
    text = json.dumps(good) + "\n\n" + json.dumps(dict(other, narrative="")) + "\n"
    with pytest.raises(InputRejected) as info:
        importing.read_reports(text.encode(), "jsonl")
    assert [str(p) for p in info.value.problems] == [
        "report 2 line 3: narrative: 'Brief description of the event' is empty; fill it in."
    ]


def test_a_draft_the_columns_cannot_carry_is_refused_by_name_not_content():
    report = samples(1)[0]
    draft = dict(report, modules={"medication": {"products": [{"generic_name": "SECRET"}] * 6}})
    with pytest.raises(csv_format.CsvExportFailed) as info:
        csv_format.write_csv([draft], PSWP_LABEL)
    assert "modules.medication.products.5.generic_name" in str(info.value)
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("field", "column"),
    [
        ("patient.mrn", "patient_mrn"),
        ("categories.2", "categories"),
        ("modules.fall.DE213", "module.fall.DE213"),
        ("modules.medication.products.0.given", "module.medication.products.1.given"),
        ("modules.medication.incorrect_actions.1", "module.medication.incorrect_actions"),
        ("modules.medication.compounded_ingredients.3", "module.medication.compounded_ingredients.4"),
        ("modules.fall", "module.fall"),
        ("patient", "patient"),
    ],
)
def test_validation_fields_are_told_as_columns(field, column):
    assert csv_format.column_for(field) == column


# Text every field accepts (no control characters but tab and line breaks), so few examples are filtered out.
clean_text = st.text(
    alphabet=st.one_of(
        st.sampled_from("=+-@'\t\r\n\",; "), st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"])
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    ingredients=st.lists(clean_text, min_size=1, max_size=20),
    products=st.lists(st.tuples(clean_text, st.sampled_from(["A15", "A18", "UNK"])), min_size=1, max_size=5),
    specify=clean_text,
)
def test_numbered_columns_and_specify_texts_round_trip(ingredients, products, specify):
    report = json.loads((resources_dir() / "examples" / "medication-near-miss.json").read_text(encoding="utf-8"))
    medication = report["modules"]["medication"]
    medication["products"] = [{"generic_name": name, "prescribed": answer} for name, answer in products]
    medication["stage"] = "A66"
    medication["stage_specify"] = specify
    # A compounded preparation lists its ingredients and has no products (the SDC branching of 74080-3).
    compounded = copy.deepcopy(report)
    compounded["id"] = "0b7e4d2c-9f1a-4c3b-8e6d-5a4b3c2d1e10"
    compounded["modules"]["medication"] |= {"medication_type": "compounded", "compounded_ingredients": ingredients}
    del compounded["modules"]["medication"]["products"]
    try:
        wires = [validate_report(r).export() for r in (report, compounded)]
    except ReportInvalid:
        assume(False)
        raise
    assert round_trip(wires) == wires
    data, _ = csv_format.write_csv(wires, PSWP_LABEL)
    header, first, second = rows_of(data)
    row, other = dict(zip(header, first, strict=True)), dict(zip(header, second, strict=True))
    assert other[f"module.medication.compounded_ingredients.{len(ingredients)}"]
    assert row[f"module.medication.products.{len(products)}.prescribed"] == products[-1][1]
