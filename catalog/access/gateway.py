"""The consumer gateway: one fresh, locked DuckDB connection per query, seeing only a grant.

A consumer system's query runs on a connection that holds one view per granted dataset,
named after the dataset and carrying only the grant's columns, over the snapshot that was
current when the connection was made (the unconditional, k-anonymous table for an
unconditional grant of a dataset that has one). Before anything runs, the SQL is parsed by
DuckDB itself and refused unless it is exactly one ``SELECT`` whose every table reference
is one of those views or a CTE of the query: no table functions (``read_csv``,
``read_parquet``, ``glob``, ``query_table``...), no schema- or catalog-qualified names, no
``ATTACH``/``COPY``/``SET``/``PRAGMA``/``INSTALL``/``LOAD``. The connection is then locked as
in :mod:`catalog.tables.query` (no external access beyond the snapshot's files, no extensions, no
configuration changes), and the query runs under a time limit and a row limit.

Every query, allowed or refused, appends an entry to the access log with the columns it
could read, its purpose, the rows returned and the snapshot of each view, so that an
auditor can re-run it against the same snapshots.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from catalog.errors import QueryDeniedError, QueryError, QuerySyntaxError, QueryTimeoutError
from catalog.tables import QueryEngine, View, quote_identifier, quote_literal
from schemas.contract import load_contract

UNCONDITIONAL = "unconditional"
_ALLOWED_REFS = {"BASE_TABLE", "JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST", "PIVOT"}
_MAX_SQL = 100_000


class GrantLike(Protocol):
    """What the gateway needs of a grant (``catalog.sharing.grants.GrantRef`` fits)."""

    @property
    def id(self) -> int: ...
    @property
    def system(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def columns(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Limits:
    """How long a query may run and how many rows it may return."""

    seconds: float = 30.0
    rows: int = 100_000


@dataclass
class GatewayResult:
    """A query's rows and the facts the access log records about it."""

    table: pa.Table
    truncated: bool
    snapshots: dict[str, int | None]
    columns: dict[str, tuple[str, ...]]
    """Per view, the columns the query could read (the grant's)."""
    elapsed: float
    datasets: tuple[str, ...] = field(default=())


