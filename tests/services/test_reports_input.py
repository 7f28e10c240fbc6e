"""Reading report files: each way of getting the format wrong gets a message that says how to fix it."""

from __future__ import annotations

import json

import pytest

from pso_desktop.services.reports_input import InputRejected, parse_reports

REPORT = {"narrative": "x", "event_type": "incident"}


def test_json_lines_with_one_bad_line_names_that_line():
    text = json.dumps(REPORT) + "\n{broken\n" + json.dumps(REPORT) + "\n"
    with pytest.raises(InputRejected) as info:
        parse_reports(text)
    assert [(p.report_number, p.line) for p in info.value.problems] == [(2, 2)]


def test_pretty_printed_reports_one_after_another_get_one_clear_problem():
    text = json.dumps(REPORT, indent=2) + "\n" + json.dumps(REPORT, indent=2) + "\n"
    with pytest.raises(InputRejected) as info:
        parse_reports(text)
    problems = info.value.problems
    assert len(problems) == 1
    assert "JSON array" in problems[0].message and "line of its own" in problems[0].message


def test_a_broken_first_line_of_json_lines_is_still_located():
    text = json.dumps(REPORT) + "}\n" + json.dumps(REPORT) + "\n" + json.dumps(REPORT) + "\n"
    with pytest.raises(InputRejected) as info:
        parse_reports(text)
    assert [(p.report_number, p.line) for p in info.value.problems] == [(1, 1)]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"revision": ' + "9" * 5000 + "}",
        json.dumps(REPORT) + "\n" + "[" * 100_000 + "]" * 100_000,
        json.dumps(REPORT) + '\n{"revision": ' + "9" * 5000 + "}",
    ],
    ids=["deep", "long-number", "deep-line", "long-number-line"],
)
def test_json_no_report_can_be_is_refused_not_crashed_on(text: str):
    with pytest.raises(InputRejected) as info:
        parse_reports(text)
    assert "check that this is a report file" in str(info.value.problems[0])
