"""Lineage of a shared dataset: source -> batch -> snapshot, and later snapshot -> deliveries.

Every batch record (``hub_batches``) says which source it read, how many rows came in and
were kept, and which Iceberg snapshot its commit made, so the lineage of a dataset is read
from the metadata, not recorded twice. Deliveries (a grant's consumer receiving a
snapshot's rows) are read the same way, from the delivery outbox (``hub_deliveries``,
:func:`sent_deliveries`): each sent one hangs under the snapshot it read.

Airflow runs add OpenLineage events (one START and one COMPLETE or FAIL per task), written
by the OpenLineage provider to the file transport configured in ``airflow.cfg``
(:func:`openlineage_file`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from catalog.metadata import Batch, BatchStatus, DeliveryStatus, Grant, OutboxDelivery

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore


@dataclass(frozen=True)
class Delivery:
    """One delivery of a snapshot's rows to a consumer under a grant."""

    grant_id: int
    system: str
    department: str
    snapshot_id: int
    at: datetime
    rows: int | None = None
    channel: str = ""
    """``kafka``, ``query`` or ``verify``: how the rows left the hub."""

    def to_json(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "system": self.system,
            "department": self.department,
            "snapshot_id": self.snapshot_id,
            "at": self.at.isoformat(),
            "rows": self.rows,
            "channel": self.channel,
        }


DeliverySource = Callable[["MetadataStore", str], Iterable[Delivery]]
"""Gives the deliveries of one dataset: ``source(store, dataset)``."""


@dataclass(frozen=True)
class SnapshotNode:
    snapshot_id: int
    registered_at: datetime | None
    rows: int | None
    current: bool
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class BatchNode:
    batch_id: str
    status: str
    started_at: datetime
    rows_in: int | None
    rows_valid: int | None
    rows_quarantined: int | None
    contract_version: str
    full_refresh: bool
    watermark_from: str | None
    watermark_to: str | None
    snapshot: SnapshotNode | None
    error: str | None


@dataclass
class SourceNode:
    name: str
    department: str | None
    batches: list[BatchNode] = field(default_factory=list)


@dataclass
class DatasetLineage:
    """A dataset's sources, their batches (newest first) and the snapshots they made."""

    dataset: str
    current_snapshot_id: int | None
    sources: list[SourceNode]
    openlineage: str | None = None

    def to_json(self) -> dict[str, Any]:
        def snapshot(node: SnapshotNode | None) -> dict[str, Any] | None:
            if node is None:
                return None
            return {
                "snapshot_id": node.snapshot_id,
                "registered_at": node.registered_at.isoformat() if node.registered_at else None,
                "rows": node.rows,
                "current": node.current,
                "deliveries": [d.to_json() for d in node.deliveries],
            }

        return {
            "dataset": self.dataset,
            "current_snapshot_id": self.current_snapshot_id,
            "openlineage_events": self.openlineage,
            "sources": [
                {
                    "source": s.name,
                    "department": s.department,
                    "batches": [
                        {
                            "batch_id": b.batch_id,
                            "status": b.status,
                            "started_at": b.started_at.isoformat(),
                            "rows_in": b.rows_in,
                            "rows_valid": b.rows_valid,
                            "rows_quarantined": b.rows_quarantined,
                            "contract_version": b.contract_version,
                            "full_refresh": b.full_refresh,
                            "watermark_from": b.watermark_from,
                            "watermark_to": b.watermark_to,
                            "snapshot": snapshot(b.snapshot),
                            "error": b.error,
                        }
                        for b in s.batches
                    ],
                }
                for s in self.sources
            ],
        }


