"""The shared tables: one Iceberg table per dataset, committed atomically per batch, and
DuckDB over their current snapshots.
"""

from __future__ import annotations

from catalog.tables.iceberg import BATCH_PROPERTY, SchemaChange, SharedTables, schema_change
from catalog.tables.query import QueryEngine, View, extension_file, quote_identifier, quote_literal

__all__ = [
    "BATCH_PROPERTY",
    "QueryEngine",
    "SchemaChange",
    "SharedTables",
    "View",
    "extension_file",
    "quote_identifier",
    "quote_literal",
    "schema_change",
]
