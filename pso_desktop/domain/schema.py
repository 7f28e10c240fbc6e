"""JSON Schema of a wire-form report, with the catalogue's codes filled in as enums where they are fixed."""

from __future__ import annotations

from typing import Any

from pso_desktop.domain.catalogue import load_catalogue
from pso_desktop.domain.models import Report


def report_json_schema(version: str | None = None) -> dict[str, Any]:
    """The structural schema of a report plus the catalogue's code lists; catalogue rules are described, not encoded."""
    catalogue = load_catalogue(version) if version else load_catalogue()
    schema = Report.model_json_schema()
    schema["$id"] = f"urn:pso-desktop:report:{catalogue.version}"
    schema["description"] = (
        f"A patient safety event report ({catalogue.title}). Beyond this structure, the form catalogue's rules "
        "apply: category/event-type combinations, required answers and module branching. Run "
        "'pso-desktop report add --dry-run FILE' to check a file against all of them."
    )
    props = schema["properties"]
    props["categories"]["items"] = {"enum": [c.code for c in catalogue.categories]}
    props["form_version"] = {"const": catalogue.version, "default": catalogue.version, "type": "string"}
    harm = schema["$defs"]["Harm"]["properties"]
    harm["level"] = {"anyOf": [{"enum": [h.code for h in catalogue.harm_levels]}, {"type": "null"}]}
    return schema
