"""Certificate issuing system simulator: electronic certificates held by the world's persons
and entities, with known defects.

Identifiers follow GB/T 36904-2018: ``1.2.156.3005.2.<type code>.<issuer code>.<serial>.
<version>.<check>``, the type code being the defining authority's unified social credit
code plus a 3-character sequence and the check ISO 7064 MOD 37,36 over type, issuer,
serial and version. Holders are clean active persons (code type 111, identity number) and
clean existing entities (001, unified social credit code) of one :class:`World`, so a
holder check against the population and legal-entity tables finds every clean holder.

The issuing system's HTTP API and its CSV drop use their own names for the fields:
:func:`to_system_columns` and :func:`to_csv_columns` rename canonical records for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.simulator import arrays, legal_entity, population
from connectors.simulator import world as w
from connectors.simulator.population import Changes, day_timestamps
from schemas.contract import load_contract

BLOCK_ROWS = 10_000
"""Records per generation block: fixed, so a record never depends on the output chunk size."""
_STREAM = 2
_NEW_STREAM = 200
MAX_NEW_PER_DAY = 10_000_000
"""New certificates of day ``d`` take positions from ``n_existing + (d - 2) * MAX_NEW_PER_DAY``."""
PREFIX = "1.2.156.3005.2"
"""GB/T 36904 object identifier arc of electronic certificates."""
MOD36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ID_WIDTH = 72
"""Prefix 14 + '.' + type 21 + '.' + issuer 18 + '.' + serial 10 + '.' + version 3 + '.' + check 1."""
_SERIAL = slice(56, 66)
_VERSION = slice(67, 70)

PERSON, ENTITY = "111", "001"
"""Holder code types: resident identity number, unified social credit code."""

_MOD36_VALUE = np.full(256, -1, dtype=np.int64)
_MOD36_VALUE[np.frombuffer(MOD36_ALPHABET.encode(), dtype=np.uint8)] = np.arange(36)
_MOD36_CHARS = np.frombuffer(MOD36_ALPHABET.encode(), dtype=np.uint8)


def _defining(index: int) -> str:
    """A synthetic but valid code for a defining ministry without a published one here."""
    code = arrays.government_uscc(np.array([100000]), np.array([40 + index]))
    return bytes(code[0]).decode()


AUTHORITIES: dict[str, str] = {
    "市场监督管理总局": "11100000000013127D",
    "公安部": "11100000000013338W",
    "民政部": _defining(1),
    "自然资源部": _defining(2),
    "教育部": _defining(3),
    "生态环境部": _defining(4),
}
"""Defining authorities and their codes (market regulation and public security are real; the
others are computed, valid by construction)."""


@dataclass(frozen=True)
class CertificateType:
    name: str
    authority: str
    sequence: str
    holder: str
    years: int | None
    """Validity in years; None: long-term (valid_until null)."""
    issuer: str
    """Name of the local issuing office after the county name."""
    weight: float

    @property
    def code(self) -> str:
        return AUTHORITIES[self.authority] + self.sequence


TYPES: tuple[CertificateType, ...] = (
    CertificateType("营业执照", "市场监督管理总局", "001", ENTITY, None, "市场监督管理局", 0.25),
    CertificateType("食品经营许可证", "市场监督管理总局", "002", ENTITY, 5, "市场监督管理局", 0.10),
    CertificateType("排污许可证", "生态环境部", "001", ENTITY, 5, "生态环境局", 0.05),
    CertificateType("机动车驾驶证", "公安部", "009", PERSON, 6, "公安局交通警察大队", 0.25),
    CertificateType("结婚证", "民政部", "001", PERSON, None, "民政局", 0.15),
    CertificateType("不动产权证书", "自然资源部", "001", PERSON, None, "自然资源局", 0.12),
    CertificateType("教师资格证书", "教育部", "003", PERSON, None, "教育局", 0.08),
)
_OFFICES = tuple(dict.fromkeys(t.issuer for t in TYPES))
STATUS: dict[str, float] = {"有效": 0.94, "注销": 0.04, "吊销": 0.02}
"""Status of a certificate still within its validity; past it, the status is 过期."""
_PROVINCE_SHORT = dict(
    zip(
        (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53,
         54, 61, 62, 63, 64, 65),
        "京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新",
        strict=True,
    )
)  # fmt: skip
SYSTEM_COLUMNS: dict[str, str] = {
    "certificate_id": "certificateId",
    "type_name": "typeName",
    "type_code": "typeCode",
    "number": "number",
    "holder_name": "holderName",
    "holder_code": "holderCode",
    "holder_code_type": "holderCodeType",
    "issuer_name": "issuerName",
    "issuer_code": "issuerCode",
    "issue_date": "issueDate",
    "valid_from": "validFrom",
    "valid_until": "validUntil",
    "division_code": "divisionCode",
    "status": "status",
    "updated_at": "updatedAt",
}
"""Contract field -> the issuing system's API field."""
CSV_COLUMNS: dict[str, str] = dict(
    zip(
        SYSTEM_COLUMNS,
        [
            "证照标识",
            "证照类型名称",
            "证照类型代码",
            "证照编号",
            "持证主体",
            "持证主体代码",
            "持证主体代码类型",
            "发证机关",
            "发证机关代码",
            "发证日期",
            "有效期起始",
            "有效期截止",
            "管辖区划代码",
            "证照状态",
            "更新时间",
        ],
        strict=True,
    )
)
"""Contract field -> the header of the issuing system's CSV export."""


