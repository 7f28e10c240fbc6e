"""Property tests: any text either round-trips exactly through validation and export, or is refused plainly."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pso_desktop.domain import ReportInvalid, validate_report
from pso_desktop.paths import resources_dir

BASE = json.loads((resources_dir() / "examples" / "fall-incident.json").read_text(encoding="utf-8"))

nasty = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None), max_size=50),
    st.sampled_from(
        [
            "\u202eevil RTL override",
            '=HYPERLINK("http://x")',
            "+1+1",
            "-2",
            "@SUM(A1)",
            "'; DROP TABLE reports;--",
            "\x00",
            "a\ud800b",
            "\r\n\t",
            "x" * 1_000_000,
            "\ufeffBOM",
            "🩺" * 5000,
        ]
    ),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    text=nasty,
    field=st.sampled_from(["narrative", "location.description", "patient.name", "rescue.interventions"]),
)
def test_text_round_trips_or_is_refused_plainly(text, field):
    data = json.loads(json.dumps(BASE))
    head, _, tail = field.rpartition(".")
    (data[head] if head else data)[tail] = text
    try:
        report = validate_report(data)
    except ReportInvalid as exc:
        assert exc.errors, "a refusal names at least one field"
        assert all(e.message.endswith(".") for e in exc.errors)
        assert text[:20] not in str(exc) or len(text) < 3 or text.isspace() or text in str(BASE)
        return
    exported = report.export()
    value = exported[head][tail] if head else exported[tail]
    assert value == text
    wire = json.loads(json.dumps(exported, ensure_ascii=False))
    assert validate_report(wire).export() == exported


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
MEDICATION = json.loads((resources_dir() / "examples" / "medication-near-miss.json").read_text(encoding="utf-8"))
MODULE_KEYS = sorted(
    {"substance_type", "medication_type", "characterisation", "incorrect_actions", "dose_error", "stage"}
    | {"products", "intended_route", "incorrect_actions_specify", "vaccine_lot", "expiration_date"}
)


@settings(max_examples=300)
@given(answers=st.dictionaries(st.sampled_from(MODULE_KEYS), json_values, max_size=4))
def test_any_json_in_module_answers_is_validated_or_refused_never_crashes(answers):
    data = json.loads(json.dumps(MEDICATION))
    data["modules"]["medication"] |= answers
    try:
        validate_report(data)
    except ReportInvalid as exc:
        assert exc.errors
