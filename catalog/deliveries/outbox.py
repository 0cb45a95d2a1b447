"""The delivery outbox: one Kafka topic per grant, fed from the catalogue in order.

A grant gives one system some columns of one dataset at one share level, so each grant has
its own topic (:func:`catalog.deliveries.publish.grant_topic`, ``hub.grant.42``) carrying only those
columns, masked for that level: a conditional grant reads the shared table, an
unconditional grant of a dataset with quasi-identifiers reads its k-anonymous view
``<dataset>_unconditional``. Nobody who can read the broker gets more than one grant's
columns from one topic.

What is owed to whom is written down before anything is sent (the outbox,
``hub_deliveries``):

* when a batch is registered, :meth:`Outbox.queue_batch` writes one pending delivery per
  active grant on its dataset (idempotent: re-running adds nothing);
* a grant's first delivery is its *initial* one: the whole dataset as of the snapshot of
  the latest registered batch, so a subscriber can build its copy from the topic alone;
  later batches follow as batch deliveries (a batch the initial delivery already holds is
  not sent again);
* :meth:`Outbox.replay` queues a grant's batches again from a snapshot on
  (``hub publish --replay GRANT --from-snapshot ID``), read back from Iceberg.

:meth:`Outbox.send` works through each grant's queue in snapshot order under a lease (one
sender per grant at a time, so a consumer never sees an older batch after a newer one).
Each delivery reads its rows from the pinned snapshot, projects them to the grant's
columns and sends them; marking it sent, settling its batch (``published`` once nothing of
it is pending) and appending its access-log entry (action ``delivery``) commit in one
transaction. A broker outage leaves deliveries pending (``hub publish --pending`` sends
them); a revoked or expired grant (or revoked system) gets its pending deliveries
cancelled with the reason, and no new ones. Delivery is at least once: a send interrupted
half-way is sent whole again, and consumers upsert by key.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
from sqlalchemy import (
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.audit import begin_write, record_access
from catalog.deliveries.errors import DeliveryError
from catalog.deliveries.publish import (
    HEADER_BATCH_ID,
    HEADER_CONTRACT,
    HEADER_CONTRACT_VERSION,
    HEADER_GRANT_ID,
    HEADER_SNAPSHOT_ID,
    Publisher,
    ensure_topic,
    grant_topic,
)
from catalog.deliveries.queries import delivered_topics, list_deliveries
from catalog.deliveries.records import DeliveryRef, SendReport, delivery_ref
from catalog.deliveries.schema import DERIVED_KEY, derived_keys, message_key, message_schema, subscription
from catalog.metadata import (
    Batch,
    BatchStatus,
    DeliveryKind,
    DeliveryLease,
    DeliveryStatus,
    Grant,
    OutboxDelivery,
    System,
    utcnow,
)
from catalog.sharing import GrantRef, SharingError, china_day, grant_ref, list_grants
from catalog.tables import BATCH_PROPERTY
from schemas.contract import BATCH_ID_COLUMN, Contract, load_contract
from schemas.errors import FatalError, HubError, TransientError

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from catalog.tables import SharedTables

UNCONDITIONAL = "unconditional"
LEASE_S = 300.0
"""How long a sender holds a grant's queue without renewing: far longer than one record
batch takes to send (renewed after each), short enough that a crashed sender's grants are
picked up again within minutes."""
LEASE_WAIT_S = 30.0
"""How long a sender waits for another one to finish a grant's queue before leaving it to
that one (which sends whatever is pending when it is done)."""
_RENEW_S = 30.0
_DONE = (BatchStatus.REGISTERED, BatchStatus.PUBLISHED)

Progress = Callable[[int], None]
T = TypeVar("T")


# -- tables -----------------------------------------------------------------------------------


# -- what callers get -------------------------------------------------------------------------


# -- message schema ---------------------------------------------------------------------------


# -- reading ----------------------------------------------------------------------------------


# -- the outbox -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Where one delivery's rows come from and how they are keyed."""

    table: str
    snapshot_id: int
    """Snapshot of ``table`` read (the view's own for a view)."""
    dataset_snapshot: int
    """The dataset snapshot that stands for it: in the headers and the access log."""
    fields: tuple[str, ...]
    key_field: str
    row_filter_batch: str | None


