"""Access-log appends per second, beside a plain unchained insert timed in the same run.

For SQLite (a file in a temporary folder) and PostgreSQL (a throw-away schema), each:

* ``record_access`` from one process, one transaction per entry (what a query API does);
* the baseline: the same row inserted into an unchained table of the same columns, one
  transaction per row (the floor of any durable log);
* ``record_access`` from several processes at once (the chain stays gapless and linear);
* a :class:`catalog.audit.GroupAppender` shared by many threads of one process (a server);
* ``AccessLog.append_many`` in batches of 100 (deliveries);
* ``AccessLog.verify`` over everything appended (entries checked per second).

    python -m bench.audit [entries]
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, create_engine, insert, text

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("HUB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEFAULT_ENTRIES = 2_000
PROCESSES = 4
THREADS = 16
BATCH = 100

_ENTRY: dict[str, Any] = {
    "action": "query",
    "outcome": "allowed",
    "actor": None,
    "system": "tax-portal",
    "department": "税务局",
    "dataset": "population",
    "columns": ["person_token", "birth_year", "division_code"],
    "purpose": "社保待遇资格认证",
    "rows": 25,
    "snapshot_id": 5_017_334_712_823_445_001,
    "client": "203.0.113.7",
    "detail": {"sql_sha256": "ab" * 32, "elapsed_ms": 12},
}

_WRITER = """
import sys, time
from catalog.audit.record import record_access
from catalog.metadata.store import MetadataStore
store = MetadataStore(sys.argv[1], schema=sys.argv[3] or None)
record_access(store, action="query", outcome="allowed", system="writer", purpose="warm")
start = time.time()
for i in range(int(sys.argv[2])):
    record_access(store, action="query", outcome="allowed", system="writer", dataset="population",
                  columns=["person_token"], rows=i, purpose="bench")
print(start, time.time())
store.dispose()
"""


def _plain_table(metadata: MetaData) -> Table:
    return Table(
        "bench_plain_log",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        *(Column(name, Text) for name in ("action", "outcome", "system", "department", "dataset", "columns")),
        *(Column(name, Text) for name in ("purpose", "client", "detail")),
        Column("rows", BigInteger),
        Column("snapshot_id", BigInteger),
        Column("entry_hash", String(64)),
    )


def _one(label: str, n: int, seconds: float, baseline: float | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"what": label, "entries": n, "seconds": seconds, "entries_per_s": n / seconds}
    if baseline is not None:
        result["vs_baseline"] = (n / seconds) / baseline
    return result


def _database(url: str, schema: str | None, entries: int, label: str) -> list[dict[str, Any]]:
    import json

    from catalog.audit import AccessLog, GroupAppender, record_access
    from catalog.metadata import MetadataStore

    store = MetadataStore(url, schema=schema)
    results: list[dict[str, Any]] = []
    try:
        # baseline: an unchained insert, one transaction per row
        metadata = MetaData(schema=schema)
        plain = _plain_table(metadata)
        engine = create_engine(url)
        metadata.create_all(engine)
        row = {
            **{k: v for k, v in _ENTRY.items() if k not in ("columns", "detail", "actor")},
            "columns": json.dumps(_ENTRY["columns"]),
            "detail": json.dumps(_ENTRY["detail"]),
            "entry_hash": "0" * 64,
        }
        start = time.perf_counter()
        for _ in range(entries):
            with engine.begin() as connection:
                connection.execute(insert(plain).values(**row))
        plain_rate = entries / (time.perf_counter() - start)
        engine.dispose()
        results.append(_one(f"{label}: plain insert, 1 process (baseline)", entries, entries / plain_rate))

        record_access(store, **_ENTRY)  # warm: keys loaded, head row made
        start = time.perf_counter()
        for _ in range(entries):
            record_access(store, **_ENTRY)
        results.append(
            _one(f"{label}: record_access, 1 process", entries, time.perf_counter() - start, plain_rate)
        )

        each = max(entries // PROCESSES, 1)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, url, str(each), schema or ""],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            for _ in range(PROCESSES)
        ]
        spans = [p.communicate()[0].decode().split() for p in procs]
        if any(p.returncode != 0 for p in procs):
            raise SystemExit(f"{label}: a concurrent writer failed")
        seconds = max(float(end) for _, end in spans) - min(float(start) for start, _ in spans)
        results.append(_one(f"{label}: record_access, {PROCESSES} processes", each * PROCESSES, seconds))

        log = AccessLog(store)
        appender = GroupAppender(log)
        per_thread = max(entries // THREADS, 1)

        def work() -> None:
            for _ in range(per_thread):
                appender.append(**_ENTRY)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        appender.close()
        results.append(
            _one(
                f"{label}: GroupAppender, {THREADS} threads",
                per_thread * THREADS,
                time.perf_counter() - start,
                plain_rate,
            )
        )

        batches = max(entries // BATCH, 1)
        start = time.perf_counter()
        for _ in range(batches):
            log.append_many([_ENTRY] * BATCH)
        results.append(
            _one(f"{label}: append_many, batches of {BATCH}", batches * BATCH, time.perf_counter() - start)
        )

        start = time.perf_counter()
        checked = log.verify()
        if not checked.ok:
            raise SystemExit(f"{label}: the benchmark log does not verify: {checked.first_problem}")
        results.append(
            _one(f"{label}: verify (hashes, MACs, signatures)", checked.entries, time.perf_counter() - start)
        )
    finally:
        store.dispose()
    return results


def run(entries: int = DEFAULT_ENTRIES) -> list[dict[str, Any]]:
    """Appends/s on SQLite and PostgreSQL, with a keyring of their own in a temporary folder."""
    from hub.settings import get_settings
    from masking.keys import Keyring

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-audit-") as folder:
        saved = {k: os.environ.get(k) for k in ("HUB_HOME", "HUB_MASKING__KEYRING_PATH", "HUB_MASTER_KEY")}
        os.environ["HUB_HOME"] = str(Path(folder) / "home")
        os.environ["HUB_MASKING__KEYRING_PATH"] = str(Path(folder) / "keys" / "keyring.json")
        os.environ.pop("HUB_MASTER_KEY", None)
        get_settings.cache_clear()
        try:
            Keyring.init(get_settings().masking.keyring_path)
            results += _database(f"sqlite:///{Path(folder) / 'audit.db'}", None, entries, "SQLite")
            schema = f"hub_bench_audit_{secrets.token_hex(4)}"
            admin = create_engine(POSTGRES)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                results += _database(POSTGRES, schema, entries, "PostgreSQL")
            finally:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            get_settings.cache_clear()
    return results


def main() -> None:
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ENTRIES
    for r in run(entries):
        ratio = f"  ({r['vs_baseline']:.2f}x baseline)" if "vs_baseline" in r else ""
        print(f"{r['what']:<52} {r['entries']:>7,} entries  {r['entries_per_s']:>10,.0f}/s{ratio}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
