"""Publishing speed: messages per second from Arrow record batches to the embedded broker.

Sends N population rows in the published (conditional) schema, in record batches of
50,000 rows as the pipeline reads them, to one topic of a freshly started embedded broker,
each figure the best of ``BENCH_REPEAT`` runs:

* every column with the three batch headers: what the dataset-wide topic carried before
  deliveries went per grant (the baseline for the encoder and send path);
* a grant's delivery: its columns (``person_token, name, birth_year``) with the five
  delivery headers, the batch id taken from each row (as ``catalog.deliveries.outbox`` sends them).

    .venv/bin/python bench/publish.py               # 200,000 rows
    BENCH_ROWS=50000 .venv/bin/python bench/publish.py
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

CHUNK = 50_000
GRANT_COLUMNS = ("person_token", "name", "birth_year")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rows(count: int) -> pa.Table:
    """``count`` masked population rows in the contract's published schema."""
    from schemas.contract import load_contract

    schema = load_contract("population").published_schema()
    base = dt.datetime(2024, 6, 1, 8, 30, 15, 250_000)
    return pa.table(
        {
            "person_token": [f"k1_{i:060x}" for i in range(count)],
            "name": ["欧阳**" if i % 2 else "张*" for i in range(count)],
            "gender": [str(1 + i % 2) for i in range(count)],
            "ethnicity": [None if i % 5 == 0 else "01" for i in range(count)],
            "birth_year": pa.array([1950 + i % 60 for i in range(count)], pa.int32()),
            "division_code": ["110105"] * count,
            "address": ["北京市朝阳区**街道"] * count,
            "mobile": [None if i % 3 == 0 else "138****8000" for i in range(count)],
            "registration_status": ["1"] * count,
            "updated_at": [base + dt.timedelta(seconds=i) for i in range(count)],
            "_batch_id": ["population-20240601T083015-0001"] * count,
        },
        schema=schema,
    )


def _send(bootstrap: str, topic: str, table: pa.Table, *, grant: bool) -> float:
    from catalog.deliveries import Publisher, batch_headers, ensure_topic

    ensure_topic(bootstrap, topic)
    headers = batch_headers("population", "1.0.0", "population-20240601T083015-0001")
    options: dict[str, object] = {}
    if grant:
        headers |= {"snapshot_id": "4711", "grant_id": "42"}
        options = {"value_columns": GRANT_COLUMNS, "row_headers": {"batch_id": "_batch_id"}}
    started = time.perf_counter()
    with Publisher(bootstrap) as publisher:
        sent = publisher.publish(
            topic,
            table.to_batches(max_chunksize=CHUNK),
            key_field="person_token",
            headers=headers,
            **options,  # type: ignore[arg-type]
        )
    seconds = time.perf_counter() - started
    assert sent == table.num_rows, (sent, table.num_rows)
    return seconds


def main() -> None:
    from catalog.deliveries import EmbeddedBroker

    count = int(os.environ.get("BENCH_ROWS", "200000"))
    repeat = int(os.environ.get("BENCH_REPEAT", "2"))
    table = rows(count)
    work = Path(tempfile.mkdtemp(prefix="hub-bench-publish-"))
    broker = EmbeddedBroker(work, f"127.0.0.1:{_free_port()}")
    broker.start()
    try:
        for label, grant in (("every column", False), ("grant delivery", True)):
            topic = f"bench.{'grant' if grant else 'dataset'}"
            best = min(_send(broker.address, f"{topic}.{i}", table, grant=grant) for i in range(repeat))
            print(f"{label:>14}: {count:,} messages in {best:.2f} s = {count / best:,.0f} messages/s")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
