"""Message encoding and errors of catalog.publish, without a broker."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from catalog.publish import (
    BrokerUnreachableError,
    batch_headers,
    encode_rows,
    topic_name,
)
from hub.errors import ContractError, TransientError


def test_topic_name() -> None:
    assert topic_name("hub.", "population") == "hub.population"
    assert topic_name("", "legal_entity") == "legal_entity"


def test_batch_headers() -> None:
    assert batch_headers("population", "1.0.0", "b-1") == {
        "contract": "population",
        "contract_version": "1.0.0",
        "batch_id": "b-1",
    }


def test_rows_become_compact_utf8_json_with_iso_dates() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "person_token": ["t-1", "t-2"],
            "name": ["张*", None],
            "birth_year": pa.array([1949, None], pa.int32()),
            "born": pa.array([dt.date(1949, 12, 31), None], pa.date32()),
            "updated_at": pa.array(
                [dt.datetime(2024, 6, 1, 8, 30, 15, 250_000), dt.datetime(2024, 6, 1)],
                pa.timestamp("us"),
            ),
            "count": pa.array([7, -1], pa.int64()),
        }
    )
    encoded = list(encode_rows(batch, "person_token"))
    assert [key for key, _ in encoded] == [b"t-1", b"t-2"]
    first, second = (value for _, value in encoded)
    assert first.decode() == (
        '{"person_token":"t-1","name":"张*","birth_year":1949,"born":"1949-12-31",'
        '"updated_at":"2024-06-01T08:30:15.250000","count":7}'
    )
    parsed = json.loads(second)
    assert parsed["name"] is None and parsed["born"] is None and parsed["birth_year"] is None
    assert dt.datetime.fromisoformat(parsed["updated_at"]) == dt.datetime(2024, 6, 1)


def test_zoned_timestamps_are_written_in_utc() -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    batch = pa.RecordBatch.from_pydict(
        {
            "k": ["a"],
            "at": pa.array(
                [dt.datetime(2024, 6, 1, 8, 0, tzinfo=shanghai)], pa.timestamp("s", "Asia/Shanghai")
            ),
        }
    )
    [(_, value)] = list(encode_rows(batch, "k"))
    assert json.loads(value)["at"] == "2024-06-01T00:00:00Z"


def test_missing_key_column_is_a_contract_error() -> None:
    batch = pa.RecordBatch.from_pydict({"name": ["x"]})
    with pytest.raises(ContractError, match=r"'person_token'.*columns: name"):
        list(encode_rows(batch, "person_token"))


def test_empty_key_names_the_row() -> None:
    batch = pa.RecordBatch.from_pydict({"person_token": ["a", None]})
    with pytest.raises(ContractError, match="row 101: key field 'person_token' is empty"):
        list(encode_rows(batch, "person_token", first_row=100))


def test_unreachable_error_says_how_to_retry() -> None:
    error = BrokerUnreachableError("kafka-1:9092,kafka-2:9092", batch_id="b-7", reason="timeout")
    assert isinstance(error, TransientError) and error.retriable
    message = str(error)
    assert "kafka-1:9092,kafka-2:9092" in message
    assert "`hub publish b-7`" in message
    assert "stay registered" in message
    assert "`hub publish BATCH_ID`" in str(BrokerUnreachableError("k:9092"))
