"""Extraction benchmark: the SQL connector on PostgreSQL beside a plain ``COPY ... TO STDOUT``.

Fills a table with N simulated population rows, then in separate child processes (so
each peak RSS is its own) times:

- the baseline: ``COPY (SELECT <contract columns> FROM t) TO STDOUT`` into a null sink,
  the floor any reader of that table pays;
- the connector: ``SqlConnector.read()``, every row converted to Arrow batches in the
  canonical schema (what the pipeline stages);
- the connector again over 5N rows, for the bounded-memory check (issue: peaks for 1M and
  5M rows differ by less than 20%).

Times are taken inside each child around the read only, so interpreter start-up and
imports count for neither side (pyarrow's first compute call imports pandas, about half a
second, paid once per process: the child makes one before the clock starts; it imports
the driver up front as the baseline does). The connector's own engine, connection and
schema check are inside its time, the baseline's connection is not.

    python bench/extract.py               # 1,000,000 rows (and 5,000,000 for memory)
    BENCH_ROWS=200000 python bench/extract.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POSTGRES = os.environ.get("HUB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLE = os.environ.get("BENCH_EXTRACT_TABLE", "bench_extract_population")
MEMORY_FACTOR = 5
"""The issue compares 1M with 5M rows."""

READ_AND_REPORT = """
pc.utf8_rtrim(pa.array(["a"]), characters=" ")  # first compute call imports pandas: start-up, not reading
start = time.perf_counter()
rows = flagged = 0
for batch in connector.read(since=None):
    rows += batch.num_rows
    flagged += batch.num_rows - batch.column("_conversion_errors").null_count
seconds = time.perf_counter() - start
connector.close()
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"rows": rows, "seconds": seconds, "flagged": flagged, "peak_mib": peak}))
"""
"""Child-process tail: read everything from ``connector`` and print rows, time and peak RSS."""

_CONNECTOR = (
    """
import json, sys, time
from connectors.sql import SqlConnector
from schemas import load_contract
url, table, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
connector = SqlConnector("bench", url, table, load_contract("population"), cursor="updated_at", chunk_rows=chunk)
import pyarrow as pa, pyarrow.compute as pc, psycopg, sqlalchemy.dialects.postgresql.psycopg
import adbc_driver_postgresql.dbapi
"""
    + READ_AND_REPORT
)


_COPY = """
import json, sys, time
import psycopg
url, table, columns = sys.argv[1], sys.argv[2], sys.argv[3]
conn = psycopg.connect(url)
start = time.perf_counter()
size = 0
with conn.cursor() as cur:
    with cur.copy(f"COPY (SELECT {columns} FROM {table}) TO STDOUT") as copy:
        for block in copy:
            size += len(block)
seconds = time.perf_counter() - start
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"bytes": size, "seconds": seconds, "peak_mib": peak}))
"""


def child(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, float], float]:
    """Run ``code`` in a fresh interpreter (``env`` added to the environment); its JSON
    output and its peak RSS in MiB.

    The child reports its own high-water mark (VmHWM): the ``ru_maxrss`` that ``wait4``
    returns keeps the peak of the forked parent from before ``exec``, which here is the
    simulator's."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as sink:
        env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        sink.seek(0)
        out = sink.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark child failed:\n{out[-3000:]}")
    del usage
    result = json.loads(out.strip().splitlines()[-1])
    return result, float(result["peak_mib"])


def _fill(rows: int, table: str) -> float:
    from connectors.simulator.population import fill

    return float(fill(POSTGRES, rows, table=table).seconds)


def _drop(table: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
    engine.dispose()


def run(rows: int, *, chunk_rows: int = 50_000, memory: bool = True) -> list[dict[str, object]]:
    """Measure extraction of ``rows`` rows (and, with ``memory``, the connector's peak over
    ``MEMORY_FACTOR`` times as many); one dict per measurement."""
    from sqlalchemy.engine import make_url

    from schemas.contract import load_contract

    columns = ", ".join(f.name for f in load_contract("population").fields)
    libpq_url = make_url(POSTGRES).set(drivername="postgresql").render_as_string(hide_password=False)
    results: list[dict[str, object]] = []
    _fill(rows, TABLE)
    try:
        copy, copy_peak = child(_COPY, libpq_url, TABLE, columns)
        read, read_peak = child(_CONNECTOR, POSTGRES, TABLE, str(chunk_rows))
    finally:
        if not memory:
            _drop(TABLE)
    copy_rate = rows / copy["seconds"]
    read_rate = read["rows"] / read["seconds"]
    results.append(
        {"what": "COPY ... TO STDOUT (baseline)", "rows": rows, "seconds": copy["seconds"],
         "rows_per_s": copy_rate, "peak_mib": copy_peak}
    )  # fmt: skip
    results.append(
        {"what": "SqlConnector.read (PostgreSQL, ADBC)", "rows": read["rows"], "seconds": read["seconds"],
         "rows_per_s": read_rate, "peak_mib": read_peak, "vs_baseline": read_rate / copy_rate}
    )  # fmt: skip
    if memory:
        big = rows * MEMORY_FACTOR
        try:
            _fill(big, TABLE)
            large, large_peak = child(_CONNECTOR, POSTGRES, TABLE, str(chunk_rows))
        finally:
            _drop(TABLE)
        results.append(
            {"what": f"SqlConnector.read, {MEMORY_FACTOR}x rows", "rows": large["rows"],
             "seconds": large["seconds"], "rows_per_s": large["rows"] / large["seconds"],
             "peak_mib": large_peak, "peak_vs_1x": large_peak / read_peak}
        )  # fmt: skip
    return results


def main() -> None:
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    memory = os.environ.get("BENCH_MEMORY", "1") != "0"
    for result in run(rows, memory=memory):
        extras = ", ".join(f"{k} {v:.2f}" for k, v in result.items() if k in ("vs_baseline", "peak_vs_1x"))
        print(
            f"{result['what']:<45} {result['rows']:>10,} rows {result['seconds']:>7.2f} s "
            f"{result['rows_per_s']:>11,.0f} rows/s {result['peak_mib']:>7.0f} MiB  {extras}"
        )


if __name__ == "__main__":
    main()
