"""Population registry simulator: realistic records with defects at known, exact counts.

The hub needs a department database to read from in development, tests and benchmarks,
and the quality gate needs data whose bad rows are known in advance. Every column is
drawn with numpy for a whole chunk at once and assembled with Arrow string kernels, so a
million rows take seconds, not minutes.

Each defective row has exactly one defect, and every duplicated identity number is shared
by exactly two rows (a clean source row and a different person), so the number of rows a
correct validator must quarantine is known exactly (:attr:`SimulationReport.expected_quarantined`).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from connectors.errors import SourceUnreachableError
from connectors.simulator import names
from connectors.simulator.arrays import CHECK_CHARS, clean_persons
from connectors.simulator.divisions import county_table
from connectors.sql import connect, driver_reason, source_engine
from schemas.contract import load_contract

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
FIRST_BIRTH = dt.date(1930, 1, 1)
LAST_BIRTH = dt.date(2024, 12, 31)
DEFAULT_SEED = 20250801
"""Fixed so that two runs without a seed build the same registry (the Regulation's start date)."""
DEFAULT_CHUNK_ROWS = 50_000
"""Same as the connectors' default chunk: large enough to amortise numpy calls, small in memory."""
_MAX_REDRAWS = 64


@dataclass(frozen=True)
class DefectRates:
    """Share of rows carrying each defect; 0.2% each by default, like a well-run registry.

    The rates are disjoint: a row carries at most one defect. ``duplicate_id`` rows reuse
    the identity number of one clean row each, so they also use up that many clean rows.
    """

    bad_check_digit: float = 0.002
    impossible_date: float = 0.002
    gender_mismatch: float = 0.002
    missing_name: float = 0.002
    duplicate_id: float = 0.002

    def __post_init__(self) -> None:
        for kind, rate in self.as_dict().items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"defect rate {kind}={rate} is not between 0 and 1")
        used = sum(self.as_dict().values()) + self.duplicate_id
        if used > 0.5:
            raise ValueError(
                f"defect rates use {used:.0%} of rows (duplicates count twice); at most 50% "
                "leaves room for the clean rows duplicates are copied from"
            )

    @classmethod
    def uniform(cls, rate: float) -> DefectRates:
        """The same rate for every defect kind."""
        return cls(**dict.fromkeys(DEFECT_KINDS, rate))

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def counts(self, rows: int) -> dict[str, int]:
        """Exact number of rows with each defect among ``rows`` generated rows."""
        return {kind: _share(rate, rows) for kind, rate in self.as_dict().items()}


DEFECT_KINDS: tuple[str, ...] = tuple(f.name for f in fields(DefectRates))


def expected_quarantined(defects: Mapping[str, int]) -> int:
    """Rows a correct validator quarantines: every defective row, plus the clean row each
    duplicate copies its number from (rows sharing a key with different content are all
    quarantined, since the hub cannot tell which one is right)."""
    return sum(defects.values()) + defects.get("duplicate_id", 0)


@dataclass(frozen=True)
class SimulationReport:
    """What :func:`fill` wrote."""

    table: str
    rows: int
    defects: Mapping[str, int]
    expected_quarantined: int
    seconds: float

    def summary(self) -> str:
        """One line for people: rows, time, planted defects and the quarantine to expect."""
        defects = ", ".join(f"{kind} {count:,}" for kind, count in self.defects.items())
        return (
            f"{self.rows:,} rows into {self.table} in {self.seconds:.1f} s; defects: {defects}; "
            f"expected quarantined: {self.expected_quarantined:,}"
        )


def _share(rate: float, rows: int) -> int:
    return math.floor(rate * rows + 0.5)


