"""Message encoding and errors of catalog.deliveries.publish, without a broker."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import random

import pyarrow as pa
import pytest

from catalog.deliveries import (
    BrokerUnreachableError,
    batch_headers,
    encode_rows,
    encode_values,
    grant_topic,
    murmur2,
    partitions_of,
)
from catalog.deliveries.publish import _encode, _json_ready
from schemas.errors import ContractError, TransientError


def test_grant_topic_names_the_grant_only() -> None:
    assert grant_topic("hub.", 42) == "hub.grant.42"
    assert grant_topic("", 7) == "grant.7"


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
    assert "`hub publish --pending`" in message
    assert "`hub publish --pending` once" in str(BrokerUnreachableError("k:9092"))


def _row_by_row(batch: pa.RecordBatch) -> list[bytes]:
    """What the encoder did before it worked on whole record batches: json per row."""
    return [_encode(row).encode() for row in _json_ready(batch).to_pylist()]


def test_batch_encoding_is_byte_for_byte_the_row_encoding() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "text": ['say "hi"', "back\\slash", "tab\there", None, "日本 \u2028 ok", ""],
            "large": pa.array(["a", None, "c", "d", "e", "f"], pa.large_string()),
            "amount": pa.array(
                [decimal.Decimal("0"), decimal.Decimal("-12.5"), None, decimal.Decimal("1234567890123456.1234"),
                 decimal.Decimal("0.0001"), decimal.Decimal("7")],
                pa.decimal128(20, 4),
            ),
            "ratio": pa.array([1.5, None, 1e300, 0.1, -0.0, 3.0]),
            "flag": pa.array([True, False, None, True, False, True]),
            "count": pa.array([0, -1, None, 2**62, 7, 8], pa.int64()),
            "day": pa.array([dt.date(1949, 10, 1), None, dt.date(2024, 2, 29), dt.date(1, 1, 1), None, None]),
            "at": pa.array(
                [dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 1, 1, 1, 1, 5), dt.datetime(1, 1, 1), None, None],
                pa.timestamp("us"),
            ),
        }
    )  # fmt: skip
    assert encode_values(batch) == _row_by_row(batch)
    assert encode_values(batch, ["count", "text"]) == _row_by_row(batch.select(["count", "text"]))
    assert encode_values(batch, []) == [b"{}"] * batch.num_rows
    with pytest.raises(ContractError, match="nope to publish"):
        encode_values(batch, ["nope"])


def test_keys_go_to_the_partition_the_default_partitioner_picks() -> None:
    from kafka.partitioner.default import murmur2 as reference

    rng = random.Random(7)
    keys = [rng.randbytes(rng.randint(0, 70)) for _ in range(3_000)] + [b"", b"a", b"ab", b"abc", b"abcd"]
    keys += [f"k1_{rng.getrandbits(256):064x}".encode() for _ in range(1_000)]
    assert murmur2(keys).tolist() == [reference(k) & 0xFFFFFFFF for k in keys]
    assert partitions_of(keys, 3) == [(reference(k) & 0x7FFFFFFF) % 3 for k in keys]
    with pytest.raises(ValueError, match="at least one partition"):
        partitions_of(keys, 0)
