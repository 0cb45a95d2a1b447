"""Shared tables: one Iceberg table per dataset, committed atomically per batch.

pyiceberg's ``SqlCatalog`` keeps the catalog in a SQL database (SQLite by default,
PostgreSQL in production) and the data as Parquet under the warehouse URL. A batch is
written in one Iceberg transaction, so readers see either the whole batch or none of it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo
from pyiceberg.expressions.parser import parse as _parse_row_filter
from pyiceberg.table.snapshots import ancestors_of
from sqlalchemy.exc import DBAPIError

from catalog.errors import (
    BatchDataError,
    CatalogUnavailableError,
    DatasetNotFoundError,
    TableSchemaMismatchError,
)
from hub.errors import ConfigurationError, redact_url
from schemas.contract import BATCH_ID_COLUMN, Contract

if TYPE_CHECKING:
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

    from catalog.settings import CatalogSettings

CATALOG_NAME = "hub"
BATCH_PROPERTY = "hub.batch-id"
"""Snapshot summary property naming the batch a commit registered (lineage, idempotence)."""
MODE_PROPERTY = "hub.mode"
CONTRACT_VERSION_PROPERTY = "hub.contract-version"

CommitMode = Literal["overwrite", "append", "upsert"]


class SharedTables:
    """The shared datasets of one Iceberg catalog namespace."""

    def __init__(self, iceberg_url: str, warehouse: str, namespace: str = "shared") -> None:
        self.iceberg_url = iceberg_url
        self.warehouse = warehouse
        self.namespace = namespace
        with self._unavailable_as_transient("open the catalog"):
            self.catalog = SqlCatalog(CATALOG_NAME, uri=iceberg_url, warehouse=warehouse)

    @classmethod
    def from_settings(cls, settings: CatalogSettings) -> SharedTables:
        if settings.iceberg_url is None or settings.warehouse is None:
            raise ConfigurationError(
                "catalog.iceberg_url and catalog.warehouse must be set "
                "(HUB_CATALOG__ICEBERG_URL, HUB_CATALOG__WAREHOUSE)"
            )
        return cls(settings.iceberg_url, settings.warehouse, settings.namespace)

    @contextmanager
    def _unavailable_as_transient(self, doing: str) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            first = str(exc.orig).strip().splitlines()[:1] or [type(exc.orig).__name__]
            raise CatalogUnavailableError(
                f"could not {doing}: Iceberg catalog {redact_url(self.iceberg_url)} "
                f"is unavailable: {first[0]}"
            ) from None
        except OSError as exc:
            raise CatalogUnavailableError(
                f"could not {doing}: warehouse {redact_url(self.warehouse)} is unavailable: {exc}"
            ) from None

    def identifier(self, dataset: str) -> tuple[str, str]:
        return (self.namespace, dataset)

    def datasets(self) -> list[str]:
        """Names of the datasets that have a shared table."""
        with self._unavailable_as_transient("list the shared tables"):
            try:
                return sorted(name for _, name in self.catalog.list_tables(self.namespace))
            except NoSuchNamespaceError:
                return []

    def load(self, dataset: str) -> Table:
        with self._unavailable_as_transient(f"load the table of {dataset}"):
            try:
                return self.catalog.load_table(self.identifier(dataset))
            except NoSuchTableError:
                raise DatasetNotFoundError(
                    f"dataset {dataset!r} has no shared table in namespace {self.namespace!r} "
                    f"of {redact_url(self.iceberg_url)}"
                ) from None

    def ensure_table(self, contract: Contract) -> Table:
        """The dataset's table, created from its contract if missing.

        An existing table with another schema is an error: schema evolution (with the
        consumer compatibility check) is a separate, deliberate step.
        """
        expected = contract.iceberg_schema()
        with self._unavailable_as_transient(f"create the table of {contract.name}"):
            self.catalog.create_namespace_if_not_exists(self.namespace)
            try:
                table = self.catalog.load_table(self.identifier(contract.name))
            except NoSuchTableError:
                try:
                    return self.catalog.create_table(
                        self.identifier(contract.name),
                        schema=expected,
                        properties={
                            "hub.contract": contract.name,
                            CONTRACT_VERSION_PROPERTY: contract.version,
                        },
                    )
                except TableAlreadyExistsError:
                    table = self.catalog.load_table(self.identifier(contract.name))
        problems = _schema_differences(table.schema(), expected)
        if problems:
            raise TableSchemaMismatchError(
                f"shared table {self.namespace}.{contract.name} does not match contract "
                f"{contract.name} {contract.version}: {'; '.join(problems)}"
            )
        return table

    def commit(
        self,
        contract: Contract,
        batches: Iterable[pa.RecordBatch] | pa.Table,
        *,
        batch_id: str,
        mode: CommitMode = "overwrite",
        retired_keys: pa.Array | None = None,
    ) -> int:
        """Write a batch's published rows in one atomic Iceberg commit; return the snapshot id.

        ``overwrite`` (the default) replaces the whole table, because a full refresh from
        the source is how datasets arrive today and it makes a re-run idempotent.
        ``append`` adds the rows; appending a batch id the table already holds is a no-op.
        ``upsert`` replaces the rows whose key the batch carries and adds the others, so the
        table holds the latest version of each entity (incremental and multi-source datasets).
        ``retired_keys`` (upsert only) are keys the batch's rows replace under another value:
        the previous tokens of re-tokenised identifiers after a token-key rotation.
        It rewrites the table copy-on-write inside the same single commit: simple and exact
        at the sizes of one region's basic datasets; partitioned rewrites come with scale.
        Record batches are streamed: pyiceberg packs them into Parquet files of
        ``write.target-file-size-bytes`` (512 MiB of Arrow data by default), so memory
        holds about one file's worth of rows, not the whole batch.
        """
        if mode not in ("overwrite", "append", "upsert"):
            raise ValueError(f"unknown commit mode {mode!r}; use 'overwrite', 'append' or 'upsert'")
        table = self.ensure_table(contract)
        if mode == "append":
            existing = _snapshot_holding(table, batch_id)
            if existing is not None:
                return existing
        target = contract.published_schema()
        if isinstance(batches, pa.Table):
            batches = batches.to_batches()
        reader = pa.RecordBatchReader.from_batches(
            target, _conform(batches, target, contract=contract, batch_id=batch_id)
        )
        properties = {
            BATCH_PROPERTY: batch_id,
            MODE_PROPERTY: mode,
            CONTRACT_VERSION_PROPERTY: contract.version,
        }
        with (
            self._unavailable_as_transient(f"commit batch {batch_id} to {contract.name}"),
            warnings.catch_warnings(),
        ):
            # Overwriting an empty table deletes nothing; pyiceberg warns about it.
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            try:
                with table.transaction() as tx:
                    if mode == "upsert" and table.current_snapshot() is not None:
                        tx.overwrite(
                            _merged(table, reader, list(contract.published_keys), retired_keys),
                            snapshot_properties=properties,
                        )
                    elif mode == "overwrite":
                        tx.overwrite(reader, snapshot_properties=properties)
                    else:
                        tx.append(reader, snapshot_properties=properties)
            except CommitFailedException as exc:
                raise CatalogUnavailableError(
                    f"batch {batch_id} was not committed to {contract.name}: another commit "
                    f"changed the table first ({exc}); retry the step"
                ) from None
        snapshot = table.current_snapshot()
        if snapshot is None:  # pragma: no cover - a committed transaction always has one
            raise CatalogUnavailableError(f"batch {batch_id}: commit left {contract.name} empty")
        return snapshot.snapshot_id

    def upsert_rows(
        self,
        name: str,
        rows: pa.Table,
        *,
        keys: list[str],
        batch_id: str,
        retired_keys: pa.Array | None = None,
    ) -> int:
        """Upsert rows of a hub-owned table that has no contract (e.g. ``token_map``) in one commit.

        The table is created from the rows' Arrow schema (keys as identifier fields) if missing.
        """
        from pyiceberg.io.pyarrow import pyarrow_to_schema
        from pyiceberg.schema import Schema
        from pyiceberg.table.name_mapping import MappedField, NameMapping

        mapping = NameMapping(
            [
                MappedField.model_validate({"field-id": i + 1, "names": [f.name]})
                for i, f in enumerate(rows.schema)
            ]
        )
        schema = pyarrow_to_schema(rows.schema, name_mapping=mapping)
        schema = Schema(*schema.fields, identifier_field_ids=[schema.find_field(k).field_id for k in keys])
        with self._unavailable_as_transient(f"upsert {len(rows)} rows into {name}"):
            self.catalog.create_namespace_if_not_exists(self.namespace)
            table = self.catalog.create_table_if_not_exists(self.identifier(name), schema=schema)
            reader = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())
            properties = {BATCH_PROPERTY: batch_id, MODE_PROPERTY: "upsert"}
            with table.transaction() as tx:
                if table.current_snapshot() is None:
                    tx.append(rows, snapshot_properties=properties)
                else:
                    tx.overwrite(_merged(table, reader, keys, retired_keys), snapshot_properties=properties)
        snapshot = table.current_snapshot()
        assert snapshot is not None
        return snapshot.snapshot_id

    def replace_rows(self, name: str, rows: pa.Table, *, batch_id: str, properties: dict[str, str]) -> int:
        """Replace the whole content of a hub-owned table (a derived view) in one commit."""
        from pyiceberg.io.pyarrow import pyarrow_to_schema
        from pyiceberg.table.name_mapping import MappedField, NameMapping

        mapping = NameMapping(
            [
                MappedField.model_validate({"field-id": i + 1, "names": [f.name]})
                for i, f in enumerate(rows.schema)
            ]
        )
        with self._unavailable_as_transient(f"replace {name}"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            self.catalog.create_namespace_if_not_exists(self.namespace)
            table = self.catalog.create_table_if_not_exists(
                self.identifier(name), schema=pyarrow_to_schema(rows.schema, name_mapping=mapping)
            )
            with table.transaction() as tx:
                tx.overwrite(rows, snapshot_properties={BATCH_PROPERTY: batch_id, **properties})
                tx.set_properties(properties)
        snapshot = table.current_snapshot()
        assert snapshot is not None
        return snapshot.snapshot_id

    def current_snapshot_id(self, dataset: str) -> int | None:
        snapshot = self.load(dataset).current_snapshot()
        return None if snapshot is None else snapshot.snapshot_id

    def metadata_location(self, dataset: str) -> str:
        """The current ``metadata.json`` of the table (what ``iceberg_scan`` reads)."""
        return self.load(dataset).metadata_location

    def data_files(self, dataset: str, *, snapshot_id: int | None = None) -> list[str]:
        """The Parquet files holding a snapshot's rows (the current one by default)."""
        table = self.load(dataset)
        with self._unavailable_as_transient(f"plan a scan of {dataset}"):
            return [task.file.file_path for task in table.scan(snapshot_id=snapshot_id).plan_files()]

    def scan(
        self,
        dataset: str,
        *,
        snapshot_id: int | None = None,
        row_filter: str | BooleanExpression | None = None,
        batch_id: str | None = None,
        selected_fields: tuple[str, ...] = ("*",),
    ) -> Iterator[pa.RecordBatch]:
        """Stream a snapshot's rows (the current one by default), one record batch at a time.

        ``batch_id`` keeps only the rows that batch registered (to publish or replay
        them). The table is loaded and the files planned before this returns, so a
        missing dataset or snapshot fails here rather than at the first ``next()``.
        """
        condition: str | BooleanExpression = AlwaysTrue() if row_filter is None else row_filter
        if batch_id is not None:
            if isinstance(condition, str):
                condition = _parse_row_filter(condition)
            condition = And(condition, batch_filter(batch_id))
        table = self.load(dataset)
        if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
            raise DatasetNotFoundError(f"dataset {dataset!r} has no snapshot {snapshot_id}")
        scan = table.scan(
            row_filter=condition,
            selected_fields=selected_fields,
            snapshot_id=snapshot_id,
        )
        with self._unavailable_as_transient(f"scan {dataset}"):
            reader = scan.to_arrow_batch_reader()
        return self._stream(dataset, reader)

    def _stream(self, dataset: str, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        with self._unavailable_as_transient(f"scan {dataset}"):
            yield from reader

    def scan_batch(
        self, dataset: str, batch_id: str, *, snapshot_id: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The rows one batch registered, as of a snapshot (to publish or replay them)."""
        return self.scan(dataset, snapshot_id=snapshot_id, batch_id=batch_id)


def batch_filter(batch_id: str) -> BooleanExpression:
    """Iceberg row filter selecting one batch's rows."""
    # pyiceberg's runtime signature is (term, literal); its pydantic fields confuse mypy.
    return EqualTo(BATCH_ID_COLUMN, batch_id)  # type: ignore[call-arg, arg-type]


def _schema_differences(actual: Schema, expected: Schema) -> list[str]:
    def describe(schema: Schema) -> dict[str, tuple[str, bool]]:
        return {f.name: (str(f.field_type), f.required) for f in schema.fields}

    have, want = describe(actual), describe(expected)
    problems = [f"column {n!r} is missing" for n in want if n not in have]
    problems += [f"column {n!r} is not in the contract" for n in have if n not in want]
    for name in want.keys() & have.keys():
        (w_type, w_req), (h_type, h_req) = want[name], have[name]
        if w_type != h_type:
            problems.append(f"column {name!r} is {h_type}, the contract says {w_type}")
        if w_req != h_req:
            problems.append(
                f"column {name!r} is {'required' if h_req else 'optional'}, "
                f"the contract says {'required' if w_req else 'optional'}"
            )
    if not problems and [n for n in have] != [n for n in want]:
        problems.append(f"column order {list(have)} differs from the contract's {list(want)}")
    key = {actual.find_field(i).name for i in actual.identifier_field_ids}
    want_key = {expected.find_field(i).name for i in expected.identifier_field_ids}
    if key != want_key:
        problems.append(f"key {sorted(key)} differs from the contract's {sorted(want_key)}")
    return sorted(problems)


def _conform(
    batches: Iterable[pa.RecordBatch], target: pa.Schema, *, contract: Contract, batch_id: str
) -> Iterator[pa.RecordBatch]:
    """Check and cast each record batch to the published schema, naming what does not fit."""
    seen = 0
    for batch in batches:
        missing = [name for name in target.names if name not in batch.schema.names]
        if missing:
            raise BatchDataError(
                f"batch {batch_id} for {contract.name}: published rows lack column(s) {', '.join(missing)}"
            )
        selected = batch.select(target.names)
        for field in target:
            column = selected.column(field.name)
            if not field.nullable and column.null_count:
                row = seen + pc.index(pc.is_null(column), True).as_py()
                raise BatchDataError(
                    f"batch {batch_id} for {contract.name}: row {row} (of the published rows) has "
                    f"no value in required column {field.name!r}"
                )
        try:
            conformed = selected.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise BatchDataError(
                f"batch {batch_id} for {contract.name}: published rows do not fit the contract's "
                f"schema: {exc}"
            ) from None
        ids = conformed.column(BATCH_ID_COLUMN)
        if len(ids) and not pc.all(pc.equal(ids, batch_id)).as_py():
            other = pc.filter(ids, pc.not_equal(ids, batch_id))[0].as_py()
            raise BatchDataError(
                f"batch {batch_id} for {contract.name}: rows carry {BATCH_ID_COLUMN} {other!r}"
            )
        seen += len(conformed)
        yield conformed


def _merged(
    table: Table, reader: pa.RecordBatchReader, keys: list[str], retired: pa.Array | None = None
) -> pa.Table:
    """Current rows whose key the batch neither carries nor retires, then the batch's rows."""
    incoming = reader.read_all()
    current = table.scan().to_arrow().cast(incoming.schema)
    if len(keys) == 1:
        replacing = incoming.column(keys[0]).combine_chunks()
        if retired is not None and len(retired):
            replacing = pa.concat_arrays([replacing, retired.cast(replacing.type)])
        replaced = pc.is_in(current.column(keys[0]), value_set=replacing)
        kept = current.filter(pc.invert(replaced))
    else:
        kept = current.join(incoming.select(keys), keys=keys, join_type="left anti")
    return pa.concat_tables([kept, incoming]).combine_chunks()


def _snapshot_holding(table: Table, batch_id: str) -> int | None:
    """The current snapshot id if the table already holds this batch's append, else None."""
    current = table.current_snapshot()
    for snapshot in ancestors_of(current, table.metadata):
        summary = snapshot.summary
        if summary is None:
            continue
        if summary[BATCH_PROPERTY] == batch_id and current is not None:
            return current.snapshot_id
        if summary[MODE_PROPERTY] == "overwrite":
            break
    return None