def referenced_tables(sql: str) -> tuple[list[str], set[str]]:
    """The base-table names a single SELECT reads, and the CTE names it declares.

    Raises :class:`QueryDeniedError` for anything that is not one plain SELECT, and for
    table functions and qualified names wherever they appear (subqueries, CTEs, joins).
    """
    if not sql.strip():
        raise QueryDeniedError("the query is empty")
    if len(sql) > _MAX_SQL:
        raise QueryDeniedError(f"the query is {len(sql)} characters long; the limit is {_MAX_SQL}")
    parser = duckdb.connect(":memory:")
    try:
        try:
            statements = parser.extract_statements(sql)
        except duckdb.Error as exc:
            raise QuerySyntaxError(f"the query does not parse: {_first_line(exc)}") from None
        if len(statements) != 1:
            raise QueryDeniedError(
                f"one statement per query; this request holds {len(statements)}"
                if statements
                else "the query holds no statement"
            )
        statement = statements[0]
        if statement.type != duckdb.StatementType.SELECT:
            raise QueryDeniedError(f"only SELECT is allowed; this is a {statement.type.name} statement")
        serialised = parser.execute("SELECT json_serialize_sql($1)", [statement.query]).fetchone()
    finally:
        parser.close()
    tree = json.loads(serialised[0]) if serialised else {"error": True}
    if tree.get("error"):
        raise QueryDeniedError(f"the query cannot be checked: {tree.get('error_message') or 'not a SELECT'}")
    tables: list[str] = []
    ctes: set[str] = set()
    for node in _walk(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            ctes.update(str(entry.get("key", "")).lower() for entry in cte_map.get("map", []))
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            function = (node.get("function") or {}).get("function_name", "?")
            raise QueryDeniedError(f"table function {function}() is not allowed; query the granted views")
        if kind == "SHOW_REF":
            raise QueryDeniedError("DESCRIBE/SHOW/SUMMARIZE are not allowed; the catalogue lists the columns")
        if kind == "BASE_TABLE":
            if node.get("schema_name") or node.get("catalog_name"):
                qualified = ".".join(
                    p
                    for p in (node.get("catalog_name"), node.get("schema_name"), node.get("table_name"))
                    if p
                )
                raise QueryDeniedError(f"qualified name {qualified} is not allowed; use the view names")
            tables.append(str(node.get("table_name", "")))
        elif isinstance(kind, str) and kind in _TABLE_REF_KINDS and kind not in _ALLOWED_REFS:
            raise QueryDeniedError(f"{kind.lower()} table references are not allowed")
    return tables, ctes


_TABLE_REF_KINDS = {
    "BASE_TABLE",
    "JOIN",
    "SUBQUERY",
    "EMPTY",
    "EXPRESSION_LIST",
    "PIVOT",
    "TABLE_FUNCTION",
    "SHOW_REF",
    "COLUMN_DATA",
    "DELIM_GET",
    "BOUND_TABLE_REF",
}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Gateway:
    """Runs consumers' queries on connections that see only their grants."""

    def __init__(self, engine: QueryEngine, *, limits: Limits | None = None) -> None:
        self.engine = engine
        self.limits = limits or Limits()

    def _source_table(self, grant: GrantLike) -> str:
        if grant.level == UNCONDITIONAL:
            contract = load_contract(grant.dataset)
            if contract.quasi_identifiers:
                return f"{grant.dataset}_{UNCONDITIONAL}"
        return grant.dataset

    def check(self, sql: str, grants: Sequence[GrantLike]) -> list[str]:
        """The granted datasets ``sql`` reads; refuses anything else it references."""
        if not grants:
            raise QueryDeniedError("the system holds no active grant")
        granted = {g.dataset.lower(): g.dataset for g in grants}
        tables, ctes = referenced_tables(sql)
        used: list[str] = []
        for name in tables:
            key = name.lower()
            if key in ctes:
                continue
            if key not in granted:
                known = ", ".join(sorted(granted.values()))
                raise QueryDeniedError(f"table {name!r} is not granted to this system; granted: {known}")
            if granted[key] not in used:
                used.append(granted[key])
        return used

    def run(
        self,
        sql: str,
        grants: Sequence[GrantLike],
        *,
        limits: Limits | None = None,
        snapshots: Mapping[str, int | None] | None = None,
    ) -> GatewayResult:
        """Check ``sql``, then run it on a fresh connection holding only ``grants``' views.

        ``snapshots`` pins datasets to given snapshots (a replay); by default each view reads
        the snapshot current when the connection is made.
        """
        limits = limits or self.limits
        used = self.check(sql, grants)
        by_dataset = {g.dataset: g for g in grants}
        chosen = [by_dataset[name] for name in used]
        started = time.perf_counter()
        connection, views = self._connect(chosen, snapshots or {})
        try:
            table, truncated = _execute(connection, sql, limits)
        except duckdb.BinderException as exc:
            granted = "; ".join(f"{g.dataset}({', '.join(g.columns)})" for g in chosen)
            raise QueryDeniedError(
                f"{_first_line(exc).removeprefix('Binder Error: ')} - the views hold only the granted "
                f"columns: {granted}"
            ) from None
        finally:
            connection.close()
        return GatewayResult(
            table=table,
            truncated=truncated,
            snapshots={g.dataset: views[g.dataset].snapshot_id for g in chosen},
            columns={g.dataset: tuple(g.columns) for g in chosen},
            elapsed=time.perf_counter() - started,
            datasets=tuple(used),
        )

    def _connect(
        self, grants: Iterable[GrantLike], snapshots: Mapping[str, int | None] | None = None
    ) -> tuple[duckdb.DuckDBPyConnection, dict[str, View]]:
        grants = list(grants)
        pinned = snapshots or {}
        views = {g.dataset: self.engine._view(self._source_table(g), pinned.get(g.dataset)) for g in grants}
        connection = duckdb.connect(":memory:", config=dict(_OFFLINE))
        try:
            for path in self.engine._extensions:
                connection.execute(f"LOAD {quote_literal(str(path))}")
            for grant in grants:
                view = views[grant.dataset]
                hidden = f"_hub_{secrets.token_hex(8)}"
                connection.execute(
                    view.sql.replace(
                        f"CREATE VIEW {quote_identifier(view.dataset)}", f"CREATE VIEW {hidden}", 1
                    )
                )
                available = {row[0] for row in connection.execute(f"DESCRIBE {hidden}").fetchall()}
                missing = [c for c in grant.columns if c not in available]
                if missing:
                    raise QueryError(
                        f"grant {grant.id}: column(s) {', '.join(missing)} are not in dataset "
                        f"{grant.dataset!r} (snapshot {view.snapshot_id})"
                    )
                columns = ", ".join(quote_identifier(c) for c in grant.columns)
                connection.execute(
                    f"CREATE VIEW {quote_identifier(grant.dataset)} AS SELECT {columns} FROM {hidden}"
                )
            allowed = sorted({p for view in views.values() for p in view.paths})
            connection.execute("SET allowed_paths = $1", [allowed])
            connection.execute("SET enable_external_access = false")
            connection.execute("SET lock_configuration = true")
        except duckdb.Error as exc:
            connection.close()
            raise QueryError(f"preparing the consumer's views failed: {_first_line(exc)}") from None
        except BaseException:
            connection.close()
            raise
        return connection, views


_OFFLINE = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}


def _execute(connection: duckdb.DuckDBPyConnection, sql: str, limits: Limits) -> tuple[pa.Table, bool]:
    """Run ``sql`` with a time limit (the connection is interrupted) and a row limit."""
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        connection.interrupt()

    timer = threading.Timer(limits.seconds, interrupt)
    timer.start()
    try:
        reader = connection.execute(sql).fetch_record_batch(rows_per_batch=min(limits.rows + 1, 100_000))
        batches: list[pa.RecordBatch] = []
        rows = 0
        truncated = False
        for batch in reader:
            if rows + batch.num_rows > limits.rows:
                batches.append(batch.slice(0, limits.rows - rows))
                truncated = True
                break
            batches.append(batch)
            rows += batch.num_rows
        return pa.Table.from_batches(batches, schema=reader.schema), truncated
    except duckdb.PermissionException as exc:
        raise QueryDeniedError(f"DuckDB refused the query: {_first_line(exc)}") from None
    except duckdb.BinderException:
        raise
    except duckdb.Error as exc:
        if timed_out.is_set():
            raise QueryTimeoutError(f"the query ran longer than the limit of {limits.seconds:g} s") from None
        raise QueryError(f"the query failed: {_first_line(exc)}") from None
    finally:
        timer.cancel()


def describe(result: GatewayResult) -> Mapping[str, Any]:
    """The facts of a result the access log keeps (never the rows)."""
    return {
        "snapshots": result.snapshots,
        "truncated": result.truncated,
        "elapsed_ms": round(result.elapsed * 1000, 1),
    }
