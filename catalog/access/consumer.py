"""Consumer access: a system's query through the gateway, on record whatever happens.

The one path by which a consumer system reads shared tables (``hub query --as SYSTEM``,
``POST /v1/query``): the purpose is required, the system's active grants decide what its
connection holds, and every attempt appends one access-log entry, allowed or denied, with
the columns it could read, the rows returned, the snapshot of each view and the SQL itself,
so that ``hub audit replay`` can re-run it against the same snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.access.errors import PurposeRequiredError, ReplayError
from catalog.access.gateway import Gateway, GatewayResult, Limits
from catalog.audit import record_access
from catalog.metadata import AccessEntry
from catalog.sharing import GrantRef, SystemRef, list_grants
from schemas.errors import AccessDeniedError, HubError

MAX_LOGGED_SQL = 12_000
"""SQL longer than this is logged truncated (and then cannot be replayed exactly)."""


@dataclass(frozen=True)
class QueryRequest:
    system: SystemRef
    sql: str
    purpose: str | None
    client: str | None = None
    actor: str | None = None
    limits: Limits | None = None


Appender = Callable[..., int]


def _columns(grants: Sequence[GrantRef], datasets: Sequence[str]) -> list[str]:
    by_dataset = {g.dataset: g for g in grants}
    return [f"{d}.{c}" for d in datasets for c in by_dataset[d].columns]


def run_query(
    store: Any,
    gateway: Gateway,
    request: QueryRequest,
    *,
    append: Appender | None = None,
    grants: Sequence[GrantRef] | None = None,
) -> tuple[GatewayResult, int]:
    """Run a consumer's query and log it; returns the result and its access-log entry number.

    ``append`` defaults to :func:`catalog.audit.record_access` on ``store``; a server passes
    its group-commit appender. Refusals are logged, then raised.
    """
    log: Appender = append or (lambda **entry: record_access(store, **entry))
    purpose = (request.purpose or "").strip()
    active = list(grants) if grants is not None else list_grants(store, system=request.system.id)
    sql = request.sql
    base: dict[str, Any] = {
        "action": "query",
        "actor": request.actor,
        "system": request.system.id,
        "department": request.system.department,
        "purpose": purpose or None,
        "client": request.client,
    }
    detail: dict[str, Any] = {"sql": sql[:MAX_LOGGED_SQL]}
    if len(sql) > MAX_LOGGED_SQL:
        detail["sql_truncated"] = True
    try:
        if not purpose:
            raise PurposeRequiredError(
                'state the purpose of this query (--purpose / "purpose"): shared data may be used '
                "only for the purpose it was requested for, and every read records it"
            )
        datasets = gateway.check(sql, active)
        if not datasets:
            raise AccessDeniedError("the query reads no granted dataset")
        purposes = {g.dataset: g.purpose for g in active}
        result = gateway.run(sql, active, limits=request.limits)
    except HubError as exc:
        entry = log(**base, outcome="denied", reason=str(exc), detail=detail)
        exc.add_note(f"access-log entry {entry}")
        raise
    detail.update(
        snapshots=result.snapshots,
        truncated=result.truncated,
        elapsed_ms=round(result.elapsed * 1000, 1),
        grants={g.dataset: g.id for g in active if g.dataset in result.snapshots},
        levels={g.dataset: g.level for g in active if g.dataset in result.snapshots},
        granted_purposes={d: purposes[d] for d in result.datasets},
    )
    only = result.datasets[0] if len(result.datasets) == 1 else None
    entry = log(
        **base,
        outcome="allowed",
        dataset=only or ",".join(result.datasets),
        columns=_columns(active, result.datasets),
        rows=result.table.num_rows,
        snapshot_id=result.snapshots[only] if only else None,
        detail=detail,
    )
    return result, entry


# -- replay ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LoggedGrant:
    id: int
    system: str
    dataset: str
    level: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Replay:
    """A logged query re-run against the snapshots it read."""

    entry: dict[str, Any]
    result: GatewayResult
    logged_rows: int | None

    @property
    def same_row_count(self) -> bool:
        return self.logged_rows == self.result.table.num_rows


def replay_query(store: Any, gateway: Gateway, seq: int) -> Replay:
    """Re-run logged query ``seq`` exactly as it ran: its SQL, the columns its grants gave
    then (even if the grant has since been revoked), against the snapshots it read."""
    import json

    from sqlalchemy import select

    with store.session() as session:
        row = session.execute(select(AccessEntry.__table__).where(AccessEntry.seq == seq)).first()
    if row is None:
        raise ReplayError(f"access-log entry {seq} does not exist")
    entry = dict(row._mapping)
    if entry["action"] != "query" or entry["outcome"] != "allowed":
        raise ReplayError(
            f"access-log entry {seq} is a {entry['outcome']} {entry['action']}; only allowed queries "
            "returned rows to replay"
        )
    detail = json.loads(entry["detail"] or "{}")
    if detail.get("sql_truncated"):
        raise ReplayError(
            f"access-log entry {seq} kept only the first {MAX_LOGGED_SQL} characters of its SQL"
        )
    columns: dict[str, list[str]] = {}
    for qualified in json.loads(entry["columns"] or "[]"):
        dataset, _, column = str(qualified).partition(".")
        columns.setdefault(dataset, []).append(column)
    grants = [
        _LoggedGrant(
            id=int(detail.get("grants", {}).get(dataset, 0)),
            system=str(entry["system"]),
            dataset=dataset,
            level=str(detail.get("levels", {}).get(dataset, "conditional")),
            columns=tuple(names),
        )
        for dataset, names in columns.items()
    ]
    logged_rows = entry["rows"]
    limits = (
        Limits(rows=max(int(logged_rows or 0), 1)) if detail.get("truncated") else Limits(rows=10_000_000)
    )
    result = gateway.run(detail["sql"], grants, limits=limits, snapshots=detail.get("snapshots") or {})
    return Replay(entry=entry, result=result, logged_rows=logged_rows)
