"""Property tests of the vectorised national-standard checks, python-stdnum as the oracle.

Numbers are built with stdnum's own check characters and must pass; then one character is
changed, or two neighbours swapped, and the vectorised check must give stdnum's verdict on
the check character. Every example judges a whole array at once, so the vectorised code
paths (mixed lengths, slices, several rows) are what is tested, not one value at a time.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc
from stdnum.iso7064 import mod_37_36

from quality import checks
from tests.support.samples import CERT_ROOT, STABLE_DIVISIONS, TODAY, USCC_ALPHABET, org_check

ID_CHARS = "0123456789X"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LETTER_DEPARTMENTS = "ABCDEFGY"
"""Registration-department codes that are letters (GB 32100 lists A-G and Y besides digits)."""
TABLE_CODES = sorted({int(c) for c in checks._division_table()[0]})
EXAMPLES = settings(max_examples=150, deadline=None)


def ric_check(first17: str) -> str:
    return ric.calc_check_digit(first17 + "0")  # stdnum reads the first 17 of an 18-character number


SWAP = "swap"
SUBSTITUTION = "substitution"


def mutations(draw: st.DrawFn, value: str, alphabet: str) -> tuple[str, str]:
    """One character replaced by another of ``alphabet``, or two different neighbours swapped;
    returns the new value and which of the two it was."""
    position = draw(st.integers(0, len(value) - 1))
    if draw(st.booleans()) and position + 1 < len(value) and value[position] != value[position + 1]:
        return value[:position] + value[position + 1] + value[position] + value[position + 2 :], SWAP
    other = draw(st.sampled_from(alphabet.replace(value[position], "")))
    return value[:position] + other + value[position + 1 :], SUBSTITUTION


# --- GB 11643 ------------------------------------------------------------------------------


@st.composite
def valid_ids(draw: st.DrawFn, divisions: tuple[str, ...] = STABLE_DIVISIONS) -> str:
    born = draw(st.dates(date(1880, 1, 1), TODAY))
    first17 = f"{draw(st.sampled_from(divisions))}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return first17 + ric_check(first17)


@EXAMPLES
@given(st.lists(valid_ids(), min_size=1, max_size=30))
def test_numbers_with_stdnum_check_characters_pass_every_rule(numbers: list[str]) -> None:
    assert checks.gb11643(pa.array(numbers), TODAY).to_pylist() == [True] * len(numbers)
    for number in numbers:  # stdnum agrees wherever its stricter division-year rule allows
        assert ric.calc_check_digit(number) == number[-1]


@st.composite
def mutated_ids(draw: st.DrawFn) -> tuple[str, str]:
    number = draw(valid_ids())
    return number, mutations(draw, number, ID_CHARS)[0]


@EXAMPLES
@given(st.lists(mutated_ids(), min_size=1, max_size=30))
def test_mutated_numbers_get_stdnum_s_verdict_on_the_check_character(pairs: list[tuple[str, str]]) -> None:
    mutated = [m for _, m in pairs]
    check = checks.gb11643_check_digit(pa.array(mutated)).to_pylist()
    form = checks.gb11643_format(pa.array(mutated)).to_pylist()
    for (original, value), ok_check, ok_form in zip(pairs, check, form, strict=True):
        well_formed = re.fullmatch(checks.ID_PATTERN, value) is not None
        assert ok_form is well_formed
        if not well_formed:  # an X inside the number: reported once, under format
            assert ok_check is True
            continue
        assert ok_check is (ric.calc_check_digit(value) == value[-1])
        # ISO 7064 MOD 11-2 catches every single substitution and every neighbour swap
        assert value == original or ok_check is False


@EXAMPLES
@given(st.lists(valid_ids(divisions=("810000", "820000", "830000")), min_size=1, max_size=20))
def test_residence_permit_numbers_are_their_own_holder_class(numbers: list[str]) -> None:
    ids = pa.array(numbers)
    assert checks.gb11643(ids, TODAY).to_pylist() == [True] * len(numbers)
    assert checks.holder_code_matches(ids, pa.array(["111"] * len(numbers)), TODAY).to_pylist() == [
        True
    ] * len(numbers)
    for number in numbers:
        assert int(number[:6]) in checks.PERMIT_DIVISIONS
        assert ric.calc_check_digit(number) == number[-1]  # a real check character, no county code
    assert set(checks.PERMIT_DIVISIONS) == {810000, 820000, 830000}


@EXAMPLES
@given(st.sampled_from(("840000", "850000", "800000")), st.dates(date(1950, 1, 1), TODAY))
def test_only_the_three_permit_prefixes_are_exempt_from_the_division_table(prefix: str, born: date) -> None:
    first17 = f"{prefix}{born:%Y%m%d}011"
    number = first17 + ric_check(first17)
    assert checks.gb11643_check_digit(pa.array([number])).to_pylist() == [True]
    assert checks.gb11643_division(pa.array([number])).to_pylist() == [False]


# --- GB 32100 and GB 11714 ---------------------------------------------------------------


@st.composite
def valid_usccs(draw: st.DrawFn, departments: str = USCC_ALPHABET) -> str:
    department = draw(st.sampled_from(departments))
    kind = draw(st.sampled_from(USCC_ALPHABET))
    division = draw(st.one_of(st.sampled_from(TABLE_CODES).map(lambda c: f"{c:06d}"), st.just("100000")))
    body = "".join(draw(st.lists(st.sampled_from(USCC_ALPHABET), min_size=8, max_size=8)))
    first17 = f"{department}{kind}{division}{body}{org_check(body)}"
    return first17 + uscc.calc_check_digit(first17)


@EXAMPLES
@given(st.lists(valid_usccs(), min_size=1, max_size=30))
def test_codes_with_stdnum_check_characters_pass_every_rule(codes: list[str]) -> None:
    assert checks.gb32100(pa.array(codes)).to_pylist() == [True] * len(codes)
    for code in codes:
        assert uscc.calc_check_digit(code[:17]) == code[17]
        if code[:8].isdigit():
            assert uscc.is_valid(code)


@EXAMPLES
@given(st.lists(valid_usccs(departments=LETTER_DEPARTMENTS), min_size=1, max_size=20))
def test_letter_registration_departments_are_accepted(codes: list[str]) -> None:
    assert checks.gb32100(pa.array(codes)).to_pylist() == [True] * len(codes)
    assert not any(uscc.is_valid(c) for c in codes)  # stdnum wants eight leading digits


@st.composite
def mutated_usccs(draw: st.DrawFn) -> tuple[str, str]:
    code = draw(valid_usccs())
    return (code, *mutations(draw, code, USCC_ALPHABET))


@EXAMPLES
@given(st.lists(mutated_usccs(), min_size=1, max_size=30))
def test_mutated_codes_get_stdnum_s_verdict_and_the_gb11714_one(cases: list[tuple[str, str, str]]) -> None:
    values = pa.array([m for _, m, _ in cases])
    form = checks.gb32100_format(values).to_pylist()
    check = checks.gb32100_check(values).to_pylist()
    org = checks.gb32100_org_code(values).to_pylist()
    for (_, value, kind), ok_form, ok_check, ok_org in zip(cases, form, check, org, strict=True):
        if not ok_form:  # a letter moved into the division digits
            assert not value[2:8].isdigit()
            assert ok_check is True and ok_org is True
            continue
        assert ok_check is (uscc.calc_check_digit(value[:17]) == value[17])
        assert ok_org is (org_check(value[8:16]) == value[16])
        # mod 31 with weights prime to 31: every single substitution is caught
        assert kind == SWAP or ok_check is False


# --- GB/T 36904 (ISO 7064 MOD 37,36) -------------------------------------------------------


@st.composite
def valid_identifiers(draw: st.DrawFn) -> str:
    type_code = draw(valid_usccs()) + "".join(draw(st.lists(st.sampled_from(ALNUM), min_size=3, max_size=3)))
    issuer = draw(valid_usccs())
    serial = draw(st.text(ALNUM, min_size=1, max_size=40))
    version = f"{draw(st.integers(0, 999)):03d}"
    check = mod_37_36.calc_check_digit(type_code + issuer + serial + version)
    return ".".join([CERT_ROOT, type_code, issuer, serial, version, check])


@EXAMPLES
@given(st.lists(valid_identifiers(), min_size=1, max_size=20))
def test_identifiers_with_stdnum_check_characters_pass(values: list[str]) -> None:
    assert checks.gb36904(pa.array(values)).to_pylist() == [True] * len(values)


@st.composite
def mutated_identifiers(draw: st.DrawFn) -> tuple[str, str, str]:
    value = draw(valid_identifiers())
    head, tail = value[: len(CERT_ROOT) + 1], value[len(CERT_ROOT) + 1 :]
    parts = tail.split(".")
    which = draw(st.integers(0, len(parts) - 1))
    parts[which], kind = mutations(draw, parts[which], ALNUM)
    return value, head + ".".join(parts), kind


@EXAMPLES
@given(st.lists(mutated_identifiers(), min_size=1, max_size=20))
def test_mutated_identifiers_get_stdnum_s_verdict(cases: list[tuple[str, str, str]]) -> None:
    values = pa.array([m for _, m, _ in cases])
    form = checks.gb36904_format(values).to_pylist()
    check = checks.gb36904_check(values).to_pylist()
    for (_, value, kind), ok_form, ok_check in zip(cases, form, check, strict=True):
        assert ok_form is (re.fullmatch(checks.GB36904_PATTERN, value) is not None)
        if not ok_form:
            assert ok_check is True
            continue
        body = "".join(value[len(CERT_ROOT) + 1 :].split("."))
        assert ok_check is mod_37_36.is_valid(body)
        # the hybrid MOD 37,36 system catches every single substitution, not every swap
        assert kind == SWAP or ok_check is False


# --- the vectorised building blocks ---------------------------------------------------------

PATTERNS = (
    (checks.ID_PATTERN, checks._ID_CLASSES, "0123456789Xx"),
    (checks.MOBILE_PATTERN, checks._MOBILE_CLASSES, "0123456789"),
    (checks.DIVISION_PATTERN, checks._DIVISION_CLASSES, "0123456789a"),
    (checks.USCC_PATTERN, checks._USCC_CLASSES, USCC_ALPHABET + "IOSVZa"),
    (checks.CERTIFICATE_TYPE_PATTERN, checks._CERTIFICATE_TYPE_CLASSES, USCC_ALPHABET + "IOZ"),
)


@st.composite
def near_patterns(draw: st.DrawFn) -> tuple[int, list[str | None]]:
    which = draw(st.integers(0, len(PATTERNS) - 1))
    _, classes, alphabet = PATTERNS[which]
    width = classes.shape[0]
    text = st.text(alphabet + "é中 ", min_size=width - 2, max_size=width + 1)
    exact = st.text(alphabet, min_size=width, max_size=width)
    return which, draw(st.lists(st.one_of(text, exact, exact, st.none(), st.just("")), max_size=25))


@settings(max_examples=300, deadline=None)
@given(near_patterns(), st.integers(0, 3))
def test_byte_class_matching_is_the_anchored_regex(case: tuple[int, list[str | None]], cut: int) -> None:
    which, values = case
    pattern, classes, _ = PATTERNS[which]
    array = pa.array(["pad"] * cut + values, pa.string()).slice(cut)
    found, matrix = checks._fixed(array, classes)
    expected = [v is not None and re.fullmatch(pattern, v) is not None for v in values]
    assert found.tolist() == expected
    for row, value in enumerate(values):
        if expected[row]:
            assert bytes(matrix[row]).decode("ascii") == value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-719_162, 2_932_896), max_size=50))
def test_days_become_the_calendar_date(days: list[int]) -> None:
    got = checks._yyyymmdd_of_days(np.array(days, dtype=np.int64)).tolist()
    assert got == [int((date(1970, 1, 1) + timedelta(days=d)).strftime("%Y%m%d")) for d in days]


@EXAMPLES
@given(st.lists(valid_ids() | mutated_ids().map(lambda p: p[1]), min_size=2, max_size=30), st.integers(1, 5))
def test_parsing_once_per_array_never_mixes_up_slices(numbers: list[str], shift: int) -> None:
    assume(len(numbers) > shift)
    whole = pa.array(numbers)
    for start in (0, shift):  # same buffers, other offsets: each slice is parsed for itself
        part = whole.slice(start, len(numbers) - shift)
        expected = [
            not re.fullmatch(checks.ID_PATTERN, n) or ric.calc_check_digit(n) == n[-1] for n in numbers
        ]
        assert checks.gb11643_check_digit(part).to_pylist() == expected[start : start + len(numbers) - shift]


def test_a_fresh_parse_cache_parses_an_empty_chunked_array() -> None:
    calls: list[int] = []

    def parse(values: pa.ChunkedArray | pa.Array) -> tuple[int]:
        calls.append(len(values))
        return (len(values),)

    cached = checks._parsed_once(parse)
    assert cached(pa.chunked_array([], pa.string())) == (0,)
    assert cached(pa.chunked_array([], pa.string())) == (0,) and len(calls) == 1
