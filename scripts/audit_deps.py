"""Dependency audit of the lock files (make audit, run by .ci/run): pip-audit checks every pin of
requirements/app.lock and requirements/dev.lock against PyPI's advisory data, and this fails when an advisory
has a fixed version, unless requirements/audit-exceptions.txt lists it with a reason (a reviewed exception).
Advisories without any fixed version are printed but do not fail: there is nothing to bump to.

A pin pip-audit could not look up (PyPI's per-version JSON unreachable, as behind some mirrors) is looked up in
PyPI's project JSON instead when it is the project's latest release (that page lists the latest release's
advisories). Pins still not audited are listed as a warning; PSO_AUDIT_STRICT=1 makes them fail too (for a CI
whose network reaches the advisory service for every pin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("requirements/app.lock", "requirements/dev.lock")
EXCEPTIONS = ROOT / "requirements" / "audit-exceptions.txt"


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]


def read_exceptions(text: str) -> dict[str, str]:
    """advisory id -> reason. One exception per line: `ID package reason...`; `#` starts a comment."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise ValueError(f"audit-exceptions.txt line {number}: needs an advisory id, a package and a reason")
        out[parts[0]] = parts[2]
    return out


def findings(report: dict[str, object]) -> tuple[list[Finding], list[str]]:
    """The advisories and the pins that could not be audited, from pip-audit's JSON output."""
    found: list[Finding] = []
    skipped: list[str] = []
    deps = report.get("dependencies", [])
    assert isinstance(deps, list)
    for dep in deps:
        if dep.get("skip_reason"):
            skipped.append(str(dep["name"]))
            continue
        for vuln in dep.get("vulns", []):
            found.append(
                Finding(
                    dep["name"],
                    dep["version"],
                    vuln["id"],
                    tuple(vuln.get("aliases", [])),
                    tuple(vuln.get("fix_versions", [])),
                )
            )
    return found, skipped


def latest_release_advisories(name: str, pinned: str) -> list[Finding] | None:
    """The advisories of `name==pinned` from PyPI's project JSON, or None when the pin is not its latest release."""
    url = f"https://pypi.org/pypi/{name}/json"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = json.load(response)
    except (OSError, ValueError):
        return None
    if data.get("info", {}).get("version") != pinned:
        return None
    return [
        Finding(name, pinned, v["id"], tuple(v.get("aliases") or ()), tuple(v.get("fixed_in") or ()))
        for v in data.get("vulnerabilities") or []
    ]


def pinned_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for lock in LOCKS:
        for line in (ROOT / lock).read_text(encoding="utf-8").splitlines():
            if "==" in line and not line.startswith((" ", "#")):
                name, version = line.split("==", 1)
                out[name.strip().lower()] = version.split()[0]
    return out


def failures(found: list[Finding], accepted: dict[str, str]) -> list[Finding]:
    """Advisories with a fixed version that no reviewed exception accepts (by its id or one of its aliases)."""
    return [f for f in found if f.fixed_in and not ({f.advisory, *f.aliases} & accepted.keys())]


def main() -> int:
    accepted = read_exceptions(EXCEPTIONS.read_text(encoding="utf-8"))
    cmd = [sys.executable, "-m", "pip_audit", "--disable-pip", "--require-hashes", "--progress-spinner", "off"]
    cmd += ["--format", "json"]
    for lock in LOCKS:
        cmd += ["-r", str(ROOT / lock)]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(run.stderr)
        print("audit: pip-audit gave no report (see above)", file=sys.stderr)
        return 1
    found, skipped = findings(report)
    if skipped:
        pins = pinned_versions()
        with ThreadPoolExecutor(8) as pool:
            looked = list(pool.map(lambda n: latest_release_advisories(n, pins.get(n.lower(), "")), skipped))
        for more in looked:
            found += more or []
        skipped = [name for name, more in zip(skipped, looked, strict=True) if more is None]
    total = len(report.get("dependencies", []))
    bad = failures(found, accepted)
    for f in found:
        if f in bad:
            state = "FIXED IN " + ", ".join(f.fixed_in)
        elif f.fixed_in:
            state = "accepted (requirements/audit-exceptions.txt)"
        else:
            state = "no fixed version yet"
        print(f"audit: {f.package}=={f.version} {f.advisory}: {state}")
    if skipped:
        print(f"audit: warning: {len(skipped)} pins could not be looked up: {' '.join(skipped)}", file=sys.stderr)
    print(
        f"audit: {total - len(skipped)} of {total} pins audited, {len(found)} advisories, {len(bad)} with a fix and no exception"
    )
    if bad:
        print("audit: FAILED: bump these pins (README: Pinned dependencies) or add a reviewed exception")
        return 1
    if skipped and os.environ.get("PSO_AUDIT_STRICT") == "1":
        print("audit: FAILED: PSO_AUDIT_STRICT=1 and some pins could not be audited")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
