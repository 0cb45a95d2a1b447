"""Tables of correction requests (校核纠错) and their message threads."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from catalog.metadata.base import Base, BigId, UTCDateTime, enum_type, utcnow


class CorrectionStatus(StrEnum):
    """Where a request stands."""

    OPEN = "open"
    RESOLVED = "resolved"
    """Closed by a steward with a note (fixed at the source, or the data was right)."""
    CORRECTED = "corrected"
    """Closed by the hub: a later batch registered a corrected record for the key."""


class CorrectionOrigin(StrEnum):
    """Who opened a request."""

    QUARANTINE = "quarantine"
    CONSUMER = "consumer"


class Correction(Base):
    """One correction request to a source department, with its deadline."""

    __tablename__ = "hub_corrections"
    __table_args__ = (
        UniqueConstraint("batch_id", "row", name="uq_hub_corrections_batch_row"),
        Index("ix_hub_corrections_dataset_key", "dataset", "key_token"),
        Index("ix_hub_corrections_status_due", "status", "due_on"),
        Index("ix_hub_corrections_department_status", "department_code", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(64))
    department_code: Mapped[str] = mapped_column(String(32))
    """Source department (数源部门) that must check and answer."""
    department: Mapped[str | None] = mapped_column(String(128), default=None)
    origin: Mapped[CorrectionOrigin] = mapped_column(enum_type(CorrectionOrigin))
    status: Mapped[CorrectionStatus] = mapped_column(
        enum_type(CorrectionStatus), default=CorrectionStatus.OPEN
    )
    batch_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """The batch whose quarantine opened the request (quarantine origin only)."""
    row: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The quarantined row's number in that batch."""
    key_token: Mapped[str | None] = mapped_column(String(256), default=None)
    """The record's key as published (keyed token for identity numbers); null when the
    quarantined row had no usable key, which is then found by batch and row."""
    fields: Mapped[str] = mapped_column(String(1024))
    """Fields to check, comma-separated (contract names)."""
    rules: Mapped[str | None] = mapped_column(String(1024), default=None)
    """Rule codes the row broke, comma-separated (quarantine origin)."""
    reason: Mapped[str] = mapped_column(Text)
    filed_by: Mapped[str] = mapped_column(String(128))
    """``hub`` for the quality gate, else the consumer system that filed it."""
    field_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    """SHA-256 of the disputed field's published value when a consumer filed the request:
    a later record with another value there closes it."""
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_on: Mapped[date] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_by: Mapped[str | None] = mapped_column(String(128), default=None)
    """Steward who resolved it, or the batch whose registered record corrected it."""
    resolution: Mapped[str | None] = mapped_column(Text, default=None)

    def __repr__(self) -> str:
        return f"Correction({self.id!r}, {self.dataset!r}, status={self.status.value!r})"


class CorrectionMessage(Base):
    """One message in a request's thread."""

    __tablename__ = "hub_correction_messages"
    __table_args__ = (Index("ix_hub_correction_messages_correction", "correction_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    correction_id: Mapped[int] = mapped_column(
        BigId,
        ForeignKey("hub_corrections.id", ondelete="CASCADE", name="fk_hub_correction_messages_correction"),
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    author: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
