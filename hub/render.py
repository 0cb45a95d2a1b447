"""Rendering for people at a terminal, shared by the commands and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    import pyarrow as pa


def arrow_table(result: pa.Table, limit: int) -> Table:
    """The first ``limit`` rows of an Arrow table as a rich table, with the row count as caption."""
    table = Table(*result.column_names, caption=f"{result.num_rows} row(s)")
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    return table
