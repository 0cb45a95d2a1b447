"""The hub metadata store: batches, their accounting, quarantine and violations.

One :class:`MetadataStore` per process and database URL; every method opens and closes
its own short transaction so that pipeline steps running in different processes see
each other's writes.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Protocol

import pyarrow as pa
from sqlalchemy import create_engine, delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import catalog.metadata.registry  # noqa: F401  (every table, for migrations)
from catalog.errors import (
    AccountingError,
    BatchNotFoundError,
    MetadataUnavailableError,
    QuarantineInputError,
    ReleaseRefusedError,
)
from catalog.metadata.base import utcnow
from catalog.metadata.batches import Batch, BatchStatus, Decryption, QuarantinedRow, Violation
from catalog.metadata.migrate import upgrade
from schemas.errors import redact_url

ROW_COLUMN = "_row"
"""Column of quarantined rows holding the row's number in its batch (set by the connector)."""

_DELETE_CHUNK = 5_000
_UPDATABLE = frozenset(c.key for c in Batch.__table__.columns) - {"id"}


class ViolationLike(Protocol):
    """What the store needs of a violation (``quality.validate.Violation`` fits)."""

    @property
    def row(self) -> int: ...
    @property
    def field(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def message_zh(self) -> str: ...
    @property
    def message_en(self) -> str: ...


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantined raw row and the rules it broke."""

    row: int
    record: dict[str, Any]
    violations: list[Violation]


def new_batch_id(dataset: str, now: datetime | None = None) -> str:
    """A readable, sortable, unique batch id such as ``population-20261121T230102-3f9a``."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%S")
    return f"{dataset}-{stamp}-{secrets.token_hex(2)}"