def dataset_lineage(
    store: MetadataStore,
    dataset: str,
    *,
    current_snapshot_id: int | None = None,
    limit: int | None = 20,
    openlineage: Path | None = None,
    delivery_sources: Iterable[DeliverySource] | None = None,
) -> DatasetLineage:
    """Source -> batch -> snapshot for ``dataset``, the newest ``limit`` batches per source.

    ``limit`` keeps a daily dataset's tree to a screen; ``None`` gives every batch.
    ``current_snapshot_id`` (the table's) marks the snapshot consumers read now.
    ``delivery_sources`` give the deliveries; by default the sent deliveries of the outbox
    (:func:`sent_deliveries`).
    """
    with store.session() as session:
        sources = list(
            session.scalars(
                select(Batch.source).where(Batch.dataset == dataset).distinct().order_by(Batch.source)
            )
        )
        nodes = []
        for name in sources:
            query = (
                select(Batch)
                .where(Batch.dataset == dataset, Batch.source == name)
                .order_by(Batch.started_at.desc(), Batch.id.desc())
            )
            if limit is not None:
                query = query.limit(limit)
            batches = list(session.scalars(query))
            nodes.append(
                SourceNode(name, batches[0].department if batches else None, [_node(b) for b in batches])
            )
    deliveries: dict[int, list[Delivery]] = {}
    for source in (sent_deliveries,) if delivery_sources is None else delivery_sources:
        for delivery in source(store, dataset):
            deliveries.setdefault(delivery.snapshot_id, []).append(delivery)
    for node in nodes:
        node.batches = [_with(b, current_snapshot_id, deliveries) for b in node.batches]
    path = openlineage if openlineage is not None and openlineage.exists() else None
    return DatasetLineage(dataset, current_snapshot_id, nodes, str(path) if path else None)


def _node(batch: Batch) -> BatchNode:
    snapshot = None
    if batch.snapshot_id is not None and batch.status in (BatchStatus.REGISTERED, BatchStatus.PUBLISHED):
        snapshot = SnapshotNode(int(batch.snapshot_id), batch.registered_at, batch.rows_valid, False)
    return BatchNode(
        batch_id=batch.id,
        status=str(batch.status),
        started_at=batch.started_at,
        rows_in=batch.rows_in,
        rows_valid=batch.rows_valid,
        rows_quarantined=batch.rows_quarantined,
        contract_version=batch.contract_version,
        full_refresh=batch.full_refresh,
        watermark_from=batch.watermark_from,
        watermark_to=batch.watermark_to,
        snapshot=snapshot,
        error=batch.error,
    )


def _with(node: BatchNode, current: int | None, deliveries: dict[int, list[Delivery]]) -> BatchNode:
    if node.snapshot is None:
        return node
    s = node.snapshot
    snapshot = SnapshotNode(
        s.snapshot_id,
        s.registered_at,
        s.rows,
        s.snapshot_id == current,
        tuple(sorted(deliveries.get(s.snapshot_id, ()), key=lambda d: d.at)),
    )
    return BatchNode(**{**node.__dict__, "snapshot": snapshot})


def openlineage_file(home: Path) -> Path:
    """Where Airflow's OpenLineage file transport writes for this hub home (``hub.airflow_runner``)."""
    return home / "airflow" / "openlineage.jsonl"


def openlineage_events(path: Path) -> list[dict[str, Any]]:
    """The OpenLineage events of a file transport log (one JSON event per line)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sent_deliveries(store: MetadataStore, dataset: str) -> Iterator[Delivery]:
    """The sent deliveries of ``dataset``: one per grant and batch sent to its topic."""
    query = (
        select(OutboxDelivery, Grant.system, Grant.department)
        .join(Grant, Grant.id == OutboxDelivery.grant_id)
        .where(OutboxDelivery.dataset == dataset, OutboxDelivery.status == DeliveryStatus.SENT)
        .order_by(OutboxDelivery.id)
    )
    with store.session() as session:
        found = session.execute(query).all()
    for row, system, department in found:
        assert row.sent_at is not None
        yield Delivery(
            grant_id=row.grant_id,
            system=system,
            department=department,
            snapshot_id=row.snapshot_id,
            at=row.sent_at,
            rows=row.messages,
            channel="kafka",
        )
