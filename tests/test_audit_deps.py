"""The dependency audit's rule (scripts/audit_deps.py, run by `make audit` in .ci/run): an advisory with a fixed
version fails unless requirements/audit-exceptions.txt accepts it, by id or alias, with a reason; one without a
fixed version is shown but does not fail. The exceptions file itself must parse."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
assert spec and spec.loader
audit = importlib.util.module_from_spec(spec)
sys.modules["audit_deps"] = audit  # dataclasses look their module up
spec.loader.exec_module(audit)

REPORT = {
    "dependencies": [
        {
            "name": "fixable",
            "version": "1.0",
            "vulns": [{"id": "PYSEC-1", "aliases": ["CVE-1"], "fix_versions": ["1.1"]}],
        },
        {"name": "unfixed", "version": "2.0", "vulns": [{"id": "GHSA-2", "aliases": [], "fix_versions": []}]},
        {"name": "clean", "version": "3.0", "vulns": []},
        {"name": "unknown", "skip_reason": "Dependency not found on PyPI"},
    ],
    "fixes": [],
}


def test_an_advisory_with_a_fix_fails_unless_a_reviewed_exception_names_it() -> None:
    found, skipped = audit.findings(REPORT)
    assert [f.advisory for f in found] == ["PYSEC-1", "GHSA-2"]
    assert skipped == ["unknown"]
    assert [f.advisory for f in audit.failures(found, {})] == ["PYSEC-1"]
    assert audit.failures(found, audit.read_exceptions("CVE-1 fixable needs the 1.x API; review 2027-01\n")) == []


def test_an_exception_needs_a_reason_and_the_repository_file_parses() -> None:
    with pytest.raises(ValueError, match="line 2"):
        audit.read_exceptions("# comment\nPYSEC-1 fixable\n")
    for reason in audit.read_exceptions((ROOT / "requirements" / "audit-exceptions.txt").read_text()).values():
        assert reason.strip()
