"""Settings of the department connectors (``HUB_CONNECTORS__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConnectorSettings(BaseModel):
    """How sources are read."""

    population_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the population registry; default: a SQLite file under the hub home.",
    )
    population_table: str = Field(
        default="population_registry",
        description="Table the population registry keeps its records in.",
    )
    chunk_rows: int = Field(
        default=50_000,
        ge=1_000,
        description="Rows per Arrow record batch: large enough to amortise per-chunk overhead, "
        "small enough that memory stays flat whatever the source size.",
    )
