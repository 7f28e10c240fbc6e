"""Golden test: validate_report gives exactly the outcomes recorded in tests/domain/data/validation_golden.json.

The fixture (made by make_validation_golden.py before validation was optimised) holds a few hundred varied
reports, valid and broken, with the exported report or every (field, message) error in order. Any change in
which errors appear, their words, their field paths or their order fails here.
"""

from __future__ import annotations

import json

import pytest

from tests.domain.make_validation_golden import GOLDEN, outcome

CASES = json.loads(GOLDEN.read_text(encoding="ascii"))


def test_golden_file_covers_valid_and_invalid_reports():
    invalid = [case for case in CASES if "errors" in case["outcome"]]
    assert len(CASES) >= 300
    assert 100 <= len(invalid) < len(CASES)
    assert len({field for case in invalid for field, _ in case["outcome"]["errors"]}) >= 50


@pytest.mark.parametrize("index", range(len(CASES)))
def test_validation_outcome_is_unchanged(index: int):
    case = CASES[index]
    assert outcome(case["input"]) == case["outcome"]
