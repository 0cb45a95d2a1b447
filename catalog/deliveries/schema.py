"""A grant's topic as its subscriber sees it: the message key, headers and the JSON Schema of
a value, made from the contract and the grant's columns at its share level."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from catalog.deliveries.publish import (
    HEADER_BATCH_ID,
    HEADER_CONTRACT,
    HEADER_CONTRACT_VERSION,
    HEADER_GRANT_ID,
    HEADER_SNAPSHOT_ID,
    grant_topic,
)
from catalog.metadata import (
    Grant,
)
from catalog.sharing import SharingError, grant_ref
from schemas.contract import Contract, load_contract
from schemas.errors import ContractError

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore


def _json_type(kind: pa.DataType) -> dict[str, Any]:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return {"type": "string"}
    if pa.types.is_integer(kind):
        return {"type": "integer"}
    if pa.types.is_boolean(kind):
        return {"type": "boolean"}
    if pa.types.is_date(kind):
        return {"type": "string", "format": "date"}
    if pa.types.is_timestamp(kind):
        return {"type": "string", "format": "date-time"}
    if pa.types.is_decimal(kind):
        # Text, as in the dataset schema: a binary float would round amounts.
        return {"type": "string", "format": "decimal"}
    raise ContractError(f"published type {kind} has no JSON message type")


def message_schema(
    contract: Contract, level: str, columns: Sequence[str], *, grant_id: int
) -> dict[str, Any]:
    """JSON Schema of one message value on a grant's topic: its columns at its level."""
    published = contract.published_schema(level)
    by_name = {f.published_name: f for f in contract.fields}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name in columns:
        if name not in published.names:
            raise ContractError(
                f"grant {grant_id}: column {name!r} is not published by dataset {contract.name} "
                f"{contract.version} (columns: {', '.join(published.names)})"
            )
        column = published.field(name)
        spec = _json_type(column.type)
        source = by_name.get(name)
        if source is not None:
            spec["description"] = f"{source.description.zh} / {source.description.en}"
        if column.nullable:
            spec["type"] = [spec["type"], "null"]
        else:
            required.append(name)
        properties[name] = spec
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{contract.name} {contract.version}, grant {grant_id} ({level})",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def message_key(contract: Contract, columns: Sequence[str]) -> str:
    """What keys a grant's messages: the dataset's key column if granted, else :data:`DERIVED_KEY`."""
    key = contract.published_keys[0]
    return key if key in columns else DERIVED_KEY


def derived_keys(grant_id: int, values: pa.Array) -> pa.Array:
    """:data:`DERIVED_KEY` of each key value: hides the token from a grant that lacks it."""
    prefix = f"grant:{int(grant_id)}:".encode()
    return pa.array(
        [
            base64.urlsafe_b64encode(hashlib.sha256(prefix + v.encode()).digest()).rstrip(b"=").decode()
            for v in values.cast(pa.string()).to_pylist()
        ],
        pa.string(),
    )


def subscription(store: MetadataStore, grant_id: int, *, topic_prefix: str) -> dict[str, Any]:
    """What a grant's subscriber needs: topic, key, headers and the JSON Schema of a value."""
    with store.session() as session:
        row = session.get(Grant, grant_id)
        if row is None:
            raise SharingError(f"no grant {grant_id} is recorded")
        grant = grant_ref(row)
    contract = load_contract(grant.dataset)
    return {
        "grant": grant.id,
        "system": grant.system,
        "department": grant.department,
        "dataset": grant.dataset,
        "level": grant.level,
        "state": grant.state(),
        "topic": grant_topic(topic_prefix, grant.id),
        "key": message_key(contract, grant.columns),
        "headers": [
            HEADER_CONTRACT,
            HEADER_CONTRACT_VERSION,
            HEADER_BATCH_ID,
            HEADER_SNAPSHOT_ID,
            HEADER_GRANT_ID,
        ],
        "value_schema": message_schema(contract, grant.level, grant.columns, grant_id=grant.id),
    }


DERIVED_KEY = "derived"
"""Key of a grant that does not include the dataset's key column: SHA-256 of
``grant:<id>:<key value>`` in unpadded url-safe base64 (like a token, so no long digit run
looks like a phone number), stable per record and grant, linkable across no two grants."""
