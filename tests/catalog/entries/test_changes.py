"""A new contract version evolves its shared Iceberg table: added columns at once, dropped,
renamed or retyped ones only by the deliberate, grant-checked step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from catalog.errors import TableSchemaMismatchError
from catalog.tables import SharedTables, schema_change
from schemas.contract import CONTRACT_DIR, Contract, load_contract_file

PublishedRows = Callable[..., pa.Table]


def changed(tmp: Path, change: Callable[[dict[str, Any]], None]) -> Contract:
    raw = yaml.safe_load((CONTRACT_DIR / "population.yaml").read_text(encoding="utf-8"))
    change(raw)
    folder = tmp / f"v{raw['version']}-{len(list(tmp.glob('v*')))}"
    folder.mkdir()
    (folder / "population.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_contract_file(folder / "population.yaml")


def add_email(version: str = "1.1.0", *, required: bool = True) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        raw["version"] = version
        position = next(i for i, f in enumerate(raw["fields"]) if f["name"] == "mobile") + 1
        raw["fields"].insert(
            position,
            {
                "name": "email",
                "type": "string",
                "required": required,
                "description": {"zh": "电子邮箱", "en": "Email address"},
                "sensitivity": "personal",
                "mask": {"rule": "mask_keep", "first": 1, "last": 4},
            },
        )

    return change


def with_email(rows: pa.Table, contract: Contract, value: str = "a***.com") -> pa.Table:
    position = rows.schema.get_field_index("mobile") + 1
    table = rows.add_column(position, "email", pa.array([value] * rows.num_rows, pa.string()))
    return table.cast(contract.published_schema())


def test_a_contract_that_adds_a_field_evolves_the_table_end_to_end(
    tables: SharedTables, population: Contract, published_rows: PublishedRows, tmp_path: Path
) -> None:
    first = tables.commit(population, published_rows(10, "b1"), batch_id="b1", mode="upsert")
    newer = changed(tmp_path, add_email())
    rows = with_email(published_rows(5, "b2", start=5), newer)
    second = tables.commit(newer, rows, batch_id="b2", mode="upsert")
    assert second != first

    table = tables.load("population")
    assert [f.name for f in table.schema().fields] == newer.published_schema().names  # in contract order
    assert [table.schema().find_field(i).name for i in table.schema().identifier_field_ids] == [
        "person_token"
    ]
    assert table.properties["hub.contract-version"] == "1.1.0"
    assert not table.schema().find_field("email").required  # older rows hold no value

    current = table.scan().to_arrow().sort_by("person_token")
    assert current.num_rows == 10
    assert current.column("email").to_pylist() == [None] * 5 + ["a***.com"] * 5
    assert current.column("_batch_id").to_pylist() == ["b1"] * 5 + ["b2"] * 5
    # Time travel: the first snapshot still reads as it was, with its own columns.
    old = table.scan(snapshot_id=first).to_arrow()
    assert old.num_rows == 10 and "email" not in old.column_names

    # The next batch of the same version writes without further change.
    third = tables.commit(newer, with_email(published_rows(2, "b3"), newer), batch_id="b3", mode="upsert")
    assert tables.load("population").schema().schema_id == table.schema().schema_id
    assert tables.current_snapshot_id("population") == third


def test_a_required_new_field_is_still_required_of_every_new_batch(
    tables: SharedTables, population: Contract, published_rows: PublishedRows, tmp_path: Path
) -> None:
    from catalog.errors import BatchDataError

    tables.commit(population, published_rows(3, "b1"), batch_id="b1", mode="upsert")
    newer = changed(tmp_path, add_email(required=True))
    rows = published_rows(2, "b2").add_column(8, "email", pa.array([None, "x"], pa.string()))
    with pytest.raises(BatchDataError, match="required column 'email'"):
        tables.commit(newer, rows, batch_id="b2", mode="upsert")


def test_an_older_contract_after_evolution_is_refused(
    tables: SharedTables, population: Contract, published_rows: PublishedRows, tmp_path: Path
) -> None:
    newer = changed(tmp_path, add_email())
    tables.commit(newer, with_email(published_rows(3, "b1"), newer), batch_id="b1", mode="upsert")
    with pytest.raises(TableSchemaMismatchError) as caught:
        tables.commit(population, published_rows(3, "b2"), batch_id="b2", mode="upsert")
    assert "already at the newer contract version 1.1.0" in str(caught.value)


def test_new_columns_without_a_new_version_are_refused(
    tables: SharedTables, population: Contract, published_rows: PublishedRows, tmp_path: Path
) -> None:
    tables.commit(population, published_rows(3, "b1"), batch_id="b1", mode="upsert")
    same = changed(tmp_path, add_email("1.0.0"))
    with pytest.raises(TableSchemaMismatchError) as caught:
        tables.ensure_table(same)
    assert "column 'email' is missing" in str(caught.value)
    assert "changed columns need a new version" in str(caught.value)


def _drop_mobile(raw: dict[str, Any]) -> None:
    raw["version"] = "2.0.0"
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "mobile"]


def test_dropping_a_column_is_left_to_the_grant_checked_step(
    tables: SharedTables, population: Contract, published_rows: PublishedRows, tmp_path: Path
) -> None:
    tables.commit(population, published_rows(4, "b1"), batch_id="b1", mode="upsert")
    major = changed(tmp_path, _drop_mobile)
    with pytest.raises(TableSchemaMismatchError) as caught:
        tables.commit(major, published_rows(1, "b2").drop_columns(["mobile"]), batch_id="b2", mode="upsert")
    assert "drops mobile" in str(caught.value) and "hub catalog sync population" in str(caught.value)
    with pytest.raises(TableSchemaMismatchError, match="not applied without the grants check"):
        tables.evolve(major)

    change = tables.evolve(major, allow_breaking=True)
    assert change.dropped == ("mobile",) and change.breaking
    tables.commit(major, published_rows(2, "b2").drop_columns(["mobile"]), batch_id="b2", mode="upsert")
    current = tables.load("population").scan().to_arrow()
    assert "mobile" not in current.column_names and current.num_rows == 4


def test_a_rename_keeps_the_column_data_and_a_cast_iceberg_cannot_do_is_refused(
    tables: SharedTables, population: Contract, published_rows: PublishedRows, tmp_path: Path
) -> None:
    tables.commit(population, published_rows(4, "b1"), batch_id="b1", mode="upsert")

    def rename(raw: dict[str, Any]) -> None:
        raw["version"] = "2.0.0"
        next(f for f in raw["fields"] if f["name"] == "division_code")["mask"] = {
            "rule": "keep",
            "as": "division",
        }

    renamed = changed(tmp_path, rename)
    change = schema_change(
        tables.load("population").schema(), renamed.iceberg_schema(), {"division_code": "division"}
    )
    assert change.renamed == (("division_code", "division"),) and not change.added and not change.dropped
    tables.evolve(renamed, allow_breaking=True, renames={"division_code": "division"})
    rows = tables.load("population").scan().to_arrow()
    assert set(rows.column("division").to_pylist()) == {"110105"}

    def retype(raw: dict[str, Any]) -> None:
        raw["version"] = "3.0.0"
        next(f for f in raw["fields"] if f["name"] == "birth_date")["mask"]["conditional"] = {"rule": "month"}

    retyped = changed(tmp_path, retype)
    with pytest.raises(TableSchemaMismatchError) as caught:
        tables.evolve(retyped, allow_breaking=True)
    assert "birth_year" in str(caught.value) and "cannot convert in place" in str(caught.value)


def test_schema_change_describes_each_kind(population: Contract, tmp_path: Path) -> None:
    base = population.iceberg_schema()
    newer = changed(tmp_path, add_email())
    change = schema_change(base, newer.iceberg_schema())
    assert change.added == ("email",) and not change.breaking
    assert change.describe() == "adds email"
    assert schema_change(base, base).empty
    dropped = schema_change(base, changed(tmp_path, _drop_mobile).iceberg_schema())
    assert dropped.removed == ("mobile",) and "drops mobile" in dropped.describe()
