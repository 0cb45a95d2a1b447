"""The canonical documents of the access log and their digests: an entry's hash and MAC, the
head row's MAC, a checkpoint's hash. Anyone holding the entries can recompute the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
"""``prev_hash`` and previous MAC of the first entry ever, and link of the first checkpoint."""


FORMAT = 1
"""Version of the canonical serialisation, part of every hashed document."""


HEAD_ID = 1


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
