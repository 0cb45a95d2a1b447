"""Correction requests (校核纠错): wrong data travels back to the department that owns it.

Two ways a request opens:

- **quarantine**: every row the quality gate quarantined opens one request to the source
  department, listing every rule and field the row broke (one per row, not per rule: the
  department fixes a record, not a rule). Opened in bulk when the batch passes the gate
  or is released; a held batch opens none until then.
- **consumer**: a department system that reads a shared record (by its published key, a
  token for persons) files one against a field of it, with a reason.

Each request has a deadline in working days (``quality.correction_days``, calendar of
:mod:`catalog.sharing.workdays`), a thread of messages, and closes itself (status ``corrected``)
when a later batch registers a corrected record for the same key: for a quarantined row,
any registered record with that key (it passed every check); for a consumer's request, a
record whose disputed field now has another value. A steward can resolve one by hand.

The request stores the record's key only in its published form (the keyed token of an
identity number, exactly what the shared table holds), never raw identity numbers: the
raw row stays in the access-controlled quarantine.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from catalog.audit import record_access
from catalog.corrections.errors import CorrectionNotFoundError, CorrectionStateError, RecordNotSharedError
from catalog.metadata import Correction, CorrectionMessage, CorrectionOrigin, CorrectionStatus, utcnow
from catalog.sharing import CalendarRangeError, WorkCalendar, require_grant
from masking.errors import MaskingInputError, MaskRuleError
from masking.rules import KEY_KINDS, apply_rule
from schemas.contract import DEFAULT_LEVEL, Contract, MaskRule, load_contract

ROW_COLUMN = "_row"


# -- keys ----------------------------------------------------------------------------------

KEY_SEPARATOR = "|"
"""Joins the parts of a composite published key into one ``key_token`` (printable, for CSV)."""

STAGED_SCHEMA = pa.schema(
    [
        pa.field("row", pa.int64(), nullable=False),
        pa.field("key_token", pa.string()),
        pa.field("fields", pa.string(), nullable=False),
        pa.field("rules", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
    ]
)
"""What validation stages per quarantined row, so that requests open once the gate lets the
batch through (or a steward releases it), possibly in another process."""

DUPLICATE_RULE = "key.duplicate"
"""A duplicated key is not a wrong key: the corrected record of one copy keeps it."""

HUB = "hub"
"""``filed_by`` of the requests the quality gate opens."""


def _join_parts(parts: list[pa.Array]) -> pa.Array:
    strings = [pc.cast(p, pa.string()) for p in parts]
    joined = strings[0] if len(strings) == 1 else pc.binary_join_element_wise(*strings, KEY_SEPARATOR)
    blank = pc.fill_null(pc.equal(joined, ""), True)
    for part in strings[1:]:
        blank = pc.or_(blank, pc.fill_null(pc.equal(part, ""), True))
    return pc.if_else(blank, pa.scalar(None, pa.string()), joined)


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return column


def key_tokens(rows: pa.Table, contract: Contract, keyring: Any) -> pa.Array:
    """The published key of raw rows: each key field through its contract masking rule (the
    keyed token for an identity number), as ``mask`` makes it; null where a part is missing."""

    parts = []
    for field in contract.key_fields:
        spec = field.mask.at(DEFAULT_LEVEL)
        kind = KEY_KINDS.get(spec.rule)
        key = keyring.current_key(kind) if kind else None
        values = _combined(rows.column(field.name))
        if values.type != field.type.arrow():
            values = values.cast(field.type.arrow())
        parts.append(_combined(apply_rule(spec.rule, values, key=key, **spec.params)))
    return _join_parts(parts)


def published_keys(rows: pa.Table, contract: Contract) -> pa.Array:
    """The same key text from published rows (the shared table, a masked batch)."""
    return _join_parts([_combined(rows.column(name)) for name in contract.published_keys])


def digest(value: Any) -> str:
    """SHA-256 of a published value's text: what a consumer disputed, without keeping it."""
    text = "\x00null" if value is None else str(value)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stage_rows(
    quarantined: pa.Table, violations: Sequence[Any], contract: Contract, keyring: Any
) -> pa.Table:
    """One staged request per quarantined row: its key token, fields, rules and reason.

    A row whose key is missing, broke a rule of its own, or could not be tokenised gets no
    key token; its request is found by batch and row.
    """
    by_row: dict[int, list[Any]] = {}
    for v in violations:
        by_row.setdefault(int(v.row), []).append(v)
    numbers = [int(n) for n in quarantined.column(ROW_COLUMN).to_pylist()]
    keys = set(contract.keys)
    try:
        tokens: list[str | None] = key_tokens(quarantined, contract, keyring).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowTypeError, MaskRuleError):
        tokens = [None] * len(numbers)
    fields, rules, reasons = [], [], []
    for n, row in enumerate(numbers):
        found = by_row.get(row, [])
        if any(v.field in keys and v.rule != DUPLICATE_RULE for v in found):
            tokens[n] = None  # the key itself is wrong: a corrected record will not carry it
        fields.append(",".join(dict.fromkeys(v.field for v in found)))
        rules.append(",".join(dict.fromkeys(v.rule for v in found)))
        zh = "；".join(dict.fromkeys(v.message_zh for v in found))
        en = "; ".join(dict.fromkeys(v.message_en for v in found))
        reasons.append(f"{zh} / {en}")
    return pa.Table.from_arrays(
        [
            pa.array(numbers, pa.int64()),
            pa.array(tokens, pa.string()),
            pa.array(fields, pa.string()),
            pa.array(rules, pa.string()),
            pa.array(reasons, pa.string()),
        ],
        schema=STAGED_SCHEMA,
    )


