"""Settings of the quality gate (``HUB_QUALITY__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class QualitySettings(BaseModel):
    """How batches are validated."""

    today: str | None = Field(
        default=None,
        description="ISO date used as 'today' for date checks; default: the real date. "
        "Set it to replay an old batch exactly as it was judged.",
    )
