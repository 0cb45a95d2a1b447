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
import hashlib
import hmac
import json
import os
import re
import statistics
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import (
    ColumnElement,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.metadata import (
    NAME_CHARS,
    AccessCheckpoint,
    AccessEntry,
    AccessHead,
    Person,
    PersonRole,
    Role,
    utcnow,
)
from catalog.settings import current
from schemas.errors import AccessDeniedError, ConfigurationError, FatalError

Outcome = Literal["allowed", "denied"]
OUTCOMES: tuple[Outcome, ...] = ("allowed", "denied")

GENESIS = "0" * 64
"""``prev_hash`` and previous MAC of the first entry ever, and link of the first checkpoint."""
FORMAT = 1
"""Version of the canonical serialisation, part of every hashed document."""
HEAD_ID = 1

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

_ACTION = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_TEXT_CHARS = 4000
_DETAIL_STRING_CHARS = 12_000  # room for the SQL of a query, which replay re-runs
_DETAIL_BYTES = 16_384
_MAX_COLUMNS = 1000
_SQLITE_BUSY_MS = 30_000
_WALK_CHUNK = 5_000


class AuditIntegrityError(FatalError):
    """The access log does not verify: an entry or checkpoint was altered, removed or added."""


class RetentionError(AccessDeniedError):
    """A purge would remove entries younger than the configured retention."""


class AuditKeyError(ConfigurationError):
    """The audit keys needed to append or verify are missing or do not fit."""


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


def canonical(document: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes every hash, MAC and signature covers."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def stamp(at: datetime) -> str:
    """The fixed time format of the documents: UTC with microseconds and a ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """What ``entry_hash`` covers: every field of the entry, its number and ``prev_hash``."""
    return {
        "type": "gov-data-hub access log entry",
        "format": FORMAT,
        "seq": row["seq"],
        "at": stamp(row["at"]),
        "action": row["action"],
        "outcome": row["outcome"],
        "actor": row["actor"],
        "system": row["system"],
        "department": row["department"],
        "dataset": row["dataset"],
        "columns": row["columns"],
        "purpose": row["purpose"],
        "rows": row["rows"],
        "snapshot_id": row["snapshot_id"],
        "reason": row["reason"],
        "client": row["client"],
        "detail": row["detail"],
        "key_version": row["key_version"],
        "prev_hash": row["prev_hash"],
    }


def entry_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry_document(row))).hexdigest()


def entry_mac(key: bytes, row: Mapping[str, Any], prev_mac: str) -> str:
    """HMAC-SHA256 of the entry document with the previous entry's MAC added (``prev_mac``)."""
    return hmac.new(key, canonical({**entry_document(row), "prev_mac": prev_mac}), hashlib.sha256).hexdigest()


def head_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "gov-data-hub access log head",
        "format": FORMAT,
        **{
            name: row[name]
            for name in (
                "seq",
                "entry_hash",
                "entry_mac",
                "first_seq",
                "first_prev_hash",
                "first_prev_mac",
                "checkpoint_number",
                "checkpoint_hash",
                "key_version",
            )
        },
    }


def head_mac(key: bytes, row: Mapping[str, Any]) -> str:
    return hmac.new(key, canonical(head_document(row)), hashlib.sha256).hexdigest()


def checkpoint_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint's signature covers (everything but the signature)."""
    return {
        "type": "gov-data-hub access log checkpoint",
        "format": FORMAT,
        "number": row["number"],
        "at": stamp(row["at"]),
        "reason": row["reason"],
        "seq": row["seq"],
        "head_hash": row["head_hash"],
        "head_mac": row["head_mac"],
        "first_seq": row["first_seq"],
        "first_prev_hash": row["first_prev_hash"],
        "first_prev_mac": row["first_prev_mac"],
        "entries": row["entries"],
        "prev_checkpoint": row["prev_checkpoint"],
        "key_version": row["key_version"],
    }


def checkpoint_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(checkpoint_document(row))).hexdigest()


# -- keys --------------------------------------------------------------------------------------


