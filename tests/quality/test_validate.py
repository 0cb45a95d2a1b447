"""Chunks split into valid and quarantined rows, each bad row with its rule codes."""

from __future__ import annotations

import random
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from quality import checks
from quality import validate as validate_module
from quality.validate import Validator, find_duplicate_keys
from schemas.contract import Contract
from schemas.errors import ContractError, FatalError
from tests.support.defects import defects
from tests.support.samples import TODAY, good_record, make_id, to_table


@pytest.fixture
def validator(population: Contract) -> Validator:
    return Validator(population, today=TODAY)


def test_each_defect_is_quarantined_with_its_rule(population: Contract, validator: Validator) -> None:
    records, expected = defects()
    chunk = to_table(population, records)
    twin = records[-4]["id_number"]
    result = validator.validate(chunk, duplicate_keys=[twin], source="pop-db", batch_id="b-1")

    found: dict[int, set[str]] = {}
    for violation in result.violations:
        found.setdefault(violation.row, set()).add(violation.rule)
    assert found == expected
    assert result.rows_in == len(records) == result.valid.num_rows + result.quarantined.num_rows
    assert sorted(result.quarantined.column("_row").to_pylist()) == sorted(expected)
    assert result.valid.column_names == chunk.column_names == result.quarantined.column_names
    assert result.quarantined.column("id_number").to_pylist()[0] is None  # raw values kept
    assert "11010519491231002x" in result.quarantined.column("id_number").to_pylist()


def test_violations_name_field_and_rule_in_both_languages(population: Contract, validator: Validator) -> None:
    records, _ = defects()
    result = validator.validate(to_table(population, records))
    by_rule = {(v.rule, v.field): v for v in result.violations}
    mobile = by_rule[("mobile_cn", "mobile")]
    assert "mobile" in mobile.message_en and "手机" in mobile.message_zh
    assert "12345" not in mobile.message_en + mobile.message_zh  # no values in messages
    assert ("id_gender", "gender") in by_rule
    assert [v.row for v in result.violations] == sorted(v.row for v in result.violations)


def test_good_chunk_passes_whole(population: Contract, validator: Validator) -> None:
    rng = random.Random(3)
    chunk = to_table(population, [good_record(rng, i) for i in range(200)])
    result = validator.validate(chunk)
    assert result.violations == []
    assert result.valid.equals(chunk)
    assert result.quarantined.num_rows == 0


def test_empty_chunk(population: Contract, validator: Validator) -> None:
    result = validator.validate(to_table(population, []))
    assert (result.rows_in, result.valid.num_rows, result.quarantined.num_rows) == (0, 0, 0)


def test_suite_is_built_once_and_never_holds_key_values(population: Contract, validator: Validator) -> None:
    records = [good_record(random.Random(1), 1), good_record(random.Random(2), 2)]
    chunk = to_table(population, records)
    first = validator._suite
    result = validator.validate(chunk, duplicate_keys=[records[0]["id_number"]])
    assert validator._suite is first
    assert [(v.row, v.rule) for v in result.violations] == [(1, "key.duplicate")]
    assert records[0]["id_number"] not in str(first.to_json_dict())


def test_birth_date_after_today_is_quarantined(population: Contract) -> None:
    record = good_record(random.Random(1), 0)
    born = date(2025, 6, 2)
    record.update(id_number=make_id("110105", born, 11), birth_date=born, gender="1")
    chunk = to_table(population, [record])
    assert Validator(population, today=date(2025, 6, 2)).validate(chunk).violations == []
    late = Validator(population, today=TODAY).validate(chunk)
    assert [v.rule for v in late.violations] == ["gb11643.birth_date"]


def test_chunk_without_row_numbers_is_rejected(population: Contract, validator: Validator) -> None:
    chunk = to_table(population, [good_record(random.Random(1), 0)]).drop_columns(["_row"])
    with pytest.raises(ContractError, match=r"source s1 batch b9 .*lacks column\(s\) _row"):
        validator.validate(chunk, source="s1", batch_id="b9")


def test_chunk_with_repeated_row_numbers_is_rejected(population: Contract, validator: Validator) -> None:
    rng = random.Random(1)
    chunk = to_table(population, [good_record(rng, 0), good_record(rng, 0)])
    with pytest.raises(ContractError, match="distinct"):
        validator.validate(chunk)


