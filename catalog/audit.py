"""The tamper-evident access log (being written).

Interface other modules code against; the body comes with the access-log work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

Outcome = Literal["allowed", "denied"]


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
    """Append one entry to the access log and return its sequence number."""
    raise NotImplementedError("the access log is being written")
