"""Pydantic models of a Common Formats Hospital report in its wire form (what the client stores and sends).

The models check structure and free-text safety; the catalogue rules (codes, event-type rules, module
branching) run in :mod:`pso_desktop.domain.validation`, which is the only public way to build a ``Report``
from untrusted input.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from pso_desktop.domain.catalogue import CURRENT_FORM_VERSION

# C0 controls other than tab, newline and carriage return, DEL, and lone surrogates cannot be stored, sent
# and exported faithfully everywhere (CSV, FHIR, XML viewers), so they are refused rather than altered.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _clean_text(value: str) -> str:
    found = _FORBIDDEN.search(value)
    if found:
        char = found.group()
        kind = "a lone surrogate (broken character)" if "\ud800" <= char <= "\udfff" else "an invisible control"
        raise ValueError(
            f"contains {kind} character (U+{ord(char):04X}) at position {found.start() + 1}; "
            "delete it or retype the text"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; write at least a few words")
    return value


Text = Annotated[str, AfterValidator(_clean_text)]
ShortText = Annotated[Text, StringConstraints(max_length=200)]
SpecifyText = Annotated[Text, StringConstraints(max_length=2000)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
EventType = Literal["incident", "near_miss", "unsafe_condition"]

NARRATIVE_MAX = 20_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Discovery(_Model):
    date: dt.date | None = None
    date_unknown: bool = False
    time: dt.time | None = None
    time_unknown: bool = False


class Location(_Model):
    unit: Annotated[Text, StringConstraints(min_length=1, max_length=64), AfterValidator(_not_blank)]
    description: Annotated[Text, StringConstraints(max_length=500)] = ""


class Patient(_Model):
    name: ShortText | None = None
    date_of_birth: dt.date | None = None
    mrn: Annotated[Text, StringConstraints(max_length=32)] | None = None
    gender: Code | None = None
    age_years: Annotated[int, Field(ge=0, le=130)] | None = None
    ethnicity: Code | None = None
    race: Annotated[list[Code], Field(max_length=6)] = []
    diagnosis_icd10: (
        Annotated[str, StringConstraints(pattern=r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")] | None
    ) = None


class Harm(_Model):
    evidence_of_harm: Code | None = None
    level: Code | None = None
    duration: Code | None = None
    assessed_at: dt.datetime | None = None
    increased_length_of_stay: Code | None = None
    patients_reached: Annotated[int, Field(ge=1, le=10_000)] | None = None


class Rescue(_Model):
    attempted: Code
    interventions: SpecifyText = ""  # described in words
    # Coded (PIF 74561-2), beside the words; None rather than [] so reports without it keep their wire form.
    intervention_types: Annotated[list[Code], Field(max_length=12)] | None = None


class Reporter(_Model):
    anonymous: bool = False
    name: ShortText | None = None
    telephone: Annotated[Text, StringConstraints(max_length=40)] | None = None
    email: Annotated[Text, StringConstraints(max_length=254)] | None = None
    job: ShortText | None = None
    first_reported_by: Code | None = None
    professional_type: Code | None = None


ModuleAnswers = dict[str, Any]


MAX_REVISION = 2_147_483_647


class Report(_Model):
    """One patient safety event report, as the client stores, exports and sends it."""

    id: uuid.UUID
    # At most a PostgreSQL INTEGER (the server's column); a larger one in a file crashed the store.
    revision: Annotated[int, Field(ge=1, le=MAX_REVISION)] = 1
    form_version: str = CURRENT_FORM_VERSION
    event_type: EventType
    report_date: dt.date
    initial_report_date: dt.date | None = None
    categories: Annotated[list[Code], Field(min_length=1, max_length=10)]
    categories_other: SpecifyText | None = None
    discovery: Discovery
    location: Location
    narrative: Annotated[
        Text, StringConstraints(min_length=1, max_length=NARRATIVE_MAX), AfterValidator(_not_blank)
    ]
    patient: Patient | None = None
    harm: Harm | None = None
    rescue: Rescue | None = None
    contributing_factors: Annotated[list[Code], Field(max_length=20)] = []
    contributing_factors_other: SpecifyText | None = None
    handover_involved: Code | None = None
    preventability: Code | None = None
    near_miss_reason: Code | None = None
    near_miss_reason_other: SpecifyText | None = None
    serious_reportable_event: Code | None = None
    family_notified: Code | None = None
    reporter: Reporter
    modules: dict[Code, ModuleAnswers] = {}

    @property
    def is_anonymous(self) -> bool:
        return self.reporter.anonymous

    def export(self) -> dict[str, Any]:
        """The canonical JSON-able wire form: what is stored, exported and sent; None values left out."""
        return self.model_dump(mode="json", exclude_none=True)
