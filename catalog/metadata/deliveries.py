"""Tables of the delivery outbox: one row per delivery of a batch to a grant's topic, and the send leases."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from catalog.metadata.base import Base, BigId, UTCDateTime, enum_type, utcnow


class DeliveryStatus(StrEnum):
    """``pending`` until sent; ``cancelled`` when its grant stopped giving anything."""

    PENDING = "pending"
    SENT = "sent"
    CANCELLED = "cancelled"


class DeliveryKind(StrEnum):
    INITIAL = "initial"
    """The whole dataset as of a registered batch's snapshot: a grant's first delivery."""
    BATCH = "batch"
    """The rows one batch registered, from its snapshot."""
    REPLAY = "replay"
    """A batch's rows again, asked for with ``hub publish --replay``."""


class OutboxDelivery(Base):
    """One delivery owed to (or made to) a grant's topic: which rows, from which snapshot."""

    __tablename__ = "hub_deliveries"
    __table_args__ = (
        UniqueConstraint("grant_id", "once", name="uq_hub_deliveries_grant_once"),
        Index("ix_hub_deliveries_grant_status", "grant_id", "status", "sequence"),
        Index("ix_hub_deliveries_batch", "batch_id"),
        Index("ix_hub_deliveries_dataset_snapshot", "dataset", "snapshot_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    grant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("hub_grants.id", name="fk_hub_deliveries_grant")
    )
    dataset: Mapped[str] = mapped_column(String(64))
    kind: Mapped[DeliveryKind] = mapped_column(enum_type(DeliveryKind, 16))
    batch_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("hub_batches.id", name="fk_hub_deliveries_batch")
    )
    """The batch whose rows (batch, replay) or whose snapshot (initial) are delivered."""
    snapshot_id: Mapped[int] = mapped_column(BigInteger)
    """The dataset snapshot read: the one that batch's commit made."""
    sequence: Mapped[int] = mapped_column(BigInteger)
    """Iceberg sequence number of that snapshot: a grant's deliveries are sent in this order."""
    once: Mapped[str | None] = mapped_column(String(160), default=None)
    """``initial`` or ``batch:<id>``: at most one of each per grant (none for a replay)."""
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_type(DeliveryStatus, 16), default=DeliveryStatus.PENDING
    )
    topic: Mapped[str] = mapped_column(String(255))
    columns: Mapped[str] = mapped_column(Text)
    """The grant's columns, as a JSON list."""
    from_snapshot_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """For a replay: the snapshot it was asked to start from."""
    requested_by: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    """Why the last attempt failed (it stays pending)."""
    source_table: Mapped[str | None] = mapped_column(String(128), default=None)
    source_snapshot_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Table and snapshot the rows were read from (the view's own snapshot for a view)."""
    messages: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    access_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The access-log entry recording the delivery."""
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    """Why it was cancelled."""


class DeliveryLease(Base):
    """Which sender works through a grant's queue, until when (renewed while it sends)."""

    __tablename__ = "hub_delivery_leases"

    grant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(UTCDateTime)
