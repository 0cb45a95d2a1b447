"""The quality step of a batch: staged raw rows in, valid rows and quarantine out.

Reads the batch's staged ``raw`` rows in validation chunks, runs the contract's suite (with
the batch-wide duplicate-key scan) and the cross-dataset rules, stages the ``valid`` rows and
hands every chunk's quarantined rows, with every rule they broke, to ``on_quarantined`` (the
pipeline records them and stages correction requests). The gate's verdict is
:func:`quality.gate.judge` over the counts returned here. The step records nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quality.references import ReferenceCheck
from quality.validate import VALIDATION_CHUNK_ROWS, ChunkResult, Validator, find_duplicate_keys
from schemas.contract import Contract
from schemas.staging import StageWriter, staged_file


@dataclass(frozen=True)
class Validated:
    """What the quality step found in a batch."""

    validator: Validator
    """Holds the batch's tallies, for its Data Docs (:meth:`Validator.build_data_docs`)."""
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    warnings: tuple[str, ...] = ()
    """What the checks went on despite (a cross-dataset check with no shared register yet)."""


def validate_staged(
    folder: Path,
    contract: Contract,
    *,
    today: date,
    batch_id: str,
    source: str,
    references: ReferenceCheck | None,
    on_quarantined: Callable[[ChunkResult], None],
    progress: Callable[[str, int], None] | None = None,
) -> Validated:
    """Validate the raw rows staged in ``folder``; stage the valid ones beside them."""
    raw_path = staged_file(folder, "raw")
    duplicates = find_duplicate_keys(str(raw_path), contract)
    validator = Validator(contract, today=today)
    raw = pq.ParquetFile(raw_path)
    writer = StageWriter(staged_file(folder, "valid"), raw.schema_arrow)
    quarantined = seen = 0
    try:
        for chunk in raw.iter_batches(batch_size=VALIDATION_CHUNK_ROWS):
            table = pa.Table.from_batches([chunk])
            result = validator.validate(table, duplicate_keys=duplicates, source=source, batch_id=batch_id)
            if references is not None:
                result = references.apply(table, result)
            writer.write(result.valid)
            if result.quarantined.num_rows:
                on_quarantined(result)
            quarantined += result.quarantined.num_rows
            seen += chunk.num_rows
            if progress is not None:
                progress("validate", seen)
    finally:
        writer.close()
    warnings = tuple(references.warnings) if references is not None else ()
    return Validated(validator, seen, writer.rows, quarantined, warnings)
