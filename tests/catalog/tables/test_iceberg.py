"""SharedTables over a SQLite Iceberg catalog and a local warehouse."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from catalog.errors import BatchDataError, DatasetNotFoundError, TableSchemaMismatchError
from catalog.tables import BATCH_PROPERTY, SharedTables
from schemas.contract import Contract
from schemas.errors import ContractError

PublishedRows = Callable[..., pa.Table]


def rows_of(tables: SharedTables, dataset: str, **kwargs: object) -> pa.Table:
    batches = list(tables.scan(dataset, **kwargs))  # type: ignore[arg-type]
    return pa.Table.from_batches(batches) if batches else pa.table({})


def test_ensure_table_follows_the_contract(tables: SharedTables, population: Contract) -> None:
    table = tables.ensure_table(population)
    schema = table.schema()
    assert [f.name for f in schema.fields] == population.published_schema().names
    assert [schema.find_field(i).name for i in schema.identifier_field_ids] == ["person_token"]
    assert tables.ensure_table(population).metadata_location == table.metadata_location
    assert tables.datasets() == ["population"]
    assert tables.current_snapshot_id("population") is None


def test_existing_table_with_another_schema_is_refused(tables: SharedTables, population: Contract) -> None:
    tables.catalog.create_namespace("shared")
    tables.catalog.create_table(
        ("shared", "population"),
        Schema(NestedField(1, "person_token", StringType(), required=True)),
    )
    with pytest.raises(ContractError) as caught:
        tables.ensure_table(population)
    assert isinstance(caught.value, TableSchemaMismatchError)
    assert "column 'birth_year' is missing" in str(caught.value)
    assert "1.0.0" in str(caught.value)


def test_overwrite_twice_keeps_one_copy_and_moves_the_snapshot(
    tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    first = tables.commit(population, published_rows(100, "b1"), batch_id="b1")
    second = tables.commit(population, published_rows(100, "b2"), batch_id="b2")
    third = tables.commit(population, published_rows(100, "b2"), batch_id="b2")
    assert len({first, second, third}) == 3
    assert tables.current_snapshot_id("population") == third

    current = rows_of(tables, "population")
    assert current.num_rows == 100
    assert pc.count_distinct(current.column("person_token")).as_py() == 100
    assert set(current.column("_batch_id").to_pylist()) == {"b2"}
    # The earlier snapshot is still there for audit and replay.
    assert set(rows_of(tables, "population", snapshot_id=first).column("_batch_id").to_pylist()) == {"b1"}
    summary = tables.load("population").current_snapshot().summary  # type: ignore[union-attr]
    assert summary is not None and summary[BATCH_PROPERTY] == "b2"


def test_streamed_batches_land_in_one_commit(
    tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    tables.ensure_table(population)
    before = len(tables.load("population").metadata.metadata_log)
    chunks = [published_rows(50, "b1", start=i * 50).to_batches()[0] for i in range(4)]
    snapshot_id = tables.commit(population, iter(chunks), batch_id="b1")
    table = tables.load("population")
    assert len(table.metadata.metadata_log) == before + 1  # one catalog commit
    assert table.scan().to_arrow().num_rows == 200
    assert snapshot_id == table.current_snapshot().snapshot_id  # type: ignore[union-attr]


def test_scan_by_batch_id(tables: SharedTables, population: Contract, published_rows: PublishedRows) -> None:
    tables.commit(population, published_rows(30, "b1"), batch_id="b1", mode="append")
    snapshot = tables.commit(population, published_rows(20, "b2", start=30), batch_id="b2", mode="append")
    only_b2 = rows_of(tables, "population", batch_id="b2")
    assert only_b2.num_rows == 20
    assert set(only_b2.column("_batch_id").to_pylist()) == {"b2"}
    assert pa.Table.from_batches(list(tables.scan_batch("population", "b1"))).num_rows == 30
    narrowed = rows_of(tables, "population", batch_id="b2", row_filter="gender == '1'", snapshot_id=snapshot)
    assert 0 < narrowed.num_rows < 20


def test_append_is_idempotent_per_batch(
    tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    first = tables.commit(population, published_rows(10, "b1"), batch_id="b1", mode="append")
    again = tables.commit(population, published_rows(10, "b1"), batch_id="b1", mode="append")
    assert again == first
    assert rows_of(tables, "population").num_rows == 10
    tables.commit(population, published_rows(5, "b2", start=10), batch_id="b2", mode="append")
    tables.commit(population, published_rows(10, "b1"), batch_id="b1", mode="append")
    assert rows_of(tables, "population").num_rows == 15


def test_empty_batch_commits_an_empty_table(
    tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    tables.commit(population, published_rows(10, "b1"), batch_id="b1")
    empty = tables.commit(population, published_rows(0, "b2"), batch_id="b2")
    assert tables.current_snapshot_id("population") == empty
    assert rows_of(tables, "population").num_rows == 0
    assert tables.commit(population, iter([]), batch_id="b3") != empty


def test_a_failure_mid_stream_commits_nothing(
    tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    kept = tables.commit(population, published_rows(10, "b1"), batch_id="b1")

    def chunks() -> Iterator[pa.RecordBatch]:
        yield published_rows(10, "b2").to_batches()[0]
        bad = published_rows(3, "b2", start=10)
        names = bad.column(bad.schema.get_field_index("name")).to_pylist()
        names[1] = None
        yield bad.set_column(1, pa.field("name", pa.string()), pa.array(names)).to_batches()[0]

    with pytest.raises(BatchDataError, match=r"row 11 .* required column 'name'"):
        tables.commit(population, chunks(), batch_id="b2")
    assert tables.current_snapshot_id("population") == kept
    assert set(rows_of(tables, "population").column("_batch_id").to_pylist()) == {"b1"}


def test_rows_that_do_not_fit_are_named(
    tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    rows = published_rows(3, "b1")
    with pytest.raises(BatchDataError, match=r"lack column.*birth_year"):
        tables.commit(population, rows.drop_columns(["birth_year"]), batch_id="b1")
    with pytest.raises(BatchDataError, match="_batch_id 'b0'"):
        tables.commit(population, published_rows(3, "b0"), batch_id="b1")
    loose = rows.cast(pa.schema([f.with_nullable(True) for f in rows.schema]))
    assert tables.commit(population, loose, batch_id="b1")  # nullable input with values is fine


def test_unknown_dataset(tables: SharedTables) -> None:
    with pytest.raises(DatasetNotFoundError, match="certificate"):
        tables.current_snapshot_id("certificate")
    with pytest.raises(DatasetNotFoundError):
        tables.scan("certificate")
    assert tables.datasets() == []


def test_upsert_replaces_rows_by_key_and_keeps_the_others(
    tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    tables.commit(population, published_rows(100, "day-1"), batch_id="day-1", mode="upsert")
    changed = published_rows(20, "day-2", start=90)  # 10 existing keys, 10 new ones
    snapshot = tables.commit(population, changed, batch_id="day-2", mode="upsert")
    rows = pa.Table.from_batches(list(tables.scan("population", snapshot_id=snapshot)))
    assert rows.num_rows == 110
    tokens = rows.column("person_token").to_pylist()
    assert len(set(tokens)) == 110
    by_token = dict(zip(tokens, rows.column("_batch_id").to_pylist(), strict=True))
    assert by_token["tok-00000089"] == "day-1"
    assert by_token["tok-00000090"] == "day-2" and by_token["tok-00000109"] == "day-2"
    assert rows_of(tables, "population", snapshot_id=snapshot, batch_id="day-2").num_rows == 20


def test_upsert_again_changes_nothing(
    tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    rows = published_rows(50, "b")
    tables.commit(population, rows, batch_id="b", mode="upsert")
    snapshot = tables.commit(population, rows, batch_id="b", mode="upsert")
    again = pa.Table.from_batches(list(tables.scan("population", snapshot_id=snapshot)))
    assert again.sort_by("person_token").equals(rows.sort_by("person_token").cast(again.schema))
