"""Tables of the shared catalogue: one entry per dataset and its versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.metadata.base import Base, BigId, UTCDateTime, utcnow


class EntryStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class CatalogueEntry(Base):
    """One dataset's catalogue entry: its current and published versions."""

    __tablename__ = "hub_catalogue_entries"

    dataset: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[EntryStatus] = mapped_column(
        Enum(
            EntryStatus,
            native_enum=False,
            length=16,
            validate_strings=True,
            values_callable=lambda e: [m.value for m in e],
            name="entrystatus",
        ),
        default=EntryStatus.DRAFT,
    )
    version: Mapped[int] = mapped_column(Integer)
    """The current (newest) version."""
    published_version: Mapped[int | None] = mapped_column(Integer, default=None)
    """The version consumers see; None while the entry was never published."""
    contract_version: Mapped[str] = mapped_column(String(32))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    published_by: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CatalogueVersion(Base):
    """One version of an entry: its whole content, and who changed it, when and why."""

    __tablename__ = "hub_catalogue_versions"
    __table_args__ = (
        UniqueConstraint("dataset", "version", name="uq_hub_catalogue_versions_dataset_version"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(
        String(64), ForeignKey("hub_catalogue_entries.dataset", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    """``generated``, ``regenerated`` (new contract version), ``edited``, ``published``."""
    note: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    contract_version: Mapped[str] = mapped_column(String(32))
    contract_digest: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    """The entry as JSON (:class:`EntryContent`)."""
    edited: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the fields a steward set: they keep their value across contract versions."""
    contract: Mapped[str] = mapped_column(Text)
    """The contract this version came from, as JSON (the history of contracts)."""
