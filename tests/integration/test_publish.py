"""Publishing to the real embedded broker: counts, keys, headers, values, outages.

``broker`` is the session's embedded broker (tests/integration/conftest.py), on a free port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from catalog.deliveries import (
    BrokerUnreachableError,
    EmbeddedBroker,
    Publisher,
    batch_headers,
    count_messages,
    ensure_topic,
    grant_topic,
    partitions_of,
    read_messages,
)
from tests.conftest import free_port
from tests.support.publishing import BATCH_ID, CONTRACT, published_rows

pytestmark = pytest.mark.integration

HEADERS = batch_headers(CONTRACT.name, CONTRACT.version, BATCH_ID)


def test_topic_is_created_once(broker: str) -> None:
    topic = grant_topic("hub.", 9_001)
    assert topic == "hub.grant.9001"
    assert ensure_topic(broker, topic, partitions=3) is True
    assert ensure_topic(broker, topic, partitions=3) is False


def test_ten_thousand_rows_arrive_with_keys_headers_and_json(broker: str) -> None:
    topic = "hub.population_10k"
    ensure_topic(broker, topic)
    seen: list[int] = []
    with Publisher(broker) as publisher:
        sent = publisher.publish(
            topic, published_rows(10_000), key_field="person_token", headers=HEADERS,
            progress=seen.append,
        )  # fmt: skip
        assert publisher.idempotent
        assert publisher.producer_id is not None and publisher.producer_id >= 0
    assert sent == 10_000
    assert seen == [2_000, 4_000, 6_000, 8_000, 10_000]
    assert count_messages(broker, topic, expected=10_000) == 10_000

    messages = read_messages(broker, topic, limit=10_000)
    assert len(messages) == 10_000
    by_key = {key: (value, headers) for key, value, headers in messages}
    assert len(by_key) == 10_000
    value, headers = by_key["tok-00000003"]
    assert headers == {"contract": "population", "contract_version": "1.0.0", "batch_id": BATCH_ID}
    assert value == {
        "person_token": "tok-00000003",
        "name": "欧阳**",
        "gender": "2",
        "ethnicity": "01",
        "birth_year": 1953,
        "division_code": "110105",
        "address": "北京市朝阳区",
        "mobile": None,
        "registration_status": "1",
        "updated_at": "2024-06-01T08:30:18.250000",
        "_batch_id": BATCH_ID,
    }
    assert by_key["tok-00000005"][0]["ethnicity"] is None
    assert all(v["person_token"] == k for k, (v, _) in by_key.items())


def test_values_are_compact_utf8(broker: str) -> None:
    from kafka import KafkaConsumer, TopicPartition

    topic = "hub.population_raw"
    ensure_topic(broker, topic, partitions=1)
    with Publisher(broker) as publisher:
        publisher.publish(topic, published_rows(1), key_field="person_token", headers=HEADERS)
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        records = consumer.poll(timeout_ms=5_000)[partition]
    finally:
        consumer.close()
    assert records[0].key == b"tok-00000000"
    assert "张*".encode() in records[0].value
    assert b", " not in records[0].value and b": " not in records[0].value


def test_republishing_a_batch_appends_again(broker: str) -> None:
    """Re-sending is safe for consumers (they upsert by key) and every send is counted."""
    topic = "hub.population_twice"
    ensure_topic(broker, topic)
    with Publisher(broker) as publisher:
        for _ in range(2):
            publisher.publish(topic, published_rows(500), key_field="person_token", headers=HEADERS)
    assert count_messages(broker, topic, expected=1_000) == 1_000
    keys = {key for key, _, _ in read_messages(broker, topic, limit=1_000)}
    assert len(keys) == 500


def test_reading_back_one_batch(broker: str) -> None:
    topic = "hub.population_batches"
    ensure_topic(broker, topic)
    other = batch_headers(CONTRACT.name, CONTRACT.version, "b-other")
    with Publisher(broker) as publisher:
        publisher.publish(topic, published_rows(300), key_field="person_token", headers=HEADERS)
        publisher.publish(topic, published_rows(200), key_field="person_token", headers=other)
    assert count_messages(broker, topic, expected=500) == 500
    assert count_messages(broker, topic, batch_id=BATCH_ID) == 300
    assert count_messages(broker, topic, batch_id="b-other") == 200
    assert count_messages(broker, topic, batch_id="b-none") == 0
    messages = read_messages(broker, topic, 1_000, batch_id="b-other")
    assert len(messages) == 200
    assert {headers["batch_id"] for _, _, headers in messages} == {"b-other"}


def test_no_broker_fails_fast_with_retry_hint() -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with (
        pytest.raises(BrokerUnreachableError) as caught,
        Publisher(address, request_timeout_ms=3_000) as publisher,
    ):
        publisher.publish("hub.nowhere", published_rows(10), key_field="person_token", headers=HEADERS)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f} s"
    message = str(caught.value)
    assert address in message
    assert f"hub publish {BATCH_ID}" in message
    assert "stay registered" in message and "hub publish --pending" in message
    assert caught.value.retriable


def test_creating_a_topic_without_broker_names_the_retry() -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerUnreachableError, match=f"hub publish {BATCH_ID}") as caught:
        ensure_topic(address, "hub.nowhere", request_timeout_ms=2_000, batch_id=BATCH_ID)
    assert time.monotonic() - started < 8
    assert address in str(caught.value)


def test_broker_dying_during_a_send(tmp_path: Path) -> None:
    dying = EmbeddedBroker(tmp_path, f"127.0.0.1:{free_port()}")
    dying.start()
    try:
        topic = "hub.population_dying"
        ensure_topic(dying.address, topic)

        def batches_then_outage() -> Iterator[pa.RecordBatch]:
            batches = published_rows(6_000)
            yield batches[0]
            dying.stop(grace_s=1)
            yield from batches[1:]

        started = time.monotonic()
        with (
            pytest.raises(BrokerUnreachableError, match=dying.address) as caught,
            Publisher(dying.address, request_timeout_ms=3_000) as publisher,
        ):
            publisher.publish(topic, batches_then_outage(), key_field="person_token", headers=HEADERS)
        elapsed = time.monotonic() - started
        assert elapsed < 15, f"took {elapsed:.1f} s"
        assert f"hub publish {BATCH_ID}" in str(caught.value)
    finally:
        dying.stop(grace_s=1)


def test_a_projection_with_per_row_headers_lands_on_the_key_partitions(broker: str) -> None:
    """Grant deliveries: some columns only, the batch header from each row, keys partitioned
    as the Java client and kafka-python would place them."""
    from kafka import KafkaConsumer, TopicPartition

    topic = "hub.population_projection"
    ensure_topic(broker, topic, partitions=3)
    rows = published_rows(900)
    batch_ids = pa.array([f"b-{i % 3}" for i in range(900)])
    rows = [b.set_column(b.schema.get_field_index("_batch_id"), "_batch_id", batch_ids.slice(i * 2_000, b.num_rows))
            for i, b in enumerate(rows)]  # fmt: skip
    with Publisher(broker) as publisher:
        sent = publisher.publish(
            topic, rows, key_field="person_token", headers={**HEADERS, "grant_id": "9"},
            value_columns=["name", "birth_year"], row_headers={"batch_id": "_batch_id"},
        )  # fmt: skip
    assert sent == 900
    messages = read_messages(broker, topic, 1_000)
    assert len(messages) == 900
    assert all(list(value) == ["name", "birth_year"] for _, value, _ in messages)
    by_key = {key: headers for key, _, headers in messages}
    assert {h["batch_id"] for h in by_key.values()} == {"b-0", "b-1", "b-2"}
    assert by_key["tok-00000004"]["batch_id"] == "b-1" and by_key["tok-00000004"]["grant_id"] == "9"
    assert count_messages(broker, topic, headers={"batch_id": "b-2", "grant_id": "9"}) == 300

    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None)
    try:
        found: dict[str, int] = {}
        for partition in range(3):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            while records := consumer.poll(timeout_ms=2_000).get(tp, []):
                found.update({r.key.decode(): partition for r in records})
    finally:
        consumer.close()
    keys = sorted(found)
    assert [found[k] for k in keys] == partitions_of([k.encode() for k in keys], 3)
