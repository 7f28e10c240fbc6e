"""The hashed lock files (requirements/*.lock) that `make run`, `make test` and the packaged build install from
still cover pyproject.toml: every dependency it names (extras included) is pinned, with hashes, to a version it
allows, for the locks' target (CPython 3.11 on Linux x86_64). A dependency added to pyproject.toml without
regenerating the locks (README: "Pinned dependencies") fails here, not on a hospital's install."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "pso-desktop"
# The environment the locks are compiled for (uv pip compile --python-version 3.11 --python-platform ...).
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "extra": "",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s*\\)?$")


def pins(lock: str) -> dict[str, Version]:
    """Name -> pinned version; every pin must be followed by at least one sha256 hash."""
    found: dict[str, Version] = {}
    name: str | None = None
    for line in (ROOT / "requirements" / lock).read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            assert name is None, f"{lock}: {name} has no --hash"
            name = canonicalize_name(match[1])
            found[name] = Version(match[2])
        elif name is not None and line.strip().startswith("--hash=sha256:"):
            name = None
    assert name is None, f"{lock}: {name} has no --hash"
    return found


def wanted(extras: tuple[str, ...]) -> list[Requirement]:
    """What pyproject.toml asks for with these extras, following its own extras (dev -> test -> server, training)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out: list[Requirement] = []
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    for extra in extras:
        todo += [Requirement(r) for r in project["optional-dependencies"][extra]]
    while todo:
        req = todo.pop()
        if canonicalize_name(req.name) == PROJECT:
            for extra in req.extras - seen:
                seen.add(extra)
                todo += [Requirement(r) for r in project["optional-dependencies"][extra]]
        elif req.marker is None or req.marker.evaluate(TARGET):
            out.append(req)
    return out


# The app lock is what `make run` and the packaged build install: the client with its training mode.
@pytest.mark.parametrize(("lock", "extras"), [("app.lock", ("training",)), ("dev.lock", ("dev",))])
def test_each_dependency_of_pyproject_is_pinned_with_hashes_to_an_allowed_version(
    lock: str, extras: tuple[str, ...]
) -> None:
    pinned = pins(lock)
    for req in wanted(extras):
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req} is not in requirements/{lock}: regenerate the locks (README)"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}: not {req}"
        )


def test_the_tests_run_on_exactly_what_ships() -> None:
    app, dev = pins("app.lock"), pins("dev.lock")
    assert {name: dev.get(name) for name in app} == app


def test_the_qt_binding_and_its_runtime_are_one_release() -> None:
    for lock in ("app.lock", "dev.lock"):
        pinned = pins(lock)
        assert pinned["pyside6-essentials"] == pinned["shiboken6"]


def test_each_lock_records_the_command_that_made_it() -> None:
    for lock in ("app.lock", "dev.lock"):
        head = (ROOT / "requirements" / lock).read_text(encoding="utf-8").splitlines()[:3]
        assert any("uv pip compile pyproject.toml" in line and "--generate-hashes" in line for line in head)
