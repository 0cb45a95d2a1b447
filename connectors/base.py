"""The one interface every connector kind implements.

A connector reads its source as Arrow record batches in the contract's canonical schema
(``contract.arrow_schema()``) plus one bookkeeping column, :data:`ERRORS_COLUMN`: for each
row, the contract fields whose source value could not be converted (null when all
converted). Such a value arrives as null and the quality step quarantines the row with
rule ``type`` and the field, so a bad value is never dropped silently nor fails the batch.

Incremental reading: ``read(since=W)`` returns only records whose cursor is greater than
the watermark ``W`` (all records when ``since`` is None); afterwards ``watermark`` is the
greatest cursor value read (or the previous one when nothing came). The pipeline stores
it with the batch, so a failed batch never advances it. Connectors that consume files
instead of a cursor archive what they read in ``commit()``, which the pipeline calls only
after the batch is registered. Pipeline steps may run in different processes, so what
``commit`` needs is handed over as data: ``checkpoint()`` after reading returns a
JSON-friendly value (or None), stored with the batch and given back to ``commit`` by a
fresh connector in the register step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

if TYPE_CHECKING:
    from schemas.contract import Contract

ERRORS_COLUMN = "_conversion_errors"
"""list<string> column: fields of the row whose source value did not convert to the contract type."""

ERRORS_TYPE = pa.list_(pa.string())


class Connector(Protocol):
    """What the pipeline needs of a connector."""

    def check(self) -> None:
        """Reach the source and verify every mapped column exists (raises naming what is missing)."""

    def read(self, *, since: str | None) -> Iterator[pa.RecordBatch]:
        """Records changed after ``since`` (all when None), canonical schema + ERRORS_COLUMN."""

    @property
    def watermark(self) -> str | None:
        """After ``read``: the greatest cursor value seen, as text (None: no cursor or no rows)."""

    def checkpoint(self) -> dict[str, Any] | None:
        """After ``read``: what ``commit`` will need (e.g. the files read), JSON-friendly."""

    def commit(self, checkpoint: dict[str, Any] | None = None) -> None:
        """The batch was registered: archive what ``checkpoint`` names (may run in another process)."""

    def close(self) -> None:
        """Release connections; safe to call more than once."""


def field_columns(
    source: str, contract: Contract, columns: Mapping[str, str] | None, cursor: str | None
) -> dict[str, str]:
    """Contract field -> source column for every field (unmapped fields read their own name).

    A mapping or cursor naming a field the contract does not have is a configuration error.
    """
    from connectors.errors import SourceConfigError

    mapping = dict(columns or {})
    known = [f.name for f in contract.fields]
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise SourceConfigError(
            f"source {source!r}: column mapping names field(s) {', '.join(unknown)} "
            f"that contract {contract.name!r} does not have"
        )
    if cursor is not None and cursor not in known:
        raise SourceConfigError(f"source {source!r}: cursor {cursor!r} is not a field of {contract.name!r}")
    return {name: mapping.get(name, name) for name in known}


def batch_schema(contract_schema: pa.Schema) -> pa.Schema:
    """Schema connectors emit: the contract's canonical schema plus the conversion errors."""
    return contract_schema.append(pa.field(ERRORS_COLUMN, ERRORS_TYPE))
