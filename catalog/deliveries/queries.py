"""Reading the outbox: deliveries by grant, batch or status, and the topics systems were sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import (
    func,
    select,
)

from catalog.deliveries.records import DeliveryRef, delivery_ref
from catalog.metadata import (
    DeliveryStatus,
    Grant,
    OutboxDelivery,
)
from catalog.sharing import GrantRef, grant_ref

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore


def list_deliveries(
    store: MetadataStore,
    *,
    grant_id: int | None = None,
    batch_id: str | None = None,
    status: DeliveryStatus | str | None = None,
    dataset: str | None = None,
    limit: int | None = 50,
) -> list[DeliveryRef]:
    """Deliveries, newest first."""
    query = select(OutboxDelivery).order_by(OutboxDelivery.id.desc())
    if grant_id is not None:
        query = query.where(OutboxDelivery.grant_id == grant_id)
    if batch_id is not None:
        query = query.where(OutboxDelivery.batch_id == batch_id)
    if status is not None:
        query = query.where(OutboxDelivery.status == DeliveryStatus(status))
    if dataset is not None:
        query = query.where(OutboxDelivery.dataset == dataset)
    if limit is not None:
        query = query.limit(limit)
    with store.session() as session:
        return [delivery_ref(row) for row in session.scalars(query)]


def delivered_topics(
    store: MetadataStore, datasets: Sequence[str] | None = None
) -> list[tuple[str, GrantRef]]:
    """Each topic something was sent to, with its grant (for the leak scan), by grant."""
    query = (
        select(Grant)
        .where(
            Grant.id.in_(select(OutboxDelivery.grant_id).where(OutboxDelivery.status == DeliveryStatus.SENT))
        )
        .order_by(Grant.id)
    )
    if datasets:
        query = query.where(Grant.dataset.in_(list(datasets)))
    with store.session() as session:
        grants = [grant_ref(g) for g in session.scalars(query)]
        topics = dict(
            session.execute(
                select(OutboxDelivery.grant_id, func.max(OutboxDelivery.topic))
                .where(OutboxDelivery.grant_id.in_([g.id for g in grants]))
                .group_by(OutboxDelivery.grant_id)
            ).all()
        )
    return [(topics[g.id], g) for g in grants]