_KEY = "_hub_key"


class Outbox:
    """Queue and send the deliveries of one hub (metadata store, shared tables, broker)."""

    def __init__(
        self,
        store: MetadataStore,
        tables: SharedTables,
        *,
        bootstrap: str,
        topic_prefix: str = "hub.",
        request_timeout_ms: int = 15_000,
        partitions: int = 3,
        lease_s: float = LEASE_S,
        lease_wait_s: float = LEASE_WAIT_S,
    ) -> None:
        self.store = store
        self.tables = tables
        self.bootstrap = bootstrap
        self.topic_prefix = topic_prefix
        self.request_timeout_ms = request_timeout_ms
        self.partitions = partitions
        self.lease_s = lease_s
        self.lease_wait_s = lease_wait_s
        self.owner = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._topics: set[str] = set()

    # -- queueing ---------------------------------------------------------------------------

    def queue_batch(self, batch_id: str) -> list[DeliveryRef]:
        """Write a registered batch's deliveries, one per active grant on its dataset.

        A grant with no delivery yet gets its initial one, pinned at this batch's snapshot;
        a grant whose initial delivery is pinned at this snapshot or a later one gets
        nothing (it holds these rows already). Idempotent. Returns what it wrote. A batch
        left owing nothing is marked ``published``.
        """
        batch = self.store.get_batch(batch_id)
        if batch.snapshot_id is None or batch.status not in _DONE:
            raise FatalError(
                f"batch {batch_id} is not registered (status {batch.status}): nothing to publish"
            )
        sequence = self._sequence(batch.dataset, int(batch.snapshot_id))
        grants = sorted(list_grants(self.store, dataset=batch.dataset), key=lambda g: g.id)

        def work(session: Session) -> list[DeliveryRef]:
            made: list[DeliveryRef] = []
            for grant in grants:
                initial = self._once(session, grant.id, "initial")
                if initial is None:
                    made.append(self._add(session, grant, DeliveryKind.INITIAL, batch, sequence, "initial"))
                elif (
                    initial.sequence < sequence and self._once(session, grant.id, f"batch:{batch.id}") is None
                ):
                    made.append(
                        self._add(session, grant, DeliveryKind.BATCH, batch, sequence, f"batch:{batch.id}")
                    )
            _settle(session, batch.id)
            return made

        return self._write(work)

    def queue_registered(self, dataset: str | None = None) -> list[DeliveryRef]:
        """Queue every batch (of ``dataset``) still ``registered``, e.g. run with ``--no-publish``
        or whose publish step never ran, oldest first."""
        query = (
            select(Batch.id)
            .where(Batch.status == BatchStatus.REGISTERED, Batch.snapshot_id.is_not(None))
            .order_by(Batch.registered_at, Batch.id)
        )
        if dataset is not None:
            query = query.where(Batch.dataset == dataset)
        with self.store.session() as session:
            batch_ids = list(session.scalars(query))
        return [d for batch_id in batch_ids for d in self.queue_batch(batch_id)]

    def queue_initials(self, dataset: str | None = None) -> list[DeliveryRef]:
        """Give each active grant without a delivery its initial one, pinned at the latest
        registered batch of its dataset (nothing while the dataset has none)."""
        grants = list_grants(self.store, dataset=dataset)
        with self.store.session() as session:
            served = set(
                session.scalars(select(OutboxDelivery.grant_id).where(OutboxDelivery.once == "initial"))
            )
        made: list[DeliveryRef] = []
        for grant in sorted(grants, key=lambda g: g.id):
            if grant.id in served:
                continue
            latest = self._latest_registered(grant.dataset)
            if latest is None:
                continue
            sequence = self._sequence(grant.dataset, int(latest.snapshot_id or 0))

            def work(
                session: Session, grant: GrantRef = grant, latest: Batch = latest, sequence: int = sequence
            ) -> None:
                if self._once(session, grant.id, "initial") is None:
                    made.append(self._add(session, grant, DeliveryKind.INITIAL, latest, sequence, "initial"))

            self._write(work)
        return made

    def replay(self, grant_id: int, from_snapshot: int, *, actor: str | None = None) -> list[DeliveryRef]:
        """Queue the rows of every batch of the grant's dataset registered since
        ``from_snapshot`` (that snapshot's own batch included), with the grant's columns.

        Refused, and recorded, for a grant that is unknown, revoked or expired (or whose
        system is revoked).
        """
        with self.store.session() as session:
            row = session.get(Grant, grant_id)
            grant = grant_ref(row) if row is not None else None
            reason = _stopped(session, grant_id)
        if grant is None or reason is not None:
            message = (
                f"{reason}; nothing is replayed" if grant is not None else f"no grant {grant_id} is recorded"
            )
            self._refused(grant, grant_id, actor, message, from_snapshot)
            raise SharingError(message)
        registered = self._registered(grant.dataset)
        start = next((b for b in registered if b.snapshot_id == from_snapshot), None)
        if start is None:
            raise DeliveryError(
                f"snapshot {from_snapshot} is not the snapshot of a registered batch of dataset "
                f"{grant.dataset}; `hub lineage {grant.dataset}` lists them"
            )
        sequences = self._sequences(grant.dataset)
        first = self._sequence(grant.dataset, from_snapshot, sequences)
        chosen = sorted(
            (b for b in registered if sequences.get(int(b.snapshot_id or 0), -1) >= first),
            key=lambda b: (sequences[int(b.snapshot_id or 0)], b.id),
        )

        def work(session: Session) -> list[DeliveryRef]:
            return [
                self._add(
                    session,
                    grant,
                    DeliveryKind.REPLAY,
                    batch,
                    sequences[int(batch.snapshot_id or 0)],
                    None,
                    requested_by=actor,
                    from_snapshot=from_snapshot,
                )
                for batch in chosen
            ]

        return self._write(work)

    def grants_owed(self, batch_id: str | None = None) -> list[int]:
        """Grants with pending deliveries (of ``batch_id``, if given)."""
        query = (
            select(OutboxDelivery.grant_id).where(OutboxDelivery.status == DeliveryStatus.PENDING).distinct()
        )
        if batch_id is not None:
            query = query.where(OutboxDelivery.batch_id == batch_id)
        with self.store.session() as session:
            return sorted(session.scalars(query))

    # -- sending ----------------------------------------------------------------------------

    def send(
        self, *, grants: Iterable[int] | None = None, progress: Callable[[str, int], None] | None = None
    ) -> SendReport:
        """Send the pending deliveries of ``grants`` (default: every grant owed one).

        Each grant's queue is worked through whole and in snapshot order, under its lease.
        A broker outage stops everything at once (:class:`~catalog.deliveries.publish.BrokerUnreachableError`,
        deliveries stay pending); a delivery failing for another reason stays pending with
        its error, its grant's later ones wait behind it, and other grants go on.
        """
        report = SendReport()
        wanted = sorted(set(grants)) if grants is not None else self.grants_owed()
        if not wanted:
            return report
        with Publisher(self.bootstrap, request_timeout_ms=self.request_timeout_ms) as publisher:
            for grant_id in wanted:
                self._drain(grant_id, publisher, report, progress)
        return report

    def _drain(
        self, grant_id: int, publisher: Any, report: SendReport, progress: Callable[[str, int], None] | None
    ) -> None:
        for _ in range(3):
            if not self._acquire(grant_id):
                report.busy.append(grant_id)
                return
            failed = False
            try:
                while not failed:
                    pending = self._pending(grant_id)
                    if not pending:
                        break
                    for item in pending:
                        outcome = self._deliver(item, publisher, report, progress)
                        if outcome != "sent":
                            failed = outcome == "failed"
                            break
            finally:
                self._release(grant_id)
            # Another sender may have queued for this grant and gone while the lease was held.
            if failed or not self._pending(grant_id):
                return

    def _deliver(
        self,
        item: DeliveryRef,
        publisher: Any,
        report: SendReport,
        progress: Callable[[str, int], None] | None,
    ) -> str:
        """Send one delivery: ``sent``, ``cancelled`` (with the grant's other pending ones) or ``failed``."""
        with self.store.session() as session:
            reason = _stopped(session, item.grant_id)
            row = session.get(Grant, item.grant_id)
            assert row is not None
            grant = grant_ref(row)
        if reason is not None:
            report.cancelled += self._cancel(item.grant_id, reason)
            return "cancelled"
        try:
            contract = load_contract(item.dataset)
            plan = self._plan(item, grant, contract)
            if item.topic not in self._topics:
                ensure_topic(
                    self.bootstrap,
                    item.topic,
                    self.partitions,
                    request_timeout_ms=self.request_timeout_ms,
                    batch_id=item.batch_id,
                )
                self._topics.add(item.topic)
            rows = self.tables.scan(
                plan.table,
                snapshot_id=plan.snapshot_id,
                batch_id=plan.row_filter_batch,
                selected_fields=plan.fields,
            )
            if plan.key_field == _KEY:
                rows = _with_derived_key(rows, grant.id, contract.published_keys[0])
            renewed = time.monotonic()

            def sent_so_far(count: int) -> None:
                nonlocal renewed
                if time.monotonic() - renewed > _RENEW_S:
                    self._renew(item.grant_id)
                    renewed = time.monotonic()
                if progress is not None:
                    progress(f"grant {item.grant_id}", count)

            messages = publisher.publish(
                item.topic,
                rows,
                key_field=plan.key_field,
                headers={
                    HEADER_CONTRACT: contract.name,
                    HEADER_CONTRACT_VERSION: contract.version,
                    HEADER_SNAPSHOT_ID: str(plan.dataset_snapshot),
                    HEADER_GRANT_ID: str(item.grant_id),
                },
                value_columns=grant.columns,
                row_headers={HEADER_BATCH_ID: BATCH_ID_COLUMN},
                progress=sent_so_far,
                batch_id=item.batch_id,
            )
        except TransientError as exc:
            # The broker or the catalogue is away: everything waits, nothing is lost.
            self._failed(item, str(exc))
            raise
        except HubError as exc:
            message = f"delivery {item.id} (grant {item.grant_id}, batch {item.batch_id}): {exc}"
            self._failed(item, message)
            report.failed.append((item, message))
            return "failed"
        report.sent.append(self._sent(item, grant, plan, messages))
        return "sent"

    def _plan(self, item: DeliveryRef, grant: GrantRef, contract: Contract) -> _Plan:
        """Where the rows come from: the delivery's own snapshot, except for a batch queued after
        the grant already received a newer one (two sources of one dataset registering at
        once): its rows are then read as still current at that newer snapshot, so no record
        goes back to an older version on the subscriber's side."""
        key = contract.published_keys[0]
        read = item
        if item.kind is DeliveryKind.BATCH:
            newest = self._newest_sent(item.grant_id)
            if newest is not None and newest.sequence > item.sequence:
                read = newest
        table, snapshot_id = item.dataset, read.snapshot_id
        if grant.level == UNCONDITIONAL and contract.quasi_identifiers:
            table = f"{item.dataset}_{UNCONDITIONAL}"
            snapshot_id = self._view_snapshot(table, read.batch_id)
        key_field = key if key in grant.columns else _KEY
        fields = tuple(dict.fromkeys([key, BATCH_ID_COLUMN, *grant.columns]))
        present = {f.name for f in self.tables.load(table).schema().fields}
        missing = [name for name in fields if name not in present]
        if missing:
            raise DeliveryError(
                f"grant {grant.id}: column(s) {', '.join(missing)} are not in table {table}; "
                "the grant names columns the dataset no longer publishes"
            )
        return _Plan(
            table=table,
            snapshot_id=snapshot_id,
            dataset_snapshot=read.snapshot_id,
            fields=fields,
            key_field=key_field,
            row_filter_batch=None if item.kind is DeliveryKind.INITIAL else item.batch_id,
        )

    # -- bookkeeping ------------------------------------------------------------------------

    def _sent(self, item: DeliveryRef, grant: GrantRef, plan: _Plan, messages: int) -> DeliveryRef:
        """Mark a delivery sent, settle its batch and append its access-log entry, in one transaction."""

        def work(session: Session) -> DeliveryRef:
            now = utcnow()
            changed = session.execute(
                update(OutboxDelivery)
                .where(OutboxDelivery.id == item.id, OutboxDelivery.status == DeliveryStatus.PENDING)
                .values(
                    status=DeliveryStatus.SENT,
                    sent_at=now,
                    messages=messages,
                    source_table=plan.table,
                    source_snapshot_id=plan.snapshot_id,
                    attempts=OutboxDelivery.attempts + 1,
                    error=None,
                )
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                raise FatalError(
                    f"delivery {item.id} changed while it was being sent; its grant's lease was lost"
                )
            detail: dict[str, Any] = {
                "grant": grant.id,
                "delivery": item.id,
                "kind": item.kind.value,
                "batch": item.batch_id,
                "topic": item.topic,
            }
            if plan.table != item.dataset:
                detail |= {"table": plan.table, "table_snapshot": plan.snapshot_id}
            if plan.dataset_snapshot != item.snapshot_id:
                detail["batch_snapshot"] = item.snapshot_id
            if item.from_snapshot_id is not None:
                detail["replay_from"] = item.from_snapshot_id
            seq = record_access(
                session,
                action="delivery",
                outcome="allowed",
                actor=item.requested_by,
                system=grant.system,
                department=grant.department,
                dataset=grant.dataset,
                columns=grant.columns,
                purpose=grant.purpose,
                rows=messages,
                snapshot_id=plan.dataset_snapshot,
                detail=detail,
            )
            row = session.get(OutboxDelivery, item.id)
            assert row is not None
            row.access_seq = seq
            if item.kind is not DeliveryKind.REPLAY:
                _settle(session, item.batch_id)
            session.flush()
            return delivery_ref(row)

        return self._write(work)

    def _failed(self, item: DeliveryRef, message: str) -> None:
        with self.store.session() as session:
            session.execute(
                update(OutboxDelivery)
                .where(OutboxDelivery.id == item.id, OutboxDelivery.status == DeliveryStatus.PENDING)
                .values(attempts=OutboxDelivery.attempts + 1, error=message)
            )

    def _cancel(self, grant_id: int, reason: str) -> list[DeliveryRef]:
        def work(session: Session) -> list[DeliveryRef]:
            now = utcnow()
            rows = list(
                session.scalars(
                    select(OutboxDelivery).where(
                        OutboxDelivery.grant_id == grant_id, OutboxDelivery.status == DeliveryStatus.PENDING
                    )
                )
            )
            for row in rows:
                row.status, row.cancelled_at, row.reason = DeliveryStatus.CANCELLED, now, reason
            session.flush()
            for batch_id in {r.batch_id for r in rows if r.kind is not DeliveryKind.REPLAY}:
                _settle(session, batch_id)
            return [delivery_ref(r) for r in rows]

        return self._write(work)

    def _refused(
        self, grant: GrantRef | None, grant_id: int, actor: str | None, message: str, from_snapshot: int
    ) -> None:
        record_access(
            self.store,
            action="delivery",
            outcome="denied",
            actor=actor,
            system=grant.system if grant else None,
            department=grant.department if grant else None,
            dataset=grant.dataset if grant else None,
            columns=grant.columns if grant else (),
            purpose=grant.purpose if grant else None,
            reason=message,
            detail={"grant": grant_id, "kind": DeliveryKind.REPLAY.value, "replay_from": from_snapshot},
        )

    def _add(
        self,
        session: Session,
        grant: GrantRef,
        kind: DeliveryKind,
        batch: Batch,
        sequence: int,
        once: str | None,
        *,
        requested_by: str | None = None,
        from_snapshot: int | None = None,
    ) -> DeliveryRef:
        row = OutboxDelivery(
            grant_id=grant.id,
            dataset=grant.dataset,
            kind=kind,
            batch_id=batch.id,
            snapshot_id=int(batch.snapshot_id or 0),
            sequence=sequence,
            once=once,
            status=DeliveryStatus.PENDING,
            topic=grant_topic(self.topic_prefix, grant.id),
            columns=json.dumps(list(grant.columns), ensure_ascii=False),
            requested_by=requested_by,
            from_snapshot_id=from_snapshot,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return delivery_ref(row)

    def _newest_sent(self, grant_id: int) -> DeliveryRef | None:
        """The grant's latest delivery in snapshot order among those sent (replays aside)."""
        query = (
            select(OutboxDelivery)
            .where(
                OutboxDelivery.grant_id == grant_id,
                OutboxDelivery.status == DeliveryStatus.SENT,
                OutboxDelivery.kind != DeliveryKind.REPLAY,
            )
            .order_by(OutboxDelivery.sequence.desc(), OutboxDelivery.id.desc())
            .limit(1)
        )
        with self.store.session() as session:
            row = session.scalars(query).first()
            return delivery_ref(row) if row is not None else None

    @staticmethod
    def _once(session: Session, grant_id: int, once: str) -> OutboxDelivery | None:
        query = select(OutboxDelivery).where(OutboxDelivery.grant_id == grant_id, OutboxDelivery.once == once)
        return session.scalars(query).first()

    def _pending(self, grant_id: int) -> list[DeliveryRef]:
        query = (
            select(OutboxDelivery)
            .where(OutboxDelivery.grant_id == grant_id, OutboxDelivery.status == DeliveryStatus.PENDING)
            .order_by(OutboxDelivery.sequence, OutboxDelivery.id)
        )
        with self.store.session() as session:
            return [delivery_ref(row) for row in session.scalars(query)]

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one write transaction (the SQLite write lock taken first); a
        concurrent writer adding the same delivery makes it run again, seeing that one."""
        for attempt in range(3):
            try:
                with self.store.session() as session:
                    begin_write(session)
                    return work(session)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -- leases -----------------------------------------------------------------------------

    def _acquire(self, grant_id: int) -> bool:
        deadline = time.monotonic() + self.lease_wait_s
        while not self._try_lease(grant_id):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def _try_lease(self, grant_id: int) -> bool:
        now = utcnow()
        until = now + timedelta(seconds=self.lease_s)
        with self.store.session() as session:
            taken = session.execute(
                update(DeliveryLease)
                .where(
                    DeliveryLease.grant_id == grant_id,
                    or_(DeliveryLease.until < now, DeliveryLease.owner == self.owner),
                )
                .values(owner=self.owner, until=until)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return True
            if session.get(DeliveryLease, grant_id) is not None:
                return False
        try:
            with self.store.session() as session:
                session.add(DeliveryLease(grant_id=grant_id, owner=self.owner, until=until))
        except IntegrityError:
            return False
        return True

    def _renew(self, grant_id: int) -> None:
        until = utcnow() + timedelta(seconds=self.lease_s)
        with self.store.session() as session:
            kept = session.execute(
                update(DeliveryLease)
                .where(DeliveryLease.grant_id == grant_id, DeliveryLease.owner == self.owner)
                .values(until=until)
            )
            if kept.rowcount != 1:  # type: ignore[attr-defined]
                raise FatalError(
                    f"another sender took over the deliveries of grant {grant_id} (this one's lease "
                    "expired); it sends them again from the start"
                )

    def _release(self, grant_id: int) -> None:
        with self.store.session() as session:
            session.execute(
                delete(DeliveryLease).where(
                    DeliveryLease.grant_id == grant_id, DeliveryLease.owner == self.owner
                )
            )

    # -- the catalogue ----------------------------------------------------------------------

    def _sequences(self, dataset: str) -> dict[int, int]:
        """Snapshot id -> its place in the table's history (Iceberg sequence number)."""
        table = self.tables.load(dataset)
        version = int(getattr(table.metadata, "format_version", 2))
        return {
            s.snapshot_id: int(s.sequence_number if version >= 2 and s.sequence_number else s.timestamp_ms)
            for s in table.metadata.snapshots
        }

    def _sequence(self, dataset: str, snapshot_id: int, known: dict[int, int] | None = None) -> int:
        sequences = known if known is not None else self._sequences(dataset)
        if snapshot_id not in sequences:
            raise DeliveryError(f"dataset {dataset} has no snapshot {snapshot_id} any more (expired?)")
        return sequences[snapshot_id]

    def _view_snapshot(self, table_name: str, batch_id: str) -> int:
        """The snapshot of a derived view (``<dataset>_unconditional``) that a batch's refresh made."""
        table = self.tables.load(table_name)
        made = [
            s
            for s in table.metadata.snapshots
            if s.summary is not None and s.summary.get(BATCH_PROPERTY) == batch_id
        ]
        if not made:
            raise DeliveryError(f"view {table_name} has no snapshot made by batch {batch_id} (expired?)")
        return max(made, key=lambda s: (s.sequence_number or 0, s.timestamp_ms)).snapshot_id

    def _registered(self, dataset: str) -> list[Batch]:
        query = select(Batch).where(
            Batch.dataset == dataset, Batch.status.in_(_DONE), Batch.snapshot_id.is_not(None)
        )
        with self.store.session() as session:
            return list(session.scalars(query.order_by(Batch.registered_at, Batch.id)))

    def _latest_registered(self, dataset: str) -> Batch | None:
        registered = self._registered(dataset)
        if not registered:
            return None
        sequences = self._sequences(dataset)
        return max(registered, key=lambda b: sequences.get(int(b.snapshot_id or 0), -1))


def _stopped(session: Session, grant_id: int, now: datetime | None = None) -> str | None:
    """Why a grant gives nothing any more (revoked, expired, system revoked), or None."""
    row = session.get(Grant, grant_id)
    if row is None:
        return f"no grant {grant_id} is recorded"
    grant = grant_ref(row)
    where = f"grant {grant.id} of system {grant.system} for {grant.dataset}"
    if grant.revoked_at is not None:
        return f"{where} was revoked on {china_day(grant.revoked_at)}: {grant.revoke_reason}"
    if grant.expires_at <= (now or utcnow()):
        return f"{where} expired on {china_day(grant.expires_at)}"
    system = session.get(System, grant.system)
    if system is not None and system.revoked_at is not None:
        return f"{where}: the system was revoked on {china_day(system.revoked_at)}: {system.revoke_reason}"
    return None


def _settle(session: Session, batch_id: str) -> None:
    """A batch owing nothing more is ``published``, with the messages its deliveries sent."""
    own = (OutboxDelivery.batch_id == batch_id, OutboxDelivery.kind != DeliveryKind.REPLAY)
    counts = dict(
        session.execute(
            select(OutboxDelivery.status, func.count()).where(*own).group_by(OutboxDelivery.status)
        ).all()
    )
    if counts.get(DeliveryStatus.PENDING):
        return
    # A batch owing nothing at all is published with no messages; one published before
    # the outbox (to the old dataset topic) keeps its count.
    states = (BatchStatus.REGISTERED,) if not counts else _DONE
    messages = session.scalar(
        select(func.coalesce(func.sum(OutboxDelivery.messages), 0)).where(
            *own, OutboxDelivery.status == DeliveryStatus.SENT
        )
    )
    now = utcnow()
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.status.in_(states))
        .values(
            status=BatchStatus.PUBLISHED,
            messages_published=int(messages or 0),
            published_at=func.coalesce(Batch.published_at, now),
            error=None,
        )
    )


def _with_derived_key(batches: Iterable[pa.RecordBatch], grant_id: int, key: str) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield batch.append_column(_KEY, derived_keys(grant_id, batch.column(key)))


__all__ = [
    "DERIVED_KEY",
    "DeliveryError",
    "DeliveryKind",
    "DeliveryLease",
    "DeliveryRef",
    "DeliveryStatus",
    "Outbox",
    "OutboxDelivery",
    "SendReport",
    "delivered_topics",
    "derived_keys",
    "list_deliveries",
    "message_key",
    "message_schema",
    "subscription",
]
