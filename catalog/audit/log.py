"""The tamper-evident access log: who read or was refused what, when and why.

Every query, verification, delivery, decryption, sharing decision and refusal appends one
:class:`AccessEntry`. Entries are numbered without gaps (``seq``) and chained twice:

* ``entry_hash`` = SHA-256 of the entry's canonical serialisation, which includes
  ``prev_hash`` (the previous entry's ``entry_hash``): anyone holding the entries can
  recompute this chain;
* ``entry_mac`` = HMAC-SHA256, under the audit MAC key (keyring kind ``audit``), of the same
  serialisation plus the previous entry's ``entry_mac``: only the hub can make it, so an
  entry cannot be edited, forged or re-chained without the key, which consumers never hold.

The canonical serialisation is the JSON object of the entry's fields (see
:func:`entry_document`) with sorted keys, no whitespace (``","`` and ``":"``), non-ASCII
characters as themselves, UTF-8, and the time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC.
``columns`` and ``detail`` enter as the JSON text stored in the row.

A chain-head row (:class:`AccessHead`) holds the newest entry, the newest checkpoint and the
first entry still kept, under its own MAC, so removing entries from the end is detected even
between checkpoints. Every ``audit.checkpoint_every`` entries, on demand and at every purge a
:class:`AccessCheckpoint` records the head, the first entry kept and a link to the previous
checkpoint, signed with Ed25519 (keyring kind ``audit-sign``); ``hub audit public-key`` gives
auditors the key to check checkpoints without any secret.

Appends are serialised across processes: on PostgreSQL by ``SELECT ... FOR UPDATE`` on the
chain-head row, on SQLite by ``BEGIN IMMEDIATE`` (the database write lock). Nothing here
updates or deletes an entry, except :meth:`AccessLog.purge` removing the oldest ones past
retention, which anchors the new first entry in a signed checkpoint.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import (
    case,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Session

from catalog.audit.chain import (
    WALK_CHUNK,
    CheckpointInfo,
    anchor_of,
    begin_write,
    checkpoint_info,
    day_of,
    entry_chunks,
    entry_row,
    lock_head,
    save_head,
    with_defaults,
    write_checkpoint,
)
from catalog.audit.documents import (
    HEAD_ID,
    entry_hash,
    entry_mac,
    stamp,
)
from catalog.audit.errors import AuditIntegrityError, RetentionError
from catalog.audit.fields import (
    Outcome,
    entry_fields,
)
from catalog.audit.keys import AuditKeys, load_keys
from catalog.audit.reports import Filters, Group, Report
from catalog.audit.verify import (
    ChainWalker,
    Problem,
    Verification,
    check_checkpoints,
    check_head,
    unique_problems,
)
from catalog.metadata import (
    AccessCheckpoint,
    AccessEntry,
    AccessHead,
    utcnow,
)
from catalog.settings import current

ACTIONS: Mapping[str, str] = {
    "query": "a consumer system's query through the gateway or API",
    "verify": "an identity or licence verification (核验)",
    "delivery": "records delivered to a subscription",
    "decryption": "a steward's use of `hub decrypt`",
    "request": "a department asks for a dataset",
    "approve": "a steward approves a request",
    "deny": "a steward denies a request",
    "ask": "a steward asks for more material",
    "grant": "a grant comes into force",
    "revoke": "a grant is revoked",
    "refusal": "an attempt refused before it reached a dataset (token, rate, sandbox)",
    "audit.verify": "an auditor verifies the log",
    "audit.report": "an auditor reads a report of the log",
    "audit.export": "an auditor exports the log",
    "audit.purge": "entries past retention are purged",
    "audit.checkpoint": "a checkpoint is written on demand",
}
"""The actions the hub writes. Others may be added: any short lower-case name is accepted."""


# -- tables ------------------------------------------------------------------------------------


EXPORT_COLUMNS: tuple[str, ...] = tuple(c.key for c in AccessEntry.__table__.columns)
"""Columns of ``hub audit export``: every field of an entry, in table order."""


def _export_schema() -> Any:
    import pyarrow as pa

    types = {
        "seq": pa.int64(),
        "at": pa.timestamp("us", tz="UTC"),
        "rows": pa.int64(),
        "snapshot_id": pa.int64(),
        "key_version": pa.int32(),
    }
    return pa.schema([pa.field(c, types.get(c, pa.string())) for c in EXPORT_COLUMNS])


# -- canonical documents -----------------------------------------------------------------------


# -- keys --------------------------------------------------------------------------------------


# -- entries -----------------------------------------------------------------------------------


# -- the log -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    before: date
    purged: int
    first_seq: int | None
    checkpoint: int | None
    seq: int
    """The ``audit.purge`` entry that records the purge."""


class AccessLog:
    """Append, verify, checkpoint, purge and read the access log of one metadata store.

    ``keys`` defaults to the configured keyring's audit keys (so a rotation is picked up
    without a restart); ``checkpoint_every`` and ``retention_days`` default to
    ``settings.audit``.
    """

    def __init__(
        self,
        store: Any,
        *,
        keys: AuditKeys | None = None,
        checkpoint_every: int | None = None,
        retention_days: int | None = None,
    ) -> None:
        self.store = store
        self._keys = keys
        self._checkpoint_every = checkpoint_every
        self._retention_days = retention_days

    @property
    def keys(self) -> AuditKeys:
        """The keys given, else the configured keyring's (re-read when the file changes)."""
        return self._keys if self._keys is not None else load_keys()

    @property
    def checkpoint_every(self) -> int:
        if self._checkpoint_every is None:
            self._checkpoint_every = current().audit.checkpoint_every
        return self._checkpoint_every

    @property
    def retention_days(self) -> int:
        if self._retention_days is None:
            self._retention_days = current().audit.retention_days
        return self._retention_days

    # -- appending -----------------------------------------------------------------------------

    def append(
        self,
        *,
        action: str,
        outcome: Outcome,
        actor: str | None = None,
        system: str | None = None,
        department: str | None = None,
        dataset: str | None = None,
        columns: Sequence[str] = (),
        purpose: str | None = None,
        rows: int | None = None,
        snapshot_id: int | None = None,
        reason: str | None = None,
        client: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one entry; see :func:`record_access`."""
        entry = entry_fields(
            action=action,
            outcome=outcome,
            actor=actor,
            system=system,
            department=department,
            dataset=dataset,
            columns=columns,
            purpose=purpose,
            rows=rows,
            snapshot_id=snapshot_id,
            reason=reason,
            client=client,
            detail=detail,
        )
        return self.append_fields([entry])[0]

    def append_many(self, entries: Iterable[Mapping[str, Any]]) -> list[int]:
        """Append several entries in one transaction (one lock, one commit), in order.

        Each mapping takes the keyword arguments of :func:`record_access`.
        """
        return self.append_fields([entry_fields(**with_defaults(e)) for e in entries])

    def append_fields(self, entries: Sequence[dict[str, Any]]) -> list[int]:
        if not entries:
            return []
        keys, every = self.keys, self.checkpoint_every
        with self._write() as session:
            return self.append_in(session, entries, keys, checkpoint_every=every)

    @staticmethod
    def append_in(
        session: Session,
        entries: Sequence[dict[str, Any]],
        keys: AuditKeys,
        *,
        checkpoint_every: int | None = None,
    ) -> list[int]:
        """Append normalised entries inside an open transaction (taking the append lock)."""
        if checkpoint_every is None:
            checkpoint_every = current().audit.checkpoint_every
        head = lock_head(session)
        mac_key, version = keys.mac_key(), keys.mac_version
        rows: list[dict[str, Any]] = []
        numbers: list[int] = []
        for fields in entries:
            now = utcnow()
            row = {**fields, "seq": head["seq"] + 1, "at": now, "key_version": version}
            row["prev_hash"] = head["entry_hash"]
            row["entry_hash"] = entry_hash(row)
            row["entry_mac"] = entry_mac(mac_key, row, head["entry_mac"])
            rows.append(row)
            numbers.append(row["seq"])
            head.update(seq=row["seq"], entry_hash=row["entry_hash"], entry_mac=row["entry_mac"])
            if row["seq"] % checkpoint_every == 0:
                session.execute(insert(AccessEntry), rows)
                rows = []
                write_checkpoint(session, head, keys, "periodic", now)
        if rows:
            session.execute(insert(AccessEntry), rows)
        save_head(session, head, keys)
        return numbers

    def checkpoint(self, *, actor: str | None = None, client: str | None = None) -> CheckpointInfo:
        """Write a signed checkpoint of the chain as it is now, and record that it was asked for."""
        keys, every = self.keys, self.checkpoint_every
        with self._write() as session:
            head = lock_head(session)
            number = write_checkpoint(session, head, keys, "demand", utcnow())
            save_head(session, head, keys)
            entry = entry_fields(
                **with_defaults(
                    {
                        "action": "audit.checkpoint",
                        "outcome": "allowed",
                        "actor": actor,
                        "client": client,
                        "detail": {"checkpoint": number},
                    }
                )
            )
            self.append_in(session, [entry], keys, checkpoint_every=every)
        return next(c for c in self.checkpoints() if c.number == number)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self.store.session() as session:
            begin_write(session)
            yield session

    # -- reading -------------------------------------------------------------------------------

    def head(self) -> AccessHead | None:
        with self.store.session() as session:
            return session.get(AccessHead, HEAD_ID)

    def checkpoints(self) -> list[CheckpointInfo]:
        with self.store.session() as session:
            found = session.execute(select(AccessCheckpoint.__table__).order_by(AccessCheckpoint.number))
            return [checkpoint_info(dict(r._mapping)) for r in found]

    def entries(self, filters: Filters | None = None, *, chunk: int = WALK_CHUNK) -> Iterator[dict[str, Any]]:
        """Entries in sequence order, as dicts, read in chunks (never all in memory)."""
        clauses = (filters or Filters()).where()
        after = -(2**63)
        while True:
            with self.store.session() as session:
                query = (
                    select(AccessEntry.__table__)
                    .where(AccessEntry.seq > after, *clauses)
                    .order_by(AccessEntry.seq)
                    .limit(chunk)
                )
                batch = [dict(r._mapping) for r in session.execute(query)]
            yield from batch
            if len(batch) < chunk:
                return
            after = batch[-1]["seq"]

    def count(self, filters: Filters | None = None) -> int:
        with self.store.session() as session:
            query = select(func.count()).select_from(AccessEntry).where(*(filters or Filters()).where())
            return int(session.execute(query).scalar_one())

    # -- verification --------------------------------------------------------------------------

    def verify(self, *, public_keys: Sequence[Ed25519PublicKey] | None = None) -> Verification:
        """Walk the chain, the head and every checkpoint; name what is wrong, first entry first.

        With the keyring (the default) every MAC is checked too. With ``public_keys`` only
        (an auditor without the master key) the hash chain and the checkpoint signatures are
        checked; entries after the newest checkpoint are then protected only by the hash chain.
        """
        macs = public_keys is None
        keys = self.keys if macs else None
        verifiers: list[Ed25519PublicKey] = list(public_keys or [])
        by_version = keys.public_keys() if keys is not None else {}
        walker = ChainWalker(keys)

        with self._read() as session:
            head = entry_row(session, select(AccessHead.__table__).where(AccessHead.id == HEAD_ID))
            checkpoints = [
                dict(r._mapping)
                for r in session.execute(select(AccessCheckpoint.__table__).order_by(AccessCheckpoint.number))
            ]
        problems: list[Problem] = []
        anchor = anchor_of(head, checkpoints)
        walker.start(anchor, {c["seq"] for c in checkpoints})
        with self.store.session() as session:
            stray = session.execute(
                select(AccessEntry.seq).where(AccessEntry.seq < anchor[0]).order_by(AccessEntry.seq).limit(1)
            ).scalar()
        if stray is not None:
            problems.append(
                Problem(
                    f"entry {stray} precedes the first entry the log keeps ({anchor[0]}): it was inserted",
                    seq=stray,
                )
            )
        limit = head["seq"] if head is not None else None
        if not problems:
            for row in self._walk(anchor[0], limit):
                if not walker.take(row):
                    break
        # The tail, head and checkpoints as they are now, read in one consistent transaction.
        with self._read() as session:
            head_now = entry_row(session, select(AccessHead.__table__).where(AccessHead.id == HEAD_ID))
            if head is not None and head_now is not None and head_now["first_seq"] != head["first_seq"]:
                raise AuditIntegrityError(
                    "the access log was purged while it was being verified: run verify again"
                )
            head = head_now
            checkpoints = [
                dict(r._mapping)
                for r in session.execute(select(AccessCheckpoint.__table__).order_by(AccessCheckpoint.number))
            ]
            walker.want({c["seq"] for c in checkpoints})
            if walker.problem is None and not problems:
                for row in entry_chunks(session, walker.next_seq):
                    if head is None or row["seq"] > head["seq"]:
                        walker.beyond(row, head)
                        break
                    if not walker.take(row):
                        break
            # Checkpoints written meanwhile may name entries walked before they were read.
            unseen = [
                c["seq"]
                for c in checkpoints
                if c["seq"] not in walker.seen and anchor[0] <= c["seq"] < walker.next_seq
            ]
            if unseen and walker.problem is None:
                found = session.execute(
                    select(AccessEntry.seq, AccessEntry.entry_hash, AccessEntry.entry_mac).where(
                        AccessEntry.seq.in_(unseen)
                    )
                )
                walker.seen.update({int(r.seq): (r.entry_hash, r.entry_mac) for r in found})
        if walker.problem is not None:
            problems.append(walker.problem)
        elif not problems:
            problems.extend(walker.finish(head))
        problems.extend(check_head(head, checkpoints, keys, walker))
        problems.extend(
            check_checkpoints(checkpoints, walker, by_version if macs else None, verifiers, macs=macs)
        )
        problems.sort(key=lambda p: (p.seq is None, p.seq if p.seq is not None else 0))
        last_cp = checkpoints[-1]["seq"] if checkpoints else None
        return Verification(
            entries=walker.count,
            first_seq=walker.first,
            last_seq=walker.last,
            checkpoints=len(checkpoints),
            last_checkpoint_seq=last_cp,
            macs_checked=macs,
            problems=tuple(unique_problems(problems)),
        )

    def _walk(self, start: int, limit: int | None) -> Iterator[dict[str, Any]]:
        after = start - 1
        while True:
            with self.store.session() as session:
                query = select(AccessEntry.__table__).where(AccessEntry.seq > after)
                if limit is not None:
                    query = query.where(AccessEntry.seq <= limit)
                batch = [
                    dict(r._mapping)
                    for r in session.execute(query.order_by(AccessEntry.seq).limit(WALK_CHUNK))
                ]
            yield from batch
            if len(batch) < WALK_CHUNK:
                return
            after = batch[-1]["seq"]

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A short transaction that sees one consistent state of head, checkpoints and tail."""
        with self.store.session() as session:
            dialect = session.get_bind().dialect.name
            if dialect == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            elif dialect == "sqlite":
                connection = session.connection()
                raw: Any = connection.connection.dbapi_connection
                if raw is not None and not raw.in_transaction:
                    connection.exec_driver_sql("BEGIN")
            yield session

    # -- retention -----------------------------------------------------------------------------

    def earliest_purge_date(self, now: datetime | None = None) -> date:
        """The latest ``--before`` date a purge accepts today."""
        return ((now or utcnow()) - timedelta(days=self.retention_days)).date()

    def purge(
        self,
        before: date,
        *,
        actor: str,
        client: str | None = None,
        now: datetime | None = None,
    ) -> PurgeResult:
        """Remove the entries older than ``before`` (UTC midnight), keeping the chain verifiable.

        Refused (and the refusal recorded) when ``before`` lies within the retention period,
        and when the log does not verify, since purging would destroy the evidence. Removes
        the longest run of oldest entries that are all older than ``before``, writes a signed
        ``purge`` checkpoint anchoring the new first entry, and records the purge as an entry.
        """
        latest = self.earliest_purge_date(now)
        if before > latest:
            reason = (
                f"entries younger than {self.retention_days} days (audit.retention_days) can never be "
                f"purged: --before must be on or before {latest.isoformat()}, not {before.isoformat()}"
            )
            self.append(
                action="audit.purge",
                outcome="denied",
                actor=actor,
                client=client,
                reason=reason,
                detail={"before": before.isoformat()},
            )
            raise RetentionError(f"purge refused: {reason} (this refusal is recorded)")
        checked = self.verify()
        if not checked.ok:
            first = checked.first_problem
            self.append(
                action="audit.purge",
                outcome="denied",
                actor=actor,
                client=client,
                reason=f"the log does not verify: {first}",
                detail={"before": before.isoformat()},
            )
            raise AuditIntegrityError(
                f"purge refused: the access log does not verify ({first}); purging could remove the "
                "evidence (this refusal is recorded)"
            )
        cutoff = datetime.combine(before, time(), tzinfo=UTC)
        keys, every = self.keys, self.checkpoint_every
        with self._write() as session:
            head = lock_head(session)
            first_young = session.execute(
                select(func.min(AccessEntry.seq)).where(AccessEntry.at >= cutoff)
            ).scalar()
            new_first = head["seq"] + 1 if first_young is None else int(first_young)
            purged = 0
            number: int | None = None
            if new_first > head["first_seq"]:
                if new_first <= head["seq"]:
                    anchor = session.execute(
                        select(AccessEntry.prev_hash).where(AccessEntry.seq == new_first)
                    ).scalar_one()
                else:
                    anchor = head["entry_hash"]
                prev_mac = session.execute(
                    select(AccessEntry.entry_mac).where(AccessEntry.seq == new_first - 1)
                ).scalar_one()
                for low in range(head["first_seq"], new_first, WALK_CHUNK * 10):
                    high = min(low + WALK_CHUNK * 10, new_first)
                    result: Any = session.execute(
                        delete(AccessEntry).where(AccessEntry.seq >= low, AccessEntry.seq < high)
                    )
                    purged += int(result.rowcount or 0)
                head.update(first_seq=new_first, first_prev_hash=anchor, first_prev_mac=prev_mac)
                number = write_checkpoint(session, head, keys, "purge", utcnow())
                save_head(session, head, keys)
            entry = entry_fields(
                **with_defaults(
                    {
                        "action": "audit.purge",
                        "outcome": "allowed",
                        "actor": actor,
                        "client": client,
                        "detail": {
                            "before": before.isoformat(),
                            "purged": purged,
                            "first_seq": new_first,
                            "checkpoint": number,
                        },
                    }
                )
            )
            (seq,) = self.append_in(session, [entry], keys, checkpoint_every=every)
        return PurgeResult(
            before=before,
            purged=purged,
            first_seq=new_first if purged else None,
            checkpoint=number,
            seq=seq,
        )

    # -- exports -------------------------------------------------------------------------------

    def export(
        self, out: Path | str, *, fmt: Literal["csv", "parquet"], filters: Filters | None = None
    ) -> int:
        """Write the entries (with their chain fields) to CSV or Parquet; returns how many.

        Written to a temporary file beside ``out`` and moved into place, so a failed export
        never leaves half a file. Times are UTC; ``columns`` and ``detail`` are JSON text.
        """
        target = Path(out)
        tmp = target.with_name(f".{target.name}.tmp")
        count = 0
        try:
            if fmt == "csv":
                with tmp.open("w", encoding="utf-8", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(EXPORT_COLUMNS)
                    for entry in self.entries(filters):
                        writer.writerow(
                            stamp(entry[c]) if c == "at" else ("" if entry[c] is None else entry[c])
                            for c in EXPORT_COLUMNS
                        )
                        count += 1
            elif fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                schema = _export_schema()
                with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                    chunk: list[dict[str, Any]] = []
                    for entry in self.entries(filters):
                        chunk.append(entry)
                        if len(chunk) == WALK_CHUNK:
                            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                            count += len(chunk)
                            chunk = []
                    if chunk or count == 0:
                        writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                        count += len(chunk)
            else:
                raise ValueError(f"export format must be csv or parquet, not {fmt!r}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return count

    # -- reports -------------------------------------------------------------------------------

    def report(
        self,
        filters: Filters | None = None,
        *,
        unusual_factor: float | None = None,
        unusual_min_days: int | None = None,
        denied_limit: int = 200,
    ) -> Report:
        """Counts by system, dataset, day, action and outcome; denied attempts; unusual volumes.

        A system's day is *unusual* when its calls, or its rows, exceed ``unusual_factor``
        times the median of that system's active days in the period, provided the system was
        active on at least ``unusual_min_days`` days (fewer give no meaningful median).
        """
        settings = current().audit
        factor = settings.unusual_factor if unusual_factor is None else unusual_factor
        min_days = settings.unusual_min_days if unusual_min_days is None else unusual_min_days
        filters = filters or Filters()
        clauses = filters.where()
        with self.store.session() as session:
            day = day_of(session.get_bind().dialect.name)
            denied = func.sum(case((AccessEntry.outcome == "denied", 1), else_=0))
            grouped = session.execute(
                select(
                    day.label("day"),
                    AccessEntry.system,
                    AccessEntry.dataset,
                    AccessEntry.action,
                    func.count().label("calls"),
                    func.coalesce(func.sum(AccessEntry.rows), 0).label("rows"),
                    denied.label("denied"),
                )
                .where(*clauses)
                .group_by(day, AccessEntry.system, AccessEntry.dataset, AccessEntry.action)
            ).all()
            refused = [
                dict(r._mapping)
                for r in session.execute(
                    select(AccessEntry.__table__)
                    .where(*clauses, AccessEntry.outcome == "denied")
                    .order_by(AccessEntry.seq.desc())
                    .limit(denied_limit)
                )
            ]
        return Report.build(
            filters,
            [
                Group(str(g.day), g.system, g.dataset, g.action, int(g.calls), int(g.rows), int(g.denied))
                for g in grouped
            ],
            refused,
            factor=factor,
            min_days=min_days,
        )

    # -- reports -------------------------------------------------------------------------------


# -- reports -----------------------------------------------------------------------------------


# -- internals ---------------------------------------------------------------------------------
