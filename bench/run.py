"""Benchmarks, each figure beside its baseline timed in the same run.

1. ``hub run population`` over N rows (default 1M) read from PostgreSQL, against a raw
   bulk export of the same table and columns (``COPY (SELECT ...) TO STDOUT``), the floor
   any pipeline reading that table has to pay (rows/s and peak memory of both);
2. the SQL connector alone beside the same ``COPY``, and its peak memory at N and 5N rows
   (``bench/extract.py``);
3. the HTTP and file connectors' peak memory at M and 5M rows (``bench/memory.py``);
4. display masks and tokenisation beside their baselines (``bench/masking.py``);
5. the population quality suite (Great Expectations included) beside reading the data and
   the same checks as a plain pyarrow pass, and the vectorised identity-number check beside
   a python-stdnum loop (``bench/quality.py``);
6. consumer gateway queries beside the same queries on a plain DuckDB connection over the
   same snapshot (``bench/gateway.py``);
7. access-log appends (hash chain, MAC, chain lock) beside plain inserts, on SQLite and
   PostgreSQL (``bench/audit.py``);
8. ``POST /v1/verify`` latency at a fixed request rate against ``hub serve`` over a large
   population index, beside its baseline (``bench/verify.py``).

Results are printed and written under ``bench/results/``.

    make bench                      # 1,000,000 rows
    BENCH_ROWS=200000 BENCH_MEMORY_ROWS=50000 make bench    # quicker
    BENCH_SECTIONS=pipeline,masking make bench              # some sections only
    BENCH_SECTIONS=quality make bench                       # needs no database server
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console()
POSTGRES = os.environ.get("HUB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLE = "population_registry"
"""The table the population source file reads (its URL comes from HUB_SOURCE_POPULATION_URL)."""


def _child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; return (seconds, peak RSS MiB of that child, its output)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        sink.seek(0)
        out = sink.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def _copy_baseline(columns: list[str]) -> tuple[float, float, int]:
    """COPY the same columns to a null sink in a child process; returns seconds, peak MiB, bytes."""
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES).set(drivername="postgresql")
    code = (
        "import psycopg, sys, time\n"
        f"conn = psycopg.connect({url.render_as_string(hide_password=False)!r})\n"
        "n = 0\n"
        "with conn.cursor() as cur:\n"
        f"    with cur.copy('COPY (SELECT {', '.join(columns)} FROM {TABLE}) TO STDOUT') as copy:\n"
        "        for block in copy:\n"
        "            n += len(block)\n"
        "print(n)\n"
    )
    seconds, peak, out = _child([sys.executable, "-c", code], dict(os.environ))
    return seconds, peak, int(out.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pipeline(rows: int, out: Path) -> None:
    """``hub run population`` from PostgreSQL, with and without publishing, beside COPY."""
    from catalog.deliveries import EmbeddedBroker
    from connectors.simulator.population import fill
    from masking.keys import Keyring
    from schemas.contract import load_contract

    contract = load_contract("population")
    columns = [f.name for f in contract.fields]
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    home = work / "hub"
    keyring = work / "keys" / "keyring.json"
    Keyring.init(keyring)
    bootstrap = f"127.0.0.1:{free_port()}"
    broker = EmbeddedBroker(home, bootstrap)
    broker.start()
    try:
        console.print(f"filling PostgreSQL table {TABLE} with {rows:,} simulated records ...")
        report = fill(POSTGRES, rows, table=TABLE)
        console.print(
            f"  simulator: {report.rows:,} rows in {report.seconds:.1f} s "
            f"({report.rows / report.seconds:,.0f} rows/s)"
        )

        copy_s, copy_peak, copy_bytes = _copy_baseline(columns)
        env = dict(os.environ)
        env.update(
            HUB_HOME=str(home),
            HUB_MASKING__KEYRING_PATH=str(keyring),
            HUB_SOURCE_POPULATION_URL=POSTGRES,
            HUB_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
        )
        hub = str(Path(sys.executable).with_name("hub"))
        # Each run starts from an empty hub home, so both are a first, full load of the source
        # (a second run in the same home would be incremental and read nothing new). The first
        # home has a subscriber holding a grant on population, so publishing has a topic to fill.
        subscribe = (
            "from rich.console import Console; from hub.demo import _subscribe; "
            "from hub.settings import get_settings; s = get_settings(); s.ensure_home(); "
            "_subscribe(s, console=Console())"
        )
        _child([sys.executable, "-c", subscribe], {**env, "HUB_HOME": str(work / "hub-1")})
        run_s, run_peak, _ = _child([hub, "run", "population"], {**env, "HUB_HOME": str(work / "hub-1")})
        noc_s, noc_peak, _ = _child(
            [hub, "run", "population", "--no-publish"], {**env, "HUB_HOME": str(work / "hub-2")}
        )
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)

    table = Table(title=f"hub run population, {rows:,} rows from PostgreSQL")
    for col in ("what", "seconds", "rows/s", "peak MiB", "vs baseline"):
        table.add_column(col, justify="right" if col != "what" else "left")
    results = [
        ("baseline: COPY ... TO STDOUT", copy_s, copy_peak),
        ("hub run population", run_s, run_peak),
        ("hub run population --no-publish", noc_s, noc_peak),
    ]
    for what, seconds, peak in results:
        table.add_row(
            what, f"{seconds:.1f}", f"{rows / seconds:,.0f}", f"{peak:.0f}", f"{seconds / copy_s:.1f}x"
        )
    console.print(table)
    record = {
        "time": datetime.now(UTC).isoformat(),
        "rows": rows,
        "copy_bytes": copy_bytes,
        "simulator_seconds": report.seconds,
        "results": [{"what": w, "seconds": s, "rows_per_s": rows / s, "peak_mib": p} for w, s, p in results],
    }
    path = out / f"{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(record, indent=2))
    console.print(f"written {path}")


SECTIONS = ("pipeline", "extraction", "memory", "masking", "quality", "gateway", "audit", "verify")


def _generic(name: str, title: str, results: list[dict[str, object]], out: Path) -> None:
    """Print a section's result rows as they come (each names its baseline) and keep them."""
    table = Table(title=title)
    columns = list(dict.fromkeys(k for r in results for k in r))
    for col in columns:
        table.add_column(
            col, justify="left" if col in ("what", "baseline", "target", "database") else "right"
        )
    for r in results:
        cells = []
        for col in columns:
            value = r.get(col, "")
            cells.append(
                f"{value:,.2f}"
                if isinstance(value, float)
                else f"{value:,}"
                if isinstance(value, int) and not isinstance(value, bool)
                else str(value)
            )
        table.add_row(*cells)
    console.print(table)
    (out / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(
        json.dumps(results, indent=2, default=str)
    )


def main() -> None:
    """Run the sections named in BENCH_SECTIONS (default: all of them)."""
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    wanted = os.environ.get("BENCH_SECTIONS", ",".join(SECTIONS)).split(",")
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown BENCH_SECTIONS {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    if "pipeline" in wanted:
        _pipeline(rows, out)
    if "extraction" in wanted:
        _extraction(rows, out)
    if "memory" in wanted:
        _memory(out)
    if "masking" in wanted:
        _masking(out)
    if "quality" in wanted:
        _quality(rows, out)
    if "gateway" in wanted:
        from bench import gateway

        console.print(
            f"gateway: consumer queries over {rows:,} rows beside plain DuckDB on the same snapshot ..."
        )
        _generic("gateway", "consumer gateway beside plain DuckDB (ms, best of 5)", gateway.run(rows), out)
    if "audit" in wanted:
        from bench import audit

        entries = int(os.environ.get("BENCH_AUDIT_ENTRIES", str(audit.DEFAULT_ENTRIES)))
        console.print(
            f"audit: {entries:,} access-log appends on SQLite and PostgreSQL beside plain inserts ..."
        )
        _generic("audit", "access-log appends beside plain inserts", audit.run(entries), out)
    if "verify" in wanted:
        from bench import verify

        _generic("verify", "POST /v1/verify under load beside its baseline", verify.run(), out)


def _extraction(rows: int, out: Path) -> None:
    """The connector alone beside COPY, and its peak memory at N and 5N rows."""
    from bench import extract

    console.print(
        f"extraction: SqlConnector.read over {rows:,} rows beside COPY (and {5 * rows:,} for memory) ..."
    )
    results = extract.run(rows)
    table = Table(title="extraction from PostgreSQL")
    for col in ("what", "rows", "seconds", "rows/s", "peak MiB", "ratio"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for r in results:
        ratio = r.get("vs_baseline", r.get("peak_vs_1x", ""))
        table.add_row(
            str(r["what"]),
            f"{r['rows']:,}",
            f"{r['seconds']:.2f}",
            f"{r['rows_per_s']:,.0f}",
            f"{r['peak_mib']:.0f}",
            f"{ratio:.2f}" if isinstance(ratio, float) else str(ratio),
        )
    console.print(table)
    path = out / f"extract-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2, default=str))


def _memory(out: Path) -> None:
    """Peak memory of the HTTP and file connectors at N and 5N rows."""
    from bench import memory

    rows = int(os.environ.get("BENCH_MEMORY_ROWS", str(memory.DEFAULT_ROWS)))
    console.print(
        f"memory: HTTP and file connectors over {rows:,} and {memory.FACTOR * rows:,} certificates ..."
    )
    results = memory.run(rows)
    table = Table(title="connector peak memory")
    for col in ("what", "rows", "rows/s", "peak MiB", "5N / N"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for r in results:
        ratio = r.get("peak_vs_1x")
        table.add_row(
            str(r["what"]),
            f"{r['rows']:,}",
            f"{r['rows_per_s']:,.0f}",
            f"{r['peak_mib']:.0f}",
            f"{ratio:.2f}" if isinstance(ratio, float) else "",
        )
    console.print(table)
    (out / f"memory-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(
        json.dumps(results, indent=2, default=str)
    )


def _masking(out: Path) -> None:
    """Display masks and tokenisation beside their baselines."""
    from bench import masking

    results = masking.run(int(os.environ.get("BENCH_MASK_VALUES", "1000000")))
    table = Table(title="masking throughput (values/s)")
    for col in ("rule", "values/s", "baseline", "baseline values/s", "ratio", "target"):
        table.add_column(col, justify="left" if col in ("rule", "baseline", "target") else "right")
    for r in results:
        table.add_row(
            r["what"],
            f"{r['values_per_s']:,.0f}",
            r["baseline"],
            f"{r['baseline_per_s']:,.0f}",
            f"{r['ratio']:.2f}",
            f"{r['target']} {'met' if r['met'] else 'MISSED'}",
        )
    console.print(table)
    (out / f"masking-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(
        json.dumps(results, indent=2, default=str)
    )


def _quality(rows: int, out: Path) -> None:
    """The population suite (GE included) and the identity-number check beside their baselines."""
    from bench import quality

    console.print(f"quality: the population suite over {rows:,} rows, and identity numbers beside stdnum ...")
    results = quality.run(rows)
    table = Table(title=f"quality gate, {rows:,} population rows")
    for col in ("what", "rows", "seconds", "rows/s", "CPU rows/s", "target"):
        table.add_column(col, justify="left" if col in ("what", "target") else "right")
    for r in results:
        met = "" if r.get("met") is None else (" met" if r["met"] else " MISSED")
        cpu = r.get("cpu_rows_per_s")
        table.add_row(
            str(r["what"]),
            f"{r['rows']:,}",
            f"{r['seconds']:.2f}",
            f"{r['rows_per_s']:,.0f}",
            f"{cpu:,.0f}" if cpu else "",
            f"{r.get('target', '')}{met}",
        )
        if "ratio" in r:
            table.add_row(
                "  baseline: stdnum.cn.ric.is_valid in a Python loop",
                f"{r['rows']:,}",
                f"{r['baseline_seconds']:.2f}",
                f"{r['baseline_rows_per_s']:,.0f}",
                "",
                f"ratio {r['ratio']:.0f}x",
            )
        if r.get("data_docs_seconds") is not None:
            table.add_row("  then the batch's Data Docs", "", f"{r['data_docs_seconds']:.2f}", "", "", "")
    console.print(table)
    (out / f"quality-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(
        json.dumps(results, indent=2, default=str)
    )


if __name__ == "__main__":
    main()
