"""Where PSO Desktop keeps its files.

Everything local lives under one root: ``PSO_DESKTOP_HOME`` when set (tests, IT scripts), otherwise the
platform's per-user data folder. Each clinician's profile has its own folder below ``profiles/``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import platformdirs

APP_NAME = "PSO Desktop"
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def home() -> Path:
    """The root folder for all local data; created on first use with owner-only permissions."""
    configured = os.environ.get("PSO_DESKTOP_HOME")
    root = Path(configured) if configured else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def valid_profile_name(name: str) -> bool:
    """Profile names become folder names: letters, digits, dot, dash and underscore only."""
    return bool(_PROFILE_NAME.match(name)) and name not in {".", ".."}


def profiles_dir(root: Path | None = None) -> Path:
    return (root or home()) / "profiles"


def profile_dir(name: str, root: Path | None = None) -> Path:
    if not valid_profile_name(name):
        raise ValueError(
            f"{name!r} is not a usable profile name: use 1-64 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    return profiles_dir(root) / name


def resources_dir() -> Path:
    """The read-only ``resources/`` folder: beside the package in a checkout, inside the bundle when frozen."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
