"""SQLAlchemy models of the hub metadata: batches, quarantined rows and their violations.

The same models run on SQLite (one machine) and PostgreSQL (production); nothing here
uses a dialect-specific type. Timestamps are stored in UTC and always come back
timezone-aware, whatever the database keeps.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from catalog.metadata.base import Base, BigId, UTCDateTime, utcnow


class BatchStatus(StrEnum):
    """The last step a batch completed, ``held`` by the quality gate, or ``failed``."""

    EXTRACTED = "extracted"
    VALIDATED = "validated"
    HELD = "held"
    """Validated, but more of its rows were quarantined than the contract allows: it
    registers and publishes nothing until a steward releases it (``hub batches release``)."""
    MASKED = "masked"
    REGISTERED = "registered"
    PUBLISHED = "published"
    FAILED = "failed"


class Batch(Base):
    """One run of one source into one dataset, with its accounting."""

    __tablename__ = "hub_batches"
    __table_args__ = (Index("ix_hub_batches_dataset_started", "dataset", "started_at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(128))
    department: Mapped[str | None] = mapped_column(String(128), default=None)
    department_code: Mapped[str | None] = mapped_column(String(32), default=None)
    """Code of the source department (数源部门): whose stewards see its quarantine."""
    full_refresh: Mapped[bool] = mapped_column(Boolean, default=True)
    watermark_from: Mapped[str | None] = mapped_column(String(64), default=None)
    watermark_to: Mapped[str | None] = mapped_column(String(64), default=None)
    connector_state: Mapped[str | None] = mapped_column(Text, default=None)
    k_anonymity: Mapped[int | None] = mapped_column(Integer, default=None)
    k_suppressed_rows: Mapped[int | None] = mapped_column(BigInteger, default=None)
    contract_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[BatchStatus] = mapped_column(
        Enum(
            BatchStatus,
            native_enum=False,
            length=16,
            validate_strings=True,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=BatchStatus.EXTRACTED,
    )
    rows_in: Mapped[int | None] = mapped_column(BigInteger, default=None)
    rows_valid: Mapped[int | None] = mapped_column(BigInteger, default=None)
    rows_quarantined: Mapped[int | None] = mapped_column(BigInteger, default=None)
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    staging_path: Mapped[str | None] = mapped_column(String(1024), default=None)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    messages_published: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    warnings: Mapped[str | None] = mapped_column(Text, default=None)
    """What the batch went on despite (one per line), e.g. a cross-dataset check skipped
    because the other dataset has no shared table yet."""
    data_docs: Mapped[str | None] = mapped_column(String(1024), default=None)
    """Location of the batch's Great Expectations Data Docs (``index.html``)."""
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    released_by: Mapped[str | None] = mapped_column(String(128), default=None)
    release_reason: Mapped[str | None] = mapped_column(Text, default=None)

    def __repr__(self) -> str:
        return f"Batch({self.id!r}, {self.dataset!r}, status={self.status.value!r})"


class QuarantinedRow(Base):
    """A source row that failed its checks, kept raw (this table is access-controlled)."""

    __tablename__ = "hub_quarantined_rows"
    __table_args__ = (UniqueConstraint("batch_id", "row", name="uq_hub_quarantined_rows_batch_row"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(128), ForeignKey("hub_batches.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(BigInteger)
    record: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Violation(Base):
    """One failed rule on one row; a row may have several."""

    __tablename__ = "hub_violations"
    __table_args__ = (Index("ix_hub_violations_batch_row", "batch_id", "row"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(128), ForeignKey("hub_batches.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(BigInteger)
    field: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(String(64))
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)


class Decryption(Base):
    """One use (or refused use) of ``hub decrypt``: who, why, how much, with which keys.

    Never the values or plaintexts: the record proves a use happened, it must not become a
    second copy of what was decrypted.
    """

    __tablename__ = "hub_decryptions"
    __table_args__ = (Index("ix_hub_decryptions_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    steward: Mapped[str | None] = mapped_column(String(128), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    values: Mapped[int] = mapped_column(BigInteger, default=0)
    key_versions: Mapped[str] = mapped_column(String(256), default="")
    """Encrypt key versions named by the values, comma-separated (``"1,2"``)."""
    os_user: Mapped[str] = mapped_column(String(128))
    host: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))
    """``decrypted``, ``refused`` (no steward or reason) or ``failed`` (a value did not decrypt)."""
    detail: Mapped[str | None] = mapped_column(Text, default=None)

    def __repr__(self) -> str:
        return f"Decryption({self.id!r}, steward={self.steward!r}, outcome={self.outcome!r})"
