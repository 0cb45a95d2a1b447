"""Vectorised GB 32100 checks against python-stdnum, and the legal-entity gate end to end."""

from __future__ import annotations

import random
import re
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import uscc

from quality import checks
from quality.validate import Validator
from schemas.contract import Contract
from tests.support.samples import (
    TODAY,
    USCC_ALPHABET,
    good_legal_entity,
    legal_entity,
    make_id,
    make_uscc,
    org_check,
    to_table,
)

TABLE_CODES = sorted({int(c) for c in checks._division_table()[0]})
REFERENCE_EXAMPLES = ("91110000600037341L", "9144030071526726XG", "91310115MA1K3BTP2B", "121200004013590816")
RULES = (checks.gb32100_format, checks.gb32100_check, checks.gb32100_org_code, checks.gb32100_division)


def one(check: Any, value: str | None) -> Any:
    return check(pa.array([value], pa.string())).to_pylist()[0]


def well_formed(code: str) -> bool:
    """Scalar reading of the format rule, written without the module's regex."""
    return (
        len(code) == 18
        and all(c in USCC_ALPHABET for c in code)
        and code[2:8].isascii()
        and code[2:8].isdigit()
    )


def with_wrong_org_check(code: str) -> str:
    """The same code with a wrong organisation check character but a right final one."""
    first17 = code[:16] + ("0" if code[16] != "0" else "1")
    return first17 + uscc.calc_check_digit(first17)


def division_known(code: str) -> bool:
    return int(code[2:8]) in TABLE_CODES or code[2:8] == "100000"


@st.composite
def usccs(draw: st.DrawFn) -> str:
    """Mostly well-formed codes: any departments, known and unknown divisions, checks right or not."""
    code_char = st.sampled_from(USCC_ALPHABET)
    head = draw(code_char) + draw(code_char)
    division = draw(
        st.one_of(
            st.sampled_from(TABLE_CODES).map(lambda c: f"{c:06d}"),
            st.just("100000"),
            st.integers(0, 999999).map(lambda c: f"{c:06d}"),
        )
    )
    body = "".join(draw(st.lists(code_char, min_size=8, max_size=8)))
    org = org_check(body) if draw(st.booleans()) else draw(code_char)
    first17 = head + division + body + org
    last = uscc.calc_check_digit(first17) if draw(st.booleans()) else draw(code_char)
    return first17 + last


def test_reference_examples_and_department_codes_are_valid() -> None:
    owners = ("11100000000013127D", "11100000MB0143028R", "11100000000013338W", "11220000013544541J")
    codes = pa.array([*REFERENCE_EXAMPLES, *owners])
    assert checks.gb32100(codes).to_pylist() == [True] * len(codes)
    assert all(uscc.is_valid(c) for c in codes.to_pylist())


def test_letter_registration_departments_are_accepted_unlike_stdnum() -> None:
    code = make_uscc("110105", "MA01H2K3", department="N", kind="2")
    assert not uscc.is_valid(code)  # stdnum wants 8 leading digits
    assert one(checks.gb32100, code) is True
    assert one(checks.gb32100_format, code.replace("N2", "Z2", 1)) is False  # Z is not a code character


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("91110000600037341M", checks.gb32100_check),
        ("9111000060003734", checks.gb32100_format),
        ("91110000600037341l", checks.gb32100_format),
        ("91110000600037341I", checks.gb32100_format),
        ("9111A000600037341L", checks.gb32100_format),
        (" 91110000600037341L", checks.gb32100_format),
        (with_wrong_org_check(make_uscc("110105", "60003734")), checks.gb32100_org_code),
        (make_uscc("999999", "60003734"), checks.gb32100_division),
    ],
)
def test_each_defect_fails_exactly_one_rule(code: str, rule: Any) -> None:
    failing = [r for r in RULES if one(r, code) is False]
    assert failing == [rule]
    assert one(checks.gb32100, code) is False


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=USCC_ALPHABET + "abIOSVZ -", min_size=0, max_size=20))
def test_format_matches_the_scalar_reading(value: str) -> None:
    assert one(checks.gb32100_format, value) is (value == "" or well_formed(value))


@settings(max_examples=600, deadline=None)
@given(usccs())
def test_rules_agree_with_stdnum_and_the_scalar_references(code: str) -> None:
    check_ok, org_ok, division_ok, everything = (
        one(rule, code)
        for rule in (checks.gb32100_check, checks.gb32100_org_code, checks.gb32100_division, checks.gb32100)
    )
    assert one(checks.gb32100_format, code) is True
    assert check_ok is (uscc.calc_check_digit(code[:17]) == code[17])
    assert org_ok is (org_check(code[8:16]) == code[16])
    assert division_ok is division_known(code)
    assert everything is (check_ok and org_ok and division_ok)
    if code[:8].isdigit():
        assert uscc.is_valid(code) is check_ok  # stdnum checks format and check character only
    if everything:
        assert uscc.calc_check_digit(code) == code[-1]


