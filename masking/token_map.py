"""Old token -> new token pairs after a token-key rotation (``shared.token_map``).

During a mapping period a re-tokenised source also publishes, for each raw identifier, its
token under the retired key beside its token under the current one, so consumers can move
their joins (docs/adr/0007-keys.md).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from masking.keys import Keyring
from masking.rules import ArrayLike, token
from masking.settings import DEFAULT_TOKEN_MAPPING_DAYS

MAPPING_SCHEMA = pa.schema(
    [
        pa.field("old_token", pa.string(), nullable=False),
        pa.field("new_token", pa.string(), nullable=False),
        pa.field("old_version", pa.int32(), nullable=False),
        pa.field("new_version", pa.int32(), nullable=False),
    ]
)
"""Schema of ``shared.token_map``: one row per raw identifier and older token version."""


def token_mapping(
    values: ArrayLike,
    keyring: Keyring,
    *,
    mapping_days: int = DEFAULT_TOKEN_MAPPING_DAYS,
    now: datetime | None = None,
) -> pa.Table | None:
    """Old token -> new token for the raw identifiers of one chunk, during mapping periods.

    A token version's mapping period runs ``mapping_days`` from the creation of the version
    after it (its retirement). For every older version still in its period, each distinct
    non-empty value gets one row: its token under that version and under the current one.
    None when no older version is in its period (nothing to publish).
    """
    now = now or datetime.now(UTC)
    infos = keyring.versions("token")
    current = keyring.current_key("token")
    retired_at = {older.version: newer.created_at for older, newer in itertools.pairwise(infos)}
    mapped = [
        version
        for version, when in retired_at.items()
        if version < current.version and now - when < timedelta(days=mapping_days)
    ]
    if not mapped:
        return None
    present = pc.filter(values, pc.fill_null(pc.not_equal(values, ""), False))
    distinct = pc.unique(present.combine_chunks() if isinstance(present, pa.ChunkedArray) else present)
    if len(distinct) == 0:
        return MAPPING_SCHEMA.empty_table()
    new_tokens = token(distinct, current)
    pieces = [
        pa.Table.from_arrays(
            [
                token(distinct, keyring.token_key(version)),
                new_tokens,
                pa.repeat(pa.scalar(version, pa.int32()), len(distinct)),
                pa.repeat(pa.scalar(current.version, pa.int32()), len(distinct)),
            ],
            schema=MAPPING_SCHEMA,
        )
        for version in mapped
    ]
    return pa.concat_tables(pieces).combine_chunks()
