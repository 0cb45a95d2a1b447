"""A registered batch published to its topic, for the publishing and delivery tests."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from schemas.contract import load_contract

BATCH_ID = "b-20240601-0001"


CONTRACT = load_contract("population")


def published_rows(count: int, start: int = 0, chunk: int = 2_000) -> list[pa.RecordBatch]:
    """Rows in the contract's published schema, ``chunk`` rows per record batch."""
    schema = CONTRACT.published_schema()
    base = dt.datetime(2024, 6, 1, 8, 30, 15, 250_000)
    table = pa.table(
        {
            "person_token": [f"tok-{i:08d}" for i in range(start, start + count)],
            "name": ["欧阳**" if i % 2 else "张*" for i in range(start, start + count)],
            "gender": [str(1 + i % 2) for i in range(start, start + count)],
            "ethnicity": [None if i % 5 == 0 else "01" for i in range(start, start + count)],
            "birth_year": pa.array([1950 + i % 60 for i in range(start, start + count)], pa.int32()),
            "division_code": ["110105"] * count,
            "address": ["北京市朝阳区"] * count,
            "mobile": [None if i % 3 == 0 else "138****8000" for i in range(start, start + count)],
            "registration_status": ["1"] * count,
            "updated_at": [base + dt.timedelta(seconds=i) for i in range(start, start + count)],
            "_batch_id": [BATCH_ID] * count,
        },
        schema=schema,
    )
    return table.to_batches(max_chunksize=chunk)