@dataclass(frozen=True)
class DefectRates(arrays.Rates):
    """Share of rows carrying each defect; 0.2% each by default."""

    DUPLICATE = "duplicate_id"

    bad_check: float = 0.002
    malformed_id: float = 0.002
    invalid_holder_code: float = 0.002
    reversed_window: float = 0.002
    expired_but_valid: float = 0.002
    duplicate_id: float = 0.002


DEFECT_KINDS = DefectRates.kinds()


def schema() -> pa.Schema:
    return load_contract("certificate").arrow_schema()


def mod37_36_check(body: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 37,36 check character of each row of an ``(n, k)`` ASCII matrix."""
    values = _MOD36_VALUE[body]
    if (values < 0).any():
        raise ValueError("MOD 37,36 input holds digits and capital letters only")
    check = np.full(body.shape[0], 18, dtype=np.int64)
    for col in range(body.shape[1]):
        check = (np.where(check == 0, 36, check) * 2 % 37 + values[:, col]) % 36
    return _MOD36_CHARS[(1 - np.where(check == 0, 36, check) * 2 % 37) % 36]


def generate(
    n: int,
    *,
    seed: int | None = None,
    rates: DefectRates = DefectRates(),
    chunk_rows: int = population.DEFAULT_CHUNK_ROWS,
    world: w.World | None = None,
    as_of: dt.datetime | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield ``n`` certificates in the certificate contract's canonical schema.

    Holders come from ``world`` (default ``World(seed)``): its clean active persons and the
    clean existing entities of its register. Defect counts are exactly ``rates.counts(n)``.
    """
    issuing = _world(n, seed=seed, world=world, as_of=as_of)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    return arrays.rebatch((batch for batch, _ in _blocks(issuing, n, rates)), chunk_rows)


def _world(n: int, *, seed: int | None, world: w.World | None, as_of: dt.datetime | None) -> w.World:
    if n < 0:
        raise ValueError(f"need n >= 0, got n={n}")
    if world is None:
        return w.World(seed=w.DEFAULT_SEED if seed is None else seed, as_of=as_of or arrays.start_of_today())
    if seed is not None and seed != world.seed:
        raise ValueError(f"seed {seed} disagrees with the world's seed {world.seed}")
    return world


def _blocks(world: w.World, n: int, rates: DefectRates) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    for b, start in enumerate(range(0, n, BLOCK_ROWS)):
        m = min(BLOCK_ROWS, n - start)
        yield _block(world, arrays.block_rng(world.seed, _STREAM, b), start, m, rates.block_counts(start, m))


def _block(
    world: w.World, rng: np.random.Generator, start: int, m: int, counts: dict[str, int]
) -> tuple[pa.RecordBatch, np.ndarray]:
    """``m`` certificates of global positions ``start ..``, and the mask of clean ones."""
    people, entities = world.people, legal_entity.holders(world)
    places = arrays.places(world.as_of.year)
    today = np.datetime64(world.as_of.date(), "D")
    weights = {str(i): t.weight for i, t in enumerate(TYPES) if t.holder == PERSON or len(entities.codes)}
    kind = np.array([int(k) for k in weights])[arrays.pick(rng, weights, m)]
    is_entity = np.array([t.holder == ENTITY for t in TYPES])[kind]
    years = np.array([t.years or 0 for t in TYPES])[kind]

    person = people.adult[rng.integers(0, people.adult.size, m)]
    entity = rng.integers(0, max(len(entities.codes), 1), m)
    ent_rows, per_rows = np.flatnonzero(is_entity), np.flatnonzero(~is_entity)
    holder_code = _scatter(
        [
            (ent_rows, entities.codes.take(pa.array(entity[ent_rows]))),
            (per_rows, people.ids.take(pa.array(person[per_rows]))),
        ],
        m,
    )
    holder_name = _scatter(
        [
            (ent_rows, entities.names.take(pa.array(entity[ent_rows]))),
            (per_rows, people.names.take(pa.array(person[per_rows]))),
        ],
        m,
    )
    row_of = {code: row for row, code in enumerate(places.codes.tolist())}
    home = np.where(
        is_entity,
        entities.divisions[entity] if len(entities.codes) else 0,
        people.divisions[person],
    )
    place = np.array([row_of.get(int(c), -1) for c in home.tolist()], dtype=np.int64)
    moved = place < 0
    place[moved] = rng.integers(0, places.codes.size, int(moved.sum()))
    division = places.codes[place]

    low = np.where(
        is_entity,
        entities.established[entity] if len(entities.codes) else today,
        people.births[person] + np.timedelta64(18 * 365 + 5, "D"),
    ).astype("M8[D]")
    low = np.minimum(low, today - np.timedelta64(1, "D"))
    valid_from = arrays.between(
        rng, np.maximum(low, today - np.timedelta64(15 * 365, "D")), np.full(m, today)
    )
    licence = kind == 0
    valid_from[licence] = low[licence]
    until = valid_from + (years * 365 + years // 4 - 1).astype("m8[D]")
    finite = years > 0

    at = arrays.assign(rng, m, counts, DefectRates.DUPLICATE)
    late = at["expired_but_valid"]
    valid_from[late] = arrays.between(rng, np.full(late.size, today - 3000), np.full(late.size, today - 30))
    until[late] = arrays.between(rng, valid_from[late] + 1, np.full(late.size, today))
    finite[late] = True
    back = at["reversed_window"]
    until[back] = valid_from[back] - rng.integers(1, 366, back.size).astype("m8[D]")
    finite[back] = True

    status = np.array(list(STATUS))[arrays.pick(rng, STATUS, m)].astype("U2")
    status[finite & (until < today)] = "过期"
    status[late] = "有效"

    bad_holder = at["invalid_holder_code"]
    if bad_holder.size:
        holder_code = _break_holders(rng, holder_code, bad_holder, is_entity)

    ids = _identifiers(world, rng, start, m, kind, division)
    wrong = at["bad_check"]
    ids[wrong, -1] = _MOD36_CHARS[(_MOD36_VALUE[ids[wrong, -1]] + rng.integers(1, 36, wrong.size)) % 36]
    dups, sources = at["duplicate_id"], at["_sources"]
    ids[dups] = ids[sources]
    certificate_id = arrays.strings(ids)
    broken = at["malformed_id"]
    if broken.size:
        mask = np.zeros(m, dtype=bool)
        mask[broken] = True
        short = pc.utf8_replace_slice(certificate_id.take(pa.array(broken)), _SERIAL.stop, _VERSION.stop, "")
        certificate_id = pc.replace_with_mask(certificate_id, pa.array(mask), short)

    offices = np.array([_OFFICES.index(t.issuer) for t in TYPES])[kind]
    columns = {
        "certificate_id": certificate_id,
        "type_name": arrays.pool(tuple(t.name for t in TYPES)).take(pa.array(kind)),
        "type_code": arrays.pool(tuple(t.code for t in TYPES)).take(pa.array(kind)),
        "number": _numbers(rng, kind, holder_code, division, valid_from, places, place),
        "holder_name": holder_name,
        "holder_code": holder_code,
        "holder_code_type": pa.array(np.where(is_entity, ENTITY, PERSON), pa.string()),
        "issuer_name": arrays.concat(
            [
                arrays.pool(places.counties).take(pa.array(place)),
                arrays.pool(_OFFICES).take(pa.array(offices)),
            ]
        ),
        "issuer_code": arrays.strings(arrays.government_uscc(division, offices)),
        "issue_date": arrays.dates(valid_from),
        "valid_from": arrays.dates(valid_from),
        "valid_until": pa.array(until.astype("M8[D]"), type=pa.date32(), mask=~finite),
        "division_code": pa.array(division).cast(pa.string()),
        "status": pa.array(status, pa.string()),
        "updated_at": arrays.timestamps_after(rng, valid_from, world.as_of),
    }
    target = schema()
    batch = pa.RecordBatch.from_arrays([columns[f.name].cast(f.type) for f in target], schema=target)
    return batch, ~arrays.defective(m, at)


def _scatter(parts: list[tuple[np.ndarray, pa.Array]], m: int) -> pa.Array:
    """One array of ``m`` values from parts holding the values of given row positions."""
    order = np.concatenate([rows for rows, _ in parts]) if parts else np.empty(0, np.int64)
    values = pa.concat_arrays([values for _, values in parts])
    inverse = np.empty(m, dtype=np.int64)
    inverse[order] = np.arange(m)
    return values.take(pa.array(inverse))


def _break_holders(
    rng: np.random.Generator, codes: pa.Array, rows: np.ndarray, is_entity: np.ndarray
) -> pa.Array:
    """A wrong check character in the holder code of ``rows``, by the rule of its code type."""
    matrix = arrays.char_matrix(codes, 18).copy()
    ent, per = rows[is_entity[rows]], rows[~is_entity[rows]]
    part = matrix[ent]
    arrays.break_uscc_check(rng, part)
    matrix[ent] = part
    if per.size:
        matrix[per] = arrays.char_matrix(arrays.break_ric(rng, arrays.strings(matrix[per])), 18)
    return arrays.strings(matrix)


def _identifiers(
    world: w.World, rng: np.random.Generator, start: int, m: int, kind: np.ndarray, division: np.ndarray
) -> np.ndarray:
    """``(m, ID_WIDTH)`` GB/T 36904 identifiers: serials unique by position, check computed."""
    ids = np.empty((m, ID_WIDTH), dtype=np.uint8)
    ids[:, :15] = np.frombuffer(f"{PREFIX}.".encode(), dtype=np.uint8)
    codes = np.frombuffer("".join(t.code for t in TYPES).encode(), dtype=np.uint8).reshape(len(TYPES), 21)
    ids[:, 15:36] = codes[kind]
    offices = np.array([_OFFICES.index(t.issuer) for t in TYPES])[kind]
    ids[:, 37:55] = arrays.government_uscc(division, offices)
    index = np.arange(start, start + m, dtype=np.int64)
    ids[:, _SERIAL] = arrays.digits(arrays.permuted(index, 10**10, world.seed, 6_180_339_887), 10)
    version = rng.choice(np.array([1, 2, 3]), size=m, p=[0.9, 0.08, 0.02])
    ids[:, _VERSION] = arrays.digits(version, 3)
    ids[:, [36, 55, 66, 70]] = ord(".")
    body = np.concatenate([ids[:, 15:36], ids[:, 37:55], ids[:, _SERIAL], ids[:, _VERSION]], axis=1)
    ids[:, 71] = mod37_36_check(body)
    return ids


def _numbers(
    rng: np.random.Generator,
    kind: np.ndarray,
    holder_code: pa.Array,
    division: np.ndarray,
    issued: np.ndarray,
    places: arrays.Places,
    place: np.ndarray,
) -> pa.Array:
    """Certificate numbers in each type's printed form."""
    m = kind.size
    year = pa.array(issued.astype("M8[Y]").astype(np.int64) + 1970).cast(pa.string())
    div = pa.array(division).cast(pa.string())

    def serial(width: int) -> pa.Array:
        return arrays.strings(arrays.digits(rng.integers(0, 10**width, m), width))

    province = arrays.pool(tuple(_PROVINCE_SHORT.values())).take(
        pa.array(np.searchsorted(np.array(list(_PROVINCE_SHORT)), division // 10_000))
    )
    city = arrays.pool(places.cities).take(pa.array(place))
    forms = [
        holder_code,
        arrays.concat(
            [pa.array(["JY"] * m), pa.array(rng.integers(1, 4, m)).cast(pa.string()), div, serial(7)]
        ),
        arrays.concat([holder_code, serial(3), pa.array(["P"] * m)]),
        holder_code,
        arrays.concat([pa.array(["J"] * m), div, pa.array(["-"] * m), year, pa.array(["-"] * m), serial(6)]),
        arrays.concat(
            [
                province,
                pa.array(["（"] * m),
                year,
                pa.array(["）"] * m),
                city,
                pa.array(["不动产权第"] * m),
                serial(7),
                pa.array(["号"] * m),
            ]
        ),
        arrays.concat([year, div, serial(7)]),
    ]
    return _scatter(
        [
            (np.flatnonzero(kind == i), form.take(pa.array(np.flatnonzero(kind == i))))
            for i, form in enumerate(forms)
        ],
        m,
    )


def to_system_columns(records: pa.Table | pa.RecordBatch) -> pa.Table:
    """Canonical records under the issuing system's API field names (camelCase)."""
    table = records if isinstance(records, pa.Table) else pa.Table.from_batches([records])
    return table.rename_columns([SYSTEM_COLUMNS[c] for c in table.column_names])


def to_csv_columns(records: pa.Table | pa.RecordBatch) -> pa.Table:
    """Canonical records under the issuing system's CSV headers (Chinese)."""
    table = records if isinstance(records, pa.Table) else pa.Table.from_batches([records])
    return table.rename_columns([CSV_COLUMNS[c] for c in table.column_names])


# --- day 2 -----------------------------------------------------------------------------------


def changes(
    n_existing: int,
    *,
    seed: int | None = None,
    day: int = 2,
    new: int = 100,
    updated: int = 100,
    deregistered: int = 50,
    rates: DefectRates = DefectRates(),
    world: w.World | None = None,
    as_of: dt.datetime | None = None,
) -> Changes:
    """Day ``day``'s changes to the certificates ``generate(n_existing, ...)`` built.

    ``new`` certificates enter the system that day (clean, new serials); ``updated`` clean valid
    certificates with a fixed term are renewed (``valid_until`` moves one term on);
    ``deregistered`` clean valid certificates are cancelled (注销) or revoked (吊销).
    """
    if new > MAX_NEW_PER_DAY:
        raise ValueError(f"at most {MAX_NEW_PER_DAY:,} new certificates a day, got {new:,}")
    issuing = _world(n_existing, seed=seed, world=world, as_of=as_of)
    batches, clean = [], []
    for batch, mask in _blocks(issuing, n_existing, rates):
        batches.append(batch)
        clean.append(mask)
    target = schema()
    existing = pa.Table.from_batches(batches, schema=target).combine_chunks()
    valid = np.asarray(existing.column("status").to_numpy(zero_copy_only=False) == "有效")
    finite = existing.column("valid_until").is_valid().to_numpy(zero_copy_only=False)
    ok = (np.concatenate(clean) if clean else np.zeros(0, bool)) & valid
    renewable, cancellable = np.flatnonzero(ok & finite), np.flatnonzero(ok)
    if updated > renewable.size or updated + deregistered > cancellable.size:
        raise ValueError(
            f"{updated} renewals and {deregistered} cancellations need that many clean valid certificates; "
            f"{n_existing} certificates have {renewable.size} renewable and {cancellable.size} valid"
        )
    rng = arrays.block_rng(issuing.seed, _NEW_STREAM + day, 0)
    renewed_rows = rng.choice(renewable, updated, replace=False)
    rest = np.setdiff1d(cancellable, renewed_rows)
    cancelled_rows = rng.choice(rest, deregistered, replace=False)

    start = n_existing + (day - 2) * MAX_NEW_PER_DAY
    fresh = []
    for b in range((new + BLOCK_ROWS - 1) // BLOCK_ROWS):
        m = min(BLOCK_ROWS, new - b * BLOCK_ROWS)
        rng_b = arrays.block_rng(issuing.seed, _NEW_STREAM + day, 1 + b)
        fresh.append(_block(issuing, rng_b, start + b * BLOCK_ROWS, m, dict.fromkeys(DEFECT_KINDS, 0))[0])
    added = _stamp(pa.Table.from_batches(fresh, schema=target), rng, issuing.as_of, day)

    renewed = existing.take(pa.array(renewed_rows))
    term = {t.name: t.years or 0 for t in TYPES}
    years = np.array([term[name] for name in renewed.column("type_name").to_pylist()])
    until = renewed.column("valid_until").to_numpy(zero_copy_only=False).astype("M8[D]")
    extended = until + (years * 365 + years // 4).astype("m8[D]")
    renewed = _stamp(_set(renewed, "valid_until", arrays.dates(extended)), rng, issuing.as_of, day)

    cancelled = existing.take(pa.array(cancelled_rows))
    status = arrays.pool(("注销", "吊销")).take(pa.array((rng.random(deregistered) < 0.3).astype(np.int64)))
    cancelled = _stamp(_set(cancelled, "status", status), rng, issuing.as_of, day)
    return Changes(
        dataset="certificate",
        key="certificate_id",
        day=day,
        new=added,
        updated=renewed,
        status_changed=cancelled,
    )


def _set(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _stamp(table: pa.Table, rng: np.random.Generator, as_of: dt.datetime, day: int) -> pa.Table:
    return _set(table, "updated_at", day_timestamps(rng, table.num_rows, as_of, day))
