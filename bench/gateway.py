"""Consumer gateway query time beside plain DuckDB over the same snapshot.

Target (consumer-access issue): a query through the gateway (parse check, fresh locked
connection, the grant's views) takes at most 1.2x the same query on a plain DuckDB
connection with a view over the same snapshot files. Both sides are timed end to end,
connection and view creation included, best of several runs.

    python -m bench.gateway [rows]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

TARGET = 1.2
QUERIES = {
    "aggregate": "SELECT gender, birth_year, count(*) AS n FROM population GROUP BY ALL ORDER BY ALL",
    "point lookup": "SELECT person_token, gender, birth_year FROM population WHERE person_token = 'tok-00004242'",
    "distinct count": "SELECT count(DISTINCT division_code) AS n FROM population",
}


@dataclass(frozen=True)
class _Grant:
    id: int
    system: str
    dataset: str
    level: str
    columns: tuple[str, ...]


def _rows(n: int) -> pa.Table:
    from schemas.contract import load_contract

    schema = load_contract("population").published_schema()
    rng = np.random.default_rng(7)
    ids = np.arange(n)
    tokens = pa.compute.binary_join_element_wise("tok-", pa.array(np.char.zfill(ids.astype(str), 8)), "")
    return pa.table(
        {
            "person_token": tokens,
            "name": pa.array(np.where(ids % 2 == 0, "张*", "欧阳**")),
            "gender": pa.array(np.where(rng.random(n) < 0.5, "1", "2")),
            "ethnicity": pa.array(np.full(n, "01")),
            "birth_year": pa.array(rng.integers(1930, 2020, n).astype(np.int32)),
            "division_code": pa.array(rng.choice(["110105", "310101", "440305", "510104"], n)),
            "address": pa.array(np.full(n, "北京市朝阳区")),
            "mobile": pa.array(np.full(n, "138****8000")),
            "registration_status": pa.array(np.full(n, "1")),
            "updated_at": pa.array(np.full(n, np.datetime64(datetime(2026, 1, 1), "us"))),
            "_batch_id": pa.array(np.full(n, "bench")),
        },
        schema=schema,
    )


def _best(fn: Callable[[], Any], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(rows: int) -> list[dict[str, Any]]:
    from catalog.access import Gateway
    from catalog.tables import QueryEngine, SharedTables
    from schemas.contract import load_contract

    with tempfile.TemporaryDirectory(prefix="hub-bench-gateway-") as tmp:
        warehouse = Path(tmp) / "warehouse"
        warehouse.mkdir()
        tables = SharedTables(f"sqlite:///{Path(tmp) / 'iceberg.db'}", warehouse.as_uri())
        tables.commit(load_contract("population"), _rows(rows), batch_id="bench")
        engine = QueryEngine(tables)
        gateway = Gateway(engine)
        view = engine.views(["population"])[0]
        grant = _Grant(
            1, "bench", "population", "conditional", ("person_token", "gender", "birth_year", "division_code")
        )

        def plain(sql: str) -> pa.Table:
            connection = duckdb.connect(":memory:")
            try:
                for path in engine._extensions:
                    connection.execute(f"LOAD '{path}'")
                connection.execute(view.sql)
                return connection.execute(sql).to_arrow_table()
            finally:
                connection.close()

        results = []
        for what, sql in QUERIES.items():
            expected = plain(sql)
            got = gateway.run(sql, [grant]).table
            if got.to_pylist() != expected.to_pylist():
                raise SystemExit(f"gateway and plain DuckDB disagree on {what!r}")
            baseline = _best(lambda sql=sql: plain(sql))
            seconds = _best(lambda sql=sql: gateway.run(sql, [grant]))
            ratio = seconds / baseline
            results.append(
                {
                    "what": what,
                    "rows": rows,
                    "reader": engine.reader,
                    "gateway_ms": seconds * 1000,
                    "plain_ms": baseline * 1000,
                    "ratio": ratio,
                    "target": f"<= {TARGET}x",
                    "met": ratio <= TARGET,
                }
            )
        return results


if __name__ == "__main__":
    for result in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000):
        print(result)
