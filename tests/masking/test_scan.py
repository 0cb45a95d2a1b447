"""The leak scan finds each kind of planted leak and passes masked outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stdnum.cn import ric, uscc

from masking.scan import name_columns, scan_file, scan_messages, scan_table
from schemas.contract import load_contract

ID = "11010519491231002X"
ID_BAD_CHECK = "110105194912310021"
MOBILE = "13812348000"


def _individual_uscc() -> str:
    body = "92440300MA5ABCDE1"
    for check in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        if uscc.is_valid(body + check):
            return body + check
    raise AssertionError("no check character found")


USCC = _individual_uscc()


def _rules(findings) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(f.column, f.rule) for f in findings}


def test_oracles_agree_with_the_planted_values() -> None:
    assert ric.is_valid(ID) and not ric.is_valid(ID_BAD_CHECK)
    assert uscc.is_valid(USCC)


def test_planted_leaks_of_each_kind_are_found_with_first_row_and_count() -> None:
    table = pa.table(
        {
            "note": ["ok", f"身份证 {ID} 已核验", ID, None],
            "code": ["91110000600037341L", "x", f"code:{USCC}", ""],
            "phone": ["138****8000", None, "", f"tel {MOBILE}"],
            "name": ["张*", "欧阳**", "李四", ""],
        }
    )
    findings = scan_table(table, source="t", names=["name"])
    by = {(f.column, f.rule): f for f in findings}
    assert set(by) == {
        ("note", "id_number"),
        ("code", "uscc_individual"),
        ("phone", "mobile"),
        ("name", "name"),
    }
    assert (by["note", "id_number"].count, by["note", "id_number"].first_row) == (2, 1)
    assert by["phone", "mobile"].first_row == 3
    assert by["name", "name"].first_row == 2
    assert ID not in str(findings) and MOBILE not in str(findings)


def test_a_valid_number_after_an_invalid_one_in_the_same_text_is_found() -> None:
    table = pa.table({"t": [f"{ID_BAD_CHECK} and {ID}", ID_BAD_CHECK, f"{ID}1", "20250101000000000012"]})
    findings = scan_table(table, source="t")
    assert [(f.rule, f.count, f.first_row) for f in findings] == [("id_number", 1, 0)]


def test_company_codes_masked_values_and_tokens_pass() -> None:
    table = pa.table(
        {
            "uscc": ["91110000600037341L", "9144030071526726XG", "k1_" + "A" * 43],
            "mobile": ["138****8000", None, ""],
            "id": ["110105********002X", None, ""],
            "n": pa.array([1, 2, 3]),
        }
    )
    assert scan_table(table, source="t", names=["mobile"]) == []


def test_integer_columns_are_scanned_too() -> None:
    table = pa.table({"mobile": pa.array([13812348000, None], type=pa.int64())})
    assert _rules(scan_table(table, source="t")) == {("mobile", "mobile")}


def test_kafka_keys_and_values_are_scanned() -> None:
    messages = [
        ("k1_abc", {"person_token": "k1_abc", "name": "张*", "mobile": None}, {}),
        (ID, {"person_token": ID, "name": "王五", "extra": {"mobile": MOBILE}}, {}),
    ]
    found = _rules(scan_messages(messages, source="topic", names=["name"]))
    assert found == {
        ("_key", "id_number"),
        ("person_token", "id_number"),
        ("name", "name"),
        ("extra", "mobile"),
    }
    assert scan_messages(messages[:1], source="topic", names=["name"]) == []


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet", ".txt"])
def test_files_are_scanned_by_format(tmp_path: Path, suffix: str) -> None:
    rows = [{"who": "张*", "id": "110105********002X"}, {"who": "李四", "id": ID}]
    path = tmp_path / f"export{suffix}"
    if suffix == ".csv":
        path.write_text("who,id\n" + "\n".join(f"{r['who']},{r['id']}" for r in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    elif suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    found = {rule for _column, rule in _rules(scan_file(path, names=["who"]))}
    assert "id_number" in found
    if suffix != ".txt":
        assert "name" in found


def test_name_columns_come_from_the_contract_level() -> None:
    population = load_contract("population")
    assert name_columns(population) == ("name",)
    assert name_columns(population, "unconditional") == ()
