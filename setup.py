"""Ships ``resources/`` (the form catalogue, examples, UI files) inside the wheel, as ``pso_desktop/_resources``.

Everything else is in pyproject.toml. A checkout (and an editable install) reads ``resources/`` beside the
packages and the PyInstaller bundle carries it itself; a wheel has neither, so ``pip install .`` without this would
install a client that cannot load its form catalogue (``pso_desktop.paths.resources_dir``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithResources(build_py):  # type: ignore[misc]  # setuptools is untyped here
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            target = Path(self.build_lib) / "pso_desktop" / "_resources"
            shutil.copytree(Path(__file__).parent / "resources", target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithResources})