# -- deadlines -----------------------------------------------------------------------------


def due_date(opened: date, days: int, calendar_file: str | None) -> tuple[date, str | None]:
    """The deadline ``days`` working days after ``opened``, and a warning if it was guessed.

    A year missing from the calendar must not stop data from flowing, whatever the
    calendar's ``outside_years`` says: such years are counted Monday to Friday and the
    warning names them (the batch records it, ``hub corrections file`` prints it).
    """

    calendar = WorkCalendar.load(calendar_file)
    try:
        due = calendar.add_working_days(opened, days)
    except CalendarRangeError:
        due = replace(calendar, outside_years="weekdays", _warned=set()).add_working_days(opened, days)
    missing = sorted(set(range(opened.year, due.year + 1)) - set(calendar.years))
    if not missing:
        return due, None
    years = ", ".join(str(y) for y in missing)
    return due, (
        f"correction deadlines counted Monday to Friday in {years}: the working-day calendar "
        f"{calendar.source} lacks it (add it from the State Council's holiday notice)"
    )


# -- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """What opening a batch's requests did."""

    opened: int
    already_open: int
    """Rows whose record already has an open request from an earlier batch."""
    due_on: date


_CHUNK = 5_000
"""Rows per bulk statement and per ``IN`` list: well under every database's parameter limit."""


