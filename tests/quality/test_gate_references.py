"""The cross-dataset check ``holder_exists``: a certificate's holder is found in the shared
population or legal-entity table by token, and a miss quarantines the row."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from masking.apply import published_forms
from quality.references import ReferenceCheck
from quality.validate import ChunkResult, Violation
from tests.support import samples

TODAY = date(2026, 11, 22)


@pytest.fixture
def keyring(tmp_path: Path) -> Any:
    from masking.keys import Keyring

    return Keyring.init(tmp_path / "keys" / "keyring.json")


@pytest.fixture
def tables(tmp_path: Path) -> Any:
    from catalog.tables import SharedTables

    return SharedTables(f"sqlite:///{tmp_path / 'iceberg.db'}", (tmp_path / "warehouse").as_uri())


def share(tables: Any, keyring: Any, contract: Any, records: list[dict[str, Any]]) -> None:
    """Register records as the pipeline would: masked, in one commit."""
    from masking.apply import mask_table

    masked = mask_table(samples.to_table(contract, records), contract, keyring, batch_id=f"{contract.name}-1")
    tables.commit(contract, masked, batch_id=f"{contract.name}-1", mode="upsert")


def certificates(holders: list[tuple[str, str]]) -> pa.Table:
    rng = random.Random(5)
    rows = []
    for n, (kind, code) in enumerate(holders):
        record = samples.good_certificate(rng, n)
        record.update(holder_code_type=kind, holder_code=code)
        rows.append(record)
    return samples.to_table(samples.certificate(), rows)


def all_valid(chunk: pa.Table) -> ChunkResult:
    return ChunkResult(chunk.num_rows, chunk, chunk.slice(0, 0), [])


def failing_rows(result: ChunkResult) -> list[int]:
    return sorted(v.row for v in result.violations if v.rule == "holder_exists")


@pytest.fixture
def registers(tables: Any, keyring: Any) -> dict[str, str]:
    """A shared population of three people and a register of two companies and a 个体工商户."""
    rng = random.Random(1)
    people = [samples.good_record(rng, n) for n in range(3)]
    share(tables, keyring, samples.population(), people)
    firms = [samples.good_legal_entity(rng, n) for n in range(3)]
    firms[2]["uscc"] = samples.make_uscc("440305", "ABCD1234", department="9", kind="2")
    share(tables, keyring, samples.legal_entity(), firms)
    return {
        "person": people[0]["id_number"],
        "company": firms[0]["uscc"],
        "individual_business": firms[2]["uscc"],
    }


def test_holders_in_the_registers_pass_and_strangers_are_quarantined(
    tables: Any, keyring: Any, registers: dict[str, str]
) -> None:
    stranger = samples.make_id("110105", date(1970, 3, 4), 901)
    unknown_company = samples.make_uscc("440305", "QQQQ7777")
    chunk = certificates(
        [
            ("111", registers["person"]),
            ("001", registers["company"]),
            ("001", registers["individual_business"]),
            ("111", stranger),
            ("001", unknown_company),
        ]
    )
    check = ReferenceCheck(samples.certificate(), tables, published_forms(keyring), TODAY)
    result = check.apply(chunk, all_valid(chunk))
    assert failing_rows(result) == [3, 4]
    assert result.quarantined.column("_row").to_pylist() == [3, 4]
    assert result.valid.num_rows + result.quarantined.num_rows == result.rows_in == 5
    (message,) = {(v.field, v.message_en) for v in result.violations}
    assert message[0] == "holder_code" and "population" in message[1]
    assert check.warnings == []


def test_holders_no_register_of_the_hub_can_hold_are_not_judged(
    tables: Any, keyring: Any, registers: dict[str, str]
) -> None:
    permit = samples.make_id("810000", date(1990, 5, 6), 123)
    institution = samples.make_uscc("110105", "NNNT0001", department="1", kind="2")
    broken = registers["person"][:-1] + ("0" if registers["person"][-1] != "0" else "1")
    chunk = certificates([("111", permit), ("001", institution), ("111", broken), ("111", "")])
    result = ReferenceCheck(samples.certificate(), tables, published_forms(keyring), TODAY).apply(
        chunk, all_valid(chunk)
    )
    assert failing_rows(result) == [], "permits, institutions, broken and missing codes have their own rules"


def test_a_row_already_quarantined_gets_the_rule_added(
    tables: Any, keyring: Any, registers: dict[str, str]
) -> None:
    chunk = certificates(
        [("111", registers["person"]), ("111", samples.make_id("110105", date(1980, 1, 1), 11))]
    )
    earlier = Violation(1, "status", "validity_status", "状态", "status")
    start = ChunkResult(2, chunk.slice(0, 1), chunk.slice(1, 1), [earlier])
    result = ReferenceCheck(samples.certificate(), tables, published_forms(keyring), TODAY).apply(
        chunk, start
    )
    assert result.quarantined.num_rows == 1 and result.valid.num_rows == 1
    assert sorted(v.rule for v in result.violations) == ["holder_exists", "validity_status"]


def test_without_a_shared_register_the_check_is_skipped_with_a_warning(tables: Any, keyring: Any) -> None:
    chunk = certificates([("111", samples.make_id("110105", date(1980, 1, 1), 11))])
    check = ReferenceCheck(samples.certificate(), tables, published_forms(keyring), TODAY)
    result = check.apply(chunk, all_valid(chunk))
    assert failing_rows(result) == []
    assert any("population has no shared table yet" in w for w in check.warnings)


def test_holders_are_found_under_an_older_token_key_too(
    tables: Any, keyring: Any, registers: dict[str, str]
) -> None:
    rotated = keyring.rotate("token")
    chunk = certificates([("111", registers["person"])])
    result = ReferenceCheck(samples.certificate(), tables, published_forms(rotated), TODAY).apply(
        chunk, all_valid(chunk)
    )
    assert failing_rows(result) == [], "the population shared before the rotation holds k1 tokens"
