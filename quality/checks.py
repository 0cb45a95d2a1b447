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

from collections.abc import Callable
from datetime import date
from functools import lru_cache, wraps
from typing import Any, TypeAlias, TypeVar

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


def _byte_classes(*parts: tuple[str, int]) -> np.ndarray:
    """A fixed-width pattern as a ``(width, 256)`` table: which bytes each position allows.

    ``parts`` are (allowed characters, how many positions), e.g. ``("0123456789", 17)``.
    """
    rows: list[np.ndarray] = []
    for chars, count in parts:
        allowed = np.zeros(256, dtype=bool)
        allowed[np.frombuffer(chars.encode("ascii"), dtype=np.uint8)] = True
        rows += [allowed] * count
    table: np.ndarray = np.stack(rows)
    table.flags.writeable = False
    return table


def _fixed(values: pa.Array, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(matches, ``(n, width)`` byte matrix) of a string array against a fixed-width pattern.

    What the anchored regex the pattern constants spell says, without a regex engine: a
    value matches when it has exactly ``width`` bytes and each byte is in its position's
    class (a non-ASCII character has bytes no class allows). Rows that do not match hold
    arbitrary bytes in the matrix; callers mask them with the first result.
    """
    n, width = len(values), classes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros((0, width), dtype=np.uint8)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset : values.offset + n + 1]
    ok = np.diff(offsets) == width
    if values.null_count:
        ok &= np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not ok.all():
        # other lengths (and nulls) become a dummy of the right width: one contiguous block
        values = pc.if_else(pa.array(ok, type=pa.bool_()), values, "0" * width).cast(pa.string())
        offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset : values.offset + n + 1]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    start, end = int(offsets[0]), int(offsets[-1])
    if end - start != n * width:  # pragma: no cover - every row has width bytes by now
        raise ValueError("fixed-width view of a string array failed")
    matrix = data[start:end].reshape(n, width)
    for position in range(width):
        ok &= classes[position][matrix[:, position]]
    return ok, matrix


_DIGITS = "0123456789"
_ID_CLASSES = _byte_classes((_DIGITS, 17), (_DIGITS + "X", 1))
""":data:`ID_PATTERN` as byte classes."""
_MOBILE_CLASSES = _byte_classes(("1", 1), ("3456789", 1), (_DIGITS, 9))
""":data:`MOBILE_PATTERN` as byte classes."""
_DIVISION_CLASSES = _byte_classes((_DIGITS, 6))
""":data:`DIVISION_PATTERN` as byte classes."""


def _weighted_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``values @ weights`` for an ``(n, k)`` matrix of small integers, one column at a time.

    numpy's integer matrix product has no fast path; k column passes over int32 do not
    materialise an ``(n, k)`` int64 copy either.
    """
    total = np.zeros(values.shape[0], dtype=np.int32)
    for column, weight in enumerate(weights.tolist()):
        total += values[:, column].astype(np.int32) * weight
    return total


def _number(digits: np.ndarray) -> np.ndarray:
    """Integer value of each row of an ``(n, k)`` matrix of ASCII digits."""
    out = np.zeros(digits.shape[0], dtype=np.int64)
    for column in range(digits.shape[1]):
        out = out * 10 + (digits[:, column].astype(np.int64) - 48)
    return out


_Parsed = TypeVar("_Parsed")


def _buffers(values: ArrayLike) -> tuple[Any, ...]:
    """What identifies an array's content: its type, offset, length and buffer addresses.

    Arrow buffers are immutable, so two arrays with the same key hold the same values as
    long as the first is alive (:func:`_parsed_once` keeps it alive while it is cached).
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    return tuple(
        (
            str(c.type),
            c.offset,
            len(c),
            *((b.address, b.size) if b is not None else None for b in c.buffers()),
        )
        for c in chunks
    )


def _parsed_once(parse: Callable[[ArrayLike], _Parsed]) -> Callable[[ArrayLike], _Parsed]:
    """Remember the parse of the last array seen.

    A suite asks four or five rules of the same identity-number column (format, check
    character, birth date, division, then the cross-field rules); the regex match and the
    byte matrix they all start from are made once per column instead of once per rule.
    The result's arrays are read-only, so no rule can change what the next one reads.
    """
    last: list[tuple[Any, ...]] = [(object(), None, None)]  # a key no array has

    @wraps(parse)
    def cached(values: ArrayLike) -> _Parsed:
        key = _buffers(values)
        seen = last[0]  # one immutable tuple, read once: safe if threads share the cache
        if seen[0] == key:
            hit: _Parsed = seen[2]
            return hit
        result = parse(values)
        for part in result if isinstance(result, tuple) else ():
            if isinstance(part, np.ndarray):
                part.flags.writeable = False
        last[0] = (key, values, result)
        return result

    return cached


@_parsed_once
def _ids(ids: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(missing, well formed, byte matrix) of an array of identity numbers."""
    values = _strings(ids)
    ok, matrix = _fixed(values, _ID_CLASSES)
    return _missing(values), ok, matrix


def gb11643_format(ids: ArrayLike) -> pa.BooleanArray:
    """17 ASCII digits then a digit or ``X`` (upper case, as GB 11643 prints it)."""
    missing, ok, _ = _ids(ids)
    return _result(missing | ok)


def gb11643_check_digit(ids: ArrayLike) -> pa.BooleanArray:
    """The 18th character equals ``"10X98765432"[sum(digit * weight) mod 11]``."""
    missing, ok, matrix = _ids(ids)
    total = _weighted_sum(matrix[:, :17], _WEIGHTS) - 48 * int(_WEIGHTS.sum())
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


@lru_cache(maxsize=1)
def _division_last_years() -> np.ndarray:
    """Last year each six-digit code was in use, indexed by the code; -1 for codes never listed.

    A direct lookup: one gather per row instead of a binary search over the table.
    """
    table_codes, _, last_year = _division_table()
    last = np.full(1_000_000, -1, dtype=np.int16)
    np.maximum.at(last, table_codes, last_year.astype(np.int16))
    last.flags.writeable = False
    return last


def _known_division(codes: np.ndarray, years: np.ndarray | None) -> np.ndarray:
    """Code is in the table; with ``years``, it was still in use in that year or later.

    python-stdnum requires the code to be in use *in* the birth year, but the number is
    given where the person is registered when it is issued (from 1984, to people born
    long before), and the table's first years (mostly 1980-1983) mark where its records
    start, not when a county was created. So a code passes if it had not been abolished
    before the birth year: stricter than "ever existed", without rejecting 1880 births.
    """
    last = _division_last_years()[np.clip(codes, 0, 999_999)]
    if years is None:
        known: np.ndarray = last >= 0
    else:
        known = (last >= 0) & (last >= years)
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


def _yyyymmdd_of_days(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as YYYYMMDD integers (proleptic Gregorian), in integer arithmetic.

    The civil-from-days algorithm (H. Hinnant): much faster than numpy's datetime64 unit
    casts, and exact for every date32 value.
    """
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    result: np.ndarray = year * 10_000 + month * 100 + day
    return result


def id_birth_date_matches(ids: ArrayLike, birth_dates: ArrayLike) -> pa.BooleanArray:
    """The birth date embedded in the identity number equals the birth date field."""
    missing, ok, matrix = _ids(ids)
    dates = _dates(birth_dates)
    no_date = np.asarray(dates.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    days = np.asarray(pc.fill_null(dates.cast(pa.int32()), 0).to_numpy(zero_copy_only=False))
    same = _number(matrix[:, 6:14]) == _yyyymmdd_of_days(days.astype(np.int64))
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
    return _result(_missing(strings) | _fixed(strings, _MOBILE_CLASSES)[0])


def gb2260(codes: ArrayLike) -> pa.BooleanArray:
    """Six digits that are (or were) a GB/T 2260 division code in python-stdnum's table.

    No year is known for a bare code, and records of deceased or moved-out residents keep
    codes that have since been abolished, so any code the table has ever listed passes.
    """
    strings = _strings(codes)
    ok, matrix = _fixed(strings, _DIVISION_CLASSES)
    numbers = _number(matrix)
    return _result(_missing(strings) | (ok & _known_division(numbers, None)))


# --- GB 32100 unified social credit codes ---------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""GB 32100 code characters: digits and upper-case letters without I, O, S, V, Z."""
USCC_PATTERN = r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$"
"""Registration department and organisation type (any code character: letter departments
such as N or Y exist besides 1, 5 and 9), a 6-digit division code, the 9-character
organisation code and the check character."""

_USCC_CLASSES = _byte_classes((USCC_ALPHABET, 2), (_DIGITS, 6), (USCC_ALPHABET, 10))
""":data:`USCC_PATTERN` as byte classes."""

CENTRAL_DIVISIONS = (100000,)
"""Division part of codes registered at central level (e.g. ministries' 11100000...): not a
GB/T 2260 county, but what GB 32100 prescribes for the national registration authority."""

_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ORG_CHECK_CHARS = np.frombuffer(b"0123456789X0", dtype=np.uint8)
"""GB 11714 check: index ``11 - S mod 11``, so 10 is X and 11 is 0."""


def _lookup(alphabet: str) -> np.ndarray:
    """Byte -> position in ``alphabet`` (-1 for other bytes), for vectorised indexing."""
    table = np.full(256, -1, dtype=np.int64)
    for value, char in enumerate(alphabet.encode("ascii")):
        table[char] = value
    return table


_USCC_VALUES = _lookup(USCC_ALPHABET)
_USCC_CHARS = np.frombuffer(USCC_ALPHABET.encode("ascii"), dtype=np.uint8)
_ALNUM_VALUES = _lookup("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
"""Digits 0-9 and letters A=10 .. Z=35: the values GB 11714 and ISO 7064 MOD 37,36 use."""


@_parsed_once
def _usccs(codes: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(missing, well formed, byte matrix) of an array of unified social credit codes."""
    values = _strings(codes)
    ok, matrix = _fixed(values, _USCC_CLASSES)
    return _missing(values), ok, matrix


def _uscc_check_ok(matrix: np.ndarray) -> np.ndarray:
    total = _weighted_sum(_USCC_VALUES[matrix[:, :17]], _USCC_WEIGHTS)
    return _USCC_CHARS[(31 - total % 31) % 31] == matrix[:, 17]


def _org_code_ok(matrix: np.ndarray) -> np.ndarray:
    total = _weighted_sum(_ALNUM_VALUES[matrix[:, 8:16]], _ORG_WEIGHTS)
    return _ORG_CHECK_CHARS[11 - total % 11] == matrix[:, 16]


def _uscc_division_ok(matrix: np.ndarray) -> np.ndarray:
    codes = _number(matrix[:, 2:8])
    return _known_division(codes, None) | np.isin(codes, CENTRAL_DIVISIONS)


def gb32100_format(codes: ArrayLike) -> pa.BooleanArray:
    """18 code characters (upper case) with a 6-digit division part: see :data:`USCC_PATTERN`."""
    missing, ok, _ = _usccs(codes)
    return _result(missing | ok)


def gb32100_check(codes: ArrayLike) -> pa.BooleanArray:
    """The 18th character is ``alphabet[(31 - S mod 31) mod 31]`` over weighted positions 1-17."""
    missing, ok, matrix = _usccs(codes)
    return _result(missing | ~ok | _uscc_check_ok(matrix))


def gb32100_org_code(codes: ArrayLike) -> pa.BooleanArray:
    """Positions 9-17, the GB 11714 organisation code, carry their own check character."""
    missing, ok, matrix = _usccs(codes)
    return _result(missing | ~ok | _org_code_ok(matrix))


def gb32100_division(codes: ArrayLike) -> pa.BooleanArray:
    """Positions 3-8 are a code GB/T 2260 lists (or listed), or :data:`CENTRAL_DIVISIONS`.

    Codes outlive division changes (a company keeps its code when its county is merged),
    so any code the table has ever listed passes, as in :func:`gb2260`.
    """
    missing, ok, matrix = _usccs(codes)
    return _result(missing | ~ok | _uscc_division_ok(matrix))


def gb32100(codes: ArrayLike) -> pa.BooleanArray:
    """All four GB 32100 rules at once (format, check character, organisation code, division)."""
    missing, ok, matrix = _usccs(codes)
    valid = ok & _uscc_check_ok(matrix) & _org_code_ok(matrix) & _uscc_division_ok(matrix)
    return _result(missing | valid)


CERTIFICATE_TYPE_PATTERN = r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}[0-9A-Z]{3}$"
"""GB/T 36904 certificate type code: the defining authority's USCC and a 3-character sequence."""
_CERTIFICATE_TYPE_CLASSES = _byte_classes(
    (USCC_ALPHABET, 2), (_DIGITS, 6), (USCC_ALPHABET, 10), (_DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 3)
)
""":data:`CERTIFICATE_TYPE_PATTERN` as byte classes."""


def certificate_type_code(codes: ArrayLike) -> pa.BooleanArray:
    """A certificate type code whose first 18 characters are a valid GB 32100 code."""
    values = _strings(codes)
    ok, matrix = _fixed(values, _CERTIFICATE_TYPE_CLASSES)
    matrix = matrix[:, :18]
    valid = ok & _uscc_check_ok(matrix) & _org_code_ok(matrix) & _uscc_division_ok(matrix)
    return _result(_missing(values) | valid)


# --- GB/T 36904 electronic certificate identifiers -------------------------------------

GB36904_ROOT = "1.2.156.3005.2"
"""Object identifier arc under which every electronic certificate identifier lives."""
GB36904_PATTERN = (
    r"^1\.2\.156\.3005\.2"
    r"\.[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}[0-9A-Z]{3}"
    r"\.[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}"
    r"\.[0-9A-Z]{1,40}\.[0-9]{3}\.[0-9A-Z]$"
)
"""Root, type code (USCC + 3), issuer USCC, serial, 3-digit version, check character.

The serial is the issuer's own numbering; 1-40 upper-case alphanumerics admits every
serial seen in issued identifiers (check against the standard's text before narrowing)."""
_MOD = 36


def _mod_37_36_valid(bodies: pa.Array) -> np.ndarray:
    """ISO 7064 MOD 37,36 (hybrid) over strings of varying length, check char included.

    The recurrence runs over character positions, one numpy step per position for all
    rows at once; rows shorter than the position keep their state.
    """
    n = len(bodies)
    offsets = np.frombuffer(bodies.buffers()[1], dtype=np.int32)[bodies.offset : bodies.offset + n + 1]
    data = np.frombuffer(bodies.buffers()[2], dtype=np.uint8) if n else np.zeros(0, dtype=np.uint8)
    starts = offsets[:-1].astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    state = np.full(n, _MOD // 2, dtype=np.int64)
    for position in range(int(lengths.max()) if n else 0):
        active = lengths > position
        value = _ALNUM_VALUES[data[np.where(active, starts + position, 0)]]
        step = ((np.where(state == 0, _MOD, state) * 2) % (_MOD + 1) + value) % _MOD
        state = np.where(active, step, state)
    valid: np.ndarray = state == 1
    return valid


def _identifiers(ids: ArrayLike) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(missing, well formed, values) of an array of certificate identifiers."""
    values = _strings(ids)
    return _missing(values), _matches(values, GB36904_PATTERN), values


def gb36904_format(ids: ArrayLike) -> pa.BooleanArray:
    """Dot-separated identifier under :data:`GB36904_ROOT`: see :data:`GB36904_PATTERN`."""
    missing, ok, _ = _identifiers(ids)
    return _result(missing | ok)


def gb36904_check(ids: ArrayLike) -> pa.BooleanArray:
    """ISO 7064 MOD 37,36 over type + issuer + serial + version + check character is 1."""
    missing, ok, values = _identifiers(ids)
    if not len(values):
        return _result(missing)
    # a short dummy stands in for malformed rows, which pass here: the format rule reports them
    padded = pc.if_else(pa.array(ok, type=pa.bool_()), values, "1.2.156.3005.2.0")
    body = pc.replace_substring(pc.utf8_slice_codeunits(padded, len(GB36904_ROOT) + 1), ".", "")
    return _result(missing | ~ok | _mod_37_36_valid(body.cast(pa.string())))


def gb36904(ids: ArrayLike) -> pa.BooleanArray:
    """Both GB/T 36904 rules at once (format and check character)."""
    return _result(np.asarray(gb36904_format(ids), dtype=bool) & np.asarray(gb36904_check(ids), dtype=bool))


# --- certificate row checks -----------------------------------------------------------

ACTIVE_STATUS = "有效"
"""The certificate status that claims the certificate is in force."""


def _day_numbers(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(null, days since 1970) of a date array; nulls read as day 0."""
    dates = _dates(values)
    null = np.asarray(dates.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    days = np.asarray(pc.fill_null(dates.cast(pa.int32()), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return null, days


def validity_window_ordered(valid_from: ArrayLike, valid_until: ArrayLike) -> pa.BooleanArray:
    """``valid_from <= valid_until``; a missing end (long-term validity) or start passes."""
    from_null, start = _day_numbers(valid_from)
    until_null, end = _day_numbers(valid_until)
    return _result(from_null | until_null | (start <= end))


def validity_status_consistent(valid_until: ArrayLike, status: ArrayLike, today: date) -> pa.BooleanArray:
    """A certificate whose validity ended before ``today`` is not reported as 有效.

    Only that direction is enforced: a 过期 certificate with a later end date may have been
    expired early by its issuer, and statuses are changed by the source, not the hub.
    """
    until_null, end = _day_numbers(valid_until)
    active = np.asarray(pc.fill_null(pc.equal(_strings(status), ACTIVE_STATUS), False), dtype=bool)
    ended = ~until_null & (end < (today - date(1970, 1, 1)).days)
    return _result(~(active & ended))


PERSON_CODE_TYPE = "111"
"""Holder code type of a resident identity number (GB 11643)."""
ENTITY_CODE_TYPE = "001"
"""Holder code type of a unified social credit code (GB 32100)."""


def holder_code_matches(codes: ArrayLike, code_types: ArrayLike, today: date) -> pa.BooleanArray:
    """Type 111 needs a valid GB 11643 number, 001 a valid GB 32100 code.

    Other types pass: an unknown type is the ``code_list`` rule's concern, a missing code
    the ``required`` rule's.
    """
    kinds = _strings(code_types)
    person = np.asarray(pc.fill_null(pc.equal(kinds, PERSON_CODE_TYPE), False), dtype=bool)
    entity = np.asarray(pc.fill_null(pc.equal(kinds, ENTITY_CODE_TYPE), False), dtype=bool)
    as_person = np.asarray(gb11643(codes, today), dtype=bool)
    as_entity = np.asarray(gb32100(codes), dtype=bool)
    return _result((~person | as_person) & (~entity | as_entity))