class Corrections:
    """Correction requests in the hub metadata (one :class:`catalog.metadata.store.MetadataStore`)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.store.session() as session:
            yield session

    # -- opening --------------------------------------------------------------------------

    def clear_batch(self, batch_id: str) -> int:
        """Forget the requests a batch's quarantine opened (its validation starts over)."""
        opened = select(Correction.id).where(
            Correction.batch_id == batch_id, Correction.origin == CorrectionOrigin.QUARANTINE
        )
        with self.session() as session:
            # explicit: SQLite enforces the cascade only with its foreign-key pragma on
            session.execute(delete(CorrectionMessage).where(CorrectionMessage.correction_id.in_(opened)))
            result = session.execute(delete(Correction).where(Correction.id.in_(opened)))
            return int(getattr(result, "rowcount", 0) or 0)

    def open_from_quarantine(
        self,
        batch: Any,
        staged: Iterable[pa.Table | pa.RecordBatch],
        *,
        due_on: date,
        department_code: str,
    ) -> Opened:
        """Open one request per staged quarantined row of ``batch``, in bulk.

        Idempotent for a batch (rows already opened by it are replaced); a row whose record
        (same dataset and key) already has an open request from an earlier batch, e.g. one
        re-read by a full refresh, opens no second one.
        """
        now = utcnow()
        opened = already = 0
        self.clear_batch(batch.id)
        for chunk in staged:
            table = chunk if isinstance(chunk, pa.Table) else pa.Table.from_batches([chunk])
            for start in range(0, table.num_rows, _CHUNK):
                part = table.slice(start, _CHUNK)
                tokens = [t for t in part.column("key_token").to_pylist() if t]
                with self.session() as session:
                    taken = self._open_keys(session, batch.dataset, batch.id, tokens)
                    values = [
                        {
                            "dataset": batch.dataset,
                            "department_code": department_code,
                            "department": batch.department,
                            "origin": CorrectionOrigin.QUARANTINE,
                            "status": CorrectionStatus.OPEN,
                            "batch_id": batch.id,
                            "row": row["row"],
                            "key_token": row["key_token"],
                            "fields": row["fields"],
                            "rules": row["rules"],
                            "reason": row["reason"],
                            "filed_by": HUB,
                            "opened_at": now,
                            "due_on": due_on,
                        }
                        for row in part.to_pylist()
                        if not row["key_token"] or row["key_token"] not in taken
                    ]
                    already += part.num_rows - len(values)
                    if values:
                        session.execute(insert(Correction), values)
                    opened += len(values)
        return Opened(opened, already, due_on)

    @staticmethod
    def _open_keys(session: Session, dataset: str, batch_id: str, tokens: list[str]) -> set[str]:
        """Keys among ``tokens`` with an open quarantine request from another batch."""
        if not tokens:
            return set()
        query = select(Correction.key_token).where(
            Correction.dataset == dataset,
            Correction.batch_id != batch_id,
            Correction.origin == CorrectionOrigin.QUARANTINE,
            Correction.status == CorrectionStatus.OPEN,
            Correction.key_token.in_(tokens),
        )
        return {t for t in session.scalars(query) if t}

    def file(
        self,
        *,
        dataset: str,
        department_code: str,
        department: str | None,
        key_token: str,
        field: str,
        reason: str,
        system: str,
        field_digest: str,
        due_on: date,
    ) -> Correction:
        """A consumer system's request against a field of a shared record."""
        request = Correction(
            dataset=dataset,
            department_code=department_code,
            department=department,
            origin=CorrectionOrigin.CONSUMER,
            status=CorrectionStatus.OPEN,
            key_token=key_token,
            fields=field,
            reason=reason,
            filed_by=system,
            field_digest=field_digest,
            opened_at=utcnow(),
            due_on=due_on,
        )
        with self.session() as session:
            session.add(request)
            session.flush()
            session.add(CorrectionMessage(correction_id=request.id, author=system, message=reason))
        return request

    # -- the thread and closing -----------------------------------------------------------

    def get(self, correction_id: int) -> Correction:
        with self.session() as session:
            return self._require(session, correction_id)

    @staticmethod
    def _require(session: Session, correction_id: int) -> Correction:
        request = session.get(Correction, correction_id)
        if request is None:
            raise CorrectionNotFoundError(f"no correction request {correction_id} is recorded")
        return request

    def thread(self, correction_id: int) -> list[CorrectionMessage]:
        query = (
            select(CorrectionMessage)
            .where(CorrectionMessage.correction_id == correction_id)
            .order_by(CorrectionMessage.at, CorrectionMessage.id)
        )
        with self.session() as session:
            self._require(session, correction_id)
            return list(session.scalars(query))

    def reply(self, correction_id: int, *, author: str, message: str) -> CorrectionMessage:
        """Add a message to a request's thread (closed requests keep their thread, read-only)."""
        if not message.strip():
            raise CorrectionStateError(f"correction request {correction_id}: the message is empty")
        with self.session() as session:
            request = self._require(session, correction_id)
            if request.status is not CorrectionStatus.OPEN:
                raise CorrectionStateError(
                    f"correction request {correction_id} is {request.status.value} "
                    f"({request.closed_at:%Y-%m-%d} by {request.closed_by}): its thread is closed"
                )
            entry = CorrectionMessage(correction_id=correction_id, author=author, message=message.strip())
            session.add(entry)
            session.flush()
            return entry

    def resolve(self, correction_id: int, *, steward: str, note: str) -> Correction:
        """Close an open request by hand, with the steward's note (also added to the thread)."""
        if not note.strip():
            raise CorrectionStateError(f"correction request {correction_id}: resolving needs a --note")
        now = utcnow()
        with self.session() as session:
            updated = session.execute(
                update(Correction)
                .where(Correction.id == correction_id, Correction.status == CorrectionStatus.OPEN)
                .values(
                    status=CorrectionStatus.RESOLVED,
                    closed_at=now,
                    closed_by=steward,
                    resolution=note.strip(),
                )
            )
            if not getattr(updated, "rowcount", 0):
                request = self._require(session, correction_id)
                raise CorrectionStateError(
                    f"correction request {correction_id} is already {request.status.value} "
                    f"({request.closed_at:%Y-%m-%d} by {request.closed_by})"
                )
            session.add(CorrectionMessage(correction_id=correction_id, author=steward, message=note.strip()))
        return self.get(correction_id)

    def close_corrected(
        self,
        dataset: str,
        batch_id: str,
        chunks: Iterable[pa.Table | pa.RecordBatch],
        contract: Contract,
    ) -> int:
        """Close the open requests a registered batch answers; returns how many closed.

        ``chunks`` are the batch's published rows. A quarantined row's request closes when
        the batch registers any record with its key, since that record passed every check;
        a consumer's when the record's disputed field now has another value.
        """
        query = select(
            Correction.id, Correction.key_token, Correction.origin, Correction.fields, Correction.field_digest
        ).where(
            Correction.dataset == dataset,
            Correction.status == CorrectionStatus.OPEN,
            Correction.key_token.is_not(None),
            or_(Correction.batch_id.is_(None), Correction.batch_id != batch_id),
        )
        with self.session() as session:
            candidates = session.execute(query).all()
        if not candidates:
            return 0
        wanted = pa.array([c.key_token for c in candidates], pa.string())
        closing: set[int] = set()
        for chunk in chunks:
            rows = chunk if isinstance(chunk, pa.Table) else pa.Table.from_batches([chunk])
            if not rows.num_rows:
                continue
            at = pc.index_in(wanted, value_set=published_keys(rows, contract))
            hits = pc.indices_nonzero(pc.is_valid(at)).to_pylist()
            for index, position in zip(hits, at.take(pa.array(hits, pa.int64())).to_pylist(), strict=True):
                candidate = candidates[index]
                if candidate.origin is CorrectionOrigin.QUARANTINE:
                    closing.add(candidate.id)
                    continue
                column = contract.field(candidate.fields).published_name
                value = rows.column(column)[position].as_py() if column in rows.column_names else None
                if column in rows.column_names and digest(value) != candidate.field_digest:
                    closing.add(candidate.id)
        done = sorted(closing)
        now = utcnow()
        with self.session() as session:
            for start in range(0, len(done), _CHUNK):
                session.execute(
                    update(Correction)
                    .where(
                        Correction.id.in_(done[start : start + _CHUNK]),
                        Correction.status == CorrectionStatus.OPEN,
                    )
                    .values(
                        status=CorrectionStatus.CORRECTED,
                        closed_at=now,
                        closed_by=batch_id,
                        resolution=f"batch {batch_id} registered a corrected record",
                    )
                )
        return len(done)

    def columns_to_close(self, dataset: str, contract: Contract) -> list[str]:
        """Published columns :meth:`close_corrected` needs from a batch of ``dataset``: its
        key and the fields consumers disputed; none when no request of it is open."""
        query = (
            select(Correction.origin, Correction.fields)
            .where(
                Correction.dataset == dataset,
                Correction.status == CorrectionStatus.OPEN,
                Correction.key_token.is_not(None),
            )
            .distinct()
        )
        with self.session() as session:
            found = session.execute(query).all()
        if not found:
            return []
        disputed = [
            contract.field(fields).published_name
            for origin, fields in found
            if origin is CorrectionOrigin.CONSUMER
        ]
        return list(dict.fromkeys([*contract.published_keys, *disputed]))

    def rekey(self, dataset: str, pairs: pa.Table) -> int:
        """Move open requests keyed by old tokens to the new ones, after a token-key rotation.

        ``pairs`` is the batch's staged ``token_map`` (``old_token``, ``new_token``).
        """
        query = select(Correction.id, Correction.key_token).where(
            Correction.dataset == dataset,
            Correction.status == CorrectionStatus.OPEN,
            Correction.key_token.is_not(None),
        )
        with self.session() as session:
            candidates = session.execute(query).all()
        if not candidates or not pairs.num_rows:
            return 0
        old = pairs.column("old_token").combine_chunks()
        at = pc.index_in(pa.array([c.key_token for c in candidates], pa.string()), value_set=old).to_pylist()
        new = pairs.column("new_token").combine_chunks()
        moves = [(c.id, new[p].as_py()) for c, p in zip(candidates, at, strict=True) if p is not None]
        with self.session() as session:
            for correction_id, token in moves:
                session.execute(
                    update(Correction).where(Correction.id == correction_id).values(key_token=token)
                )
        return len(moves)

    # -- reading --------------------------------------------------------------------------

    def find(
        self,
        *,
        dataset: str | None = None,
        status: CorrectionStatus | str | None = None,
        department_code: str | None = None,
        overdue_on: date | None = None,
        limit: int | None = 50,
    ) -> list[Correction]:
        """Requests, oldest deadline first; ``overdue_on`` keeps open ones due before that day."""
        query = select(Correction).order_by(Correction.due_on, Correction.id)
        if dataset is not None:
            query = query.where(Correction.dataset == dataset)
        if status is not None:
            query = query.where(Correction.status == CorrectionStatus(status))
        if department_code is not None:
            query = query.where(Correction.department_code == department_code)
        if overdue_on is not None:
            query = query.where(Correction.status == CorrectionStatus.OPEN, Correction.due_on < overdue_on)
        if limit is not None:
            query = query.limit(limit)
        with self.session() as session:
            return list(session.scalars(query))

    def counts(self, *, dataset: str | None = None, today: date) -> dict[str, int]:
        """Requests by status, plus ``overdue`` (open past their deadline)."""
        query = select(Correction.status, func.count()).group_by(Correction.status)
        late = select(func.count()).where(
            Correction.status == CorrectionStatus.OPEN, Correction.due_on < today
        )
        if dataset is not None:
            query = query.where(Correction.dataset == dataset)
            late = late.where(Correction.dataset == dataset)
        with self.session() as session:
            found = {status.value: int(n) for status, n in session.execute(query)}
            found["overdue"] = int(session.scalar(late) or 0)
        return found

    def export_csv(
        self,
        path: Path,
        *,
        today: date,
        department_code: str | None = None,
        dataset: str | None = None,
        status: CorrectionStatus | str | None = None,
    ) -> int:
        """Write requests as CSV for a department: UTF-8 with a byte-order mark and CRLF line
        ends, so Excel opens the Chinese text as it is. Returns the rows written."""
        rows = self.find(dataset=dataset, status=status, department_code=department_code, limit=None)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow([label for label, _ in EXPORT_COLUMNS])
            for request in rows:
                writer.writerow([_cell(get(request, today)) for _, get in EXPORT_COLUMNS])
        return len(rows)


