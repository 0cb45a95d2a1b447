"""Vectorised national-standard checks over Arrow arrays.

Each check returns a boolean array with no nulls: ``True`` means the value passes.
A missing value (null or empty string) passes every check here, because "is it there"
is the separate ``required`` rule; reporting it twice would blur the reason.

The GB 11643 checks are split by defect so that one bad number gets one rule code: the
check digit, birth date and division rules only judge numbers that have the right
format, and pass the rest (the format rule reports those).

python-stdnum (``stdnum.cn.ric``) validates one value at a time and is the test oracle;
these functions do the same work with ``pyarrow.compute`` and numpy, with no Python loop
over rows.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray

ID_PATTERN = r"^[0-9]{17}[0-9X]$"
MOBILE_PATTERN = r"^1[3-9][0-9]{9}$"
DIVISION_PATTERN = r"^[0-9]{6}$"

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK_CHARS = np.frombuffer(b"10X98765432", dtype=np.uint8)
_EARLIEST_BIRTH = 18800101
"""GB 11643 numbers were issued to the living from 1984; 1880 leaves room for the oldest
registered residents while still rejecting typos such as year 0949."""

PERMIT_DIVISIONS = (810000, 820000, 830000)
"""Hong Kong, Macao and Taiwan residence-permit numbers carry these prefixes instead of a
county code; they are a separate holder class, not invalid numbers."""

_OPEN_START = 0
_OPEN_END = 9999
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_DUMMY_ID = "0" * 18


def _strings(values: ArrayLike) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


def _missing(values: pa.Array) -> np.ndarray:
    blank = pc.fill_null(pc.equal(values, ""), True)
    return np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    found = pc.fill_null(pc.match_substring_regex(values, pattern), False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _result(passes: np.ndarray) -> pa.BooleanArray:
    result: pa.BooleanArray = pa.array(passes, type=pa.bool_())
    return result


def _fixed_width(values: pa.Array, ok: np.ndarray, width: int) -> np.ndarray:
    """Bytes of each value as an ``(n, width)`` uint8 matrix; rows not ``ok`` are zeros.

    Values that pass ``ok`` have exactly ``width`` ASCII bytes, so after replacing the others
    with a dummy of that width the data buffer is one contiguous block.
    """
    n = len(values)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint8)
    filled = pc.if_else(pa.array(ok, type=pa.bool_()), values, "0" * width).cast(pa.string())
    offsets = np.frombuffer(filled.buffers()[1], dtype=np.int32)[filled.offset : filled.offset + n + 1]
    data = np.frombuffer(filled.buffers()[2], dtype=np.uint8)
    start, end = int(offsets[0]), int(offsets[-1])
    if end - start != n * width:  # pragma: no cover - guarded by the regex above
        raise ValueError("fixed-width view of a string array failed")
    return data[start:end].reshape(n, width)


def _number(digits: np.ndarray) -> np.ndarray:
    """Integer value of each row of an ``(n, k)`` matrix of ASCII digits."""
    out = np.zeros(digits.shape[0], dtype=np.int64)
    for column in range(digits.shape[1]):
        out = out * 10 + (digits[:, column].astype(np.int64) - 48)
    return out


def _ids(ids: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(missing, well formed, byte matrix) of an array of identity numbers."""
    values = _strings(ids)
    ok = _matches(values, ID_PATTERN)
    return _missing(values), ok, _fixed_width(values, ok, 18)


def gb11643_format(ids: ArrayLike) -> pa.BooleanArray:
    """17 ASCII digits then a digit or ``X`` (upper case, as GB 11643 prints it)."""
    missing, ok, _ = _ids(ids)
    return _result(missing | ok)


def gb11643_check_digit(ids: ArrayLike) -> pa.BooleanArray:
    """The 18th character equals ``"10X98765432"[sum(digit * weight) mod 11]``."""
    missing, ok, matrix = _ids(ids)
    total = (matrix[:, :17].astype(np.int64) - 48) @ _WEIGHTS
    correct = _CHECK_CHARS[total % 11] == matrix[:, 17]
    return _result(missing | ~ok | correct)


def _valid_yyyymmdd(yyyymmdd: np.ndarray) -> np.ndarray:
    year, month, day = yyyymmdd // 10000, yyyymmdd // 100 % 100, yyyymmdd % 100
    month_ok = (month >= 1) & (month <= 12)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    last = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    return month_ok & (day >= 1) & (day <= last)