def generate(
    n: int,
    *,
    seed: int = DEFAULT_SEED,
    rates: DefectRates = DefectRates(),
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    as_of: dt.datetime | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield ``n`` registry records in the population contract's canonical schema.

    Output is a function of ``(n, seed, rates, chunk_rows, as_of)``. ``as_of`` anchors
    ``updated_at`` (the year before it) and defaults to the start of today, so runs on the
    same day agree. Defect counts over the whole stream are exactly ``rates.counts(n)``.
    """
    if n < 0 or chunk_rows < 1:
        raise ValueError(f"need n >= 0 and chunk_rows >= 1, got n={n}, chunk_rows={chunk_rows}")
    anchor = as_of or dt.datetime.combine(dt.date.today(), dt.time())
    schema = load_contract("population").arrow_schema()
    rng = np.random.default_rng(seed)
    seen = np.empty(0, dtype=np.int64)
    start = 0
    while start < n:
        rows = min(chunk_rows, n - start)
        counts = {
            kind: _share(rate, start + rows) - _share(rate, start) for kind, rate in rates.as_dict().items()
        }
        batch, seen = _chunk(rng, rows, counts, seen, anchor, schema)
        yield batch
        start += rows


def _chunk(
    rng: np.random.Generator,
    m: int,
    counts: Mapping[str, int],
    seen: np.ndarray,
    as_of: dt.datetime,
    schema: pa.Schema,
) -> tuple[pa.RecordBatch, np.ndarray]:
    """One chunk of ``m`` rows, and the sorted identity-number bodies used so far."""
    male = rng.random(m) < names.MALE_SHARE
    births = _birth_dates(rng, m, as_of)
    years = births.astype("M8[Y]").astype(np.int64) + 1970
    county = _counties(rng, years)
    kinds = _assign_defects(rng, m, counts)
    dup_rows, sources = kinds.pop("duplicate_id"), kinds.pop("_sources")

    ymd = _ymd(births)
    bad_dates = kinds["impossible_date"]
    ymd[bad_dates] = years[bad_dates] * 10_000 + _impossible_month_days(rng, bad_dates.size)
    division = county_table().codes[county]
    seq = _sequence(rng, male)
    body = division * 10**11 + ymd * 1_000 + seq
    body, seen = _make_unique(rng, body, seq, male, seen)

    check = _check_index(body)
    bad = kinds["bad_check_digit"]
    check[bad] = (check[bad] + rng.integers(1, 11, bad.size)) % 11
    for column in (body, check, births, male, county):
        column[dup_rows] = column[sources]

    gender = np.where(male, 1, 2)
    mismatch = kinds["gender_mismatch"]
    gender[mismatch] = 3 - gender[mismatch]

    arrays = [
        pc.binary_join_element_wise(
            pa.array(body).cast(pa.string()), _pool(CHECK_CHARS).take(pa.array(check)), ""
        ),
        _names(rng, male, kinds["missing_name"], dup_rows, sources),
        pa.array(gender).cast(pa.string()),
        _weighted(rng, names.ETHNICITY, m),
        pa.array(births, type=pa.date32()),
        pa.array(county_table().codes[county]).cast(pa.string()),
        _addresses(rng, county),
        pa.array(_mobiles(rng, m)).cast(pa.string()),
        _weighted(rng, names.REGISTRATION_STATUS, m),
        _updated_at(rng, m, as_of),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema), seen


def _birth_dates(rng: np.random.Generator, m: int, as_of: dt.datetime) -> np.ndarray:
    last = min(LAST_BIRTH, as_of.date())
    low = np.datetime64(FIRST_BIRTH, "D").astype(np.int64)
    high = np.datetime64(last, "D").astype(np.int64)
    return rng.integers(low, high + 1, m).astype("M8[D]")


def _ymd(births: np.ndarray) -> np.ndarray:
    months = births.astype("M8[M]")
    year = months.astype("M8[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (births - months.astype("M8[D]")).astype(np.int64) + 1
    return np.asarray(year * 10_000 + month * 100 + day, dtype=np.int64)


def _impossible_month_days(rng: np.random.Generator, k: int) -> np.ndarray:
    """MMDD values that no calendar has: 30 or 31 February, 31 of a 30-day month."""
    month = rng.choice(np.array([2, 4, 6, 9, 11]), size=k)
    day = np.where(month == 2, rng.integers(30, 32, k), 31)
    return np.asarray(month * 100 + day, dtype=np.int64)


def _counties(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    """Index into the county table of a county that was valid in each row's birth year."""
    table = county_table()
    county = np.empty(years.size, dtype=np.int64)
    order = np.argsort(years, kind="stable")
    distinct, sizes = np.unique(years[order], return_counts=True)
    at = 0
    for year, size in zip(distinct.tolist(), sizes.tolist(), strict=True):
        valid = table.valid_in(year)
        county[order[at : at + size]] = valid[rng.integers(0, valid.size, size)]
        at += size
    return county


def _assign_defects(rng: np.random.Generator, m: int, counts: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Disjoint row positions per defect kind, plus ``_sources``: the clean rows duplicates copy."""
    needed = sum(counts.values()) + counts["duplicate_id"]
    if needed > m:
        raise ValueError(f"a chunk of {m} rows cannot hold {needed} defective and source rows")
    order = rng.permutation(m)
    positions: dict[str, np.ndarray] = {}
    at = 0
    for kind in (*DEFECT_KINDS, "_sources"):
        k = counts["duplicate_id" if kind == "_sources" else kind]
        positions[kind] = order[at : at + k]
        at += k
    return positions


def _sequence(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    """Sequence code: odd for men (001..999), even for women (002..998)."""
    half = rng.integers(1 - male.astype(np.int64), 500)
    return np.asarray(2 * half + male, dtype=np.int64)


def _make_unique(
    rng: np.random.Generator, body: np.ndarray, seq: np.ndarray, male: np.ndarray, seen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Redraw sequence codes until no body repeats within the chunk or an earlier chunk.

    Without this, a million random numbers share a few bodies by chance, and those rows
    would be quarantined as duplicates the report does not count.
    """
    for _ in range(_MAX_REDRAWS):
        order = np.argsort(body, kind="stable")
        ordered = body[order]
        clash = np.zeros(body.size, dtype=bool)
        clash[order[1:][ordered[1:] == ordered[:-1]]] = True
        if seen.size:
            at = np.minimum(np.searchsorted(seen, body), seen.size - 1)
            clash |= seen[at] == body
        if not clash.any():
            ordered_new = np.sort(body)
            return body, np.insert(seen, np.searchsorted(seen, ordered_new), ordered_new)
        fresh = _sequence(rng, male[clash])
        body[clash] += fresh - seq[clash]
        seq[clash] = fresh
    raise RuntimeError("could not draw unique identity numbers: too many rows for the code space")


def _check_index(body: np.ndarray) -> np.ndarray:
    """Index into :data:`CHECK_CHARS` of each 17-digit body's check character."""
    rest = body.copy()
    total = np.zeros(body.size, dtype=np.int64)
    for weight in reversed(_WEIGHTS):
        total += (rest % 10) * weight
        rest //= 10
    return np.asarray(total % 11, dtype=np.int64)


@lru_cache(maxsize=16)
def _pool(values: str | tuple[str, ...]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def _weighted(rng: np.random.Generator, weights: Mapping[str, float], m: int) -> pa.Array:
    p = np.array(list(weights.values()), dtype=np.float64)
    picks = rng.choice(p.size, size=m, p=p / p.sum())
    return _pool(tuple(weights)).take(pa.array(picks))


def _names(
    rng: np.random.Generator,
    male: np.ndarray,
    missing: np.ndarray,
    dup_rows: np.ndarray,
    sources: np.ndarray,
) -> pa.Array:
    m = male.size
    surnames = names.SURNAMES
    p = np.array(list(surnames.values()))
    surname = rng.choice(p.size, size=m, p=p / p.sum())
    n_male, n_female = len(names.MALE_GIVEN), len(names.FEMALE_GIVEN)
    empty = n_male + n_female

    def given() -> np.ndarray:
        return np.where(male, rng.integers(0, n_male, m), n_male + rng.integers(0, n_female, m))

    first = given()
    second = np.where(rng.random(m) < names.TWO_CHAR_GIVEN_SHARE, given(), empty)
    # A duplicate must be a different person: if the draw repeats the source's name,
    # toggle the second character so the two rows differ in content.
    same = (
        (surname[dup_rows] == surname[sources])
        & (first[dup_rows] == first[sources])
        & (second[dup_rows] == second[sources])
    )
    toggled = dup_rows[same]
    second[toggled] = np.where(second[toggled] == empty, first[toggled], empty)
    chars = _pool((*names.MALE_GIVEN, *names.FEMALE_GIVEN, ""))
    full = pc.binary_join_element_wise(
        _pool(tuple(surnames)).take(pa.array(surname)),
        chars.take(pa.array(first)),
        chars.take(pa.array(second)),
        "",
    )
    absent = np.zeros(m, dtype=bool)
    absent[missing] = True
    return pc.if_else(pa.array(absent), pa.scalar(None, pa.string()), full)


def _addresses(rng: np.random.Generator, county: np.ndarray) -> pa.Array:
    """Province, prefecture and county names of the code, then street, number, building."""
    m = county.size
    number = pa.array(rng.integers(1, 400, m)).cast(pa.string())
    building = rng.integers(1, 30, m)
    room = rng.integers(1, 30, m) * 100 + rng.integers(1, 7, m)
    flat = pc.binary_join_element_wise(
        pa.array(building).cast(pa.string()), "栋", pa.array(room).cast(pa.string()), "室", ""
    )
    in_block = pa.array(rng.random(m) < 0.4)
    return pc.binary_join_element_wise(
        _pool(tuple(county_table().prefixes)).take(pa.array(county)),
        _pool(names.STREETS).take(pa.array(rng.integers(0, len(names.STREETS), m))),
        number,
        "号",
        pc.if_else(in_block, flat, ""),
        "",
    )


def _mobiles(rng: np.random.Generator, m: int) -> np.ndarray:
    prefixes = np.array(names.MOBILE_PREFIXES, dtype=np.int64)
    prefix = prefixes[rng.integers(0, prefixes.size, m)]
    return np.asarray(prefix * 10**8 + rng.integers(0, 10**8, m), dtype=np.int64)


def _updated_at(rng: np.random.Generator, m: int, as_of: dt.datetime) -> pa.Array:
    """Whole seconds in the year before ``as_of``: source systems rarely keep more precision."""
    anchor = int((as_of - dt.datetime(1970, 1, 1)).total_seconds())
    seconds = anchor - rng.integers(1, 365 * 86_400, m)
    return pa.array(seconds * 1_000_000, type=pa.timestamp("us"))


def registry_table(name: str = "population_registry") -> sa.Table:
    """The registry table, with column names exactly the contract's field names.

    No primary key: a real registry export can repeat a number, and the simulator must be
    able to store the duplicates it injects. An index on ``id_number`` is added after
    loading because connectors read the table ordered by its key.
    """
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id_number", sa.String(18)),
        sa.Column("name", sa.String(32)),
        sa.Column("gender", sa.CHAR(1)),
        sa.Column("ethnicity", sa.CHAR(2)),
        sa.Column("birth_date", sa.Date),
        sa.Column("division_code", sa.CHAR(6)),
        sa.Column("address", sa.String(200)),
        sa.Column("mobile", sa.String(11)),
        sa.Column("registration_status", sa.CHAR(1)),
        sa.Column("updated_at", sa.DateTime),
        mysql_charset="utf8mb4",
    )


def make_sqlite_folder(source: str, url: str, engine: sa.Engine) -> None:
    """Create the folder of a new SQLite file: a simulator may fill a registry that does not exist yet."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
        try:
            Path(str(database)).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceUnreachableError(source, url, f"cannot create its folder: {exc.strerror}") from None


def load_table(
    url: str,
    target: sa.Table,
    batches: Iterable[pa.RecordBatch],
    *,
    replace: bool,
    progress: Callable[[int], object] | None,
    index_columns: Sequence[str],
) -> int:
    """Write record batches (named as ``target``'s columns) into a simulated system's table.

    ``replace`` drops and recreates the table, otherwise it is created if missing. PostgreSQL
    through psycopg is loaded with COPY, other databases with ``executemany``, one
    transaction per batch so that a failure leaves whole batches only; the indexes are
    built after the load. Returns the rows written.
    """
    source = f"simulator:{target.name}"
    engine = source_engine(source, url)
    make_sqlite_folder(source, url, engine)
    done = 0
    try:
        with connect(source, url, engine, must_exist=False) as conn:
            if replace:
                target.drop(conn, checkfirst=True)
            target.create(conn, checkfirst=True)
            conn.commit()
            write = _copy if _uses_copy(engine) else _executemany
            for batch in batches:
                with conn.begin():
                    write(conn, target, batch)
                done += batch.num_rows
                if progress is not None:
                    progress(done)
            with conn.begin():
                for column in index_columns:
                    sa.Index(f"ix_{target.name}_{column}"[:60], target.c[column]).create(
                        conn, checkfirst=True
                    )
    except OperationalError as exc:
        reason = f"failed after {done} rows: {driver_reason(exc, engine.url)}"
        raise SourceUnreachableError(source, url, reason) from exc
    finally:
        engine.dispose()
    return done


def fill(
    url: str,
    n: int,
    *,
    table: str = "population_registry",
    seed: int = DEFAULT_SEED,
    rates: DefectRates = DefectRates(),
    replace: bool = True,
    progress: Callable[[int], object] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> SimulationReport:
    """Write ``n`` generated records into ``table`` at ``url`` and report what was written.

    ``replace=True`` drops and recreates the table; otherwise rows are appended (the table
    is created if missing) and the report describes only the appended rows. PostgreSQL
    through psycopg is loaded with COPY, other databases with ``executemany``, one
    transaction per chunk so that a failure leaves whole chunks only.
    """
    started = time.perf_counter()
    load_table(
        url,
        registry_table(table),
        generate(n, seed=seed, rates=rates, chunk_rows=chunk_rows),
        replace=replace,
        progress=progress,
        index_columns=("id_number",),
    )
    defects = rates.counts(n)
    return SimulationReport(
        table=table,
        rows=n,
        defects=defects,
        expected_quarantined=expected_quarantined(defects),
        seconds=time.perf_counter() - started,
    )


def _uses_copy(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


def _copy(conn: sa.Connection, target: sa.Table, batch: pa.RecordBatch) -> None:
    """COPY one chunk as CSV: Arrow quotes every string, so an unquoted empty field is NULL."""
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(c.name) for c in target.columns)
    statement = f"COPY {preparer.format_table(target)} ({columns}) FROM STDIN (FORMAT csv)"
    buffer = io.BytesIO()
    pa_csv.write_csv(batch, buffer, pa_csv.WriteOptions(include_header=False))
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        copy.write(buffer.getbuffer())


def _executemany(conn: sa.Connection, target: sa.Table, batch: pa.RecordBatch) -> None:
    """Insert one chunk with the driver's executemany; dates and times go as ISO text,
    the format SQLAlchemy itself stores in SQLite and that MySQL/MariaDB parse."""
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(c.name) for c in target.columns)
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    placeholders = ", ".join([marker] * len(target.columns))
    statement = f"INSERT INTO {preparer.format_table(target)} ({columns}) VALUES ({placeholders})"
    values = [
        (column.cast(pa.string()) if pa.types.is_temporal(column.type) else column).to_pylist()
        for column in batch.columns
    ]
    conn.exec_driver_sql(statement, list(zip(*values, strict=True)))


# --- Day 2: changes to an existing registry -------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """One day of changes to a simulated source, as records of the canonical schema.

    ``new`` records have keys the source did not hold; ``updated`` and ``status_changed``
    records repeat the key of a clean existing record with changed fields. Every record's
    ``updated_at`` falls on ``day`` (day 1 is the initial load, whose records all predate
    ``as_of``), so an incremental run after day 1 reads exactly :meth:`records`.
    """

    dataset: str
    key: str
    day: int
    new: pa.Table
    updated: pa.Table
    status_changed: pa.Table

    def records(self) -> pa.Table:
        """All changed records: new, then updated, then status changes."""
        return pa.concat_tables([self.new, self.updated, self.status_changed])

    def counts(self) -> dict[str, int]:
        return {
            "new": self.new.num_rows,
            "updated": self.updated.num_rows,
            "status_changed": self.status_changed.num_rows,
        }

    @property
    def rows(self) -> int:
        return sum(self.counts().values())

    def keys(self) -> set[str]:
        return set(self.records().column(self.key).to_pylist())


@dataclass(frozen=True)
class ApplyReport:
    """What :func:`apply_changes` wrote: ``inserted`` new keys, ``replaced`` existing ones."""

    table: str
    inserted: int
    replaced: int
    seconds: float


def day_start(as_of: dt.datetime, day: int) -> dt.datetime:
    """First instant of ``day``: day 1's records predate ``as_of``, day 2 starts at it."""
    if day < 2:
        raise ValueError(f"changes start on day 2 (day 1 is the initial load), got day={day}")
    return as_of + dt.timedelta(days=day - 2)


def day_timestamps(rng: np.random.Generator, m: int, as_of: dt.datetime, day: int) -> pa.Array:
    """Whole seconds within ``day``: later than every record of the days before."""
    start = int((day_start(as_of, day) - dt.datetime(1970, 1, 1)).total_seconds())
    return pa.array((start + rng.integers(0, 86_400, m)) * 1_000_000, type=pa.timestamp("us"))


def changes(
    n_existing: int,
    *,
    seed: int = DEFAULT_SEED,
    day: int = 2,
    new: int = 100,
    updated: int = 100,
    deregistered: int = 50,
    rates: DefectRates = DefectRates(),
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    as_of: dt.datetime | None = None,
) -> Changes:
    """Day ``day``'s changes to the registry ``generate(n_existing, seed=..., rates=...)`` built.

    ``new`` persons are born or move in (clean records, identity numbers unused so far);
    ``updated`` clean active persons get a new mobile number and address in their county;
    ``deregistered`` clean active persons die (status 3) or move out (status 2). Updates
    are drawn from clean rows only, so each change is one valid record of a known key.
    """
    anchor = as_of or dt.datetime.combine(dt.date.today(), dt.time())
    existing = pa.Table.from_batches(
        generate(n_existing, seed=seed, rates=rates, chunk_rows=chunk_rows, as_of=anchor)
    ).combine_chunks()
    rng = np.random.default_rng([seed, 0xDA7, day])
    candidates = np.flatnonzero(
        clean_persons(existing)
        & (existing.column("registration_status").to_numpy(zero_copy_only=False) == "1")
    )
    if updated + deregistered > candidates.size:
        raise ValueError(
            f"{updated} updates and {deregistered} deregistrations need that many clean active persons; "
            f"the registry of {n_existing} rows has {candidates.size}"
        )
    picked = rng.choice(candidates, updated + deregistered, replace=False)
    schema = existing.schema

    bodies = np.sort(
        np.array(pc.utf8_slice_codeunits(existing.column("id_number"), 0, 17).to_pylist(), dtype=np.int64)
    )
    fresh, _ = _chunk(rng, new, dict.fromkeys(DEFECT_KINDS, 0), bodies, anchor, schema)
    fresh = fresh.set_column(
        schema.get_field_index("updated_at"), "updated_at", day_timestamps(rng, new, anchor, day)
    )

    moved = existing.take(pa.array(picked[:updated]))
    county = _county_of(moved.column("division_code").to_pylist(), moved.column("birth_date").to_pylist())
    moved = moved.set_column(schema.get_field_index("address"), "address", _addresses(rng, county))
    moved = moved.set_column(
        schema.get_field_index("mobile"), "mobile", pa.array(_mobiles(rng, updated)).cast(pa.string())
    )
    moved = moved.set_column(
        schema.get_field_index("updated_at"), "updated_at", day_timestamps(rng, updated, anchor, day)
    )

    gone = existing.take(pa.array(picked[updated:]))
    status = _pool(("2", "3")).take(pa.array(rng.integers(0, 2, deregistered)))
    gone = gone.set_column(schema.get_field_index("registration_status"), "registration_status", status)
    gone = gone.set_column(
        schema.get_field_index("updated_at"), "updated_at", day_timestamps(rng, deregistered, anchor, day)
    )
    return Changes(
        dataset="population",
        key="id_number",
        day=day,
        new=pa.Table.from_batches([fresh], schema=schema),
        updated=moved,
        status_changed=gone,
    )


def _county_of(codes: list[str], births: list[dt.date]) -> np.ndarray:
    """County-table row of each division code in the person's birth year (for the address)."""
    table = county_table()
    rows: dict[int, list[int]] = {}
    for row, code in enumerate(table.codes.tolist()):
        rows.setdefault(code, []).append(row)
    out = np.empty(len(codes), dtype=np.int64)
    for i, (code, birth) in enumerate(zip(codes, births, strict=True)):
        spans = rows[int(code)]
        out[i] = next((r for r in spans if table.start[r] <= birth.year <= table.end[r]), spans[-1])
    return out


def apply_changes(url: str, table: str, changes: Changes) -> ApplyReport:
    """Upsert ``changes`` into the registry table at ``url`` (rows of a changed key are replaced)."""
    return upsert(
        url,
        registry_table(table),
        changes.key,
        changes.records(),
        replaced=changes.rows - changes.new.num_rows,
    )


def upsert(url: str, target: sa.Table, key: str, records: pa.Table, *, replaced: int) -> ApplyReport:
    """Replace the rows of ``records``' keys and insert ``records``, in one transaction.

    Delete-then-insert rather than a dialect's ``ON CONFLICT``/``ON DUPLICATE KEY``: the
    simulated tables have no unique key (they hold planted duplicates), and the same
    statements then work on every database.
    """
    started = time.perf_counter()
    source = f"simulator:{target.name}"
    engine = source_engine(source, url)
    keys = records.column(key).to_pylist()
    try:
        with connect(source, url, engine) as conn, conn.begin():
            for at in range(0, len(keys), 1_000):
                conn.execute(target.delete().where(target.c[key].in_(keys[at : at + 1_000])))
            write = _copy if _uses_copy(engine) else _executemany
            for batch in records.to_batches(max_chunksize=DEFAULT_CHUNK_ROWS):
                write(conn, target, batch)
    except OperationalError as exc:
        raise SourceUnreachableError(source, url, driver_reason(exc, engine.url)) from exc
    finally:
        engine.dispose()
    return ApplyReport(
        table=target.name,
        inserted=records.num_rows - replaced,
        replaced=replaced,
        seconds=time.perf_counter() - started,
    )
