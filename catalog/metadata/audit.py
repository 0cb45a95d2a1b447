"""Tables of the access log: entries, the MAC'd head row and signed checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from catalog.metadata.base import Base, UTCDateTime

NAME_CHARS = 128
"""Longest name (person, system, department, dataset, client address) an entry keeps."""


class AccessEntry(Base):
    """One access-log entry. Rows are only ever inserted (and purged past retention)."""

    __tablename__ = "hub_access_log"
    __table_args__ = (
        Index("ix_hub_access_log_at", "at"),
        Index("ix_hub_access_log_system_at", "system", "at"),
        Index("ix_hub_access_log_dataset_at", "dataset", "at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str | None] = mapped_column(String(NAME_CHARS), default=None)
    """The person acting (a steward, an auditor, a consumer's named user), if known."""
    system: Mapped[str | None] = mapped_column(String(NAME_CHARS), default=None)
    """The consumer system (its id), if any."""
    department: Mapped[str | None] = mapped_column(String(NAME_CHARS), default=None)
    dataset: Mapped[str | None] = mapped_column(String(NAME_CHARS), default=None)
    columns: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the columns asked for or returned."""
    purpose: Mapped[str | None] = mapped_column(Text, default=None)
    rows: Mapped[int | None] = mapped_column(BigInteger, default=None)
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    """Why it was denied (or on what basis it was allowed)."""
    client: Mapped[str | None] = mapped_column(String(NAME_CHARS), default=None)
    """Client address (``203.0.113.7``) or ``cli:user@host``."""
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    """Small canonical JSON object with anything else worth keeping (never values or keys)."""
    key_version: Mapped[int] = mapped_column(Integer)
    """Version of the audit MAC key that made ``entry_mac``."""
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    entry_mac: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"AccessEntry({self.seq}, {self.action!r}, {self.outcome!r}, system={self.system!r})"


class AccessHead(Base):
    """The chain head: one row, rewritten by every append under the append lock."""

    __tablename__ = "hub_access_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    """Sequence number of the newest entry (0 before the first)."""
    entry_hash: Mapped[str] = mapped_column(String(64))
    entry_mac: Mapped[str] = mapped_column(String(64))
    first_seq: Mapped[int] = mapped_column(BigInteger)
    """The oldest entry kept (1 until a purge)."""
    first_prev_hash: Mapped[str] = mapped_column(String(64))
    first_prev_mac: Mapped[str] = mapped_column(String(64))
    checkpoint_number: Mapped[int] = mapped_column(BigInteger)
    checkpoint_hash: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int | None] = mapped_column(Integer, default=None)
    head_mac: Mapped[str | None] = mapped_column(String(64), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccessCheckpoint(Base):
    """A signed statement of the chain at one moment; numbered and linked like the entries."""

    __tablename__ = "hub_access_checkpoints"
    __table_args__ = (Index("ix_hub_access_checkpoints_seq", "seq"),)

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(16))
    """``periodic``, ``demand`` or ``purge``."""
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    head_mac: Mapped[str] = mapped_column(String(64))
    first_seq: Mapped[int] = mapped_column(BigInteger)
    first_prev_hash: Mapped[str] = mapped_column(String(64))
    first_prev_mac: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(BigInteger)
    """Entries kept when it was written (``seq - first_seq + 1``)."""
    prev_checkpoint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the previous checkpoint's signed document."""
    key_version: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str] = mapped_column(String(128))
    """Ed25519 signature (hex) of :func:`checkpoint_document`."""
