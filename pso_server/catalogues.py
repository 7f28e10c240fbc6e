"""The form catalogues a PSO publishes (``pso-server catalogue publish|withdraw``) and what the server accepts.

The bundled ``hospital-2.0`` counts as published on every server, and so does the bundled ``hospital-1.2``
(the PSOPPC still accepts Hospital V1.2): reports written on it elsewhere and imported are accepted, but no new
draft starts on it, so it is always listed as withdrawn. Other versions are published from a file,
checked first with the same checks as ``catalogue check``, and held in the database (table ``catalogues``),
so every server process over one database accepts the same versions. A version never changes once published.
The current version (what new drafts start on) is the newest one not withdrawn; a withdrawn version is still
accepted for reports written on it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from pso_desktop.domain.catalogue import (
    CURRENT_FORM_VERSION,
    Catalogue,
    catalogue_json,
    load_bundled_catalogue,
    parse_catalogue,
)
from pso_desktop.domain.catalogue_check import check_file
from pso_server import store
from pso_server.errors import ServerError
from pso_server.store import Database, Tx

BUNDLED = CURRENT_FORM_VERSION
# Bundled versions accepted for reports written on them, never offered for new drafts.
LEGACY = ("hospital-1.2",)


class CatalogueRefused(ServerError):
    """A catalogue file that cannot be published, or a version that cannot be withdrawn; the message says why."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Offer:
    """What ``GET /reference`` says about form versions."""

    current: str
    accepted: list[str]
    withdrawn: list[str]
    hashes: dict[str, str]


def offer(tx: Tx) -> Offer:
    rows = store.list_catalogues(tx)
    withdrawn = [r.version for r in rows if r.withdrawn_at is not None]
    published = [r for r in rows if r.content_hash is not None]
    live = [r.version for r in published if r.withdrawn_at is None]
    current = live[-1] if live else BUNDLED
    accepted = [*LEGACY, BUNDLED, *(r.version for r in published)]
    return Offer(current, accepted, [*LEGACY, *withdrawn], {r.version: str(r.content_hash) for r in published})


def publish(db: Database, path: Path, now: float) -> tuple[str, bool]:
    """Checks the file and makes its version current. Returns (version, newly published); raises
    CatalogueRefused with every problem for a file ``catalogue check`` refuses."""
    problems, data = check_file(path)
    if problems:
        count = len(problems)
        raise CatalogueRefused(
            f"{path.name}: {count} problem{'s' if count != 1 else ''}; nothing was published.",
            [str(p) for p in problems],
        )
    version = str(data["version"])
    if version in LEGACY:
        raise CatalogueRefused(
            f"{version} is bundled with every PSO Desktop for imported Hospital V1.2 reports and cannot be "
            "replaced; give the catalogue a new version name and publish it."
        )
    if version == BUNDLED:
        raise CatalogueRefused(
            f"{version} is the form version every PSO Desktop ships and cannot be replaced; "
            "give the catalogue a new version name (e.g. hospital-2.1) and publish it."
        )
    body = catalogue_json(data)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    with db.transaction() as tx:
        held, held_digest = store.held_hash(tx, version)
        if held and held_digest == digest:
            return version, False
        if held:
            raise CatalogueRefused(
                f"Version {version} was already published with other content, and a published version never "
                "changes (reports were written against it); give the catalogue a new version name."
            )
        store.publish_catalogue(tx, version, body, digest, now)
    return version, True


class AlreadyWithdrawn(Exception):
    """The version was withdrawn already (hospital-1.2 always is); ``current`` is where new drafts start."""

    def __init__(self, current: str) -> None:
        super().__init__(current)
        self.current = current


def withdraw(db: Database, version: str, now: float) -> str:
    """Withdraws a version: no new drafts start on it; reports written on it are still accepted. Returns the
    version new drafts start on from now on; raises AlreadyWithdrawn when there was nothing to withdraw."""
    with db.transaction() as tx:
        known = offer(tx)
        if version not in known.accepted:
            raise CatalogueRefused("That form version was never published on this server; nothing was changed.")
        if version in LEGACY or version in known.withdrawn:  # nothing to change (V1.2 is always withdrawn)
            raise AlreadyWithdrawn(known.current)
        remaining = [v for v in known.accepted if v != version and v not in known.withdrawn]
        if not remaining:
            raise CatalogueRefused(
                "That is the only form version new reports can start on; publish its successor first."
            )
        store.withdraw_catalogue(tx, version, now, bundled=version == BUNDLED)
        return offer(tx).current


class Catalogues:
    """Resolves a report's form version to the catalogue this server published (None: never published).
    Published versions never change, so each is parsed once per process."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._parsed: dict[str, Catalogue] = {}
        self._lock = threading.Lock()

    def __call__(self, version: str) -> Catalogue | None:
        if version == BUNDLED or version in LEGACY:
            return load_bundled_catalogue(version)
        with self._lock:
            found = self._parsed.get(version)
        if found is not None:
            return found
        body = self.body(version)
        if body is None:
            return None
        catalogue = parse_catalogue(json.loads(body))
        with self._lock:
            self._parsed[version] = catalogue
        return catalogue

    def body(self, version: str) -> str | None:
        """The published JSON of a version held in the database (not the bundled one)."""
        if len(version) > 40:
            return None
        with self._db.reader() as tx:
            return store.catalogue_body(tx, version)
