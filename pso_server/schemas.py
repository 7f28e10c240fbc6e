"""The JSON shapes of the sync protocol. These models generate the OpenAPI document, which is the contract."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["reporter", "risk_manager"]
Status = Literal["received", "under_review", "more_info_requested", "closed"]
Outcome = Literal["created", "duplicate", "updated", "stale", "conflict", "rejected"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """Every error answer: a machine-readable code and one plain sentence saying what to do."""

    error: str = Field(description="Stable code, e.g. 'payload_too_large', 'rate_limited', 'unauthorized'.")
    message: str = Field(description="One sentence for the person at the keyboard.")
    limit: int | None = Field(default=None, description="For 413: the limit that was exceeded, in the unit named.")


class LoginRequest(_In):
    username: Annotated[str, Field(min_length=1, max_length=150)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    device_name: Annotated[str, Field(max_length=200, description="Shown in the account's session list.")] = ""
    device_token: Annotated[
        str | None,
        Field(
            max_length=256,
            description="The device token this account got at its last sign-in on this device: a known device "
            "is not held back by failed sign-ins of other accounts or devices from the same address.",
        ),
    ] = None


class RefreshRequest(_In):
    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


class LogoutRequest(_In):
    refresh_token: Annotated[str | None, Field(max_length=256)] = None


class UserInfo(BaseModel):
    username: str
    role: Role
    facility: str


class SealingKeyOut(BaseModel):
    """The PSO's current public sealing key (docs/sealed-outbox.md): clients seal reports for it with HPKE."""

    key_id: str = Field(description="'sk-' and the first 16 hex digits of the SHA-256 of the raw public key.")
    suite: Literal["X25519-HKDF-SHA256-AES-256-GCM"]
    public_key: str = Field(description="Base64 of the raw 32-byte X25519 public key.")
    created_at: dt.datetime


