"""Deliveries to consumer systems: the outbox of one Kafka topic per grant, publishing
records to it, and the embedded Kafka-compatible broker.
"""

from __future__ import annotations

from catalog.deliveries.broker import EmbeddedBroker, locate_binary, port_accepts
from catalog.deliveries.errors import BrokerPortInUseError, BrokerUnreachableError, DeliveryError
from catalog.deliveries.outbox import Outbox
from catalog.deliveries.publish import (
    Publisher,
    batch_headers,
    count_messages,
    encode_rows,
    encode_values,
    ensure_topic,
    grant_topic,
    murmur2,
    partitions_of,
    read_messages,
)
from catalog.deliveries.queries import delivered_topics, list_deliveries
from catalog.deliveries.schema import derived_keys, message_schema, subscription

__all__ = [
    "BrokerPortInUseError",
    "BrokerUnreachableError",
    "DeliveryError",
    "EmbeddedBroker",
    "Outbox",
    "Publisher",
    "batch_headers",
    "count_messages",
    "delivered_topics",
    "derived_keys",
    "encode_rows",
    "encode_values",
    "ensure_topic",
    "grant_topic",
    "list_deliveries",
    "locate_binary",
    "message_schema",
    "murmur2",
    "partitions_of",
    "port_accepts",
    "read_messages",
    "subscription",
]
