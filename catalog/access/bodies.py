"""The request and answer bodies of the consumers' HTTP API, validated before anything runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    pass


MAX_FIELDS = 64


class QueryBody(BaseModel):
    """One SELECT over the views of the system's active grants."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(max_length=100_000, description="One SELECT over the granted datasets' views.")
    purpose: str = Field(max_length=4_000, description="What the result is used for (required, recorded).")
    format: Literal["json", "csv", "parquet"] = Field(default="json", description="Result format.")
    max_rows: int | None = Field(default=None, ge=1, description="Return at most this many rows.")


class VerifyBody(BaseModel):
    """One identity to verify; exactly the identifier field of its kind."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["person", "legal_entity", "certificate"] = Field(
        description="person: id_number + name; legal_entity: uscc + name; certificate: certificate_id "
        "(+ holder name, optional)."
    )
    id_number: str | None = Field(default=None, max_length=64, description="Resident identity number.")
    uscc: str | None = Field(default=None, max_length=64, description="Unified social credit code.")
    certificate_id: str | None = Field(
        default=None, max_length=256, description="Electronic certificate identifier (GB/T 36904)."
    )
    name: str | None = Field(
        default=None, max_length=256, description="Name (holder name for a certificate)."
    )
    purpose: str = Field(max_length=4_000, description="What the verification is for (required, recorded).")
    fields: list[str] | None = Field(
        default=None,
        max_length=MAX_FIELDS,
        description="Granted columns of the matching record to return (needs an active grant including them).",
    )


class VerifyAnswer(BaseModel):
    match: bool
    fields: dict[str, Any] | None = Field(
        default=None,
        description="The asked fields of the matching record, masked as the shared table holds them.",
    )
