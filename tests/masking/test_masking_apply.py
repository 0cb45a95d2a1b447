from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from masking.apply import mask_table
from masking.errors import MaskingInputError
from masking.keys import Keyring
from masking.rules import token
from schemas.contract import BATCH_ID_COLUMN, Contract, load_contract
from schemas.errors import ContractError

ROWS: list[dict[str, Any]] = [
    {
        "id_number": "11010519491231002X",
        "name": "欧阳娜娜",
        "gender": "2",
        "ethnicity": "01",
        "birth_date": date(1949, 12, 31),
        "division_code": "110105",
        "address": "北京市朝阳区建国路88号",
        "mobile": "13812348000",
        "registration_status": "1",
        "updated_at": datetime(2025, 8, 1, 9, 30),
    },
    {
        "id_number": "440524188001010014",
        "name": "张三",
        "gender": "1",
        "ethnicity": None,
        "birth_date": date(1880, 1, 1),
        "division_code": "440524",
        "address": None,
        "mobile": "",
        "registration_status": "3",
        "updated_at": datetime(2025, 8, 2, 10, 0),
    },
]


@pytest.fixture
def contract() -> Contract:
    return load_contract("population")


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.init(tmp_path / "keys" / "keyring.json")


def _table(contract: Contract, rows: list[dict[str, Any]], *, with_row: bool = True) -> pa.Table:
    table = pa.Table.from_pylist(rows, schema=contract.arrow_schema())
    if with_row:
        table = table.append_column("_row", pa.array(range(101, 101 + len(rows)), pa.int64()))
    return table


def test_output_is_exactly_the_published_schema(contract: Contract, keyring: Keyring) -> None:
    out = mask_table(_table(contract, ROWS), contract, keyring, batch_id="b-1")
    assert out.schema.equals(contract.published_schema(), check_metadata=True)
    assert out.column_names[-1] == BATCH_ID_COLUMN
    assert "_row" not in out.column_names


def test_values_are_masked_per_contract(contract: Contract, keyring: Keyring) -> None:
    out = mask_table(_table(contract, ROWS), contract, keyring, batch_id="b-1").to_pylist()
    first, second = out
    expected_token = token(pa.array(["11010519491231002X"]), keyring.token_key())[0].as_py()
    assert first == {
        "person_token": expected_token,
        "name": "欧阳**",
        "gender": "2",
        "ethnicity": "01",
        "birth_year": 1949,
        "division_code": "110105",
        "address": "北京市朝阳区",
        "mobile": "138****8000",
        "registration_status": "1",
        "updated_at": datetime(2025, 8, 1, 9, 30),
        BATCH_ID_COLUMN: "b-1",
    }
    assert first["person_token"].startswith("k1_")
    assert (second["name"], second["address"], second["mobile"]) == ("张*", None, "")
    assert second[BATCH_ID_COLUMN] == "b-1"


def test_record_batch_input_and_stable_tokens(contract: Contract, keyring: Keyring) -> None:
    batch = _table(contract, ROWS, with_row=False).to_batches()[0]
    from_batch = mask_table(batch, contract, keyring, batch_id="b-2")
    from_table = mask_table(_table(contract, ROWS[::-1]), contract, keyring, batch_id="b-3")
    assert (
        from_batch.column("person_token").to_pylist() == (from_table.column("person_token").to_pylist()[::-1])
    )


def test_rotated_key_gives_new_version_tokens(contract: Contract, keyring: Keyring) -> None:
    before = mask_table(_table(contract, ROWS), contract, keyring, batch_id="b")
    after = mask_table(_table(contract, ROWS), contract, keyring.rotate(), batch_id="b")
    old, new = before.column("person_token")[0].as_py(), after.column("person_token")[0].as_py()
    assert old.startswith("k1_") and new.startswith("k2_")
    assert old[3:] != new[3:]


def test_empty_chunk(contract: Contract, keyring: Keyring) -> None:
    out = mask_table(_table(contract, []), contract, keyring, batch_id="b")
    assert out.num_rows == 0
    assert out.schema.equals(contract.published_schema())


def test_missing_and_unknown_columns_are_named(contract: Contract, keyring: Keyring) -> None:
    table = _table(contract, ROWS).drop_columns(["mobile"]).append_column("password", pa.array(["x", "y"]))
    with pytest.raises(MaskingInputError) as caught:
        mask_table(table, contract, keyring, batch_id="b-9")
    message = str(caught.value)
    assert isinstance(caught.value, ContractError)
    assert "mobile" in message and "password" in message
    assert "batch b-9" in message and "population" in message


