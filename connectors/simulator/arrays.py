"""Vectorised building blocks the department simulators share: seeded random blocks, defect
placement, character matrices, GB 11643 identity-number checks, GB 32100 unified social
credit codes with their GB 11714 organisation codes, places, dates and batching."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import numdb

from connectors.simulator.divisions import county_table, parse_spans

CHECK_CHARS = "10X98765432"
"""GB 11643 check characters, indexed by the weighted sum of the 17 body digits mod 11."""

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""GB 32100 code characters: digits and capitals without I, O, S, V, Z."""
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_RIC_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ORG_CHECK_CHARS = "0123456789X0"
"""GB 11714 check character of each value 11 - S mod 11 (index 10 is X, 11 is 0)."""

_USCC_VALUE = np.full(256, -1, dtype=np.int64)
_USCC_VALUE[np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(len(USCC_ALPHABET))
_ORG_VALUE = np.full(256, -1, dtype=np.int64)
_ORG_VALUE[48:58] = np.arange(10)
_ORG_VALUE[65:91] = np.arange(10, 36)
"""GB 11714 character values: digits as themselves, letters A=10 ... Z=35."""


def start_of_today() -> dt.datetime:
    return dt.datetime.combine(dt.date.today(), dt.time())


def block_rng(seed: int, stream: int, block: int) -> np.random.Generator:
    """A generator for one block of one stream: blocks are reproducible on their own, so a
    record's content depends on the seed and its position, not on how many follow it."""
    return np.random.default_rng([seed, stream, block])


# --- defect rates shared by the entity and certificate simulators -----------------------------


@dataclass(frozen=True)
class Rates:
    """Base of a simulator's defect rates: one float field per defect kind, disjoint per row.

    ``DUPLICATE`` names the kind whose rows copy the key of one clean row each, so they use
    up as many clean rows again, and both rows of a pair are to be quarantined.
    """

    DUPLICATE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for kind, rate in self.as_dict().items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"defect rate {kind}={rate} is not between 0 and 1")
        used = sum(self.as_dict().values()) + self.as_dict().get(self.DUPLICATE, 0.0)
        if used > 0.5:
            raise ValueError(
                f"defect rates use {used:.0%} of rows (duplicates count twice); at most 50% "
                "leaves room for the clean rows duplicates are copied from"
            )

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def uniform(cls, rate: float) -> Any:
        """The same rate for every defect kind."""
        return cls(**dict.fromkeys(cls.kinds(), rate))

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def counts(self, rows: int) -> dict[str, int]:
        """Exact number of rows with each defect among ``rows`` generated rows."""
        return {kind: share(rate, rows) for kind, rate in self.as_dict().items()}

    def block_counts(self, start: int, rows: int) -> dict[str, int]:
        """Defects in rows ``start .. start + rows``: summed over blocks, exactly :meth:`counts`."""
        return {k: share(r, start + rows) - share(r, start) for k, r in self.as_dict().items()}

    def expected_quarantined(self, rows: int) -> int:
        counts = self.counts(rows)
        return sum(counts.values()) + counts.get(self.DUPLICATE, 0)


def share(rate: float, rows: int) -> int:
    return int(np.floor(rate * rows + 0.5))


def assign(
    rng: np.random.Generator, m: int, counts: Mapping[str, int], duplicate: str
) -> dict[str, np.ndarray]:
    """Disjoint row positions per defect kind, plus ``_sources``: the clean rows duplicates copy."""
    needed = sum(counts.values()) + counts.get(duplicate, 0)
    if needed > m:
        raise ValueError(f"a block of {m} rows cannot hold {needed} defective and source rows")
    order = rng.permutation(m)
    positions: dict[str, np.ndarray] = {}
    at = 0
    for kind in (*counts, "_sources"):
        k = counts[duplicate if kind == "_sources" else kind]
        positions[kind] = np.sort(order[at : at + k])
        at += k
    return positions


