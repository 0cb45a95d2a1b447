"""Conversion of raw source values to the canonical schema: bad values become null and flag
their row instead of failing the batch."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest

from connectors.base import ERRORS_COLUMN, batch_schema
from connectors.convert import convert_column, from_strings, to_batch
from schemas.contract import Contract

D = decimal.Decimal


def _field(name: str, kind: str) -> dict[str, object]:
    return {
        "name": name,
        "type": kind,
        "required": name == "code",
        "description": {"zh": name, "en": name},
        "sensitivity": "internal",
        "mask": {"rule": "keep"},
    }


CONTRACT = Contract.model_validate(
    {
        "name": "sample",
        "version": "1.0.0",
        "title": {"zh": "样例", "en": "Sample"},
        "owner_department": {"code": "X", "name": "X"},
        "share_attribute": "无条件共享",
        "update_cycle": "daily",
        "keys": ["code"],
        "fields": [
            _field("code", "string"),
            _field("born", "date"),
            _field("seen", "timestamp"),
            _field("count", "integer"),
            _field("capital", "decimal"),
        ],
    }
)
FIELDS = {f.name: f for f in CONTRACT.fields}


def test_clean_values_convert_with_no_errors() -> None:
    batch = to_batch(
        [
            ["A  ", 440305, D("7")],
            [dt.date(2001, 2, 3), dt.datetime(2001, 2, 4, 5, 6), "2001-02-05"],
            [dt.datetime(2025, 1, 2, 3, 4, 5), "2025-01-02T03:04:05+08:00", dt.date(2025, 1, 3)],
            [1, D("2"), "3"],
            [D("12.5"), 3, "0.0001"],
        ],
        CONTRACT,
    )
    assert batch.schema.equals(batch_schema(CONTRACT.arrow_schema()))
    assert batch.column("code").to_pylist() == ["A", "440305", "7"]
    assert batch.column("born").to_pylist() == [dt.date(2001, 2, 3), dt.date(2001, 2, 4), dt.date(2001, 2, 5)]
    assert batch.column("seen").to_pylist() == [
        dt.datetime(2025, 1, 2, 3, 4, 5),
        dt.datetime(2025, 1, 1, 19, 4, 5),
        dt.datetime(2025, 1, 3),
    ]
    assert batch.column("count").to_pylist() == [1, 2, 3]
    assert batch.column("capital").to_pylist() == [D("12.5000"), D("3.0000"), D("0.0001")]
    assert batch.column(ERRORS_COLUMN).null_count == 3


def test_bad_values_become_null_and_name_their_fields_in_contract_order() -> None:
    batch = to_batch(
        [
            ["A", b"\x00", "C", 1.5],
            ["2001-02-30", "2001-02-03", None, True],
            ["2025-01-02", "not a time", "2025-01-02", None],
            ["12x", 3.0, 2**63, 3.5],
            ["1.23456", 1e20, "x", 0.1],
        ],
        CONTRACT,
    )
    assert batch.column(ERRORS_COLUMN).to_pylist() == [
        ["born", "count", "capital"],
        ["code", "seen", "capital"],
        ["count", "capital"],
        ["code", "born", "count"],
    ]
    assert batch.column("born").to_pylist() == [None, dt.date(2001, 2, 3), None, None]
    assert batch.column("count").to_pylist() == [None, 3, None, None]
    assert batch.column("capital").to_pylist() == [None, None, None, D("0.1000")]


def test_code_values_map_before_conversion_and_unlisted_values_stay() -> None:
    values = {"code": {"男": "1", "女": "2"}}
    python = to_batch([["男", "女 ", "未知", None], *[[None] * 4] * 4], CONTRACT, values=values)
    arrow = to_batch([pa.array(["男", "女 ", "未知", None]), *[pa.nulls(4)] * 4], CONTRACT, values=values)
    assert python.column("code").to_pylist() == ["1", "2", "未知", None]
    assert arrow.column("code").equals(python.column("code"))
    numbers = to_batch([[1, 2], *[[None] * 2] * 4], CONTRACT, values={"code": {"1": "男"}})
    assert numbers.column("code").to_pylist() == ["男", "2"]


def test_text_columns_from_files_convert_whole_and_blank_is_missing() -> None:
    born, bad = from_strings(pa.array(["2001-02-03", "", "  ", None]), FIELDS["born"])
    assert born.to_pylist() == [dt.date(2001, 2, 3), None, None, None] and bad == []
    seen, bad = from_strings(
        pa.array(["2025-01-02 03:04:05+00", "2025-01-02T11:04:05+08:00"]), FIELDS["seen"]
    )
    assert seen.to_pylist() == [dt.datetime(2025, 1, 2, 3, 4, 5)] * 2 and bad == []
    count, bad = from_strings(pa.array(["1", "x", "3"], pa.large_string()), FIELDS["count"])
    assert count.to_pylist() == [1, None, 3] and bad == [1]
    code, bad = from_strings(pa.array(["a ", ""]).dictionary_encode(), FIELDS["code"])
    assert code.to_pylist() == ["a", ""] and bad == []


def test_arrow_columns_of_other_types_cast_or_flag() -> None:
    count, bad = convert_column(pa.chunked_array([[1.0, 2.5], [None]]), FIELDS["count"])
    assert count.to_pylist() == [1, None, None] and bad == [1]
    aware = pa.array([dt.datetime(2025, 1, 2, 3, tzinfo=dt.UTC)], pa.timestamp("us", "UTC"))
    seen, bad = convert_column(aware, FIELDS["seen"])
    assert seen.type == pa.timestamp("us") and seen.to_pylist() == [dt.datetime(2025, 1, 2, 3)]
    code, bad = convert_column(pa.array([440305]), FIELDS["code"])
    assert code.to_pylist() == ["440305"] and bad == []
    flags, bad = convert_column(pa.array([True]), FIELDS["count"])
    assert flags.to_pylist() == [None] and bad == [0]


def test_columns_must_match_the_contract() -> None:
    with pytest.raises(ValueError, match="2 columns given for the 5 fields"):
        to_batch([[1], [2]], CONTRACT)
    with pytest.raises(ValueError, match="different lengths"):
        to_batch([[1], [2], [3], [4], [5, 6]], CONTRACT)
    empty = to_batch([[]] * 5, CONTRACT)
    assert empty.num_rows == 0 and empty.schema.equals(batch_schema(CONTRACT.arrow_schema()))