class TokenResponse(BaseModel):
    access_token: str = Field(description="Send as 'Authorization: Bearer <token>'; valid for expires_in seconds.")
    refresh_token: str = Field(
        description="Single use: /auth/refresh returns a new one. The previous token presented again returns "
        "the same successor until that successor is first used; reuse after that ends the session."
    )
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105  (a scheme name, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserInfo
    device_token: str | None = Field(
        default=None,
        description="Sign-in only: keep it (secret, like a refresh token) and send it with the next sign-in on "
        "this device; the same one comes back while the device stays known.",
    )
    sealing_key: SealingKeyOut | None = Field(
        default=None, description="Sign-in only: the PSO's current sealing key, to pin for the sealed outbox."
    )


class DeviceCredentialRequest(_In):
    device_name: Annotated[str, Field(max_length=200, description="Shown by 'pso-server device-credentials'.")] = (
        ""
    )


class DeviceCredentialResponse(BaseModel):
    credential_id: str = Field(description="'dc-' and 16 hex digits; how IT names it to revoke it.")
    token: str = Field(
        description="Send as 'Authorization: Device <token>' to /sealed/batch only. Shown once; the server keeps "
        "only its SHA-256."
    )
    account: str = Field(description="The account it uploads for.")


class LogoutResponse(BaseModel):
    signed_out: bool = Field(description="False when the tokens named no live session (already signed out).")


class BatchRequest(_In):
    reports: list[dict[str, Any]] = Field(
        description="Reports in the client's wire form (JSON Schema: `pso-desktop report schema`), each with "
        "its id and revision. At most the server's report and byte limits per request (413 otherwise)."
    )
    owner_keys: dict[str, Any] | None = Field(
        default=None,
        description="Report id → the per-report owner key the client generated when it first sent the report "
        "(URL-safe base64, at least 256 bits). The server keeps only its SHA-256; a new revision of an anonymous "
        "report is accepted only with the key it was first sent with.",
    )


class FieldErrorOut(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. 'patient.mrn'.")
    message: str = Field(description="What is wrong, in the same words the client shows.")


class BatchResult(BaseModel):
    id: str | None = Field(description="The report's UUID as sent (null when it had none).")
    revision: int | None
    status: Outcome = Field(
        description="created, duplicate (already held, same content), updated (newer revision), stale (older "
        "than the newest held; nothing changed), conflict (same revision held with different content; nothing "
        "changed), rejected (see errors)."
    )
    server_ref: str | None = Field(description="The PSO case reference, stable across revisions.")
    errors: list[FieldErrorOut]


class BatchResponse(BaseModel):
    results: list[BatchResult] = Field(description="One result per report, in the order sent.")


class StatusChangeOut(BaseModel):
    id: uuid.UUID
    server_ref: str
    status: Status
    note: str | None
    changed_at: dt.datetime


class StatusFeed(BaseModel):
    changes: list[StatusChangeOut] = Field(description="Oldest first.")
    cursor: str = Field(description="Opaque; pass as 'since' to get only later changes.")
    has_more: bool = Field(description="True when more changes wait: ask again with the new cursor.")


class StatusLookupRequest(_In):
    ids: Annotated[list[uuid.UUID], Field(max_length=1000)]
    owner_keys: dict[str, Any] | None = Field(
        default=None,
        description="Report id → owner key, for anonymous reports: their status is shown only with the key "
        "they were sent with.",
    )


class StatusLookupResponse(BaseModel):
    statuses: list[StatusChangeOut] = Field(description="Current status of each listed report you may see.")


class StatusUpdate(_In):
    status: Status
    note: Annotated[str | None, Field(max_length=2000)] = None


class Unit(BaseModel):
    code: str
    name: str


class ReferenceData(BaseModel):
    units: list[Unit]
    form_catalogue_version: str = Field(description="The form version the server prefers, e.g. 'hospital-2.0'.")
    form_versions: list[str] = Field(description="Every form version the server accepts.")
    withdrawn_versions: list[str] = Field(
        default_factory=list,
        description="Versions the PSO withdrew: reports written on them are still accepted, no new draft starts "
        "on them.",
    )
    catalogues: dict[str, str] = Field(
        default_factory=dict,
        description="SHA-256 of each published catalogue's JSON by version (not the bundled 'hospital-2.0'); "
        "fetch one from /reference/catalogues/{version}.",
    )
    sealing_key: SealingKeyOut = Field(description="The PSO's current sealing key (picks up a rotation).")


class SealedEnvelope(_In):
    envelope_id: Annotated[str, Field(min_length=1, max_length=64, description="The client's UUID, echoed.")]
    key_id: Annotated[str, Field(max_length=64, description="The sealing key it was sealed for.")]
    sealed: str = Field(description="Base64 of the HPKE single-shot output (enc || ciphertext).")


class SealedBatchRequest(_In):
    envelopes: list[SealedEnvelope] = Field(
        description="Sealed reports (docs/sealed-outbox.md). At most the server's report and byte limits per "
        "request (413 otherwise)."
    )


class SealedBatchResult(BatchResult):
    envelope_id: str = Field(description="The envelope's id as sent.")


class SealedBatchResponse(BaseModel):
    results: list[SealedBatchResult] = Field(
        description="One result per envelope, in the order sent. An envelope that does not open is 'rejected' "
        "with id and revision null and the error field 'unsealable'; a named report whose account or reporter "
        "is not the credential's is 'rejected' with the error field 'account_mismatch'."
    )


class Health(BaseModel):
    status: Literal["ok"]
    database: str


# --- the facility's reports and their review, for its risk managers (issue 12) ------------------------------

ReviewState = Literal["new", "in_review", "waiting_for_information", "closed"]
ReviewField = Literal["state", "assignee", "harm"]


class FacilityReport(BaseModel):
    id: uuid.UUID
    revision: int
    server_ref: str
    status: Status = Field(description="The PSO's status of the report.")
    status_note: str | None = None
    received_at: dt.datetime = Field(description="When this revision arrived (the day, for an anonymous report).")
    report: dict[str, Any] = Field(
        description="The revision's content, exactly as its reporter sent it; no account is ever named beside it."
    )


class FacilityReportsPage(BaseModel):
    reports: list[FacilityReport] = Field(description="Oldest change first; each report at its newest revision.")
    cursor: str = Field(description="Opaque; pass as 'since' to get only later changes.")
    has_more: bool


class ReviewRecordIn(_In):
    event_id: uuid.UUID = Field(description="Made by the client once; a re-sent record is answered as held.")
    report_id: uuid.UUID
    kind: Literal["field", "note", "action"]
    field: ReviewField | None = Field(default=None, description="For kind 'field': which field changes.")
    value: Any = Field(
        default=None,
        description="field 'state': a review state; 'assignee': a user name or null; 'harm': a harm level code or "
        "null. note: {'text'}. action: {'text', 'owner', 'due' (YYYY-MM-DD or null)}.",
    )
    base_version: int | None = Field(
        default=None, ge=0, description="For kind 'field': the field's version its author saw (0: never set)."
    )


class ReviewBatch(_In):
    records: Annotated[list[ReviewRecordIn], Field(max_length=500)]


class ReviewRecordOut(BaseModel):
    seq: int = Field(description="The record's place in the facility's review feed.")
    event_id: uuid.UUID
    report_id: uuid.UUID
    kind: Literal["field", "note", "action"]
    field: ReviewField | None
    value: Any
    base_version: int | None
    version: int | None = Field(description="For kind 'field': the field's version after this record.")
    outcome: Literal["accepted", "conflict", "appended"]
    author: str
    created_at: dt.datetime


class ReviewBatchResult(BaseModel):
    event_id: uuid.UUID
    outcome: Literal["accepted", "conflict", "appended", "rejected"]
    record: ReviewRecordOut | None = None
    message: str | None = None


class ReviewBatchResponse(BaseModel):
    results: list[ReviewBatchResult]


class ReviewFeed(BaseModel):
    records: list[ReviewRecordOut] = Field(description="Oldest first.")
    cursor: str
    has_more: bool
