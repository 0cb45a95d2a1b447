"""Synthetic population records for the quality tests."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from schemas.contract import Contract, load_contract

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
TODAY = date(2025, 6, 1)
# Codes with no validity years in python-stdnum's table (valid at any birth year).
STABLE_DIVISIONS = ("110105", "310104", "440305", "510107", "320102")


def check_char(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def make_id(division: str, born: date, sequence: int) -> str:
    first17 = f"{division}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)


def good_record(rng: random.Random, row: int) -> dict[str, Any]:
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 90 * 365))
    sequence = rng.randrange(1, 999)
    division = rng.choice(STABLE_DIVISIONS)
    return {
        "id_number": make_id(division, born, sequence),
        "name": "张三",
        "gender": "1" if sequence % 2 else "2",
        "ethnicity": "01",
        "birth_date": born,
        "division_code": division,
        "address": "北京市朝阳区",
        "mobile": f"13{rng.randrange(10**9):09d}",
        "registration_status": "1",
        "updated_at": datetime(2025, 5, 1, 8, 0),
        "_row": row,
    }


def to_table(contract: Contract, records: list[dict[str, Any]]) -> pa.Table:
    schema = contract.arrow_schema().append(pa.field("_row", pa.int64()))
    return pa.Table.from_pylist(records, schema=schema)


def population() -> Contract:
    return load_contract("population")
