"""The suite is derived from the contract alone, with rule codes and messages as data."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from quality.suite import MESSAGES, REPEATED_KEY_COLUMN, build_suite
from schemas.contract import Contract
from schemas.errors import ContractError
from tests.support.samples import TODAY


def with_changes(contract: Contract, **changes: Any) -> Contract:
    raw = contract.model_dump(by_alias=True, mode="json")
    raw.update(changes)
    return Contract.model_validate(raw)


def meta(expectation: Any) -> dict[str, Any]:
    return dict(expectation.meta or {})


def rules(contract: Contract) -> Counter[tuple[str, str]]:
    suite = build_suite(contract, today=TODAY)
    return Counter((meta(e)["rule"], meta(e)["field"]) for e in suite.expectations)


def test_population_suite_covers_the_contract(population: Contract) -> None:
    found = rules(population)
    required = [f.name for f in population.fields if f.required]
    string_required = [f.name for f in population.fields if f.required and f.type.value == "string"]
    for name in required:
        assert found[("required", name)] == 1 + (name in string_required)
    assert {f for (r, f) in found if r == "code_list"} == {"gender", "ethnicity", "registration_status"}
    for rule in ("gb11643.format", "gb11643.check_digit", "gb11643.birth_date", "gb11643.division"):
        assert found[(rule, "id_number")] == 1
    assert found[("gb2260", "division_code")] == 1
    assert found[("mobile_cn", "mobile")] == 1
    assert found[("id_birth_date", "birth_date")] == 1
    assert found[("id_gender", "gender")] == 1
    assert found[("key.duplicate", "id_number")] == 1


def test_every_expectation_carries_a_known_rule_and_both_messages(population: Contract) -> None:
    suite = build_suite(population, today=TODAY)
    for expectation in suite.expectations:
        data = meta(expectation)
        assert data["rule"] in MESSAGES
        assert data["field"] in data["message_en"]
        assert data["field"] in data["message_zh"]


def test_key_uniqueness_is_one_rule_on_the_validator_s_flag(population: Contract) -> None:
    suite = build_suite(population, today=TODAY)
    (dup,) = [e for e in suite.expectations if meta(e)["rule"] == "key.duplicate"]
    assert getattr(dup, "column") == REPEATED_KEY_COLUMN  # noqa: B009 - not on the base class
    assert meta(dup)["field"] == "id_number"


def test_birth_date_rule_uses_the_given_today(population: Contract) -> None:
    suite = build_suite(population, today=TODAY)
    (rule,) = [e for e in suite.expectations if meta(e)["rule"] == "gb11643.birth_date"]
    assert getattr(rule, "today") == TODAY.isoformat()  # noqa: B009 - not on the base class


def test_unknown_field_check_is_a_contract_error(population: Contract) -> None:
    fields = [f.model_dump(by_alias=True, mode="json") for f in population.fields]
    fields[1]["checks"] = ["gb99999"]
    broken = with_changes(population, fields=fields)
    with pytest.raises(ContractError, match=r"field 'name' names unknown check 'gb99999'"):
        build_suite(broken, today=TODAY)


def test_unknown_row_check_is_a_contract_error(population: Contract) -> None:
    broken = with_changes(population, row_checks=[{"rule": "id_age", "fields": ["id_number", "birth_date"]}])
    with pytest.raises(ContractError, match=r"unknown row check 'id_age'"):
        build_suite(broken, today=TODAY)
