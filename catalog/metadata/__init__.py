"""The hub metadata database: its engine and store, one module of ORM tables per domain
(batches, catalogue entries, sharing, access log, deliveries, corrections) and the Alembic
migrations that build them. The lowest layer of the catalogue: it imports no other part of it.
"""

from __future__ import annotations

from catalog.metadata.audit import NAME_CHARS, AccessCheckpoint, AccessEntry, AccessHead
from catalog.metadata.base import Base, utcnow
from catalog.metadata.batches import Batch, BatchStatus, QuarantinedRow, Violation
from catalog.metadata.corrections import Correction, CorrectionMessage, CorrectionOrigin, CorrectionStatus
from catalog.metadata.deliveries import DeliveryKind, DeliveryLease, DeliveryStatus, OutboxDelivery
from catalog.metadata.entries import CatalogueEntry, CatalogueVersion, EntryStatus
from catalog.metadata.sharing import (
    Department,
    DepartmentKind,
    Grant,
    Person,
    PersonRole,
    Request,
    RequestStatus,
    Role,
    System,
)
from catalog.metadata.store import MetadataStore, new_batch_id

__all__ = [
    "NAME_CHARS",
    "AccessCheckpoint",
    "AccessEntry",
    "AccessHead",
    "Base",
    "Batch",
    "BatchStatus",
    "CatalogueEntry",
    "CatalogueVersion",
    "Correction",
    "CorrectionMessage",
    "CorrectionOrigin",
    "CorrectionStatus",
    "DeliveryKind",
    "DeliveryLease",
    "DeliveryStatus",
    "Department",
    "DepartmentKind",
    "EntryStatus",
    "Grant",
    "MetadataStore",
    "OutboxDelivery",
    "Person",
    "PersonRole",
    "QuarantinedRow",
    "Request",
    "RequestStatus",
    "Role",
    "System",
    "Violation",
    "new_batch_id",
    "utcnow",
]
