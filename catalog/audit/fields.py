"""The fields of one access-log entry, cleaned and bounded before anything is written: the
action and outcome checked, texts and details cut to size, never a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal

from catalog.audit.documents import (
    canonical,
    stamp,
)
from catalog.metadata import (
    NAME_CHARS,
)

Outcome = Literal["allowed", "denied"]


_ACTION = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")


_TEXT_CHARS = 4000


_DETAIL_STRING_CHARS = 12_000  # room for the SQL of a query, which replay re-runs


_DETAIL_BYTES = 16_384


_MAX_COLUMNS = 1000


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


def entry_fields(
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


OUTCOMES: tuple[Outcome, ...] = ("allowed", "denied")
