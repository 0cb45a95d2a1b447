"""What a batch's validation found, counted chunk by chunk: the figures Data Docs and the
quality profile show (never a value)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import great_expectations as gx


@dataclass
class Tally:
    """One expectation's counts summed over the chunks of a batch (what Data Docs show)."""

    config: Any
    """The expectation's GE configuration (type, kwargs, meta) as the suite holds it."""
    element_count: int = 0
    missing_count: int = 0
    unexpected_count: int = 0


@dataclass
class BatchTallies:
    """What a batch's validation found, accumulated chunk by chunk; never holds a value."""

    dataset: str
    contract_version: str
    suite: gx.ExpectationSuite
    today: date
    batch_id: str = ""
    source: str = ""
    rows_in: int = 0
    rows_quarantined: int = 0
    chunks: int = 0
    seconds: float = 0.0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    expectations: dict[tuple[str, ...], Tally] = field(default_factory=dict)
    present: Counter[str] = field(default_factory=Counter)
    """Field -> values present (not null, not the empty string): the completeness numerator."""
    rules: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(rule, field) -> rows that broke it, including the connector's ``type`` rule."""
