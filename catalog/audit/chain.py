"""The access log's storage: the head row under its lock, entries read in order, checkpoints
written and read back. What appending and verifying share.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.audit.documents import (
    GENESIS,
    HEAD_ID,
    checkpoint_document,
    checkpoint_hash,
    head_mac,
    stamp,
)
from catalog.audit.keys import AuditKeys
from catalog.metadata import (
    AccessCheckpoint,
    AccessEntry,
    AccessHead,
    utcnow,
)

_SQLITE_BUSY_MS = 30_000


WALK_CHUNK = 5_000


@dataclass(frozen=True)
class CheckpointInfo:
    number: int
    at: datetime
    reason: str
    seq: int
    head_hash: str
    first_seq: int
    entries: int
    key_version: int
    signature: str
    document: dict[str, Any]


def public_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in entry.items()}
    shown["at"] = stamp(entry["at"])
    shown["columns"] = json.loads(entry["columns"]) if entry.get("columns") else []
    shown["detail"] = json.loads(entry["detail"]) if entry.get("detail") else None
    return shown


def day_of(dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of an entry as ``YYYY-MM-DD`` text, in SQL."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", AccessEntry.at), "YYYY-MM-DD")
    if dialect in ("mysql", "mariadb"):
        return func.date_format(AccessEntry.at, "%Y-%m-%d")
    return func.substr(AccessEntry.at, 1, 10)  # SQLite keeps UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'


_FIELD_NAMES = (
    "action",
    "outcome",
    "actor",
    "system",
    "department",
    "dataset",
    "columns",
    "purpose",
    "rows",
    "snapshot_id",
    "reason",
    "client",
    "detail",
)


def with_defaults(entry: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(entry) - set(_FIELD_NAMES))
    if unknown:
        raise ValueError(f"access-log entries have no field(s) {', '.join(unknown)}")
    return {
        "actor": None,
        "system": None,
        "department": None,
        "dataset": None,
        "columns": (),
        "purpose": None,
        "rows": None,
        "snapshot_id": None,
        "reason": None,
        "client": None,
        "detail": None,
        **entry,
    }


def begin_write(session: Session) -> None:
    """Take the database write lock first thing on SQLite (``BEGIN IMMEDIATE``)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def entry_chunks(session: Session, start: int) -> Iterator[dict[str, Any]]:
    """Entries from ``start`` on, in sequence order, fetched a chunk at a time in ``session``."""
    after = start - 1
    while True:
        query = select(AccessEntry.__table__).where(AccessEntry.seq > after).order_by(AccessEntry.seq)
        batch = [dict(r._mapping) for r in session.execute(query.limit(WALK_CHUNK))]
        yield from batch
        if len(batch) < WALK_CHUNK:
            return
        after = batch[-1]["seq"]


def entry_row(session: Session, query: Any) -> dict[str, Any] | None:
    found = session.execute(query).first()
    return dict(found._mapping) if found is not None else None


def lock_head(session: Session) -> dict[str, Any]:
    """The chain head, locked for this transaction (created, empty, on the first append)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        begin_write(session)
    query = select(AccessHead.__table__).where(AccessHead.id == HEAD_ID).with_for_update()
    head = entry_row(session, query)
    if head is None:
        empty = {
            "id": HEAD_ID,
            "seq": 0,
            "entry_hash": GENESIS,
            "entry_mac": GENESIS,
            "first_seq": 1,
            "first_prev_hash": GENESIS,
            "first_prev_mac": GENESIS,
            "checkpoint_number": 0,
            "checkpoint_hash": GENESIS,
            "key_version": None,
            "head_mac": None,
            "updated_at": utcnow(),
        }
        if dialect == "postgresql":
            session.execute(
                pg_insert(AccessHead).values(**empty).on_conflict_do_nothing(index_elements=["id"])
            )
        else:
            session.execute(insert(AccessHead).values(**empty))
        head = entry_row(session, query)
        assert head is not None
    return head


def save_head(session: Session, head: dict[str, Any], keys: AuditKeys) -> None:
    head["key_version"] = keys.mac_version
    head["head_mac"] = head_mac(keys.mac_key(), head)
    head["updated_at"] = utcnow()
    values = {k: v for k, v in head.items() if k != "id"}
    session.execute(update(AccessHead).where(AccessHead.id == HEAD_ID).values(**values))


def write_checkpoint(
    session: Session, head: dict[str, Any], keys: AuditKeys, reason: str, at: datetime
) -> int:
    row = {
        "number": head["checkpoint_number"] + 1,
        "at": at,
        "reason": reason,
        "seq": head["seq"],
        "head_hash": head["entry_hash"],
        "head_mac": head["entry_mac"],
        "first_seq": head["first_seq"],
        "first_prev_hash": head["first_prev_hash"],
        "first_prev_mac": head["first_prev_mac"],
        "entries": max(head["seq"] - head["first_seq"] + 1, 0),
        "prev_checkpoint": head["checkpoint_hash"],
        "key_version": keys.signing_version,
    }
    row["signature"] = keys.sign(checkpoint_document(row))
    session.execute(insert(AccessCheckpoint).values(**row))
    head.update(checkpoint_number=row["number"], checkpoint_hash=checkpoint_hash(row))
    return int(row["number"])


def checkpoint_info(row: dict[str, Any]) -> CheckpointInfo:
    return CheckpointInfo(
        number=row["number"],
        at=row["at"],
        reason=row["reason"],
        seq=row["seq"],
        head_hash=row["head_hash"],
        first_seq=row["first_seq"],
        entries=row["entries"],
        key_version=row["key_version"],
        signature=row["signature"],
        document=checkpoint_document(row),
    )


def anchor_of(
    head: Mapping[str, Any] | None, checkpoints: Sequence[Mapping[str, Any]]
) -> tuple[int, str, str]:
    """Where the chain starts: the head's first entry, else the newest checkpoint's, else 1."""
    source = head if head is not None else (checkpoints[-1] if checkpoints else None)
    if source is None:
        return 1, GENESIS, GENESIS
    return int(source["first_seq"]), source["first_prev_hash"], source["first_prev_mac"]
