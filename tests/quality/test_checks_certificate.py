"""GB/T 36904 identifiers and certificate row checks, against python-stdnum, and the gate."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_36

from quality import checks
from quality.validate import Validator
from schemas.contract import Contract
from tests.support.samples import (
    CERT_ROOT,
    CERT_TYPE,
    ISSUER,
    TODAY,
    certificate,
    good_certificate,
    make_certificate_id,
    make_id,
    make_uscc,
    to_table,
)

EXAMPLE = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def one(check: Any, value: str | None) -> Any:
    return check(pa.array([value], pa.string())).to_pylist()[0]


@st.composite
def identifiers(draw: st.DrawFn) -> str:
    """Well-formed identifiers with serials of any length; check character right or not."""
    serial = draw(st.text(ALNUM, min_size=1, max_size=40))
    version = f"{draw(st.integers(0, 999)):03d}"
    sequence = draw(st.text(ALNUM, min_size=3, max_size=3))
    body = f"{CERT_TYPE[:18]}{sequence}{ISSUER}{serial}{version}"
    check = mod_37_36.calc_check_digit(body) if draw(st.booleans()) else draw(st.sampled_from(ALNUM))
    return ".".join([CERT_ROOT, CERT_TYPE[:18] + sequence, ISSUER, serial, version, check])


def test_reference_example_passes() -> None:
    assert checks.gb36904(pa.array([EXAMPLE])).to_pylist() == [True]
    assert make_certificate_id("2430599") == EXAMPLE


@pytest.mark.parametrize(
    "value",
    [
        EXAMPLE.replace("1.2.156.3005.2", "1.2.156.3005.3"),
        EXAMPLE.replace(".001.", ".01."),
        EXAMPLE.replace(".2430599.", ".."),
        EXAMPLE.replace(".2430599.", ".243-0599."),
        EXAMPLE.lower(),
        EXAMPLE.replace("W032", "W03"),  # type code one character short
        EXAMPLE.replace("541J", "541"),  # issuer not 18 characters
        EXAMPLE + ".F",
        EXAMPLE.replace(".F", ".*"),
        EXAMPLE.replace(".", "", 1),
        EXAMPLE + " ",
    ],
)
def test_malformed_identifiers_fail_format_only(value: str) -> None:
    assert one(checks.gb36904_format, value) is False
    assert one(checks.gb36904_check, value) is True  # reported once, under format
    assert one(checks.gb36904, value) is False


def test_wrong_check_character_fails_check_only() -> None:
    for char in ALNUM.replace("F", ""):
        value = EXAMPLE[:-1] + char
        assert (one(checks.gb36904_format, value), one(checks.gb36904_check, value)) == (True, False)


@settings(max_examples=500, deadline=None)
@given(identifiers())
def test_check_agrees_with_stdnum(value: str) -> None:
    _root, type_code, issuer, serial, version, check = value.rsplit(".", 5)
    assert one(checks.gb36904_format, value) is True
    expected = mod_37_36.is_valid(type_code + issuer + serial + version + check)
    assert one(checks.gb36904_check, value) is expected
    assert one(checks.gb36904, value) is expected


@settings(max_examples=150, deadline=None)
@given(
    st.lists(identifiers() | st.none() | st.just("") | st.text(max_size=30), max_size=30), st.integers(0, 4)
)
def test_vectorised_equals_one_by_one_on_mixed_lengths(values: list[str | None], cut: int) -> None:
    array = pa.array(["pad"] * cut + values, pa.string()).slice(cut)
    half = len(values) // 2
    chunked = pa.chunked_array([array.slice(0, half), array.slice(half)], pa.string())
    for rule in (checks.gb36904_format, checks.gb36904_check, checks.gb36904):
        singles = [one(rule, v) for v in values]
        assert rule(array).to_pylist() == singles
        assert rule(chunked).to_pylist() == singles


def test_certificate_type_code() -> None:
    values = [CERT_TYPE, CERT_TYPE[:17] + "X032", CERT_TYPE[:18] + "03", CERT_TYPE + "0", None, ""]
    assert checks.certificate_type_code(pa.array(values, pa.string())).to_pylist() == [
        True,
        False,
        False,
        False,
        True,
        True,
    ]


def dates(values: list[date | None]) -> pa.Array:
    return pa.array(values, pa.date32())


@settings(max_examples=200, deadline=None)
@given(st.none() | st.dates(), st.none() | st.dates())
def test_validity_window_ordered(start: date | None, end: date | None) -> None:
    result = checks.validity_window_ordered(dates([start]), dates([end])).to_pylist()
    assert result == [start is None or end is None or start <= end]


@settings(max_examples=200, deadline=None)
@given(
    st.none() | st.dates(date(2000, 1, 1), date(2040, 1, 1)), st.sampled_from(["有效", "过期", "注销", None])
)
def test_validity_status_consistent(end: date | None, status: str | None) -> None:
    result = checks.validity_status_consistent(dates([end]), pa.array([status], pa.string()), TODAY)
    assert result.to_pylist() == [not (status == "有效" and end is not None and end < TODAY)]


def test_validity_status_boundary_is_today() -> None:
    ends = dates([TODAY - timedelta(days=1), TODAY, None])
    statuses = pa.array(["有效"] * 3)
    assert checks.validity_status_consistent(ends, statuses, TODAY).to_pylist() == [False, True, True]


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        ("11010519491231002X", "111", True),
        ("11010519491231002X", "001", False),
        ("91110000600037341L", "001", True),
        ("91110000600037341L", "111", False),
        ("110105194912310021", "111", False),  # wrong check digit
        (make_id("110105", TODAY + timedelta(days=1), 1), "111", False),  # born tomorrow
        (make_id("810000", date(1990, 1, 1), 1), "111", True),  # residence permit
        ("91110000600037341M", "001", False),
        ("anything", "999", True),  # an unknown type is the code list's concern
        ("anything", None, True),
        (None, "111", True),
        ("", "001", True),
    ],
)
def test_holder_code_matches(code: str | None, kind: str | None, expected: bool) -> None:
    result = checks.holder_code_matches(pa.array([code], pa.string()), pa.array([kind], pa.string()), TODAY)
    assert result.to_pylist() == [expected]


ROW_BASE = 9000


def defects() -> tuple[list[dict[str, Any]], dict[int, set[str]]]:
    """One certificate per defect kind between good ones, with the rule codes each must get."""
    rng = random.Random(13)
    twin = make_certificate_id("T0001")
    person = make_id("440305", date(1980, 2, 3), 15)
    company = make_uscc("440305", "MA5G1A2B")
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, set()),
        ({"certificate_id": None}, {"required"}),
        ({"certificate_id": EXAMPLE.replace(".001.", ".1.")}, {"gb36904.format"}),
        ({"certificate_id": EXAMPLE[:-1] + "G"}, {"gb36904.check"}),
        ({"type_name": ""}, {"required"}),
        ({"type_code": CERT_TYPE[:20]}, {"certificate_type_code"}),
        ({"number": None}, {"required"}),
        ({"holder_name": None}, {"required"}),
        ({"holder_code": person, "holder_code_type": "111"}, set()),
        ({"holder_code": company, "holder_code_type": "001"}, set()),
        ({"holder_code": company, "holder_code_type": "111"}, {"holder_code"}),
        ({"holder_code": person, "holder_code_type": "001"}, {"holder_code"}),
        ({"holder_code": person, "holder_code_type": "002"}, {"code_list"}),
        ({"holder_code": None}, {"required"}),
        ({"issuer_code": ISSUER[:-1] + "K"}, {"gb32100.check"}),
        ({"issue_date": None}, {"required"}),
        ({"valid_from": date(2026, 1, 2), "valid_until": date(2026, 1, 1)}, {"validity_window"}),
        ({"valid_from": date(2024, 1, 1), "valid_until": date(2024, 1, 1), "status": "过期"}, set()),
        ({"valid_from": date(2020, 1, 1), "valid_until": date(2025, 5, 31)}, {"validity_status"}),
        ({"valid_from": date(2020, 1, 1), "valid_until": TODAY}, set()),
        ({"valid_until": None}, set()),
        ({"division_code": "999999"}, {"gb2260"}),
        ({"status": "失效"}, {"code_list"}),
        ({"updated_at": None}, {"required"}),
        ({"certificate_id": twin}, {"key.duplicate"}),
        ({"certificate_id": twin}, {"key.duplicate"}),
        ({}, set()),
    ]
    records, expected = [], {}
    for position, (change, rules) in enumerate(cases):
        record = good_certificate(rng, ROW_BASE + position)
        record.update(change)
        records.append(record)
        if rules:
            expected[ROW_BASE + position] = rules
    return records, expected


@pytest.fixture(scope="module")
def contract() -> Contract:
    return certificate()


def test_each_certificate_defect_is_quarantined_with_its_rules(contract: Contract) -> None:
    records, expected = defects()
    result = Validator(contract, today=TODAY).validate(
        to_table(contract, records),
        duplicate_keys=[make_certificate_id("T0001")],
        source="cert-api",
        batch_id="b-3",
    )
    found: dict[int, set[str]] = {}
    for violation in result.violations:
        found.setdefault(violation.row, set()).add(violation.rule)
    assert found == expected
    assert sorted(result.quarantined.column("_row").to_pylist()) == sorted(expected)
    assert result.valid.num_rows == len(records) - len(expected)
    fields = {v.rule: v.field for v in result.violations}
    assert fields["holder_code"] == "holder_code"
    assert fields["validity_window"] == "valid_until"
    assert fields["validity_status"] == "status"


def test_expiry_is_judged_against_the_given_today(contract: Contract) -> None:
    record = good_certificate(random.Random(2), 0)
    record.update(valid_from=date(2020, 1, 1), valid_until=date(2025, 6, 1), status="有效")
    chunk = to_table(contract, [record])
    assert Validator(contract, today=date(2025, 6, 1)).validate(chunk).violations == []
    late = Validator(contract, today=date(2025, 6, 2)).validate(chunk)
    assert [(v.rule, v.field) for v in late.violations] == [("validity_status", "status")]


def test_good_certificates_pass_whole(contract: Contract) -> None:
    rng = random.Random(6)
    chunk = to_table(contract, [good_certificate(rng, i) for i in range(300)])
    result = Validator(contract, today=TODAY).validate(chunk)
    assert result.violations == []
    assert result.valid.equals(chunk)
