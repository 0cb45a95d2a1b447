"""Settings of the quality gate (``HUB_QUALITY__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class QualitySettings(BaseModel):
    """How batches are validated, and how wrong data travels back to its source."""

    today: str | None = Field(
        default=None,
        description="ISO date used as 'today' for date checks; default: the real date. "
        "Set it to replay an old batch exactly as it was judged.",
    )
    correction_days: int = Field(
        default=10,
        ge=1,
        description="Working days a source department has to answer a correction request; 10 like "
        "a conditional sharing request, the usual time limit for a department to check and answer.",
    )
