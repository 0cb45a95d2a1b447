"""Every defect the department simulators inject is quarantined under the right rule, and
clean rows pass: population, legal entities and certificates, through the Validator.

The simulators plant each defect at an exact count (one defect per row; a duplicated key
shared by a clean row and a different one, both to be quarantined), so the quarantine
must match the injection row for row.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.simulator import certificate as cert
from connectors.simulator import legal_entity as entity
from connectors.simulator import population as people
from connectors.simulator import world as w
from quality.validate import ChunkResult, Validator, find_duplicate_keys
from schemas.contract import load_contract

AS_OF = dt.datetime(2025, 5, 1)
RATE = 0.01

RULES: dict[str, dict[str, set[tuple[str, str]]]] = {
    "population": {
        "bad_check_digit": {("gb11643.check_digit", "id_number")},
        "impossible_date": {("gb11643.birth_date", "id_number"), ("id_birth_date", "birth_date")},
        "gender_mismatch": {("id_gender", "gender")},
        "missing_name": {("required", "name")},
        "duplicate_id": {("key.duplicate", "id_number")},
    },
    "legal_entity": {
        "bad_uscc_check": {("gb32100.check", "uscc")},
        "bad_org_code_check": {("gb32100.org_code", "uscc")},
        "invalid_rep_id": {("gb11643.check_digit", "legal_rep_id_number")},
        "unknown_entity_type": {("code_list", "entity_type")},
        "duplicate_uscc": {("key.duplicate", "uscc")},
    },
    "certificate": {
        "bad_check": {("gb36904.check", "certificate_id")},
        "malformed_id": {("gb36904.format", "certificate_id")},
        "invalid_holder_code": {("holder_code", "holder_code")},
        "reversed_window": {("validity_window", "valid_until")},
        "expired_but_valid": {("validity_status", "status")},
        "duplicate_id": {("key.duplicate", "certificate_id")},
    },
}
"""Dataset -> defect kind the simulator injects -> the (rule, field) pairs each such row gets."""

ROWS = {"population": 3000, "legal_entity": 1500, "certificate": 3000}


@pytest.fixture(scope="module")
def world() -> w.World:
    """A small world: people for the register's representatives, holders for certificates."""
    return w.World(seed=7, persons=4000, entities=ROWS["legal_entity"], as_of=AS_OF)


def generator(dataset: str, world: w.World) -> tuple[Any, Callable[..., Iterator[pa.RecordBatch]]]:
    """(defect-rate class, ``generate(rows, rates, chunk_rows)``) of a dataset's simulator."""
    if dataset == "population":
        return people.DefectRates, lambda n, rates, chunk: people.generate(
            n, seed=3, rates=rates, chunk_rows=chunk, as_of=AS_OF
        )
    if dataset == "legal_entity":
        return entity.DefectRates, lambda n, rates, chunk: entity.generate(
            n, rates=rates, chunk_rows=chunk, world=world
        )
    return cert.DefectRates, lambda n, rates, chunk: cert.generate(
        n, rates=rates, chunk_rows=chunk, world=world
    )


def expected(dataset: str, rates: Any, rows: int) -> int:
    if dataset == "population":
        return people.expected_quarantined(rates.counts(rows))
    return int(rates.expected_quarantined(rows))


def validate(
    dataset: str, batches: Iterator[pa.RecordBatch], tmp_path: Path
) -> tuple[int, list[ChunkResult]]:
    """Number the rows, scan the staged batch for duplicate keys, validate chunk by chunk."""
    contract = load_contract(dataset)
    chunks, start = [], 0
    for batch in batches:
        table = pa.Table.from_batches([batch])
        chunks.append(table.append_column("_row", pa.array(range(start, start + len(table)), pa.int64())))
        start += len(table)
    paths = []
    for i, chunk in enumerate(chunks):
        paths.append(str(tmp_path / f"{dataset}-{i}.parquet"))
        pq.write_table(chunk, paths[-1])
    duplicates = find_duplicate_keys(paths, contract)
    validator = Validator(contract, today=AS_OF.date())
    return start, [validator.validate(c, duplicate_keys=duplicates, batch_id="b") for c in chunks]


def by_row(results: list[ChunkResult]) -> dict[int, set[tuple[str, str]]]:
    found: dict[int, set[tuple[str, str]]] = {}
    for result in results:
        for v in result.violations:
            found.setdefault(v.row, set()).add((v.rule, v.field))
    return found


def test_every_injected_defect_kind_has_its_rules_here() -> None:
    assert set(RULES["population"]) == set(people.DEFECT_KINDS)
    assert set(RULES["legal_entity"]) == set(entity.DEFECT_KINDS)
    assert set(RULES["certificate"]) == set(cert.DEFECT_KINDS)


CASES = [(dataset, kind) for dataset, kinds in RULES.items() for kind in kinds]


@pytest.mark.parametrize(("dataset", "kind"), CASES, ids=[f"{d}-{k}" for d, k in CASES])
def test_each_defect_kind_is_quarantined_with_its_rule(
    dataset: str, kind: str, world: w.World, tmp_path: Path
) -> None:
    rates_class, generate = generator(dataset, world)
    rates = rates_class(**{k: (RATE if k == kind else 0.0) for k in RULES[dataset]})
    rows = ROWS[dataset]
    total, results = validate(dataset, generate(rows, rates, 1000), tmp_path)
    quarantined = sum(r.quarantined.num_rows for r in results)
    assert total == rows == sum(r.valid.num_rows for r in results) + quarantined
    assert quarantined == expected(dataset, rates, rows) > 0
    found = by_row(results)
    assert len(found) == quarantined
    assert Counter(frozenset(rules) for rules in found.values()) == {
        frozenset(RULES[dataset][kind]): quarantined
    }


@pytest.mark.parametrize("dataset", list(RULES))
def test_clean_rows_pass(dataset: str, world: w.World, tmp_path: Path) -> None:
    rates_class, generate = generator(dataset, world)
    rows = ROWS[dataset]
    _, results = validate(
        dataset, generate(rows, rates_class(**dict.fromkeys(RULES[dataset], 0.0)), 700), tmp_path
    )
    assert [v for r in results for v in r.violations] == []
    assert sum(r.valid.num_rows for r in results) == rows


@pytest.mark.parametrize("dataset", list(RULES))
def test_all_kinds_at_once_across_chunks(dataset: str, world: w.World, tmp_path: Path) -> None:
    rates_class, generate = generator(dataset, world)
    rates = rates_class(**dict.fromkeys(RULES[dataset], RATE))
    rows = ROWS[dataset]
    _, results = validate(dataset, generate(rows, rates, 400), tmp_path)
    assert sum(r.quarantined.num_rows for r in results) == expected(dataset, rates, rows)
    counts = rates.counts(rows)
    seen = Counter(pair for rules in by_row(results).values() for pair in rules)
    wanted: Counter[tuple[str, str]] = Counter()
    for kind, pairs in RULES[dataset].items():
        copies = 2 if kind.startswith("duplicate") else 1  # the clean row a duplicate copies goes too
        for pair in pairs:
            wanted[pair] += counts[kind] * copies
    assert seen == wanted
