"""The batch gate: a batch with too many invalid rows registers and publishes nothing.

A few bad rows are the source's everyday defects: they go to quarantine and correction
requests, the rest of the batch is shared. Many bad rows at once usually mean something
systematic (a changed export, a broken mapping, a half-migrated system), and sharing the
remainder would hide that from consumers. So after validation, a batch whose quarantined
share exceeds its contract's ``max_invalid_share`` is *held*: its staged rows wait, its
source's watermark does not move, and a data steward either releases it (``hub batches
release``) or has the source fix its data and runs it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quality.errors import BatchHeldError

TOP_RULES = 5
"""Rules named in a held batch's message: enough to see the pattern, short enough to read."""


@dataclass(frozen=True)
class GateVerdict:
    """The figures the gate judged a batch by, and whether it holds the batch."""

    rows_in: int
    quarantined: int
    threshold: float
    top_rules: tuple[tuple[str, str, int], ...] = ()
    """``(rule, field, rows)``, most frequent first."""

    @property
    def share(self) -> float:
        """Quarantined share of the batch's rows (0 for an empty batch)."""
        return self.quarantined / self.rows_in if self.rows_in else 0.0

    @property
    def held(self) -> bool:
        """Strictly above the threshold: a contract's 5% allows exactly 5%."""
        return self.rows_in > 0 and self.share > self.threshold

    def figures(self) -> str:
        """One line of figures: rows, quarantined, share, threshold and the top rules."""
        rules = ", ".join(f"{rule} on {field} {rows:,}" for rule, field, rows in self.top_rules)
        return (
            f"{self.quarantined:,} of {self.rows_in:,} rows quarantined ({self.share:.2%}), "
            f"above the contract's threshold of {self.threshold:.2%}"
            + (f"; top rules: {rules}" if rules else "")
        )


def judge(
    rows_in: int, quarantined: int, threshold: float, summary: Sequence[tuple[str, str, int]] = ()
) -> GateVerdict:
    """The gate's verdict on a validated batch; ``summary`` is the store's violations summary."""
    if rows_in < 0 or quarantined < 0 or quarantined > rows_in:
        raise ValueError(f"impossible batch figures: {quarantined} quarantined of {rows_in} rows")
    return GateVerdict(rows_in, quarantined, threshold, tuple(summary[:TOP_RULES]))


def held_error(
    verdict: GateVerdict, *, batch_id: str, dataset: str, source: str, watermark: str | None
) -> BatchHeldError:
    """The error a held batch's step raises: the figures, what did not happen, what to do."""
    kept = f"the watermark of source {source} stays at {watermark}" if watermark else "no watermark moves"
    return BatchHeldError(
        f"batch {batch_id} ({dataset} from {source}) is held by the quality gate: {verdict.figures()}. "
        f"Nothing was registered or published and {kept}. Look at the quarantine "
        f"(`hub batches show {batch_id}`), then release it with `hub batches release {batch_id} "
        "--reason TEXT --as STEWARD`, or have the source fix its data and run it again"
    )


__all__ = ["TOP_RULES", "GateVerdict", "held_error", "judge"]