class AuditKeys:
    """The audit MAC keys and checkpoint signing keys, every version, unwrapped in memory.

    Never printed: ``repr`` names versions only.
    """

    def __init__(
        self,
        mac_keys: Mapping[int, bytes],
        mac_version: int,
        signing_keys: Mapping[int, bytes],
        signing_version: int,
    ) -> None:
        if mac_version not in mac_keys or signing_version not in signing_keys:
            raise AuditKeyError("the current audit key versions are not among the keys given")
        self._mac = dict(mac_keys)
        self.mac_version = mac_version
        self._signing = {v: Ed25519PrivateKey.from_private_bytes(seed) for v, seed in signing_keys.items()}
        self.signing_version = signing_version

    @classmethod
    def from_keyring(cls, keyring: Any) -> AuditKeys:
        """From a :class:`masking.keys.Keyring` holding the ``audit`` and ``audit-sign`` kinds."""
        mac = {i.version: keyring.key("audit", i.version).secret.reveal() for i in keyring.versions("audit")}
        signing = {
            i.version: keyring.key("audit-sign", i.version).secret.reveal()
            for i in keyring.versions("audit-sign")
        }
        return cls(
            mac,
            keyring.current_key("audit").version,
            signing,
            keyring.current_key("audit-sign").version,
        )

    def mac_key(self, version: int | None = None) -> bytes:
        version = self.mac_version if version is None else version
        try:
            return self._mac[version]
        except KeyError:
            raise AuditKeyError(
                f"the keyring holds no audit MAC key version {version} "
                f"(versions held: {', '.join(map(str, sorted(self._mac)))})"
            ) from None

    def has_mac_version(self, version: int) -> bool:
        return version in self._mac

    def sign(self, document: Mapping[str, Any]) -> str:
        return self._signing[self.signing_version].sign(canonical(document)).hex()

    def public_keys(self) -> dict[int, Ed25519PublicKey]:
        """Every signing key's public half, by version."""
        return {v: k.public_key() for v, k in sorted(self._signing.items())}

    def __repr__(self) -> str:
        return (
            f"AuditKeys(mac versions {sorted(self._mac)} current {self.mac_version}, "
            f"signing versions {sorted(self._signing)} current {self.signing_version})"
        )

    __str__ = __repr__


_KEY_CACHE: dict[tuple[Any, ...], AuditKeys] = {}


def load_keys(keyring_path: Path | str | None = None) -> AuditKeys:
    """The audit keys from the configured keyring, adding them on first use.

    A keyring made before the access log lacks the audit kinds; they are added (version 1,
    under the keyring lock) the first time a process needs them, as ``hub keys upgrade``
    would. Cached per process until the keyring file or the master key changes.
    """
    from masking.keys import MASTER_KEY_ENV, Keyring

    master_key_file = current().master_key_file
    if keyring_path is None:
        keyring_path = current().keyring_path
    path = Path(keyring_path).expanduser().absolute()
    try:
        info = path.stat()
        signature: tuple[Any, ...] = (str(path), info.st_ino, info.st_mtime_ns, info.st_size)
    except FileNotFoundError:
        signature = (str(path),)
    master = os.environ.get(MASTER_KEY_ENV, "")
    cache_key = (*signature, hashlib.sha256(master.encode()).hexdigest())
    cached = _KEY_CACHE.get(cache_key)
    if cached is not None:
        return cached
    keyring = Keyring.load(path, master_key_file=master_key_file)
    if not (keyring.has("audit") and keyring.has("audit-sign")):
        keyring, _ = keyring.add_missing(("audit", "audit-sign"))
        return load_keys(path)  # cached under the rewritten file's signature
    keys = AuditKeys.from_keyring(keyring)
    _KEY_CACHE.clear()
    _KEY_CACHE[cache_key] = keys
    return keys


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def read_public_keys(text: str) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in a PEM text (``hub audit public-key --all`` output)."""
    keys: list[Ed25519PublicKey] = []
    for block in re.findall(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", text, flags=re.S):
        try:
            key = serialization.load_pem_public_key(block.encode("ascii"))
        except ValueError:
            raise AuditKeyError("a PUBLIC KEY block of the given file is not a valid public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise AuditKeyError("a public key of the given file is not an Ed25519 key")
        keys.append(key)
    if not keys:
        raise AuditKeyError("no PEM public key found (expected `hub audit public-key` output)")
    return keys


# -- entries -----------------------------------------------------------------------------------


def _clean(value: str | None, limit: int) -> str | None:
    """Text as the log keeps it: valid UTF-8, no NUL (PostgreSQL refuses it), bounded."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    text = value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    if len(text) > limit:
        cut = len(text) - limit + 20
        text = f"{text[: limit - 20]}…[+{cut} chars]"
    return text