def test_chunk_with_wrong_types_is_rejected(population: Contract, validator: Validator) -> None:
    chunk = to_table(population, [good_record(random.Random(1), 0)])
    chunk = chunk.set_column(4, "birth_date", pc.cast(chunk.column("birth_date"), pa.string()))
    with pytest.raises(ContractError, match="birth_date is string"):
        validator.validate(chunk)


def test_broken_accounting_is_fatal(
    population: Contract, validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    records, _ = defects()
    monkeypatch.setattr(validate_module.pc, "invert", lambda mask: pc.fill_null(pc.equal(mask, mask), False))
    with pytest.raises(FatalError, match=r"source s batch b .*rows in 25 != valid"):
        validator.validate(to_table(population, records), source="s", batch_id="b")


def test_a_crashing_check_is_fatal_not_a_pass(
    population: Contract, validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(values: Any) -> Any:
        raise RuntimeError("kaput")

    monkeypatch.setattr(checks, "mobile_cn", crash)
    chunk = to_table(population, [good_record(random.Random(1), 0)])
    with pytest.raises(FatalError, match=r"batch b2 .*rule mobile_cn on field mobile could not run: kaput"):
        validator.validate(chunk, source="s", batch_id="b2")


def write_parts(tmp_path: Path, tables: list[pa.Table]) -> list[str]:
    paths = []
    for i, table in enumerate(tables):
        path = tmp_path / f"part-{i}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def test_find_duplicate_keys_across_files(population: Contract, tmp_path: Path) -> None:
    rng = random.Random(5)
    first = [good_record(rng, i) for i in range(50)]
    second = [good_record(rng, 50 + i) for i in range(50)]
    second[3]["id_number"] = first[10]["id_number"]
    second[4]["id_number"] = second[5]["id_number"]
    second[6]["id_number"] = None
    second[7]["id_number"] = None
    paths = write_parts(tmp_path, [to_table(population, first), to_table(population, second)])
    found = find_duplicate_keys(paths, population)
    assert found == sorted([first[10]["id_number"], second[5]["id_number"]])
    assert find_duplicate_keys(paths[0], population) == []
    assert find_duplicate_keys([], population) == []


def test_composite_keys_are_joined_the_same_way_in_both_places(population: Contract, tmp_path: Path) -> None:
    raw = population.model_dump(by_alias=True, mode="json")
    raw["keys"] = ["id_number", "updated_at"]
    contract = Contract.model_validate(raw)
    rng = random.Random(9)
    records = [good_record(rng, i) for i in range(6)]
    records[1] = {**records[0], "_row": 1}  # same id, same updated_at: duplicate
    records[2] = {**records[0], "_row": 2, "updated_at": datetime(2025, 5, 2, 9, 30)}  # a later version
    table = to_table(contract, records)
    duplicates = find_duplicate_keys(write_parts(tmp_path, [table]), contract)
    assert len(duplicates) == 1
    result = Validator(contract, today=TODAY).validate(table, duplicate_keys=duplicates)
    assert sorted(v.row for v in result.violations) == [0, 1]
    assert {v.field for v in result.violations} == {"id_number,updated_at"}


def test_unreadable_staging_is_fatal(population: Contract, tmp_path: Path) -> None:
    with pytest.raises(FatalError, match=r"missing\.parquet"):
        find_duplicate_keys(str(tmp_path / "missing.parquet"), population)


def test_simulated_registry_quarantines_exactly_the_planted_defects(
    population: Contract, tmp_path: Path
) -> None:
    simulator = pytest.importorskip("connectors.simulator.population")
    rows, as_of = 20_000, datetime(2025, 5, 1)
    batches = list(simulator.generate(rows, seed=11, chunk_rows=5_000, as_of=as_of))
    chunks, start = [], 0
    for batch in batches:
        table = pa.Table.from_batches([batch])
        chunks.append(table.append_column("_row", pa.array(range(start, start + len(table)), pa.int64())))
        start += len(table)
    duplicates = find_duplicate_keys(write_parts(tmp_path, chunks), population)
    validator = Validator(population, today=as_of.date())
    quarantined = valid = 0
    for chunk in chunks:
        result = validator.validate(chunk, duplicate_keys=duplicates)
        quarantined += result.quarantined.num_rows
        valid += result.valid.num_rows
    counts = simulator.DefectRates().counts(rows)
    assert quarantined == simulator.expected_quarantined(counts)
    assert valid + quarantined == rows