def _as_yyyymmdd(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def gb11643_birth_date(ids: ArrayLike, today: date) -> pa.BooleanArray:
    """The embedded YYYYMMDD is a real calendar date between 1880-01-01 and ``today``."""
    missing, ok, matrix = _ids(ids)
    born = _number(matrix[:, 6:14])
    plausible = _valid_yyyymmdd(born) & (born >= _EARLIEST_BIRTH) & (born <= _as_yyyymmdd(today))
    return _result(missing | ~ok | plausible)


@lru_cache(maxsize=1)
def _division_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GB/T 2260 codes from python-stdnum's ``cn/loc`` table as sorted interval rows.

    Returns ``(codes, first_year, last_year)``; a code valid over several periods (or under
    several names) has one row per period, open ends are 0 and 9999.
    """
    from stdnum import numdb

    counties: dict[int, dict[str, str]] = {}
    for length, low, high, _props, children in numdb.get("cn/loc").prefixes:
        if length != 2:
            continue
        for province in range(int(low), int(high) + 1):
            for c_length, c_low, c_high, c_props, _ in children:
                if c_length != 4:
                    continue
                for county in range(int(c_low), int(c_high) + 1):
                    # later lines override earlier ones, as numdb.info() merges them
                    counties.setdefault(province * 10000 + county, {}).update(c_props)
    rows: list[tuple[int, int, int]] = []
    for code, props in counties.items():
        for name in props.get("county", "").split(","):
            if not name.startswith("["):
                rows.append((code, _OPEN_START, _OPEN_END))
                continue
            start, end = name[1:].split("]", 1)[0].split("-")
            rows.append((code, int(start) if start else _OPEN_START, int(end) if end else _OPEN_END))
    rows.sort()
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()


def _known_division(codes: np.ndarray, years: np.ndarray | None) -> np.ndarray:
    """Code is in the table; with ``years``, it was still in use in that year or later.

    python-stdnum requires the code to be in use *in* the birth year, but the number is
    given where the person is registered when it is issued (from 1984, to people born
    long before), and the table's first years (mostly 1980-1983) mark where its records
    start, not when a county was created. So a code passes if it had not been abolished
    before the birth year: stricter than "ever existed", without rejecting 1880 births.
    """
    table_codes, _, last_year = _division_table()
    lo = np.searchsorted(table_codes, codes, side="left")
    hi = np.searchsorted(table_codes, codes, side="right")
    known = np.zeros(codes.shape[0], dtype=bool)
    longest = int((hi - lo).max()) if codes.size else 0
    for k in range(longest):
        row = lo + k
        present = row < hi
        if years is None:
            known |= present
        else:
            safe = np.where(present, row, 0)
            known |= present & (last_year[safe] >= years)
    return known


def gb11643_division(ids: ArrayLike) -> pa.BooleanArray:
    """The first six digits are a GB/T 2260 code not abolished before the birth year.

    Residence-permit prefixes (810000, 820000, 830000) pass: see :data:`PERMIT_DIVISIONS`.
    """
    missing, ok, matrix = _ids(ids)
    codes = _number(matrix[:, :6])
    years = _number(matrix[:, 6:10])
    known = _known_division(codes, years) | np.isin(codes, PERMIT_DIVISIONS)
    return _result(missing | ~ok | known)


def gb11643(ids: ArrayLike, today: date) -> pa.BooleanArray:
    """All four GB 11643 rules at once (format, check digit, birth date, division)."""
    passes = (
        np.asarray(gb11643_format(ids), dtype=bool)
        & np.asarray(gb11643_check_digit(ids), dtype=bool)
        & np.asarray(gb11643_birth_date(ids, today), dtype=bool)
        & np.asarray(gb11643_division(ids), dtype=bool)
    )
    return _result(passes)


def _dates(values: ArrayLike) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.date32())
    if pa.types.is_timestamp(values.type) or pa.types.is_date64(values.type):
        values = values.cast(pa.date32())
    if not pa.types.is_date32(values.type):
        raise TypeError(f"expected a date array, got {values.type}")
    return values


def id_birth_date_matches(ids: ArrayLike, birth_dates: ArrayLike) -> pa.BooleanArray:
    """The birth date embedded in the identity number equals the birth date field."""
    missing, ok, matrix = _ids(ids)
    dates = _dates(birth_dates)
    no_date = np.asarray(dates.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    days = np.asarray(pc.fill_null(dates.cast(pa.int32()), 0).to_numpy(zero_copy_only=False))
    stamp = days.astype("datetime64[D]")
    years = stamp.astype("datetime64[Y]").astype(np.int64) + 1970
    months = stamp.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day_of_month = (stamp - stamp.astype("datetime64[M]")).astype(np.int64) + 1
    field = years * 10000 + months * 100 + day_of_month
    same = _number(matrix[:, 6:14]) == field
    return _result(missing | ~ok | no_date | same)


def id_gender_matches(ids: ArrayLike, genders: ArrayLike) -> pa.BooleanArray:
    """Gender "1" needs an odd 17th digit, "2" an even one; "0", "9" and others pass.

    Values outside the code list are the ``code_list`` rule's concern, not this one's.
    """
    missing, ok, matrix = _ids(ids)
    gender = _strings(genders)
    male = np.asarray(pc.fill_null(pc.equal(gender, "1"), False).to_numpy(zero_copy_only=False))
    female = np.asarray(pc.fill_null(pc.equal(gender, "2"), False).to_numpy(zero_copy_only=False))
    odd = (matrix[:, 16].astype(np.int64) - 48) % 2 == 1
    consistent = ~(male | female) | (male & odd) | (female & ~odd)
    return _result(missing | ~ok | consistent)


def mobile_cn(values: ArrayLike) -> pa.BooleanArray:
    """Mainland mobile number: 11 digits starting 13-19, no prefix or separators."""
    strings = _strings(values)
    return _result(_missing(strings) | _matches(strings, MOBILE_PATTERN))


def gb2260(codes: ArrayLike) -> pa.BooleanArray:
    """Six digits that are (or were) a GB/T 2260 division code in python-stdnum's table.

    No year is known for a bare code, and records of deceased or moved-out residents keep
    codes that have since been abolished, so any code the table has ever listed passes.
    """
    strings = _strings(codes)
    ok = _matches(strings, DIVISION_PATTERN)
    numbers = _number(_fixed_width(strings, ok, 6))
    return _result(_missing(strings) | (ok & _known_division(numbers, None)))