def _clean_detail(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        return {str(_clean(str(k), NAME_CHARS)): _clean_detail(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_detail(v, where) for v in value]
    if isinstance(value, str):
        return _clean(value, _DETAIL_STRING_CHARS)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, date):
        return value.isoformat()
    # Bytes, key objects and anything else: never written, and never quoted in the message.
    raise TypeError(f"access-log detail {where} is a {type(value).__name__}, which the log does not keep")


def _detail_text(detail: Mapping[str, Any] | None) -> str | None:
    if detail is None:
        return None
    if not isinstance(detail, Mapping):
        raise TypeError("access-log detail must be a mapping")
    try:
        text = canonical(_clean_detail(detail, "detail")).decode("utf-8")
    except ValueError:
        raise ValueError("access-log detail holds a NaN or infinite number") from None
    if len(text.encode("utf-8")) > _DETAIL_BYTES:
        raise ValueError(
            f"access-log detail is {len(text)} characters; at most {_DETAIL_BYTES} bytes are kept"
        )
    return text


def _fields(
    *,
    action: str,
    outcome: str,
    actor: str | None,
    system: str | None,
    department: str | None,
    dataset: str | None,
    columns: Sequence[str],
    purpose: str | None,
    rows: int | None,
    snapshot_id: int | None,
    reason: str | None,
    client: str | None,
    detail: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Check and normalise what a caller hands in (before anything is hashed)."""
    if not isinstance(action, str) or not _ACTION.match(action):
        raise ValueError(f"access-log action {action!r} is not a short lower-case name")
    if outcome not in OUTCOMES:
        raise ValueError(f"access-log outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if isinstance(columns, str):
        raise TypeError("access-log columns must be a sequence of names, not one string")
    names = [_clean(str(c), NAME_CHARS) for c in columns]
    if len(names) > _MAX_COLUMNS:
        raise ValueError(f"access-log entry names {len(names)} columns; at most {_MAX_COLUMNS}")
    for name, number in (("rows", rows), ("snapshot_id", snapshot_id)):
        if number is not None and (type(number) is not int or not -(2**63) <= number < 2**63):
            raise ValueError(f"access-log {name} must be a 64-bit integer, not {number!r}")
    if rows is not None and rows < 0:
        raise ValueError(f"access-log rows cannot be negative ({rows})")
    return {
        "action": action,
        "outcome": outcome,
        "actor": _clean(actor, NAME_CHARS),
        "system": _clean(system, NAME_CHARS),
        "department": _clean(department, NAME_CHARS),
        "dataset": _clean(dataset, NAME_CHARS),
        "columns": canonical(names).decode("utf-8") if names else "[]",
        "purpose": _clean(purpose, _TEXT_CHARS),
        "rows": rows,
        "snapshot_id": snapshot_id,
        "reason": _clean(reason, _TEXT_CHARS),
        "client": _clean(client, NAME_CHARS),
        "detail": _detail_text(detail),
    }


def record_access(
    store: Any,
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
    """Append one entry to the access log and return its sequence number.

    ``store`` is a :class:`catalog.metadata.store.MetadataStore` (the entry commits on its own) or an
    open SQLAlchemy ``Session`` on the hub metadata (the entry commits, or rolls back, with
    the caller's transaction, so an action and its record cannot part). The MAC and signing
    keys come from the configured keyring (:func:`load_keys`). Raises ``ValueError`` or
    ``TypeError`` for a malformed entry (bad action or outcome, a detail that is not small
    JSON) before anything is written.
    """
    entry = _fields(
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
    if isinstance(store, Session):
        return AccessLog.append_in(store, [entry], load_keys())[0]
    return AccessLog(store).append_fields([entry])[0]


def require_auditor(store: Any, name: str | None, *, action: str, client: str | None = None) -> str:
    """The acting person's name if they are a registered auditor; else the refusal, recorded.

    Reports and exports show who read what, so only people holding the ``auditor`` role
    (``hub people add NAME --role auditor``) may read them. The refusal is appended to the
    log under ``action`` and raised as :class:`AccessDeniedError` (exit code 5).
    """
    acting = (name or "").strip() or None
    reason: str | None = None
    if acting is None:
        reason = "who is acting? pass --as NAME or set HUB_USER"
    else:
        with store.session() as session:
            person = session.get(Person, acting)
            if person is None:
                reason = f"no person {acting!r} is registered (hub people add)"
            elif person.removed_at is not None:
                reason = f"person {acting!r} was removed on {person.removed_at:%Y-%m-%d}"
            else:
                query = select(PersonRole.id).where(
                    PersonRole.person == acting, PersonRole.role == Role.AUDITOR
                )
                if session.execute(query.limit(1)).first() is None:
                    reason = f"{acting} is not an auditor"
    if reason is not None:
        record_access(store, action=action, outcome="denied", actor=acting, client=client, reason=reason)
        raise AccessDeniedError(f"{action} refused: {reason} (this refusal is recorded)")
    assert acting is not None
    return acting


# -- the log -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing verification found wrong; ``seq`` is the entry it is about, if any."""

    message: str
    seq: int | None = None
    checkpoint: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Verification:
    """What :meth:`AccessLog.verify` found."""

    entries: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    last_checkpoint_seq: int | None
    macs_checked: bool
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


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


@dataclass(frozen=True)
class PurgeResult:
    before: date
    purged: int
    first_seq: int | None
    checkpoint: int | None
    seq: int
    """The ``audit.purge`` entry that records the purge."""


@dataclass(frozen=True)
class Filters:
    """Which entries a report or export covers (every field optional)."""

    system: str | None = None
    dataset: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None
    action: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.system is not None:
            clauses.append(AccessEntry.system == self.system)
        if self.dataset is not None:
            clauses.append(AccessEntry.dataset == self.dataset)
        if self.since is not None:
            clauses.append(AccessEntry.at >= self.since)
        if self.until is not None:
            clauses.append(AccessEntry.at < self.until)
        if self.outcome is not None:
            if self.outcome not in OUTCOMES:
                raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
            clauses.append(AccessEntry.outcome == self.outcome)
        if self.action is not None:
            clauses.append(AccessEntry.action == self.action)
        return clauses

    def describe(self) -> dict[str, str]:
        shown = {
            "system": self.system,
            "dataset": self.dataset,
            "since": stamp(self.since) if self.since else None,
            "until": stamp(self.until) if self.until else None,
            "outcome": self.outcome,
            "action": self.action,
        }
        return {k: v for k, v in shown.items() if v is not None}


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
        entry = _fields(
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
        return self.append_fields([_fields(**_with_defaults(e)) for e in entries])

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
        head = _lock_head(session)
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
                _write_checkpoint(session, head, keys, "periodic", now)
        if rows:
            session.execute(insert(AccessEntry), rows)
        _save_head(session, head, keys)
        return numbers

    def checkpoint(self, *, actor: str | None = None, client: str | None = None) -> CheckpointInfo:
        """Write a signed checkpoint of the chain as it is now, and record that it was asked for."""
        keys, every = self.keys, self.checkpoint_every
        with self._write() as session:
            head = _lock_head(session)
            number = _write_checkpoint(session, head, keys, "demand", utcnow())
            _save_head(session, head, keys)
            entry = _fields(
                **_with_defaults(
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
            return [_checkpoint_info(dict(r._mapping)) for r in found]

    def entries(
        self, filters: Filters | None = None, *, chunk: int = _WALK_CHUNK
    ) -> Iterator[dict[str, Any]]:
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
        walker = _Walker(keys)

        with self._read() as session:
            head = _row(session, select(AccessHead.__table__).where(AccessHead.id == HEAD_ID))
            checkpoints = [
                dict(r._mapping)
                for r in session.execute(select(AccessCheckpoint.__table__).order_by(AccessCheckpoint.number))
            ]
        problems: list[Problem] = []
        anchor = _anchor(head, checkpoints)
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
            head_now = _row(session, select(AccessHead.__table__).where(AccessHead.id == HEAD_ID))
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
                for row in _chunks(session, walker.next_seq):
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
        problems.extend(_check_head(head, checkpoints, keys, walker))
        problems.extend(
            _check_checkpoints(checkpoints, walker, by_version if macs else None, verifiers, macs=macs)
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
            problems=tuple(_unique(problems)),
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
                    for r in session.execute(query.order_by(AccessEntry.seq).limit(_WALK_CHUNK))
                ]
            yield from batch
            if len(batch) < _WALK_CHUNK:
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
            head = _lock_head(session)
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
                for low in range(head["first_seq"], new_first, _WALK_CHUNK * 10):
                    high = min(low + _WALK_CHUNK * 10, new_first)
                    result: Any = session.execute(
                        delete(AccessEntry).where(AccessEntry.seq >= low, AccessEntry.seq < high)
                    )
                    purged += int(result.rowcount or 0)
                head.update(first_seq=new_first, first_prev_hash=anchor, first_prev_mac=prev_mac)
                number = _write_checkpoint(session, head, keys, "purge", utcnow())
                _save_head(session, head, keys)
            entry = _fields(
                **_with_defaults(
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
                        if len(chunk) == _WALK_CHUNK:
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
            day = _day(session.get_bind().dialect.name)
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


class GroupAppender:
    """Appends from many threads of one process, sharing transactions (group commit).

    Each :meth:`append` returns only once its entry is committed, as :func:`record_access`
    does. One dedicated thread writes: request threads only hand in their entry and wait, so
    each waits for at most the transaction in progress and the one holding its entry, while
    the entries handed in meanwhile go together in the next transaction. A server answering
    many requests at once pays one lock and one commit per batch instead of per entry. A
    failed batch fails every caller in it (nothing is lost silently).
    """

    def __init__(self, log: AccessLog, *, max_batch: int = 500) -> None:
        self._log = log
        self._max_batch = max_batch
        self._wake = threading.Condition(threading.Lock())
        self._pending: list[tuple[dict[str, Any], Future[int]]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hub-access-log", daemon=True)
        self._thread.start()

    def append(self, **entry: Any) -> int:
        """Append one entry (the keyword arguments of :func:`record_access`); its number, once committed."""
        fields = _fields(**_with_defaults(entry))
        future: Future[int] = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the access-log writer is closed")
            self._pending.append((fields, future))
            self._wake.notify()
        return future.result()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            try:
                numbers = self._log.append_fields([fields for fields, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), number in zip(batch, numbers, strict=True):
                    future.set_result(number)

    def close(self) -> None:
        """Write what is pending, then stop the writer."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=60)

    # -- reports -------------------------------------------------------------------------------


# -- reports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    day: str
    system: str | None
    dataset: str | None
    action: str
    calls: int
    rows: int
    denied: int


@dataclass(frozen=True)
class Tally:
    """Calls, rows and denied calls of one system, dataset, day, action or outcome."""

    name: str
    calls: int = 0
    rows: int = 0
    denied: int = 0


@dataclass(frozen=True)
class Unusual:
    """A system's day above ``factor`` times its median day."""

    system: str
    day: str
    metric: str
    value: int
    median: float
    factor: float


@dataclass
class Report:
    filters: Filters
    generated_at: datetime
    calls: int
    rows: int
    denied: int
    by_system: list[Tally]
    by_dataset: list[Tally]
    by_day: list[Tally]
    by_action: list[Tally]
    by_system_day: dict[str, dict[str, Tally]]
    denied_entries: list[dict[str, Any]]
    unusual: list[Unusual]
    unusual_factor: float
    unusual_min_days: int
    verification: Verification | None = field(default=None)

    @classmethod
    def build(
        cls,
        filters: Filters,
        groups: Sequence[Group],
        denied_entries: list[dict[str, Any]],
        *,
        factor: float,
        min_days: int,
    ) -> Report:
        def tally(key: Callable[[Group], str]) -> list[Tally]:
            sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
            for g in groups:
                s = sums[key(g)]
                s[0] += g.calls
                s[1] += g.rows
                s[2] += g.denied
            return [Tally(name, *values) for name, values in sums.items()]

        by_system_day: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        for g in groups:
            s = by_system_day[g.system or "-"][g.day]
            s[0] += g.calls
            s[1] += g.rows
            s[2] += g.denied
        unusual: list[Unusual] = []
        for system, days in by_system_day.items():
            if system == "-" or len(days) < min_days:
                continue
            for metric, index in (("calls", 0), ("rows", 1)):
                values = [v[index] for v in days.values() if v[index] > 0]
                if len(values) < min_days:
                    continue
                median = statistics.median(values)
                for day, v in sorted(days.items()):
                    if median > 0 and v[index] > factor * median:
                        unusual.append(Unusual(system, day, metric, v[index], float(median), factor))
        calls = sum(g.calls for g in groups)

        def ranked(tallies: list[Tally]) -> list[Tally]:
            return sorted(tallies, key=lambda t: (-t.calls, t.name))

        return cls(
            filters=filters,
            generated_at=utcnow(),
            calls=calls,
            rows=sum(g.rows for g in groups),
            denied=sum(g.denied for g in groups),
            by_system=ranked(tally(lambda g: g.system or "-")),
            by_dataset=ranked(tally(lambda g: g.dataset or "-")),
            by_day=sorted(tally(lambda g: g.day), key=lambda t: t.name),
            by_action=ranked(tally(lambda g: g.action)),
            by_system_day={
                s: {d: Tally(d, *v) for d, v in sorted(days.items())}
                for s, days in sorted(by_system_day.items())
            },
            denied_entries=denied_entries,
            unusual=sorted(unusual, key=lambda u: (u.day, u.system, u.metric)),
            unusual_factor=factor,
            unusual_min_days=min_days,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "filters": self.filters.describe(),
            "generated_at": stamp(self.generated_at),
            "calls": self.calls,
            "rows": self.rows,
            "denied": self.denied,
            "by_system": [t.__dict__ for t in self.by_system],
            "by_dataset": [t.__dict__ for t in self.by_dataset],
            "by_day": [t.__dict__ for t in self.by_day],
            "by_action": [t.__dict__ for t in self.by_action],
            "denied_entries": [_public_entry(e) for e in self.denied_entries],
            "unusual": [u.__dict__ for u in self.unusual],
            "unusual_rule": {"factor": self.unusual_factor, "min_days": self.unusual_min_days},
        }


def _public_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in entry.items()}
    shown["at"] = stamp(entry["at"])
    shown["columns"] = json.loads(entry["columns"]) if entry.get("columns") else []
    shown["detail"] = json.loads(entry["detail"]) if entry.get("detail") else None
    return shown


def _day(dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of an entry as ``YYYY-MM-DD`` text, in SQL."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", AccessEntry.at), "YYYY-MM-DD")
    if dialect in ("mysql", "mariadb"):
        return func.date_format(AccessEntry.at, "%Y-%m-%d")
    return func.substr(AccessEntry.at, 1, 10)  # SQLite keeps UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'


# -- internals ---------------------------------------------------------------------------------


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


def _with_defaults(entry: Mapping[str, Any]) -> dict[str, Any]:
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


def _chunks(session: Session, start: int) -> Iterator[dict[str, Any]]:
    """Entries from ``start`` on, in sequence order, fetched a chunk at a time in ``session``."""
    after = start - 1
    while True:
        query = select(AccessEntry.__table__).where(AccessEntry.seq > after).order_by(AccessEntry.seq)
        batch = [dict(r._mapping) for r in session.execute(query.limit(_WALK_CHUNK))]
        yield from batch
        if len(batch) < _WALK_CHUNK:
            return
        after = batch[-1]["seq"]


def _row(session: Session, query: Any) -> dict[str, Any] | None:
    found = session.execute(query).first()
    return dict(found._mapping) if found is not None else None


def _lock_head(session: Session) -> dict[str, Any]:
    """The chain head, locked for this transaction (created, empty, on the first append)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        begin_write(session)
    query = select(AccessHead.__table__).where(AccessHead.id == HEAD_ID).with_for_update()
    head = _row(session, query)
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
        head = _row(session, query)
        assert head is not None
    return head


def _save_head(session: Session, head: dict[str, Any], keys: AuditKeys) -> None:
    head["key_version"] = keys.mac_version
    head["head_mac"] = head_mac(keys.mac_key(), head)
    head["updated_at"] = utcnow()
    values = {k: v for k, v in head.items() if k != "id"}
    session.execute(update(AccessHead).where(AccessHead.id == HEAD_ID).values(**values))


def _write_checkpoint(
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


def _checkpoint_info(row: dict[str, Any]) -> CheckpointInfo:
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


def _anchor(head: Mapping[str, Any] | None, checkpoints: Sequence[Mapping[str, Any]]) -> tuple[int, str, str]:
    """Where the chain starts: the head's first entry, else the newest checkpoint's, else 1."""
    source = head if head is not None else (checkpoints[-1] if checkpoints else None)
    if source is None:
        return 1, GENESIS, GENESIS
    return int(source["first_seq"]), source["first_prev_hash"], source["first_prev_mac"]


class _Walker:
    """Checks entries one by one in sequence order and stops at the first bad one."""

    def __init__(self, keys: AuditKeys | None) -> None:
        self.keys = keys
        self.problem: Problem | None = None
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.next_seq = 1
        self.prev_hash = GENESIS
        self.prev_mac = GENESIS
        self.seen: dict[int, tuple[str, str]] = {}
        self._wanted: set[int] = set()

    def start(self, anchor: tuple[int, str, str], wanted: set[int]) -> None:
        self.next_seq, self.prev_hash, self.prev_mac = anchor
        self._wanted = wanted

    def want(self, seqs: set[int]) -> None:
        """Also remember the hashes of these entries (named by checkpoints read later)."""
        self._wanted |= seqs

    def take(self, row: Mapping[str, Any]) -> bool:
        seq = int(row["seq"])
        expected = self.next_seq
        if seq != expected:
            first_kept = self.count == 0
            where = "at the start of the log" if first_kept else f"after entry {expected - 1}"
            span = f"entry {expected}" if seq == expected + 1 else f"entries {expected}-{seq - 1}"
            self.problem = Problem(
                f"{span} missing {where} (deleted; the next entry kept is {seq})", seq=expected
            )
            return False
        if row["prev_hash"] != self.prev_hash:
            before = "the log's start anchor" if self.count == 0 else f"entry {seq - 1}"
            self.problem = Problem(
                f"entry {seq} does not follow {before}: its prev_hash names another predecessor "
                "(entries reordered, inserted or replaced)",
                seq=seq,
            )
            return False
        computed = entry_hash(row)
        if computed != row["entry_hash"]:
            self.problem = Problem(
                f"entry {seq} was altered: its fields do not match its entry_hash ({_changed_hint(row)})",
                seq=seq,
            )
            return False
        if self.keys is not None:
            version = int(row["key_version"])
            if not self.keys.has_mac_version(version):
                self.problem = Problem(
                    f"entry {seq} names audit MAC key version {version}, which the keyring does not hold",
                    seq=seq,
                )
                return False
            if not hmac.compare_digest(
                entry_mac(self.keys.mac_key(version), row, self.prev_mac), row["entry_mac"]
            ):
                self.problem = Problem(
                    f"entry {seq} was altered or forged: its MAC does not match its fields and predecessor "
                    "(the hash chain was recomputed without the MAC key)",
                    seq=seq,
                )
                return False
        self.count += 1
        self.first = seq if self.first is None else self.first
        self.last = seq
        self.next_seq = seq + 1
        self.prev_hash, self.prev_mac = row["entry_hash"], row["entry_mac"]
        if seq in self._wanted:
            self.seen[seq] = (row["entry_hash"], row["entry_mac"])
        return True

    def beyond(self, row: Mapping[str, Any], head: Mapping[str, Any] | None) -> None:
        where = f"the chain head (entry {head['seq']})" if head is not None else "an empty chain head"
        self.problem = Problem(
            f"entry {row['seq']} lies beyond {where}: it was added outside the log", seq=int(row["seq"])
        )

    def finish(self, head: Mapping[str, Any] | None) -> list[Problem]:
        if head is None:
            return []
        last = int(head["seq"])
        if self.next_seq <= last:
            span = f"entry {last}" if self.next_seq == last else f"entries {self.next_seq}-{last}"
            return [
                Problem(
                    f"{span} missing at the end of the log (truncated; the chain head names entry {last})",
                    seq=self.next_seq,
                )
            ]
        if last >= int(head["first_seq"]) and (self.prev_hash, self.prev_mac) != (
            head["entry_hash"],
            head["entry_mac"],
        ):
            return [
                Problem(f"entry {last} is not the entry the chain head names (it was replaced)", seq=last)
            ]
        return []


def _span(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first}-{last}"


def _changed_hint(row: Mapping[str, Any]) -> str:
    return f"{row['action']} by system {row['system']!r}" if row.get("system") else str(row["action"])


def _check_head(
    head: Mapping[str, Any] | None,
    checkpoints: Sequence[Mapping[str, Any]],
    keys: AuditKeys | None,
    walker: _Walker,
) -> list[Problem]:
    if head is None:
        if walker.count or checkpoints:
            return [Problem("the chain-head row is missing while entries or checkpoints exist (deleted)")]
        return []
    problems: list[Problem] = []
    if keys is not None and int(head["seq"]) > 0:
        version = head["key_version"]
        if version is None or not keys.has_mac_version(int(version)):
            problems.append(Problem("the chain-head row names no audit MAC key version the keyring holds"))
        elif not hmac.compare_digest(head_mac(keys.mac_key(int(version)), head), head["head_mac"] or ""):
            problems.append(Problem("the chain-head row was altered: its MAC does not match"))
    newest = checkpoints[-1] if checkpoints else None
    number = int(head["checkpoint_number"])
    if newest is None:
        if number:
            problems.append(
                Problem(f"checkpoints 1-{number} are missing (the chain head names checkpoint {number})")
            )
        return problems
    if int(newest["number"]) < number:
        problems.append(
            Problem(
                f"checkpoint {number} is missing: the newest kept is {newest['number']} (deleted)",
                checkpoint=number,
            )
        )
    elif int(newest["number"]) > number:
        problems.append(
            Problem(
                f"checkpoint {newest['number']} is newer than the chain head's checkpoint {number} (inserted)",
                checkpoint=int(newest["number"]),
            )
        )
    elif checkpoint_hash(newest) != head["checkpoint_hash"]:
        problems.append(
            Problem(f"checkpoint {number} is not the one the chain head names (replaced)", checkpoint=number)
        )
    if (newest["first_seq"], newest["first_prev_hash"], newest["first_prev_mac"]) != (
        head["first_seq"],
        head["first_prev_hash"],
        head["first_prev_mac"],
    ):
        problems.append(
            Problem(
                f"the chain head's first entry ({head['first_seq']}) differs from the one checkpoint "
                f"{newest['number']} anchors ({newest['first_seq']})",
                seq=int(head["first_seq"]),
            )
        )
    return problems


def _check_checkpoints(
    checkpoints: Sequence[Mapping[str, Any]],
    walker: _Walker,
    by_version: Mapping[int, Ed25519PublicKey] | None,
    supplied: Sequence[Ed25519PublicKey],
    *,
    macs: bool,
) -> list[Problem]:
    problems: list[Problem] = []
    prev = GENESIS
    for position, cp in enumerate(checkpoints, start=1):
        number, seq = int(cp["number"]), int(cp["seq"])
        if number != position:
            problems.append(
                Problem(
                    f"checkpoint {position} is missing (the next kept is {number}; deleted)",
                    checkpoint=position,
                )
            )
            break
        if cp["prev_checkpoint"] != prev:
            problems.append(
                Problem(
                    f"checkpoint {number} does not follow checkpoint {number - 1}", seq=seq, checkpoint=number
                )
            )
            break
        prev = checkpoint_hash(cp)
        if not _signature_ok(cp, by_version, supplied):
            problems.append(
                Problem(
                    f"checkpoint {number} (entry {seq}) has no valid signature: altered, or signed by "
                    "another key",
                    seq=seq,
                    checkpoint=number,
                )
            )
            continue
        seen = walker.seen.get(seq)
        if seen is not None:
            if seen[0] != cp["head_hash"] or (macs and seen[1] != cp["head_mac"]):
                problems.append(
                    Problem(
                        f"entry {seq} is not the entry signed checkpoint {number} names (altered, with its "
                        "chain rebuilt)",
                        seq=seq,
                        checkpoint=number,
                    )
                )
        elif walker.problem is None and seq >= walker.next_seq and seq >= int(cp["first_seq"]):
            problems.append(
                Problem(
                    f"{_span(walker.next_seq, seq)} missing at the end of the log (truncated; signed "
                    f"checkpoint {number} names entry {seq})",
                    seq=walker.next_seq,
                    checkpoint=number,
                )
            )
    return problems


def _signature_ok(
    cp: Mapping[str, Any],
    by_version: Mapping[int, Ed25519PublicKey] | None,
    supplied: Sequence[Ed25519PublicKey],
) -> bool:
    try:
        signature = bytes.fromhex(cp["signature"])
    except ValueError:
        return False
    message = canonical(checkpoint_document(cp))
    candidates = [by_version[cp["key_version"]]] if by_version and cp["key_version"] in by_version else []
    candidates = candidates or list(supplied)
    for key in candidates:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


def _unique(problems: Iterable[Problem]) -> Iterator[Problem]:
    seen: set[str] = set()
    for p in problems:
        if p.message not in seen:
            seen.add(p.message)
            yield p
