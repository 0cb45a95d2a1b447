"""DuckDB over the current snapshots of the shared tables.

Each connection gets one view per dataset, pinned to the snapshot current when the
connection was made, then is locked down: no file access beyond the files of those
snapshots, no extension loading, no configuration changes.

Two ways to read a table, chosen at start-up:

* ``iceberg_scan`` of the table's ``metadata.json`` through DuckDB's iceberg extension,
  loaded from the ``duckdb-extension-iceberg`` package. That extension needs the ``avro``
  extension to read manifests, so the ``duckdb-extension-avro`` package must be installed
  too; extensions are never downloaded.
* ``read_parquet`` of the snapshot's data files as planned by pyiceberg, when the
  extensions are not installed. Rows are the same, since the hub's tables have no
  delete files (pyiceberg writes copy-on-write).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

from catalog.errors import ExtensionUnavailableError, QueryDeniedError, QueryError
from catalog.tables.iceberg import SharedTables

Reader = Literal["iceberg_scan", "read_parquet"]

_OFFLINE = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}
"""Connection settings that keep DuckDB from fetching extensions over the network."""


def extension_file(name: str) -> Path | None:
    """The file of DuckDB extension ``name`` shipped by the ``duckdb-extension-<name>`` package."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.submodule_search_locations is None:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class View:
    """One dataset as a connection sees it."""

    dataset: str
    snapshot_id: int | None
    sql: str
    paths: tuple[str, ...]
    """Every file the view reads; the sandbox allows these and nothing else."""


class QueryEngine:
    """Sandboxed DuckDB connections over the shared tables.

    ``native=None`` (the default) uses ``iceberg_scan`` when both the iceberg and avro
    extension packages are installed and load, and ``read_parquet`` otherwise;
    ``fallback_reason`` then says why. ``native=True`` makes a missing extension an error.
    """

    def __init__(self, tables: SharedTables, *, native: bool | None = None, sandbox: bool = True) -> None:
        self.tables = tables
        self.sandbox = sandbox
        self.fallback_reason: str | None = None
        self._extensions: list[Path] = []
        if native is not False:
            self._extensions, self.fallback_reason = _native_extensions()
            if self.fallback_reason and native:
                raise ExtensionUnavailableError(
                    f"cannot query shared tables with iceberg_scan: {self.fallback_reason}"
                )
        else:
            self.fallback_reason = "read_parquet chosen by the caller"
        self.reader: Reader = "read_parquet" if self.fallback_reason else "iceberg_scan"

    def views(self, datasets: Iterable[str] | None = None) -> list[View]:
        """The view of each dataset (all registered ones by default) over its current snapshot."""
        names = self.tables.datasets() if datasets is None else list(datasets)
        return [self._view(name) for name in names]

    def _view(self, dataset: str, snapshot_id: int | None = None) -> View:
        """The view of ``dataset`` at its current snapshot, or at ``snapshot_id`` (time travel,
        for replaying what a logged query saw)."""
        table = self.tables.load(dataset)
        if snapshot_id is None:
            snapshot = table.current_snapshot()
        else:
            snapshot = table.snapshot_by_id(snapshot_id)
            if snapshot is None:
                raise QueryError(
                    f"dataset {dataset!r} has no snapshot {snapshot_id} (expired or never existed)"
                )
        pinned = None if snapshot is None else snapshot.snapshot_id
        tasks = list(table.scan(snapshot_id=pinned).plan_files()) if snapshot is not None else []
        data = [task.file.file_path for task in tasks]
        deletes = [d.file_path for task in tasks for d in task.delete_files]
        name = quote_identifier(dataset)
        if self.reader == "iceberg_scan":
            metadata = [table.metadata_location]
            if snapshot is not None:
                metadata.append(snapshot.manifest_list)
                metadata += [m.manifest_path for m in snapshot.manifests(table.io)]
            at = "" if snapshot_id is None else f", snapshot_from_id => {int(snapshot_id)}"
            sql = f"CREATE VIEW {name} AS SELECT * FROM iceberg_scan({quote_literal(metadata[0])}{at})"
            return View(
                dataset,
                None if snapshot is None else snapshot.snapshot_id,
                sql,
                tuple(metadata + data + deletes),
            )
        if deletes:
            raise QueryError(
                f"dataset {dataset!r} snapshot {snapshot.snapshot_id if snapshot else None} has "
                "delete files, which read_parquet cannot apply; install duckdb-extension-avro"
            )
        if data:
            files = ", ".join(quote_literal(path) for path in data)
            sql = f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{files}])"
        else:
            sql = f"CREATE VIEW {name} AS {_empty_select(table.schema().as_arrow())}"
        return View(dataset, None if snapshot is None else snapshot.snapshot_id, sql, tuple(data))

    def connect(self, datasets: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory connection with one view per dataset, locked down if ``sandbox``."""
        views = self.views(datasets)
        connection = duckdb.connect(":memory:", config=dict(_OFFLINE))
        try:
            with _duckdb_errors("preparing the views"):
                for path in self._extensions:
                    connection.execute(f"LOAD {quote_literal(str(path))}")
                for view in views:
                    connection.execute(view.sql)
                if self.sandbox:
                    allowed = sorted({p for view in views for p in view.paths})
                    connection.execute("SET allowed_paths = $1", [allowed])
                    connection.execute("SET enable_external_access = false")
                    connection.execute("SET lock_configuration = true")
        except BaseException:
            connection.close()
            raise
        return connection

    def run(self, sql: str, datasets: Iterable[str] | None = None) -> pa.Table:
        """Run one query on a fresh connection and return the whole result."""
        connection = self.connect(datasets)
        try:
            with _duckdb_errors("running the query"):
                return connection.execute(sql).to_arrow_table()
        finally:
            connection.close()


def _native_extensions() -> tuple[list[Path], str | None]:
    """Extension files to load for ``iceberg_scan``, or the reason it cannot be used."""
    files: list[Path] = []
    # avro first: the iceberg extension loads it during its own start-up.
    for name in ("avro", "iceberg"):
        path = extension_file(name)
        if path is None:
            return [], (
                f"the DuckDB {name} extension is not installed (package "
                f"duckdb-extension-{name}=={duckdb.__version__}); extensions are never downloaded"
            )
        files.append(path)
    probe = duckdb.connect(":memory:", config=dict(_OFFLINE))
    try:
        for file in files:
            try:
                probe.execute(f"LOAD {quote_literal(str(file))}")
            except duckdb.Error as exc:
                return [], f"loading {file} failed: {_first_line(exc)}"
    finally:
        probe.close()
    return files, None


@contextmanager
def _duckdb_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except duckdb.PermissionException as exc:
        raise QueryDeniedError(f"DuckDB refused while {doing}: {exc}") from None
    except duckdb.Error as exc:
        raise QueryError(f"DuckDB failed while {doing}: {exc}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def _empty_select(schema: pa.Schema) -> str:
    """A typed, empty SELECT for a table that has no data files yet."""
    columns = []
    for field in schema:
        sql_type = _DUCKDB_TYPES.get(field.type)
        if sql_type is None:
            raise QueryError(f"no DuckDB type known for column {field.name!r} of type {field.type}")
        columns.append(f"CAST(NULL AS {sql_type}) AS {quote_identifier(field.name)}")
    return f"SELECT {', '.join(columns)} WHERE false"
