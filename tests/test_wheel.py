"""What a plain ``pip install .`` of the client gets: the wheel's metadata asks for no web framework outside the
``training`` and ``server`` extras, and the wheel carries the form catalogue the client needs to run at all.
Built from a copy of the sources, without build isolation (no index needed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
WEB_STACK = {"fastapi", "starlette", "uvicorn", "trustme"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("pso_desktop", "pso_server", "resources"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("pso_desktop-*.whl")
    return built


def test_the_client_alone_requires_no_web_framework(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    requires = [Requirement(line.partition(":")[2].strip()) for line in lines if line.startswith("Requires-Dist:")]
    core = {canonicalize_name(r.name) for r in requires if r.marker is None}
    training = {
        canonicalize_name(r.name) for r in requires if r.marker and r.marker.evaluate({"extra": "training"})
    }
    assert core and not core & WEB_STACK
    assert {"fastapi", "uvicorn", "trustme"} <= training


def test_the_wheel_carries_the_form_catalogue(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    forms = sorted(
        p.relative_to(ROOT / "resources").as_posix() for p in (ROOT / "resources" / "forms").glob("*.json")
    )
    assert forms
    assert {f"pso_desktop/_resources/{f}" for f in forms} <= names