def defective(m: int, positions: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows a correct validator quarantines: every defect row and every duplicate's source."""
    mask = np.zeros(m, dtype=bool)
    for rows in positions.values():
        mask[rows] = True
    return mask


# --- fixed-width strings as byte matrices -----------------------------------------------------


def char_matrix(array: pa.Array | pa.ChunkedArray, width: int) -> np.ndarray:
    """``(n, width)`` uint8 view of ASCII strings that all have ``width`` characters."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise ValueError("fixed-width strings must not be null")
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    if len(array) and not np.all(np.diff(offsets) == width):
        raise ValueError(f"strings are not all {width} characters long")
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    return data[offsets[0] : offsets[0] + width * len(array)].reshape(len(array), width)


def strings(matrix: np.ndarray) -> pa.Array:
    """Arrow strings from an ``(n, width)`` uint8 matrix of ASCII characters."""
    n, width = matrix.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(matrix, dtype=np.uint8)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """``(n, width)`` ASCII digit matrix of non-negative integers, zero-padded."""
    out = np.empty((values.size, width), dtype=np.uint8)
    rest = values.astype(np.int64)
    for col in range(width - 1, -1, -1):
        out[:, col] = 48 + rest % 10
        rest //= 10
    return out


def base_chars(values: np.ndarray, width: int, alphabet: str) -> np.ndarray:
    """``(n, width)`` matrix of ``values`` written in base ``len(alphabet)`` over ``alphabet``."""
    table = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    out = np.empty((values.size, width), dtype=np.uint8)
    rest = values.astype(np.int64)
    for col in range(width - 1, -1, -1):
        out[:, col] = table[rest % len(alphabet)]
        rest //= len(alphabet)
    return out


def permuted(index: np.ndarray, modulus: int, seed: int, multiplier: int) -> np.ndarray:
    """A bijection of ``0 .. modulus-1`` applied to ``index`` (``multiplier`` coprime to
    ``modulus``, ``index * multiplier`` within int64): distinct indexes give distinct codes,
    so identifiers are unique without a lookup of those already drawn. A multiplier near
    0.618 of the modulus spreads neighbouring indexes over the whole code space."""
    if np.gcd(multiplier, modulus) != 1:
        raise ValueError(f"multiplier {multiplier} shares a factor with modulus {modulus}")
    offset = (seed * 2_654_435_761) % modulus
    return np.asarray((index.astype(np.int64) * multiplier + offset) % modulus, dtype=np.int64)


# --- GB 11643 (identity numbers) --------------------------------------------------------------


def ric_check_index(matrix: np.ndarray) -> np.ndarray:
    """Index into :data:`CHECK_CHARS` of each 17-digit body's check character."""
    total = (matrix[:, :17].astype(np.int64) - 48) @ _RIC_WEIGHTS
    return np.asarray(total % 11, dtype=np.int64)


def break_ric(rng: np.random.Generator, ids: pa.Array) -> pa.Array:
    """The same identity numbers with a wrong check character each."""
    matrix = char_matrix(ids, 18).copy()
    wrong = (ric_check_index(matrix) + rng.integers(1, 11, len(ids))) % 11
    matrix[:, 17] = np.frombuffer(CHECK_CHARS.encode(), dtype=np.uint8)[wrong]
    return strings(matrix)


def clean_persons(table: pa.Table) -> np.ndarray:
    """Rows of a population table a correct validator accepts: right check character, the
    birth date and gender the number encodes, a name, and a number no other row has."""
    ids = char_matrix(table.column("id_number"), 18)
    checks = np.frombuffer(CHECK_CHARS.encode(), dtype=np.uint8)[ric_check_index(ids)]
    ok = checks == ids[:, 17]
    births = table.column("birth_date").to_numpy(zero_copy_only=False).astype("M8[D]")
    ymd = ((ids[:, 6:14].astype(np.int64) - 48) * 10 ** np.arange(7, -1, -1)).sum(axis=1)
    ok &= ymd == _ymd(births)
    male = (ids[:, 16].astype(np.int64) - 48) % 2 == 1
    ok &= male == (table.column("gender").to_numpy(zero_copy_only=False) == "1")
    ok &= table.column("name").is_valid().to_numpy(zero_copy_only=False)
    body = ((ids[:, :17].astype(np.int64) - 48) * 10 ** np.arange(16, -1, -1, dtype=np.int64)).sum(axis=1)
    _, inverse, counts = np.unique(body, return_inverse=True, return_counts=True)
    ok &= counts[inverse] == 1
    return ok


def _ymd(days: np.ndarray) -> np.ndarray:
    months = days.astype("M8[M]")
    year = months.astype("M8[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months.astype("M8[D]")).astype(np.int64) + 1
    return np.asarray(year * 10_000 + month * 100 + day, dtype=np.int64)


# --- GB 32100 / GB 11714 (unified social credit codes, organisation codes) -------------------


def org_check_value(body: np.ndarray) -> np.ndarray:
    """11 - S mod 11 of each 8-character organisation-code body (10 is X, 11 is 0)."""
    values = _ORG_VALUE[body]
    if (values < 0).any():
        raise ValueError("organisation-code bodies hold digits and capital letters only")
    return np.asarray(11 - (values @ _ORG_WEIGHTS) % 11, dtype=np.int64)


def uscc_check_index(first17: np.ndarray) -> np.ndarray:
    """Index into :data:`USCC_ALPHABET` of each code's check character."""
    values = _USCC_VALUE[first17]
    if (values < 0).any():
        raise ValueError("a unified social credit code holds only characters of its alphabet")
    return np.asarray((31 - (values @ _USCC_WEIGHTS) % 31) % 31, dtype=np.int64)


_ALPHA = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_ORG_CHARS = np.frombuffer(ORG_CHECK_CHARS.encode(), dtype=np.uint8)


def uscc_matrix(prefix: np.ndarray, division: np.ndarray, org_body: np.ndarray) -> np.ndarray:
    """``(n, 18)`` codes from a 2-character prefix matrix (registration department and
    organisation type), division codes and 8-character organisation-code bodies."""
    n = division.size
    out = np.empty((n, 18), dtype=np.uint8)
    out[:, :2] = prefix
    out[:, 2:8] = digits(division, 6)
    out[:, 8:16] = org_body
    out[:, 16] = _ORG_CHARS[org_check_value(org_body)]
    out[:, 17] = _ALPHA[uscc_check_index(out[:, :17])]
    return out


def seal_uscc(matrix: np.ndarray) -> None:
    """Recompute the final check character in place (after a change to the first 17)."""
    matrix[:, 17] = _ALPHA[uscc_check_index(matrix[:, :17])]


def break_uscc_check(rng: np.random.Generator, matrix: np.ndarray) -> None:
    """Replace the final check character by another character of the alphabet, in place."""
    right = uscc_check_index(matrix[:, :17])
    matrix[:, 17] = _ALPHA[(right + rng.integers(1, 31, len(matrix))) % 31]


def break_org_check(rng: np.random.Generator, matrix: np.ndarray) -> None:
    """Give the embedded organisation code a wrong check character, keeping the overall
    check right (so only the GB 11714 rule catches it), in place."""
    right = org_check_value(matrix[:, 8:16])
    wrong = (right - 1 + rng.integers(1, 11, len(matrix))) % 11 + 1
    matrix[:, 16] = _ORG_CHARS[wrong]
    seal_uscc(matrix)


def government_uscc(division: np.ndarray, authority: np.ndarray) -> np.ndarray:
    """Code of the authority ``authority`` (an index) of each county: type 11 (organ of
    state), the county, and an organisation code fixed by the two (seed-independent, as a
    real authority's code does not change from one simulation to the next)."""
    key = division.astype(np.int64) * 64 + authority.astype(np.int64)
    body = digits(permuted(key, 10**8, 0, 61_803_399), 8)
    prefix = np.broadcast_to(np.frombuffer(b"11", dtype=np.uint8), (division.size, 2))
    return uscc_matrix(prefix, division, body)


# --- places ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Places:
    """Counties in force in one year: code, county name, prefecture (or province) name."""

    codes: np.ndarray
    counties: tuple[str, ...]
    cities: tuple[str, ...]
    prefixes: tuple[str, ...]


@lru_cache(maxsize=4)
def places(year: int) -> Places:
    """County-level divisions valid in ``year``, with the names company and authority names use."""
    table = county_table()
    db = numdb.get("cn/loc")
    codes, counties, cities, prefixes = [], [], [], []
    for row in table.valid_in(year).tolist():
        code = int(table.codes[row])
        info = db.info(f"{code:06d}")
        province = info[0][1].get("province", "")
        spans = parse_spans(info[1][1].get("county", "")) if len(info) > 1 else []
        name = next((s.name for s in spans if s.start == table.start[row] and s.end == table.end[row]), "")
        prefix = table.prefixes[row]
        if not name or not prefix.endswith(name):
            continue
        city = prefix[len(province) : len(prefix) - len(name)] or province
        codes.append(code)
        counties.append(name)
        cities.append(city)
        prefixes.append(prefix)
    return Places(np.array(codes, dtype=np.int64), tuple(counties), tuple(cities), tuple(prefixes))


@lru_cache(maxsize=64)
def pool(values: tuple[str, ...]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def short_city(name: str) -> str:
    """杭州市 -> 杭州, 北京市 -> 北京, 延边朝鲜族自治州 -> 延边朝鲜族自治州 (kept when unsure)."""
    for suffix in ("市", "地区", "盟"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


# --- the world ---------------------------------------------------------------------------------


def rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The same records in batches of ``rows`` (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            yield table.slice(0, rows).to_batches()[0]
            rest = table.slice(rows)
            pending = rest.to_batches() if rest.num_rows else []
            held = rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def pick(rng: np.random.Generator, weights: Mapping[str, float], m: int) -> np.ndarray:
    p = np.array(list(weights.values()), dtype=np.float64)
    return rng.choice(p.size, size=m, p=p / p.sum())


def dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype("M8[D]"), type=pa.date32())


def between(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A uniform day in ``[low, high)`` per row (``high`` > ``low``)."""
    lo = low.astype("M8[D]").astype(np.int64)
    hi = high.astype("M8[D]").astype(np.int64)
    span = np.maximum(hi - lo, 1)
    return (lo + (rng.random(lo.size) * span).astype(np.int64)).astype("M8[D]")


def timestamps_after(rng: np.random.Generator, earliest: np.ndarray, as_of: dt.datetime) -> pa.Array:
    """A whole second in the year before ``as_of`` and not before ``earliest`` (a day)."""
    anchor = int((as_of - dt.datetime(1970, 1, 1)).total_seconds())
    seconds = anchor - rng.integers(1, 365 * 86_400, earliest.size)
    floor = earliest.astype("M8[D]").astype("M8[s]").astype(np.int64) + 9 * 3_600
    seconds = np.minimum(np.maximum(seconds, floor), anchor - 1)
    return pa.array(seconds * 1_000_000, type=pa.timestamp("us"))


def concat(arrays: list[pa.Array]) -> pa.Array:
    return pc.binary_join_element_wise(*arrays, "")
