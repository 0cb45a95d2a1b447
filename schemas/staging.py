"""A batch's staged Parquet between pipeline steps (docs/adr/0002-tasks-hand-over-staged-parquet.md).

Each step reads what the previous one staged in the batch's folder and writes its own file
there, chunk by chunk, so steps may run in different processes or on different workers and
memory depends on the chunk size, not on the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def staged_file(folder: Path | str, stage: str) -> Path:
    """The file a step stages in a batch's folder (``raw``, ``valid``, ``masked`` ...)."""
    return Path(folder) / f"{stage}.parquet"


def read_chunks(path: Path, rows: int) -> Iterator[pa.RecordBatch]:
    """A staged file, ``rows`` at a time."""
    parquet = pq.ParquetFile(path)
    yield from parquet.iter_batches(batch_size=rows)


class StageWriter:
    """Parquet writer that always leaves a readable file (empty when nothing was written)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if table.num_rows:
            self._writer.write(table)
            self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
