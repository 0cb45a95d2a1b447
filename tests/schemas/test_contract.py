"""The population contract loads, and everything else is derived from it consistently."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from schemas.contract import BATCH_ID_COLUMN, CONTRACT_DIR, load_contract, load_contract_file
from schemas.errors import ContractError


@pytest.fixture(scope="module")
def population():
    return load_contract("population")


def test_canonical_schema_lists_every_field_in_order(population) -> None:
    schema = population.arrow_schema()
    assert schema.names == [
        "id_number",
        "name",
        "gender",
        "ethnicity",
        "birth_date",
        "division_code",
        "address",
        "mobile",
        "registration_status",
        "updated_at",
    ]
    assert schema.field("birth_date").type == pa.date32()
    assert schema.field("updated_at").type == pa.timestamp("us")


def test_published_schema_applies_masking_names_and_types(population) -> None:
    schema = population.published_schema()
    assert "id_number" not in schema.names
    assert schema.field("person_token").type == pa.string()
    assert schema.field("birth_year").type == pa.int32()
    assert "birth_date" not in schema.names
    assert schema.names[-1] == BATCH_ID_COLUMN
    assert not schema.field("person_token").nullable


def test_iceberg_schema_matches_published_and_keys_are_identifiers(population) -> None:
    iceberg = population.iceberg_schema()
    published = population.published_schema()
    assert [f.name for f in iceberg.fields] == published.names
    key = iceberg.find_field("person_token")
    assert iceberg.identifier_field_ids == [key.field_id]
    assert key.required


def test_message_schema_has_every_published_column(population) -> None:
    schema = population.message_schema()
    assert list(schema["properties"]) == population.published_schema().names
    assert "person_token" in schema["required"]
    assert schema["properties"]["mobile"]["type"] == ["string", "null"]
    assert schema["additionalProperties"] is False


def _broken(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((CONTRACT_DIR / "population.yaml").read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_unknown_masking_rule_is_refused_naming_field(tmp_path: Path) -> None:
    path = _broken(tmp_path, lambda raw: raw["fields"][1].update(mask={"rule": "scramble"}))
    with pytest.raises(ContractError, match=r"fields\.1\.mask: .*rule: "):
        load_contract_file(path)


def test_rule_that_does_not_fit_the_type_is_refused(tmp_path: Path) -> None:
    path = _broken(tmp_path, lambda raw: raw["fields"][4].update(mask={"rule": "mask_mobile"}))
    with pytest.raises(ContractError, match=r"birth_date.*mask_mobile.*date field"):
        load_contract_file(path)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    def mutate(raw: dict) -> None:
        raw["keys"] = ["nonexistent"]
        raw.pop("share_condition")

    with pytest.raises(ContractError) as info:
        load_contract_file(_broken(tmp_path, mutate))
    message = str(info.value)
    assert "key 'nonexistent' is not a field" in message
    assert "needs share_condition" in message


def test_unknown_dataset_names_the_available_ones() -> None:
    with pytest.raises(ContractError, match=r"no contract for dataset 'nope'.*population"):
        load_contract("nope")


# -- masking per share level --------------------------------------------------------------


def _with_mask(tmp_path: Path, field: str, mask: object) -> Path:
    raw = yaml.safe_load((CONTRACT_DIR / "population.yaml").read_text(encoding="utf-8"))
    for f in raw["fields"]:
        if f["name"] == field:
            f["mask"] = mask
    path = tmp_path / "population.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_single_form_applies_at_every_level(population) -> None:
    mask = population.field("id_number").mask
    assert {spec.rule.value for spec in mask.specs} == {"token"}
    assert mask.as_ == "person_token"


def test_per_level_form_and_defaults_to_conditional(population) -> None:
    birth = population.field("birth_date").mask
    assert (birth.unconditional.rule, birth.conditional.rule, birth.steward.rule) == (
        "age_band",
        "year",
        "keep",
    )
    assert birth.unconditional.params == {"width": 10, "reference": __import__("datetime").date(2025, 1, 1)}
    division = population.field("division_code").mask
    assert division.steward == division.conditional


def test_published_schema_per_level(population) -> None:
    unconditional = population.published_schema("unconditional")
    assert unconditional.field("birth_year").type == pa.string()
    assert unconditional.field("name").nullable
    assert population.published_schema().field("birth_year").type == pa.int32()
    assert population.published_schema() == population.published_schema("conditional")
    assert population.published_quasi_identifiers == ("gender", "birth_year", "division_code")
    assert population.k_anonymity == 5


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ({"rule": "shuffle"}, "rule"),
        ({"rule": "mask_name", "first": 1}, "takes no parameter 'first'"),
        ({"rule": "mask_keep", "first": 1}, "needs parameter 'last'"),
        ({"rule": "age_band"}, "needs parameter 'reference'"),
        ({"rule": "mask_name", "colour": "red"}, "colour"),
        ({"unconditional": {"rule": "null"}}, "conditional"),
        ({"rule": "keep", "conditional": {"rule": "keep"}}, "not both"),
    ],
)
def test_bad_masks_are_contract_errors(tmp_path: Path, mask: object, expected: str) -> None:
    with pytest.raises(ContractError, match=expected):
        load_contract_file(_with_mask(tmp_path, "name", mask))


def test_rule_not_fitting_the_type_at_any_level_is_an_error(tmp_path: Path) -> None:
    mask = {
        "conditional": {"rule": "keep"},
        "unconditional": {"rule": "prefecture"},
        "steward": {"rule": "month"},
    }
    with pytest.raises(ContractError) as caught:
        load_contract_file(_with_mask(tmp_path, "birth_date", mask))
    assert "level unconditional" in str(caught.value) and "level steward" not in str(caught.value)


def test_unknown_quasi_identifier_is_an_error(tmp_path: Path) -> None:
    raw = yaml.safe_load((CONTRACT_DIR / "population.yaml").read_text(encoding="utf-8"))
    raw["quasi_identifiers"] = ["gender", "shoe_size"]
    path = tmp_path / "population.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContractError, match="shoe_size"):
        load_contract_file(path)
