"""Where PSO Desktop keeps its files.

Everything local lives under one root: ``PSO_DESKTOP_HOME`` when set (tests, IT scripts), otherwise the
platform's per-user data folder. Each clinician's profile has its own folder below ``profiles/``.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from pathlib import Path

import platformdirs

from pso_desktop.errors import ExpectedError

APP_NAME = "PSO Desktop"
PROFILE_FILE = "profile.json"  # a profile folder holding this file is a profile


class DataFolderError(ExpectedError):
    """The data folder (``PSO_DESKTOP_HOME`` or the platform default) cannot be created or used."""


_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def home() -> Path:
    """The root folder for all local data; created on first use with owner-only permissions."""
    configured = os.environ.get("PSO_DESKTOP_HOME")
    root = Path(configured) if configured else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        setting = "the PSO_DESKTOP_HOME setting" if configured else "the user's data folder"
        raise DataFolderError(
            f"The data folder {root} cannot be created ({exc.strerror or type(exc).__name__}); "
            f"check {setting} or ask IT for a folder you may write to."
        ) from None
    if not root.is_dir():
        raise DataFolderError(f"The data folder {root} is a file, not a folder; ask IT to fix PSO_DESKTOP_HOME.")
    return root


def valid_profile_name(name: str) -> bool:
    """Profile names become folder names: letters, digits, dot, dash and underscore only."""
    return bool(_PROFILE_NAME.match(name)) and name not in {".", ".."}


def profile_folder_name(name: str) -> str:
    """The folder name of a profile called ``name``: the name itself when it already is one (letters, digits,
    dot, dash and underscore), otherwise derived from it ("Jordan Example" -> "jordan-example"): accents
    dropped, lower case, every run of other characters one dash. Empty when nothing usable is left."""
    name = name.strip()
    if valid_profile_name(name):
        return name
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    folder = re.sub(r"[^a-z0-9._]+", "-", plain).strip("-._")[:64].rstrip("-._")
    return folder if valid_profile_name(folder) else ""


def profiles_dir(root: Path | None = None) -> Path:
    return (root or home()) / "profiles"


def profile_names(root: Path | None = None) -> list[str]:
    """The names of all profiles under ``root``, sorted: a folder listing, nothing else loaded or opened."""
    folder = profiles_dir(root)
    if not folder.is_dir():
        return []
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if valid_profile_name(entry.name) and (entry / PROFILE_FILE).is_file()
    )


def profile_dir(name: str, root: Path | None = None) -> Path:
    if not valid_profile_name(name):
        raise ValueError(
            f"{name!r} is not a usable profile name: use 1-64 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    return profiles_dir(root) / name


def resources_dir() -> Path:
    """The read-only ``resources/`` folder: beside the package in a checkout, inside the bundle when frozen, and
    ``pso_desktop/_resources`` in an installed wheel (setup.py copies it there)."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    here = Path(__file__).resolve().parent
    installed = here / "_resources"
    return installed if installed.is_dir() else here.parent / "resources"
