"""Every shipped contract loads, and its derived schemas and quality suite are consistent."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from quality.suite import MESSAGES, REFERENCE_CHECKS, build_suite
from schemas.contract import (
    BATCH_ID_COLUMN,
    CONTRACT_DIR,
    Contract,
    FieldType,
    MaskRule,
    load_contract,
    load_contract_file,
)
from schemas.errors import ContractError
from tests.support.samples import TODAY

NAMES = sorted(p.stem for p in CONTRACT_DIR.glob("*.yaml"))

LEGAL_ENTITY_FIELDS = [
    "uscc",
    "name",
    "entity_type",
    "legal_rep_name",
    "legal_rep_id_number",
    "registered_capital",
    "establishment_date",
    "registration_authority",
    "division_code",
    "address",
    "status",
    "business_scope",
    "updated_at",
]
CERTIFICATE_FIELDS = [
    "certificate_id",
    "type_name",
    "type_code",
    "number",
    "holder_name",
    "holder_code",
    "holder_code_type",
    "issuer_name",
    "issuer_code",
    "issue_date",
    "valid_from",
    "valid_until",
    "division_code",
    "status",
    "updated_at",
]


@pytest.fixture(scope="module", params=NAMES)
def contract(request: pytest.FixtureRequest) -> Contract:
    return load_contract(request.param)


def test_all_three_datasets_are_shipped() -> None:
    assert {"population", "legal_entity", "certificate"} <= set(NAMES)


def test_every_field_is_fully_described(contract: Contract) -> None:
    assert contract.version == "1.0.0"
    for field in contract.fields:
        assert field.description.zh and field.description.en, field.name
        assert isinstance(field.mask.rule, MaskRule)


def test_legal_entity_fields_and_types() -> None:
    contract = load_contract("legal_entity")
    assert contract.arrow_schema().names == LEGAL_ENTITY_FIELDS
    assert contract.keys == ("uscc",)
    assert contract.owner_department.code == "11100000000013127D"
    assert contract.share_attribute == "无条件共享"
    assert contract.field("registered_capital").type is FieldType.DECIMAL
    assert contract.arrow_schema().field("registered_capital").type == pa.decimal128(20, 4)
    assert contract.field("uscc").checks == ("gb32100",)
    assert contract.field("legal_rep_id_number").checks == ("gb11643",)
    assert contract.field("division_code").checks == ("gb2260",)
    assert contract.field("status").values == ("存续", "在业", "吊销", "注销", "迁出")
    entity_types = contract.field("entity_type").values or ()
    assert len(entity_types) == 8 and all(
        code in contract.field("entity_type").description.zh for code in entity_types
    )


def test_certificate_fields_and_types() -> None:
    contract = load_contract("certificate")
    assert contract.arrow_schema().names == CERTIFICATE_FIELDS
    assert contract.keys == ("certificate_id",)
    assert contract.share_attribute == "有条件共享" and contract.share_condition
    assert contract.owner_department.code == "11100000MB0143028R"
    assert contract.field("holder_code_type").values == ("111", "001")
    assert not contract.field("valid_until").required
    assert contract.field("certificate_id").checks == ("gb36904",)
    assert contract.field("issuer_code").checks == ("gb32100",)
    assert {(c.rule, c.fields) for c in contract.row_checks} == {
        ("validity_window", ("valid_from", "valid_until")),
        ("validity_status", ("valid_until", "status")),
        ("holder_code", ("holder_code", "holder_code_type")),
        ("holder_exists", ("holder_code", "holder_code_type")),
    }


@pytest.mark.parametrize(
    ("name", "raw", "token"),
    [
        ("population", "id_number", "person_token"),
        ("legal_entity", "legal_rep_id_number", "legal_rep_token"),
        ("certificate", "holder_code", "holder_token"),
    ],
)
def test_identity_numbers_share_one_token_rule(name: str, raw: str, token: str) -> None:
    contract = load_contract(name)
    published = contract.published_schema()
    assert raw not in published.names
    assert published.field(token).type == pa.string()
    assert not published.field(token).nullable
    assert contract.field(raw).mask.rule is MaskRule.TOKEN


def test_published_iceberg_and_message_schemas_agree(contract: Contract) -> None:
    published = contract.published_schema()
    assert published.names[-1] == BATCH_ID_COLUMN
    iceberg = contract.iceberg_schema()
    assert [f.name for f in iceberg.fields] == published.names
    keys = [iceberg.find_field(k) for k in contract.published_keys]
    assert iceberg.identifier_field_ids == [k.field_id for k in keys]
    assert all(k.required for k in keys)
    message = contract.message_schema()
    assert list(message["properties"]) == published.names
    for field in published:
        assert (field.name in message["required"]) is (not field.nullable)


def test_decimal_is_carried_exactly_through_every_schema() -> None:
    from pyiceberg.types import DecimalType

    contract = load_contract("legal_entity")
    assert contract.published_schema().field("registered_capital").type == pa.decimal128(20, 4)
    assert contract.iceberg_schema().find_field("registered_capital").field_type == DecimalType(20, 4)
    spec = contract.message_schema()["properties"]["registered_capital"]
    assert spec["type"] == ["string", "null"] and spec["format"] == "decimal"
    assert "万元" in spec["description"]
    value = pa.array([Decimal("1234567890123456.1234")], FieldType.DECIMAL.arrow())
    assert value.to_pylist() == [Decimal("1234567890123456.1234")]


def _mutated(tmp_path: Path, name: str, field: str, change: dict[str, Any]) -> Path:
    raw = yaml.safe_load((CONTRACT_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    (entry,) = [f for f in raw["fields"] if f["name"] == field]
    entry.update(change)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("rule", ["mask_name", "token", "mask_id", "year"])
def test_decimal_field_with_a_string_or_date_rule_is_refused(tmp_path: Path, rule: str) -> None:
    path = _mutated(tmp_path, "legal_entity", "registered_capital", {"mask": {"rule": rule}})
    with pytest.raises(
        ContractError, match=rf"registered_capital.*rule '{rule}' cannot apply to a decimal field"
    ):
        load_contract_file(path)


@pytest.mark.parametrize("rule", ["keep", "null"])
def test_decimal_field_may_be_kept_or_withheld(tmp_path: Path, rule: str) -> None:
    path = _mutated(tmp_path, "legal_entity", "registered_capital", {"mask": {"rule": rule}})
    contract = load_contract_file(path)
    assert contract.published_schema().field("registered_capital").type == pa.decimal128(20, 4)


def test_certificate_without_share_condition_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load((CONTRACT_DIR / "certificate.yaml").read_text(encoding="utf-8"))
    del raw["share_condition"]
    path = tmp_path / "certificate.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContractError, match="share_condition"):
        load_contract_file(path)


def test_suite_builds_and_covers_every_check(contract: Contract) -> None:
    suite = build_suite(contract, today=TODAY)
    found = {(e.meta["rule"], e.meta["field"]) for e in suite.expectations if e.meta}
    assert all(rule in MESSAGES for rule, _ in found)
    for field in contract.fields:
        if field.required:
            assert ("required", field.name) in found
        if field.values is not None:
            assert ("code_list", field.name) in found
        for check in field.checks:
            assert any(rule.split(".")[0] == check and f == field.name for rule, f in found), check
    for row_check in contract.row_checks:
        if row_check.rule in REFERENCE_CHECKS:  # against other datasets: checked in validate
            assert row_check.rule in MESSAGES
            continue
        assert any(rule == row_check.rule for rule, _ in found)
    assert ("key.duplicate", ",".join(contract.keys)) in found


def test_certificate_suite_has_the_national_standard_rules() -> None:
    suite = build_suite(load_contract("certificate"), today=TODAY)
    found = {(e.meta["rule"], e.meta["field"]) for e in suite.expectations if e.meta}
    assert {
        ("gb36904.format", "certificate_id"),
        ("gb36904.check", "certificate_id"),
        ("certificate_type_code", "type_code"),
        ("gb32100.check", "issuer_code"),
        ("gb32100.org_code", "issuer_code"),
        ("gb32100.division", "issuer_code"),
        ("validity_window", "valid_until"),
        ("validity_status", "status"),
        ("holder_code", "holder_code"),
    } <= found
    today_rules = [
        e for e in suite.expectations if e.meta and e.meta["rule"] in ("validity_status", "holder_code")
    ]
    assert [getattr(e, "today") for e in today_rules] == [TODAY.isoformat()] * 2  # noqa: B009


@pytest.mark.parametrize("name", ["legal_entity", "certificate"])
def test_owner_department_code_is_a_valid_social_credit_code(name: str) -> None:
    from quality.checks import gb32100

    code = load_contract(name).owner_department.code
    assert gb32100(pa.array([code])).to_pylist() == [True]
