"""Shared tables: one Iceberg table per dataset, committed atomically per batch.

pyiceberg's ``SqlCatalog`` keeps the catalog in a SQL database (SQLite by default,
PostgreSQL in production) and the data as Parquet under the warehouse URL. A batch is
written in one Iceberg transaction, so readers see either the whole batch or none of it.

A new contract version evolves its table: added columns are taken in by any write
(:meth:`SharedTables.ensure_table`); dropped, renamed or retyped columns only by
:meth:`SharedTables.evolve` with ``allow_breaking``, which the catalogue calls once it has
checked that no grant still includes them (``hub catalog sync``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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
from pyiceberg.schema import promote
from pyiceberg.table.snapshots import ancestors_of
from sqlalchemy.exc import DBAPIError

from catalog.errors import (
    BatchDataError,
    CatalogUnavailableError,
    DatasetNotFoundError,
    TableSchemaMismatchError,
)
from schemas.contract import BATCH_ID_COLUMN, Contract
from schemas.errors import ConfigurationError, redact_url

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


@dataclass(frozen=True)
class SchemaChange:
    """How a contract's published columns differ from its shared table's columns.

    ``renamed`` pairs are (old, new) names; ``retyped`` triples are (column, old type, new
    type); ``relaxed`` columns are required in the table and optional in the contract.
    """

    added: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()
    relaxed: tuple[str, ...] = ()
    key: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    reordered: bool = False

    @property
    def empty(self) -> bool:
        return self == SchemaChange()

    @property
    def breaking(self) -> bool:
        """Whether a consumer's column disappears or changes: it needs a major version."""
        return bool(self.dropped or self.renamed or self.retyped or self.key)

    @property
    def removed(self) -> tuple[str, ...]:
        """Columns consumers lose under their current name (dropped or renamed away)."""
        return self.dropped + tuple(old for old, _ in self.renamed)

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append(f"adds {', '.join(self.added)}")
        if self.dropped:
            parts.append(f"drops {', '.join(self.dropped)}")
        if self.renamed:
            parts.append(f"renames {', '.join(f'{old} -> {new}' for old, new in self.renamed)}")
        if self.retyped:
            parts.append(f"retypes {', '.join(f'{n} {old} -> {new}' for n, old, new in self.retyped)}")
        if self.relaxed:
            parts.append(f"makes optional {', '.join(self.relaxed)}")
        if self.key:
            parts.append(f"changes the key {list(self.key[0])} -> {list(self.key[1])}")
        if self.reordered:
            parts.append("reorders columns")
        return "; ".join(parts) or "no column change"


def schema_change(actual: Schema, expected: Schema, renames: Mapping[str, str] | None = None) -> SchemaChange:
    """Compare a table's schema with the one a contract wants.

    ``renames`` (old -> new published name) tells a rename from a drop plus an add; only the
    contracts know it (same field, new published name), the table cannot.
    """
    have = {f.name: f for f in actual.fields}
    want = {f.name: f for f in expected.fields}
    renamed = tuple(
        (old, new) for old, new in (renames or {}).items() if old in have and new in want and new not in have
    )
    moved_to = {new for _, new in renamed}
    moved_from = {old for old, _ in renamed}
    added = tuple(n for n in want if n not in have and n not in moved_to)
    dropped = tuple(n for n in have if n not in want and n not in moved_from)
    current = {**have, **{new: have[old] for old, new in renamed}}
    retyped, relaxed = [], []
    for name, field in want.items():
        old = current.get(name)
        if old is None:
            continue
        if old.field_type != field.field_type:
            retyped.append((name, str(old.field_type), str(field.field_type)))
        if old.required and not field.required:
            relaxed.append(name)
    key = tuple(sorted(actual.find_field(i).name for i in actual.identifier_field_ids))
    renamed_key = tuple(sorted(dict(renamed).get(k, k) for k in key))
    want_key = tuple(sorted(expected.find_field(i).name for i in expected.identifier_field_ids))
    order = [dict(renamed).get(n, n) for n in have if n not in dropped]
    return SchemaChange(
        added=added,
        dropped=dropped,
        renamed=renamed,
        retyped=tuple(retyped),
        relaxed=tuple(relaxed),
        key=None if renamed_key == want_key else (key, want_key),
        reordered=not added and not dropped and order != [n for n in want if n in current],
    )


