"""The masking step of a batch: valid rows in, the rows each share level publishes out.

Reads the batch's staged ``valid`` rows chunk by chunk and stages, beside them:

* ``masked``: every field through its contract rule at the conditional level (what the
  shared table and the topics hold);
* ``unconditional``: the same rows at the unconditional level, for a contract with
  quasi-identifiers (its k-anonymous view is made when the batch registers);
* ``token_map``: old -> new token pairs of the batch's identifiers while an older token key
  is in its mapping period (after ``hub keys rotate --kind token``), so consumers' joins
  survive the rotation.

Each chunk is also handed to ``also`` (the pipeline stages the verification index rows from
it: this is the one step that holds raw values). The step records nothing: the pipeline
keeps the batch record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from masking.apply import mask_table
from masking.keys import Keyring
from masking.token_map import MAPPING_SCHEMA, token_mapping
from schemas.contract import Contract, MaskRule
from schemas.staging import StageWriter, read_chunks, staged_file

UNCONDITIONAL = "unconditional"
"""Share level any department may read without a request (无条件共享 view of a dataset)."""


def mask_staged(
    folder: Path,
    contract: Contract,
    keyring: Keyring,
    *,
    batch_id: str,
    chunk_rows: int,
    mapping_days: int,
    also: Callable[[pa.RecordBatch], None] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> int:
    """Stage the masked rows of ``folder``'s valid rows; returns how many were staged."""
    tokenised = [f.name for f in contract.fields if f.mask.rule is MaskRule.TOKEN]
    writer = StageWriter(staged_file(folder, "masked"), contract.published_schema())
    mappings = StageWriter(staged_file(folder, "token_map"), MAPPING_SCHEMA)
    opened = StageWriter(staged_file(folder, UNCONDITIONAL), contract.published_schema(UNCONDITIONAL))
    try:
        for chunk in read_chunks(staged_file(folder, "valid"), chunk_rows):
            for name in tokenised:
                pairs = token_mapping(chunk.column(name), keyring, mapping_days=mapping_days)
                if pairs is not None:
                    mappings.write(pairs)
            made: dict[tuple[str, str], Any] = {}
            writer.write(mask_table(chunk, contract, keyring, batch_id=batch_id, computed=made))
            if contract.quasi_identifiers:
                opened.write(
                    mask_table(
                        chunk, contract, keyring, batch_id=batch_id, level=UNCONDITIONAL, computed=made
                    )
                )
            if also is not None:
                also(chunk)
            if progress is not None:
                progress("mask", writer.rows)
    finally:
        writer.close()
        mappings.close()
        opened.close()
    return writer.rows