@settings(max_examples=150, deadline=None)
@given(st.lists(usccs() | st.none() | st.just("") | st.text(max_size=19), max_size=40), st.integers(0, 5))
def test_vectorised_equals_one_by_one_on_sliced_and_chunked_input(values: list[str | None], cut: int) -> None:
    array = pa.array(["pad"] * cut + values, pa.string()).slice(cut)
    half = len(values) // 2
    chunked = pa.chunked_array([array.slice(0, half), array.slice(half)], pa.string())
    for rule in (*RULES, checks.gb32100):
        singles = [one(rule, v) for v in values]
        assert rule(array).to_pylist() == singles
        assert rule(chunked).to_pylist() == singles


def test_missing_values_pass_every_rule() -> None:
    codes = pa.array([None, ""], pa.string())
    for rule in (*RULES, checks.gb32100):
        assert rule(codes).to_pylist() == [True, True]
    assert checks.gb32100(pa.chunked_array([], pa.string())).to_pylist() == []


ROW_BASE = 700


def defects() -> tuple[list[dict[str, Any]], dict[int, set[str]]]:
    """One legal entity per defect kind between good ones, with the rule codes each must get."""
    rng = random.Random(11)
    good = make_uscc("310104", "MA1K3BTP")
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, set()),
        ({"uscc": None}, {"required"}),
        ({"uscc": "9131010"}, {"gb32100.format"}),
        ({"uscc": good[:17] + ("0" if good[17] != "0" else "1")}, {"gb32100.check"}),
        ({"uscc": with_wrong_org_check(make_uscc("310104", "MA1K3BTQ"))}, {"gb32100.org_code"}),
        ({"uscc": make_uscc("310199", "MA1K3BTQ")}, {"gb32100.division"}),
        ({"uscc": make_uscc("100000", "00001312", department="1", kind="1")}, set()),
        ({"name": " "}, {"required"}),
        ({"entity_type": "1300"}, {"code_list"}),
        ({"legal_rep_name": None}, {"required"}),
        ({"legal_rep_id_number": "110105194912310021"}, {"gb11643.check_digit"}),
        ({"legal_rep_id_number": make_id("810000", TODAY.replace(year=1990), 11)}, set()),
        ({"registered_capital": None, "address": None, "business_scope": None}, set()),
        ({"establishment_date": None}, {"required"}),
        ({"registration_authority": ""}, {"required"}),
        ({"division_code": "310100X"}, {"gb2260"}),
        ({"status": "存活"}, {"code_list"}),
        ({"status": "注销"}, set()),
        ({"updated_at": None}, {"required"}),
        ({"uscc": good}, {"key.duplicate"}),
        ({"uscc": good}, {"key.duplicate"}),
        ({}, set()),
    ]
    records, expected = [], {}
    for position, (change, rules) in enumerate(cases):
        record = good_legal_entity(rng, ROW_BASE + position)
        record.update(change)
        records.append(record)
        if rules:
            expected[ROW_BASE + position] = rules
    return records, expected


@pytest.fixture(scope="module")
def contract() -> Contract:
    return legal_entity()


def test_each_legal_entity_defect_is_quarantined_with_its_rules(contract: Contract) -> None:
    records, expected = defects()
    chunk = to_table(contract, records)
    duplicate = records[-2]["uscc"]
    result = Validator(contract, today=TODAY).validate(
        chunk, duplicate_keys=[duplicate], source="samr-db", batch_id="b-7"
    )
    found: dict[int, set[str]] = {}
    for violation in result.violations:
        found.setdefault(violation.row, set()).add(violation.rule)
    assert found == expected
    assert sorted(result.quarantined.column("_row").to_pylist()) == sorted(expected)
    assert result.valid.num_rows == len(records) - len(expected)
    by_rule = {v.rule: v for v in result.violations}
    assert by_rule["gb32100.org_code"].field == "uscc"
    assert "组织机构代码" in by_rule["gb32100.org_code"].message_zh


def test_good_legal_entities_pass_whole(contract: Contract) -> None:
    rng = random.Random(5)
    chunk = to_table(contract, [good_legal_entity(rng, i) for i in range(300)])
    result = Validator(contract, today=TODAY).validate(chunk)
    assert result.violations == []
    assert result.valid.equals(chunk)


def test_pattern_constant_agrees_with_the_alphabet() -> None:
    letters = re.sub(r"[^A-Z]", "", USCC_ALPHABET)
    assert all(re.fullmatch(checks.USCC_PATTERN, "91110000" + c * 10) for c in letters)
    assert not any(re.fullmatch(checks.USCC_PATTERN, "91110000" + c * 10) for c in "IOSVZ")