def _version(text: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in (text or "").split("."))
    except ValueError:
        return None


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

        A newer contract version that only adds columns (or makes some optional) evolves the
        table here: no consumer loses anything. Any other difference is an error: dropping,
        renaming or retyping a column is a deliberate step that checks the grants first
        (:meth:`evolve` called by ``hub catalog sync``).
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
        if not problems:
            return table
        change = schema_change(table.schema(), expected)
        recorded = table.properties.get(CONTRACT_VERSION_PROPERTY)
        at, wanted = _version(recorded), _version(contract.version)
        newer = at is not None and wanted is not None and wanted > at
        if change.breaking and newer:
            raise TableSchemaMismatchError(
                f"contract {contract.name} {contract.version} {change.describe()} of shared table "
                f"{self.namespace}.{contract.name} (at {recorded}): a column consumers may hold "
                f"grants for changes, so the table is evolved only by `hub catalog sync "
                f"{contract.name} --as STEWARD`, which checks those grants"
            )
        if not newer or change.reordered:
            if at is None:
                why = ""
            elif wanted is not None and wanted < at:
                why = f" (the table is already at the newer contract version {recorded})"
            else:
                why = f" (the table is at contract version {recorded}: changed columns need a new version)"
            raise TableSchemaMismatchError(
                f"shared table {self.namespace}.{contract.name} does not match contract "
                f"{contract.name} {contract.version}: {'; '.join(problems)}{why}"
            )
        self._apply(table, contract, change)
        return self.load(contract.name)

    def evolve(
        self,
        contract: Contract,
        *,
        allow_breaking: bool = False,
        renames: Mapping[str, str] | None = None,
    ) -> SchemaChange:
        """Bring the dataset's table to the contract's columns; returns what changed.

        ``allow_breaking`` lets columns be dropped, renamed (``renames``: old -> new published
        name, which keeps the column's data) or widened; the caller has checked the grants.
        A type change Iceberg cannot promote (string to date, say) is refused in any case:
        publish the new type under a new name instead. A missing table is created.
        """
        with self._unavailable_as_transient(f"load the table of {contract.name}"):
            try:
                table = self.catalog.load_table(self.identifier(contract.name))
            except NoSuchTableError:
                self.ensure_table(contract)
                return SchemaChange(added=tuple(f.name for f in contract.iceberg_schema().fields))
        change = schema_change(table.schema(), contract.iceberg_schema(), renames)
        if change.empty:
            return change
        if change.breaking and not allow_breaking:
            raise TableSchemaMismatchError(
                f"contract {contract.name} {contract.version} {change.describe()} of shared table "
                f"{self.namespace}.{contract.name}: not applied without the grants check"
            )
        self._apply(table, contract, change)
        return change

    def _apply(self, table: Table, contract: Contract, change: SchemaChange) -> None:
        expected = contract.iceberg_schema()
        where = f"shared table {self.namespace}.{contract.name}"
        for name, old, new in change.retyped:
            try:
                promote(table.schema().find_field(name).field_type, expected.find_field(name).field_type)
            except Exception:
                raise TableSchemaMismatchError(
                    f"contract {contract.name} {contract.version} changes column {name!r} of {where} "
                    f"from {old} to {new}, which Iceberg cannot convert in place: publish the new "
                    "type under a new column name"
                ) from None
        renamed = dict(change.renamed)
        old_name = {new: old for old, new in change.renamed}
        names = [f.name for f in expected.fields]
        with self._unavailable_as_transient(f"evolve {where}"):
            try:
                with table.update_schema(allow_incompatible_changes=change.breaking) as update:
                    for old, new in renamed.items():
                        update.rename_column(old, new)
                    for name in change.dropped:
                        update.delete_column(name)
                    for name, _, _ in change.retyped:
                        update.update_column(
                            old_name.get(name, name), field_type=expected.find_field(name).field_type
                        )
                    for name in change.relaxed:
                        update.make_column_optional(old_name.get(name, name))
                    for name in change.added:
                        # Rows already in the table have no value: the column is optional in
                        # Iceberg even when the contract requires it (new rows are checked).
                        update.add_column(name, expected.find_field(name).field_type, required=False)
                    for name in change.added:
                        position = names.index(name)
                        if position == 0:
                            update.move_first(name)
                        else:
                            before = names[position - 1]
                            update.move_after(name, old_name.get(before, before))
                    if change.key:
                        update.set_identifier_fields(*change.key[1])
                with table.transaction() as tx:
                    tx.set_properties({CONTRACT_VERSION_PROPERTY: contract.version})
            except CommitFailedException as exc:
                raise CatalogUnavailableError(
                    f"{where} was not evolved to contract {contract.version}: another commit changed "
                    f"it first ({exc}); retry"
                ) from None

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
        # A column added by evolution stays optional in Iceberg (older rows have no value);
        # the contract's requirement is enforced on every batch written.
        if w_req != h_req and not (w_req and not h_req):
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
    optional = {f.name for f in table.schema().fields if not f.required}
    if any(not f.nullable and f.name in optional for f in incoming.schema):
        # A column added by evolution: the table's older rows hold nulls in it.
        schema = pa.schema(
            [f.with_nullable(True) if f.name in optional else f for f in incoming.schema],
            metadata=incoming.schema.metadata,
        )
        incoming = incoming.cast(schema)
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
