"""Settings of the department connectors (``HUB_CONNECTORS__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class ConnectorSettings(BaseModel):
    """How sources are found and read."""

    sources_dir: Path | None = Field(
        default=None,
        description="Folder of source files (one YAML per source); default: connectors/sources/ "
        "of the installed hub.",
    )
    chunk_rows: int = Field(
        default=50_000,
        ge=1_000,
        description="Rows per Arrow record batch: large enough to amortise per-chunk overhead, "
        "small enough that memory stays flat whatever the source size.",
    )
