"""What callers get of the outbox: a delivery's reference, and the report of one send."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from catalog.metadata import (
    DeliveryKind,
    DeliveryStatus,
    OutboxDelivery,
)

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class DeliveryRef:
    """A delivery as callers see it."""

    id: int
    grant_id: int
    dataset: str
    kind: DeliveryKind
    batch_id: str
    snapshot_id: int
    sequence: int
    status: DeliveryStatus
    topic: str
    columns: tuple[str, ...]
    created_at: datetime
    attempts: int = 0
    messages: int | None = None
    sent_at: datetime | None = None
    source_table: str | None = None
    source_snapshot_id: int | None = None
    from_snapshot_id: int | None = None
    requested_by: str | None = None
    error: str | None = None
    cancelled_at: datetime | None = None
    reason: str | None = None
    access_seq: int | None = None


def delivery_ref(row: OutboxDelivery) -> DeliveryRef:
    return DeliveryRef(
        id=row.id,
        grant_id=row.grant_id,
        dataset=row.dataset,
        kind=DeliveryKind(row.kind),
        batch_id=row.batch_id,
        snapshot_id=row.snapshot_id,
        sequence=row.sequence,
        status=DeliveryStatus(row.status),
        topic=row.topic,
        columns=tuple(json.loads(row.columns)),
        created_at=row.created_at,
        attempts=row.attempts,
        messages=row.messages,
        sent_at=row.sent_at,
        source_table=row.source_table,
        source_snapshot_id=row.source_snapshot_id,
        from_snapshot_id=row.from_snapshot_id,
        requested_by=row.requested_by,
        error=row.error,
        cancelled_at=row.cancelled_at,
        reason=row.reason,
        access_seq=row.access_seq,
    )


@dataclass
class SendReport:
    """What one :meth:`Outbox.send` did."""

    sent: list[DeliveryRef] = field(default_factory=list)
    cancelled: list[DeliveryRef] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    """Grants whose queue another sender was working through (it sends what is pending)."""
    failed: list[tuple[DeliveryRef, str]] = field(default_factory=list)
    """Deliveries that could not be made (they stay pending; their grant's later ones wait)."""

    def messages(self, batch_id: str | None = None) -> int:
        """Messages sent, for one batch's own deliveries (not replays) if ``batch_id`` is given."""
        return sum(
            d.messages or 0
            for d in self.sent
            if batch_id is None or (d.batch_id == batch_id and d.kind is not DeliveryKind.REPLAY)
        )