# -- a consumer's request, the record behind a request ----------------------------------------


def file_request(
    store: Any,
    tables: Any,
    *,
    dataset: str,
    token: str,
    field: str,
    reason: str,
    system: str,
    days: int,
    calendar_file: str | None,
    today: date,
) -> tuple[Correction, str | None]:
    """A consumer system files a request against one field of one shared record.

    The system must hold an active grant of the dataset covering that field (it can only
    dispute what it was given; a refusal is recorded in the access log), and the record
    must be in the current shared table under ``token`` (its published key). Returns the
    request and a warning when the deadline had to be counted Monday to Friday.
    """

    contract = load_contract(dataset)
    target = _contract_field(contract, field)
    reason = (reason or "").strip()
    if not reason:
        raise CorrectionStateError(f"a correction request on {dataset} needs a --reason")
    column = target.published_name
    require_grant(store, system, dataset, [column], action="correction.file")
    value = _shared_value(tables, contract, token.strip(), column)
    due, warning = due_date(today, days, calendar_file)
    owner = contract.owner_department
    request = Corrections(store).file(
        dataset=dataset,
        department_code=owner.code,
        department=owner.name,
        key_token=token.strip(),
        field=target.name,
        reason=reason,
        system=system,
        field_digest=digest(value),
        due_on=due,
    )
    record_access(
        store,
        action="correction.file",
        outcome="allowed",
        system=system,
        department=owner.code,
        dataset=dataset,
        columns=[column],
        reason=reason,
        detail={"correction": request.id},
    )
    return request, warning