def test_required_value_masked_to_null_names_row_and_field(contract: Contract, keyring: Keyring) -> None:
    rows = [dict(ROWS[0]), dict(ROWS[1], id_number="")]
    with pytest.raises(MaskingInputError) as caught:
        mask_table(_table(contract, rows), contract, keyring, batch_id="b-7")
    message = str(caught.value)
    assert "row 102" in message
    assert "'id_number'" in message and "person_token" in message and "batch b-7" in message


def test_castable_column_types_are_accepted(contract: Contract, keyring: Keyring) -> None:
    table = _table(contract, ROWS)
    index = table.schema.get_field_index("name")
    table = table.set_column(index, "name", table.column("name").cast(pa.large_string()))
    out = mask_table(table, contract, keyring, batch_id="b")
    assert out.column("name").to_pylist() == ["欧阳**", "张*"]


def test_wrong_column_type_is_named(contract: Contract, keyring: Keyring) -> None:
    table = _table(contract, ROWS)
    index = table.schema.get_field_index("birth_date")
    table = table.set_column(index, "birth_date", pa.array(["yesterday", "today"]))
    with pytest.raises(MaskingInputError) as caught:
        mask_table(table, contract, keyring, batch_id="b-5")
    assert "birth_date" in str(caught.value) and "date32" in str(caught.value)


def test_batch_id_is_required(contract: Contract, keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="batch_id"):
        mask_table(_table(contract, ROWS), contract, keyring, batch_id="")


def test_unconditional_level_generalises_and_drops_direct_identifiers(
    contract: Contract, keyring: Keyring
) -> None:
    out = mask_table(_table(contract, ROWS), contract, keyring, batch_id="b-1", level="unconditional")
    assert out.schema.equals(contract.published_schema("unconditional"), check_metadata=True)
    first, second = out.to_pylist()
    assert (first["name"], first["address"], first["mobile"], first["ethnicity"]) == (None, None, None, None)
    assert (first["birth_year"], first["division_code"]) == ("70-79", "110100")
    assert second["birth_year"] == "140-149"
    conditional = mask_table(_table(contract, ROWS), contract, keyring, batch_id="b-1")
    assert out.column("person_token").equals(conditional.column("person_token"))


def test_default_level_is_conditional(contract: Contract, keyring: Keyring) -> None:
    table = _table(contract, ROWS)
    default = mask_table(table, contract, keyring, batch_id="b-1")
    assert default.equals(mask_table(table, contract, keyring, batch_id="b-1", level="conditional"))


def test_steward_level_encrypts_reversibly(contract: Contract, keyring: Keyring) -> None:
    from masking.crypto import decrypt_array

    out = mask_table(_table(contract, ROWS), contract, keyring, batch_id="b-1", level="steward")
    names = out.column("name")
    assert all(v.startswith("e1:") for v in names.to_pylist())
    assert decrypt_array(names, keyring).to_pylist() == ["欧阳娜娜", "张三"]
    assert out.column("birth_year").to_pylist() == [date(1949, 12, 31), date(1880, 1, 1)]
    assert out.column("mobile").to_pylist()[1] == ""


def test_unknown_level_is_refused(contract: Contract, keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="public"):
        mask_table(_table(contract, ROWS), contract, keyring, batch_id="b-1", level="public")


def test_individual_business_codes_are_tokenised_companies_kept(keyring: Keyring) -> None:
    legal = load_contract("legal_entity")
    codes = ["92440300MA5ABCDE10", "91110000600037341L"]
    out = token(pa.array(codes[:1]), keyring.token_key())[0].as_py()
    masked = mask_table(
        pa.table({"uscc": codes}).append_column("name", pa.array(["a", "b"])),
        legal.model_copy(update={"fields": tuple(f for f in legal.fields if f.name in ("uscc", "name"))}),
        keyring,
        batch_id="b-1",
    )
    assert masked.column("uscc").to_pylist() == [out, "91110000600037341L"]


def test_levels_of_one_chunk_share_the_columns_their_rules_share(
    contract: Contract, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    import masking.apply

    table = _table(contract, ROWS)
    expected_conditional = mask_table(table, contract, keyring, batch_id="b1")
    expected_unconditional = mask_table(table, contract, keyring, batch_id="b1", level="unconditional")
    calls: list[str] = []
    real = masking.apply.apply_rule

    def counting(rule, values, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(str(rule))
        return real(rule, values, **kwargs)

    monkeypatch.setattr(masking.apply, "apply_rule", counting)
    made: dict[tuple[str, str], Any] = {}
    conditional = mask_table(table, contract, keyring, batch_id="b1", computed=made)
    unconditional = mask_table(table, contract, keyring, batch_id="b1", level="unconditional", computed=made)
    assert conditional.equals(expected_conditional)
    assert unconditional.equals(expected_unconditional)
    # the token rule is the same at both levels: the keyed HMAC runs once for the chunk
    assert calls.count("token") == 1
    assert unconditional.column("name").null_count == unconditional.num_rows