class MetadataStore:
    """Batches, quarantine and violations in a SQL database (SQLite or PostgreSQL).

    Opening a store brings its database to the newest Alembic revision
    (:mod:`catalog.metadata.migrate`). ``schema`` places the tables in a PostgreSQL schema (tests
    use a throw-away one).
    """

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        engine: Engine = create_engine(url, pool_pre_ping=True)
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        with self._unavailable_as_transient():
            upgrade(engine, schema)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _unavailable_as_transient(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise MetadataUnavailableError(
                f"hub metadata database {redact_url(self.url)} is unavailable: {self._reason(exc)}"
            ) from None
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            raise MetadataUnavailableError(
                f"hub metadata database {redact_url(self.url)} dropped the connection: {self._reason(exc)}"
            ) from None

    def _reason(self, exc: DBAPIError) -> str:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        password = self.engine.url.password
        return reason.replace(str(password), "***") if password else reason

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._unavailable_as_transient(), self._sessions.begin() as session:
            yield session

    # -- batches ---------------------------------------------------------------------------

    def start_batch(
        self,
        batch_id: str,
        *,
        dataset: str,
        source: str,
        contract_version: str,
        staging: str | None = None,
        rows_in: int | None = None,
    ) -> Batch:
        """Record a new batch, or restart one with the same id (a retried extraction).

        Restarting clears the counts, snapshot, error and quarantine of the earlier attempt
        so that its leftovers cannot be counted twice.
        """
        with self.session() as session:
            batch = session.get(Batch, batch_id)
            if batch is None:
                batch = Batch(id=batch_id, dataset=dataset, source=source, contract_version=contract_version)
                session.add(batch)
            else:
                session.execute(delete(Violation).where(Violation.batch_id == batch_id))
                session.execute(delete(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id))
                batch.dataset, batch.source, batch.contract_version = (
                    dataset,
                    source,
                    contract_version,
                )
                batch.rows_valid = batch.rows_quarantined = batch.snapshot_id = None
                batch.registered_at = batch.published_at = batch.error = None
                batch.warnings = batch.data_docs = None
                batch.held_at = batch.released_at = batch.released_by = batch.release_reason = None
                batch.messages_published = 0
                batch.started_at = utcnow()
            batch.status = BatchStatus.EXTRACTED
            batch.staging_path = staging
            batch.rows_in = rows_in
            session.flush()
            return batch

    def update_batch(self, batch_id: str, **fields: Any) -> Batch:
        """Change recorded facts of a batch.

        Reaching ``registered`` or ``published`` stamps the time unless it is given.
        """
        unknown = sorted(set(fields) - _UPDATABLE)
        if unknown:
            raise ValueError(
                f"batch has no field(s) {', '.join(unknown)}; known: {', '.join(sorted(_UPDATABLE))}"
            )
        if "status" in fields:
            fields["status"] = BatchStatus(fields["status"])
            now = utcnow()
            if fields["status"] is BatchStatus.REGISTERED:
                fields.setdefault("registered_at", now)
            elif fields["status"] is BatchStatus.PUBLISHED:
                fields.setdefault("published_at", now)
        with self.session() as session:
            batch = self._require(session, batch_id)
            for name, value in fields.items():
                setattr(batch, name, value)
            session.flush()
            return batch

    def hold_batch(self, batch_id: str, message: str) -> Batch:
        """Mark a validated batch held by the quality gate, with the gate's message."""
        return self.update_batch(batch_id, status=BatchStatus.HELD, held_at=utcnow(), error=message)

    def release_batch(self, batch_id: str, *, steward: str, reason: str) -> Batch:
        """Record a steward's release of a held batch and make it ``validated`` again.

        One conditional update, so of two stewards releasing at once exactly one does;
        the other gets :class:`ReleaseRefusedError`.
        """
        now = utcnow()
        with self.session() as session:
            changed = session.execute(
                update(Batch)
                .where(Batch.id == batch_id, Batch.status == BatchStatus.HELD)
                .values(
                    status=BatchStatus.VALIDATED,
                    released_at=now,
                    released_by=steward,
                    release_reason=reason,
                    error=None,
                    updated_at=now,
                )
            )
            if not getattr(changed, "rowcount", 0):
                batch = self._require(session, batch_id)
                raise ReleaseRefusedError(
                    f"batch {batch_id} is {batch.status.value}, not held: only a batch the quality "
                    "gate held can be released"
                )
        return self.get_batch(batch_id)

    def superseding_batch(self, batch_id: str) -> Batch | None:
        """A batch of the same source, started later, that registered: it read the rows of
        ``batch_id`` again (the watermark had not moved), so releasing this one would put
        older records over newer ones."""
        done = (BatchStatus.REGISTERED, BatchStatus.PUBLISHED)
        with self.session() as session:
            batch = self._require(session, batch_id)
            query = (
                select(Batch)
                .where(
                    Batch.source == batch.source, Batch.started_at > batch.started_at, Batch.status.in_(done)
                )
                .order_by(Batch.started_at)
                .limit(1)
            )
            return session.scalars(query).first()

    def add_warnings(self, batch_id: str, lines: Sequence[str]) -> Batch:
        """Append lines to what the batch went on despite (each once)."""
        with self.session() as session:
            batch = self._require(session, batch_id)
            known = (batch.warnings or "").splitlines()
            batch.warnings = "\n".join(dict.fromkeys([*known, *lines])) or None
            session.flush()
            return batch

    def get_batch(self, batch_id: str) -> Batch:
        with self.session() as session:
            return self._require(session, batch_id)

    def latest_batch(self, dataset: str) -> Batch | None:
        """The most recently started batch of a dataset, whatever its status."""
        with self.session() as session:
            query = (
                select(Batch)
                .where(Batch.dataset == dataset)
                .order_by(Batch.started_at.desc(), Batch.id.desc())
                .limit(1)
            )
            return session.scalars(query).first()

    def last_watermark(self, source: str) -> str | None:
        """Where the source's next incremental read starts: the watermark of its latest
        registered batch. A failed batch never advances it, since it never registers."""
        done = (BatchStatus.REGISTERED, BatchStatus.PUBLISHED)
        with self.session() as session:
            query = (
                select(Batch.watermark_to)
                .where(Batch.source == source, Batch.status.in_(done), Batch.watermark_to.is_not(None))
                .order_by(Batch.registered_at.desc(), Batch.id.desc())
                .limit(1)
            )
            return session.scalars(query).first()

    def last_batch_of_source(self, source: str) -> Batch | None:
        """The most recently started batch of a source, whatever its status."""
        with self.session() as session:
            query = (
                select(Batch)
                .where(Batch.source == source)
                .order_by(Batch.started_at.desc(), Batch.id.desc())
                .limit(1)
            )
            return session.scalars(query).first()

    def list_batches(self, dataset: str | None = None, limit: int = 20) -> list[Batch]:
        """Newest first; 20 by default because that fits one terminal screen."""
        query = select(Batch).order_by(Batch.started_at.desc(), Batch.id.desc()).limit(limit)
        if dataset is not None:
            query = query.where(Batch.dataset == dataset)
        with self.session() as session:
            return list(session.scalars(query))

    @staticmethod
    def _require(session: Session, batch_id: str) -> Batch:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise BatchNotFoundError(f"no batch {batch_id!r} is recorded in the hub metadata")
        return batch

    # -- quarantine --------------------------------------------------------------------------

    def add_quarantine(self, batch_id: str, rows: pa.Table, violations: Sequence[ViolationLike]) -> int:
        """Store quarantined raw rows (numbered by their ``_row`` column) with their violations.

        Rows already stored for the same batch and row number are replaced, so a retried
        validation chunk does not count twice. Returns the number of rows stored.
        """
        numbers = _row_numbers(batch_id, rows)
        _check_violations(batch_id, numbers, violations)
        now = utcnow()
        records = _records_json(rows.drop_columns([ROW_COLUMN]))
        row_values = [
            {"batch_id": batch_id, "row": n, "record": r, "created_at": now}
            for n, r in zip(numbers, records, strict=True)
        ]
        violation_values = [
            {
                "batch_id": batch_id,
                "row": int(v.row),
                "field": v.field,
                "rule": v.rule,
                "message_zh": v.message_zh,
                "message_en": v.message_en,
            }
            for v in violations
        ]
        with self.session() as session:
            self._require(session, batch_id)
            for start in range(0, len(numbers), _DELETE_CHUNK):
                chunk = numbers[start : start + _DELETE_CHUNK]
                for model in (Violation, QuarantinedRow):
                    session.execute(delete(model).where(model.batch_id == batch_id, model.row.in_(chunk)))
            if row_values:
                session.execute(insert(QuarantinedRow), row_values)
            if violation_values:
                session.execute(insert(Violation), violation_values)
        return len(row_values)

    def clear_quarantine(self, batch_id: str) -> None:
        """Forget a batch's quarantine and violations (a validation step starting over)."""
        with self.session() as session:
            self._require(session, batch_id)
            session.execute(delete(Violation).where(Violation.batch_id == batch_id))
            session.execute(delete(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id))

    def quarantine_count(self, batch_id: str) -> int:
        """Distinct quarantined rows of a batch."""
        with self.session() as session:
            query = select(func.count(func.distinct(QuarantinedRow.row))).where(
                QuarantinedRow.batch_id == batch_id
            )
            return int(session.scalar(query) or 0)

    def violations_summary(self, batch_id: str) -> list[tuple[str, str, int]]:
        """``(rule, field, rows)`` for a batch, most frequent first."""
        count = func.count(func.distinct(Violation.row))
        query = (
            select(Violation.rule, Violation.field, count)
            .where(Violation.batch_id == batch_id)
            .group_by(Violation.rule, Violation.field)
            .order_by(count.desc(), Violation.rule, Violation.field)
        )
        with self.session() as session:
            return [(rule, field, int(n)) for rule, field, n in session.execute(query)]

    def quarantined_records(
        self,
        batch_id: str,
        *,
        rows: Sequence[int] | None = None,
        rule: str | None = None,
        limit: int | None = None,
    ) -> list[QuarantineEntry]:
        """Raw quarantined rows of a batch (those breaking ``rule``, if given) with every rule
        each broke, by row number.

        Raw personal data: callers show it only to stewards of the source department.
        """
        query = select(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id).order_by(QuarantinedRow.row)
        if rows is not None:
            query = query.where(QuarantinedRow.row.in_(list(rows)))
        if rule is not None:
            broke = select(Violation.row).where(Violation.batch_id == batch_id, Violation.rule == rule)
            query = query.where(QuarantinedRow.row.in_(broke))
        if limit is not None:
            query = query.limit(limit)
        with self.session() as session:
            self._require(session, batch_id)
            found = list(session.scalars(query))
            numbers = [q.row for q in found]
            broken: dict[int, list[Violation]] = {}
            for start in range(0, len(numbers), _DELETE_CHUNK):
                chunk = numbers[start : start + _DELETE_CHUNK]
                violations = select(Violation).where(Violation.batch_id == batch_id, Violation.row.in_(chunk))
                for v in session.scalars(violations.order_by(Violation.row, Violation.id)):
                    broken.setdefault(v.row, []).append(v)
        return [QuarantineEntry(q.row, json.loads(q.record), broken.get(q.row, [])) for q in found]

    def check_accounting(self, batch_id: str) -> Batch:
        """Raise :class:`AccountingError` unless every row of the batch is valid or quarantined."""
        batch = self.get_batch(batch_id)
        where = f"batch {batch_id} ({batch.dataset} from {batch.source})"
        missing = [
            name for name in ("rows_in", "rows_valid", "rows_quarantined") if getattr(batch, name) is None
        ]
        if missing:
            raise AccountingError(f"{where}: not counted yet: {', '.join(missing)}")
        rows_in, valid, quarantined = (
            batch.rows_in or 0,
            batch.rows_valid or 0,
            batch.rows_quarantined or 0,
        )
        if rows_in != valid + quarantined:
            raise AccountingError(
                f"{where}: rows_in {rows_in} != rows_valid {valid} + "
                f"rows_quarantined {quarantined} (= {valid + quarantined}); "
                f"{rows_in - valid - quarantined:+d} rows unaccounted"
            )
        stored = self.quarantine_count(batch_id)
        if stored != quarantined:
            raise AccountingError(
                f"{where}: the batch records rows_quarantined {quarantined} but the quarantine "
                f"holds {stored} distinct rows"
            )
        return batch

    # -- decryptions -------------------------------------------------------------------------

    def record_decryption(
        self,
        *,
        steward: str | None,
        reason: str | None,
        values: int,
        key_versions: Sequence[int],
        os_user: str,
        host: str,
        outcome: str,
        detail: str | None = None,
    ) -> Decryption:
        """Record one use or refused use of ``hub decrypt`` (never the values themselves)."""
        if outcome not in ("decrypted", "refused", "failed"):
            raise ValueError(f"decryption outcome {outcome!r} is not decrypted, refused or failed")
        record = Decryption(
            steward=steward,
            reason=reason,
            values=values,
            key_versions=",".join(str(v) for v in sorted(set(key_versions))),
            os_user=os_user,
            host=host,
            outcome=outcome,
            detail=detail,
        )
        with self.session() as session:
            session.add(record)
            session.flush()
        return record

    def list_decryptions(self, limit: int = 20) -> list[Decryption]:
        """Newest first; 20 by default because that fits one terminal screen."""
        query = select(Decryption).order_by(Decryption.at.desc(), Decryption.id.desc()).limit(limit)
        with self.session() as session:
            return list(session.scalars(query))


def _row_numbers(batch_id: str, rows: pa.Table) -> list[int]:
    if ROW_COLUMN not in rows.column_names:
        raise QuarantineInputError(
            f"batch {batch_id}: quarantined rows need a {ROW_COLUMN!r} column with each "
            f"row's number in the batch; got columns {', '.join(rows.column_names)}"
        )
    column = rows.column(ROW_COLUMN)
    if column.null_count:
        raise QuarantineInputError(
            f"batch {batch_id}: {column.null_count} quarantined rows have no {ROW_COLUMN}"
        )
    numbers = [int(n) for n in column.to_pylist()]
    if len(set(numbers)) != len(numbers):
        twice = sorted(n for n, times in Counter(numbers).items() if times > 1)
        raise QuarantineInputError(f"batch {batch_id}: rows {twice[:10]} are quarantined twice in one call")
    return numbers


def _check_violations(batch_id: str, numbers: list[int], violations: Sequence[ViolationLike]) -> None:
    quarantined = set(numbers)
    explained = {int(v.row) for v in violations}
    stray = sorted(explained - quarantined)
    if stray:
        raise QuarantineInputError(
            f"batch {batch_id}: violations name rows {stray[:10]} that are not among the quarantined rows"
        )
    unexplained = sorted(quarantined - explained)
    if unexplained:
        raise QuarantineInputError(
            f"batch {batch_id}: quarantined rows {unexplained[:10]} have no violation saying why"
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot store a {type(value).__name__} in a quarantine record")


def _records_json(rows: pa.Table) -> list[str]:
    return [
        json.dumps(record, ensure_ascii=False, default=_json_default, separators=(",", ":"))
        for record in rows.to_pylist()
    ]