def _contract_field(contract: Contract, name: str) -> Any:
    for f in contract.fields:
        if name in (f.name, f.published_name):
            return f
    known = ", ".join(f.published_name for f in contract.fields)
    raise RecordNotSharedError(f"dataset {contract.name} has no field {name!r} (fields: {known})")


def _shared_value(tables: Any, contract: Contract, token: str, column: str) -> Any:
    """The published value of ``column`` in the shared record whose key is ``token``."""
    from pyiceberg.expressions import And, BooleanExpression, EqualTo

    parts = token.split(KEY_SEPARATOR) if len(contract.published_keys) > 1 else [token]
    if len(parts) != len(contract.published_keys) or not all(parts):
        raise RecordNotSharedError(
            f"{token!r} is not a key of dataset {contract.name} ({' | '.join(contract.published_keys)})"
        )
    # pyiceberg's runtime signature is (term, literal); its pydantic fields confuse mypy.
    condition: BooleanExpression = EqualTo(contract.published_keys[0], parts[0])  # type: ignore[call-arg, arg-type]
    for name, part in zip(contract.published_keys[1:], parts[1:], strict=True):
        condition = And(condition, EqualTo(name, part))  # type: ignore[call-arg, arg-type]
    selected = tuple(dict.fromkeys([*contract.published_keys, column]))
    found = [
        b for b in tables.scan(contract.name, row_filter=condition, selected_fields=selected) if b.num_rows
    ]
    if not found:
        raise RecordNotSharedError(
            f"no shared record of dataset {contract.name} has {'/'.join(contract.published_keys)} {token}"
        )
    return found[0].column(column)[0].as_py()


