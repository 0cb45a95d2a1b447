"""What the catalogue shows: an entry version with the entry's state and the live facts of
its data, the list of versions, search hits, and what a sync did.

These are read-only values built by :class:`catalog.entries.catalogue.Catalogue`; the
commands print them and the exports turn them into JSON and DCAT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.entries.content import EntryContent
from catalog.metadata import EntryStatus


@dataclass(frozen=True)
class Facts:
    """What the hub knows about the dataset's data now (not versioned; read when shown)."""

    snapshot_id: int | None = None
    rows: int | None = None
    last_batch: str | None = None
    last_batch_source: str | None = None
    last_batch_at: datetime | None = None
    contract_version_of_data: str | None = None
    k_anonymity: int | None = None
    k_suppressed_rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "rows": self.rows,
            "last_successful_batch": self.last_batch,
            "last_successful_batch_source": self.last_batch_source,
            "last_successful_batch_at": self.last_batch_at.isoformat() if self.last_batch_at else None,
            "data_contract_version": self.contract_version_of_data,
            "k_anonymity": self.k_anonymity,
            "k_suppressed_rows": self.k_suppressed_rows,
        }


@dataclass(frozen=True)
class EntryView:
    """One version of an entry with the entry's state."""

    dataset: str
    version: int
    current_version: int
    published_version: int | None
    published_at: datetime | None
    published_by: str | None
    content: EntryContent
    edited: tuple[str, ...]
    change: str
    note: str
    author: str
    created_at: datetime
    pending: str | None = None
    facts: Facts | None = None

    @property
    def status(self) -> str:
        """``draft``, ``published``, or ``published, draft changes`` (edited since publishing)."""
        if self.published_version is None:
            return EntryStatus.DRAFT.value
        if self.published_version == self.current_version:
            return EntryStatus.PUBLISHED.value
        return "published, draft changes"

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "status": self.status,
            "version": self.version,
            "current_version": self.current_version,
            "published_version": self.published_version,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "published_by": self.published_by,
            "change": self.change,
            "note": self.note,
            "author": self.author,
            "changed_at": self.created_at.isoformat(),
            "steward_edited": list(self.edited),
            "pending_contract": self.pending,
            "content": self.content.model_dump(mode="json"),
            "facts": self.facts.to_json() if self.facts else None,
        }


@dataclass(frozen=True)
class VersionInfo:
    version: int
    change: str
    note: str
    author: str
    created_at: datetime
    contract_version: str
    published: bool


@dataclass(frozen=True)
class SearchHit:
    dataset: str
    resource_code: str | None
    resource_name: str
    matched: tuple[str, ...]


@dataclass
class SyncReport:
    """What a sync did per dataset, and what it could not take in (with the reason)."""

    done: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
