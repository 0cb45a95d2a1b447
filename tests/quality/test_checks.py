"""Vectorised GB 11643 / GB/T 2260 / mobile checks against python-stdnum as the oracle."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import numdb
from stdnum.cn import ric

from quality import checks
from tests.support.samples import TODAY, make_id

TABLE_CODES = sorted({int(c) for c in checks._division_table()[0]})
ID_CHARS = "0123456789X"


def one(check: Any, value: str | None, *args: Any) -> Any:
    return check(pa.array([value], pa.string()), *args).to_pylist()[0]


def stdnum_birth_date(number: str) -> date | None:
    try:
        return ric.get_birth_date(number)
    except Exception:
        return None


def stdnum_valid(number: str) -> bool:
    try:
        return ric.is_valid(number)
    except KeyError:  # stdnum 2.2 raises KeyError for a listed province with an unlisted county
        return False


def stdnum_place_ok(number: str) -> bool:
    try:
        ric.get_birth_place(number)
    except Exception:  # unknown counties raise KeyError in stdnum 2.2, not only InvalidComponent
        return False
    return True


def division_reference(number: str) -> bool:
    """Scalar reading of the documented rule: listed and not abolished before the birth year."""
    if int(number[:6]) in checks.PERMIT_DIVISIONS:
        return True
    parts = numdb.get("cn/loc").info(number[:6])
    county = {k: v for _, props in parts for k, v in props.items()}.get("county")
    if county is None or len(parts) != 2:
        return False
    year = int(number[6:10])
    for name in county.split(","):
        if not name.startswith("["):
            return True
        end = name[1:].split("]")[0].split("-")[1]
        if not end or int(end) >= year:
            return True
    return False


@st.composite
def identity_numbers(draw: st.DrawFn) -> str:
    """Mostly well-formed numbers over known and unknown codes, odd dates, any check char."""
    code = draw(st.one_of(st.sampled_from(TABLE_CODES), st.integers(100000, 999999)))
    year = draw(st.integers(1850, 2035))
    month = draw(st.integers(0, 13))
    day = draw(st.integers(0, 32))
    sequence = draw(st.integers(0, 999))
    first17 = f"{code:06d}{year:04d}{month:02d}{day:02d}{sequence:03d}"
    if draw(st.booleans()):
        return first17 + ric.calc_check_digit(first17 + "0")
    return first17 + draw(st.sampled_from(ID_CHARS))


def test_reference_examples_are_valid() -> None:
    ids = pa.array(["11010519491231002X", "440524188001010014"])
    assert checks.gb11643(ids, TODAY).to_pylist() == [True, True]
    genders = pa.array(["2", "1"])
    assert checks.id_gender_matches(ids, genders).to_pylist() == [True, True]
    births = pa.array([date(1949, 12, 31), date(1880, 1, 1)])
    assert checks.id_birth_date_matches(ids, births).to_pylist() == [True, True]


def test_stdnum_is_stricter_on_division_years_for_the_reference_example() -> None:
    # 440524 is listed for 1983-1993 only; the number's holder was born in 1880 and
    # registered later, which is why the rule only asks that the code was not abolished.
    assert not ric.is_valid("440524188001010014")
    assert one(checks.gb11643_division, "440524188001010014") is True
    assert one(checks.gb11643_division, make_id("110103", date(2015, 3, 1), 1)) is False  # 崇文区 -2010
    assert one(checks.gb11643_division, make_id("110103", date(2009, 3, 1), 1)) is True


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789Xx a-", min_size=0, max_size=20))
def test_format_matches_regex(value: str) -> None:
    expected = value == "" or re.fullmatch(r"[0-9]{17}[0-9X]", value) is not None
    assert one(checks.gb11643_format, value) is expected


@settings(max_examples=500, deadline=None)
@given(identity_numbers())
def test_rules_agree_with_stdnum(number: str) -> None:
    ids = pa.array([number])
    check_digit = checks.gb11643_check_digit(ids).to_pylist()[0]
    born_ok = checks.gb11643_birth_date(ids, TODAY).to_pylist()[0]
    division = checks.gb11643_division(ids).to_pylist()[0]
    everything = checks.gb11643(ids, TODAY).to_pylist()[0]

    assert check_digit is (ric.calc_check_digit(number) == number[-1])
    born = stdnum_birth_date(number)
    assert born_ok is (born is not None and date(1880, 1, 1) <= born <= TODAY)
    assert division is division_reference(number)
    if stdnum_place_ok(number):
        assert division  # stdnum's year rule is stricter than ours, never looser
    if stdnum_valid(number) and born_ok:
        assert everything
    if everything:
        assert ric.calc_check_digit(number) == number[-1] and born is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(identity_numbers() | st.none() | st.just(""), min_size=0, max_size=40), st.integers(0, 5))
def test_vectorised_equals_one_by_one_on_sliced_and_chunked_input(values: list[str | None], cut: int) -> None:
    cut = min(cut, len(values))
    array = pa.array(["pad"] * cut + values, pa.string()).slice(cut)
    chunked = pa.chunked_array([array.slice(0, len(values) // 2), array.slice(len(values) // 2)], pa.string())
    for check in (checks.gb11643_format, checks.gb11643_check_digit, checks.gb11643_division):
        singles = [one(check, v) for v in values]
        assert check(array).to_pylist() == singles
        assert check(chunked).to_pylist() == singles
    singles = [one(checks.gb11643_birth_date, v, TODAY) for v in values]
    assert checks.gb11643_birth_date(array, TODAY).to_pylist() == singles


def test_missing_values_pass_every_check() -> None:
    ids = pa.array([None, ""], pa.string())
    assert checks.gb11643(ids, TODAY).to_pylist() == [True, True]
    assert checks.mobile_cn(ids).to_pylist() == [True, True]
    assert checks.gb2260(ids).to_pylist() == [True, True]
    other = pa.array([None, None], pa.date32())
    assert checks.id_birth_date_matches(pa.array(["11010519491231002X"] * 2), other).to_pylist() == [
        True,
        True,
    ]


def test_permit_holders_pass_division_but_not_a_bad_check_digit() -> None:
    for prefix in ("810000", "820000", "830000"):
        number = make_id(prefix, date(1990, 5, 6), 11)
        assert checks.gb11643(pa.array([number]), TODAY).to_pylist() == [True]
        broken = number[:-1] + ("0" if number[-1] != "0" else "1")
        assert checks.gb11643_check_digit(pa.array([broken])).to_pylist() == [False]


def test_birth_date_bounds() -> None:
    ids = pa.array(
        [
            make_id("110105", date(1880, 1, 1), 1),
            make_id("110105", date(1879, 12, 31), 1),
            make_id("110105", TODAY, 1),
            make_id("110105", TODAY + timedelta(days=1), 1),
            "11010520000229001" + "0",  # leap day, check char irrelevant here
            "11010519000229001" + "0",  # 1900 is not a leap year
        ]
    )
    assert checks.gb11643_birth_date(ids, TODAY).to_pylist() == [True, False, True, False, True, False]


@settings(max_examples=200, deadline=None)
@given(identity_numbers(), st.dates(date(1850, 1, 1), date(2035, 12, 31)))
def test_id_birth_date_matches(number: str, born: date) -> None:
    result = checks.id_birth_date_matches(pa.array([number]), pa.array([born])).to_pylist()[0]
    assert result is (number[6:14] == f"{born:%Y%m%d}")
    same = checks.id_birth_date_matches(
        pa.array([number]), pa.array([stdnum_birth_date(number)], pa.date32())
    )
    assert same.to_pylist() == [True]


@settings(max_examples=200, deadline=None)
@given(identity_numbers(), st.sampled_from(["0", "1", "2", "9", "x", None]))
def test_id_gender_matches(number: str, gender: str | None) -> None:
    result = checks.id_gender_matches(pa.array([number]), pa.array([gender], pa.string())).to_pylist()[0]
    odd = int(number[16]) % 2 == 1
    expected = {"1": odd, "2": not odd}.get(gender or "", True)
    assert result is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13800138000", True),
        ("19912345678", True),
        ("12800138000", False),
        ("1380013800", False),
        ("138001380000", False),
        ("+8613800138000", False),
        ("138-0013-8000", False),
        ("１３８００１３８０００", False),  # full-width digits
    ],
)
def test_mobile_cn(value: str, expected: bool) -> None:
    assert one(checks.mobile_cn, value) is expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(TABLE_CODES).map(lambda c: f"{c:06d}"), st.text("0123456789", max_size=7)))
def test_gb2260_matches_the_stdnum_table(code: str) -> None:
    expected = code == "" or (
        len(code) == 6
        and "county" in dict(numdb.get("cn/loc").info(code)[-1][1])
        and len(numdb.get("cn/loc").info(code)) == 2
    )
    assert one(checks.gb2260, code) is expected