MASKED = "***"
"""Shown instead of a value that its masking rule cannot show (encrypted, or unreadable)."""


def masked_record(contract: Contract, record: dict[str, Any], keyring: Any) -> dict[str, str]:
    """A quarantined raw record as a consumer at the conditional level would see it.

    What non-stewards are shown of a quarantined row: each field through its own masking
    rule; a value the rule cannot take (it failed conversion, say) or would encrypt is
    shown as :data:`MASKED`, never raw.
    """

    shown: dict[str, str] = {}
    for f in contract.fields:
        spec = f.mask.at(DEFAULT_LEVEL)
        value = record.get(f.name)
        if spec.rule is MaskRule.ENCRYPT:
            shown[f.published_name] = MASKED
            continue
        if value is None:
            shown[f.published_name] = ""
            continue
        kind = KEY_KINDS.get(spec.rule)
        try:
            array = pa.array([value]).cast(f.type.arrow())
            key = keyring.current_key(kind) if kind else None
            masked = apply_rule(spec.rule, array, key=key, **spec.params)
            out = masked[0].as_py() if len(masked) else None
        except (pa.ArrowException, MaskingInputError, MaskRuleError, ValueError, TypeError):
            shown[f.published_name] = MASKED
            continue
        shown[f.published_name] = "" if out is None else str(out)
    return shown


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, StrEnum):
        return value.value
    return str(value)


STATUS_ZH = {
    CorrectionStatus.OPEN: "待处理",
    CorrectionStatus.RESOLVED: "已办结",
    CorrectionStatus.CORRECTED: "已更正",
}
ORIGIN_ZH = {CorrectionOrigin.QUARANTINE: "质量检查", CorrectionOrigin.CONSUMER: "使用部门"}

EXPORT_COLUMNS: tuple[tuple[str, Callable[[Correction, date], Any]], ...] = (
    ("编号", lambda r, _t: r.id),
    ("数据集", lambda r, _t: r.dataset),
    ("数源部门代码", lambda r, _t: r.department_code),
    ("数源部门", lambda r, _t: r.department),
    ("来源", lambda r, _t: ORIGIN_ZH[r.origin]),
    ("状态", lambda r, _t: STATUS_ZH[r.status]),
    ("批次", lambda r, _t: r.batch_id),
    ("行号", lambda r, _t: r.row),
    ("记录键（令牌）", lambda r, _t: r.key_token),
    ("字段", lambda r, _t: r.fields),
    ("规则", lambda r, _t: r.rules),
    ("原因", lambda r, _t: r.reason),
    ("提出方", lambda r, _t: r.filed_by),
    ("提出时间(UTC)", lambda r, _t: r.opened_at),
    ("办理期限", lambda r, _t: r.due_on.isoformat()),
    ("是否逾期", lambda r, t: "是" if r.status is CorrectionStatus.OPEN and r.due_on < t else "否"),
    ("办结时间(UTC)", lambda r, _t: r.closed_at),
    ("办结人", lambda r, _t: r.closed_by),
    ("办理结果", lambda r, _t: r.resolution),
)
"""CSV columns of an export: Chinese headers, for the department's staff."""


__all__ = [
    "EXPORT_COLUMNS",
    "STAGED_SCHEMA",
    "Correction",
    "CorrectionMessage",
    "CorrectionOrigin",
    "CorrectionStatus",
    "Corrections",
    "Opened",
    "digest",
    "due_date",
    "file_request",
    "key_tokens",
    "masked_record",
    "published_keys",
    "stage_rows",
]
