"""Market-regulation register simulator: legal entities of one world, with known defects.

The register (市场主体登记) keeps its own column names (pinyin initials, as such systems
do: ``tyshxydm`` for the unified social credit code ...) and the entity type as its
Chinese name, so the source file's column and value mappings are exercised. Legal
representatives are clean persons of the world's population, their names and identity
numbers copied exactly, so the hub can join the two datasets by token.

Records are built in blocks of :data:`BLOCK_ROWS` whose content depends only on the
world's seed and the block's position, with columns drawn by numpy and strings assembled
by Arrow kernels: a million entities take seconds. Each defective row has one defect;
each duplicated code is shared by a clean row and a different entity, and both are to be
quarantined, so :meth:`DefectRates.expected_quarantined` is exact.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from connectors.simulator import arrays, names, population
from connectors.simulator import world as w
from connectors.simulator.population import Changes, SimulationReport, day_start, day_timestamps
from schemas.contract import load_contract

DEFAULT_TABLE = "market_entities"
BLOCK_ROWS = 10_000
"""Records per generation block: fixed, so a record never depends on the output chunk size."""
_STREAM = 1
_NEW_STREAM = 100
MAX_NEW_PER_DAY = 10_000_000
"""New entities of day ``d`` take positions from ``n_existing + (d - 2) * MAX_NEW_PER_DAY``, so
their codes differ from day 1's and from every other day's."""
_LEGACY_CODES_UNTIL = np.datetime64("2015-10-01", "D")
"""Unified codes replaced registration numbers from October 2015; older entities keep their
8-digit organisation code inside the new code, newer ones get an ``MA...`` code."""
EARLIEST = np.datetime64("1985-01-01", "D")

ENTITY_TYPES: dict[str, str] = {
    "1100": "有限责任公司",
    "1200": "股份有限公司",
    "2100": "非公司企业法人",
    "4100": "个人独资企业",
    "4200": "合伙企业",
    "5000": "外商投资企业",
    "9100": "个体工商户",
    "9200": "农民专业合作社",
}
"""Contract code -> the name the register stores (the source file maps names back to codes)."""
UNKNOWN_TYPES: dict[str, str] = {"1190": "有限责任公司分公司", "2190": "非法人分支机构", "9900": "其他"}
"""Types the register holds but the contract does not know: the ``unknown_entity_type`` defect."""
TYPE_WEIGHTS: dict[str, float] = {
    "1100": 0.40, "1200": 0.01, "2100": 0.02, "4100": 0.04,
    "4200": 0.02, "5000": 0.01, "9100": 0.47, "9200": 0.03,
}  # fmt: skip
"""Individual businesses and limited companies make up most of a county's register."""
_USCC_PREFIX = {"9100": "92", "9200": "93"}
"""GB 32100 positions 1-2: 9 (market regulation) and 1 enterprise, 2 individual business, 3 cooperative."""
_SUFFIX = {
    "1100": "有限公司", "1200": "股份有限公司", "2100": "公司", "4100": "经营部",
    "4200": "合伙企业（有限合伙）", "5000": "（中国）有限公司", "9100": "", "9200": "专业合作社",
}  # fmt: skip
STATUS: dict[str, float] = {"存续": 0.72, "在业": 0.18, "吊销": 0.04, "注销": 0.05, "迁出": 0.01}
ACTIVE = ("存续", "在业")
INDUSTRIES: tuple[tuple[str, str, str], ...] = (
    ("科技", "科技服务部", "技术开发、技术咨询、技术服务、技术转让；软件开发；信息系统集成服务"),
    ("商贸", "便利店", "日用百货、五金交电、文具用品销售；货物进出口"),
    ("餐饮管理", "餐馆", "餐饮服务；食品销售；餐饮管理"),
    ("建筑工程", "装修队", "房屋建筑工程施工；建筑装饰装修工程；市政工程"),
    ("物流", "货运部", "普通货物道路运输；仓储服务；国内货运代理"),
    ("农业发展", "种植场", "蔬菜、水果种植与销售；农业技术推广服务"),
    ("文化传媒", "广告部", "组织文化艺术交流活动；广告设计、制作、发布"),
    ("医药", "药店", "药品零售；医疗器械经营；保健食品销售"),
    ("环保科技", "回收站", "环境保护专用设备销售；再生资源回收；固体废物治理"),
    ("机械制造", "机修厂", "通用设备制造；机械零部件加工；机械设备维修"),
    ("电子", "电器维修部", "电子元器件制造与销售；家用电器维修"),
    ("企业管理咨询", "咨询服务部", "企业管理咨询；商务信息咨询；市场调查"),
    ("服饰", "服装店", "服装、鞋帽、针纺织品销售"),
    ("教育咨询", "培训部", "教育咨询服务；文化艺术培训"),
    ("新能源", "电动车行", "太阳能发电技术服务；新能源汽车零配件销售"),
)
"""(industry word of a company name, shop word of an individual business, business scope)."""
_TRADE_FIRST = "华恒宏鑫瑞盛金天博永新中泰嘉远德源富隆兴达明泽汇通国安广信东润"
_TRADE_SECOND = "信达源泰丰昌诚瑞兴合利安宇成茂华创隆辉康盈和远驰祥锦越航晟益"
SYSTEM_COLUMNS: dict[str, str] = {
    "uscc": "tyshxydm",
    "name": "qymc",
    "entity_type": "qylx",
    "legal_rep_name": "fddbr",
    "legal_rep_id_number": "fddbrzjhm",
    "registered_capital": "zczb",
    "establishment_date": "clrq",
    "registration_authority": "djjg",
    "division_code": "xzqhdm",
    "address": "zs",
    "status": "djzt",
    "business_scope": "jyfw",
    "updated_at": "gxsj",
}
"""Contract field -> the register's column (the mapping connectors/sources/legal_entity.yaml declares)."""


@dataclass(frozen=True)
class DefectRates(arrays.Rates):
    """Share of rows carrying each defect; 0.2% each by default, like a well-run register."""

    DUPLICATE = "duplicate_uscc"

    bad_uscc_check: float = 0.002
    bad_org_code_check: float = 0.002
    invalid_rep_id: float = 0.002
    unknown_entity_type: float = 0.002
    duplicate_uscc: float = 0.002


DEFECT_KINDS = DefectRates.kinds()


def schema() -> pa.Schema:
    return load_contract("legal_entity").arrow_schema()


def generate(
    n: int,
    *,
    seed: int | None = None,
    rates: DefectRates = DefectRates(),
    chunk_rows: int = population.DEFAULT_CHUNK_ROWS,
    world: w.World | None = None,
    as_of: dt.datetime | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield ``n`` register records in the legal_entity contract's canonical schema.

    Legal representatives come from ``world`` (default: ``World(seed)``, today's ``as_of``);
    the records are those of ``world.with_register(n, rates)``. Defect counts over the
    stream are exactly ``rates.counts(n)``.
    """
    register = _world(n, seed=seed, rates=rates, world=world, as_of=as_of)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    return arrays.rebatch((batch for batch, _ in _blocks(register)), chunk_rows)


def _world(
    n: int, *, seed: int | None, rates: DefectRates, world: w.World | None, as_of: dt.datetime | None
) -> w.World:
    if n < 0:
        raise ValueError(f"need n >= 0, got n={n}")
    if world is None:
        world = w.World(seed=w.DEFAULT_SEED if seed is None else seed, as_of=as_of or arrays.start_of_today())
    elif seed is not None and seed != world.seed:
        raise ValueError(f"seed {seed} disagrees with the world's seed {world.seed}")
    return world.with_register(n, rates)


def _rates(world: w.World) -> DefectRates:
    rates = world.entity_rates
    if rates is None:
        return DefectRates()
    if not isinstance(rates, DefectRates):
        raise TypeError(f"the world's entity rates are {type(rates).__name__}, not legal_entity.DefectRates")
    return rates


def _blocks(world: w.World) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    """Each block of the world's register with the mask of its clean, existing entities."""
    rates = _rates(world)
    for b, start in enumerate(range(0, world.entities, BLOCK_ROWS)):
        m = min(BLOCK_ROWS, world.entities - start)
        rng = arrays.block_rng(world.seed, _STREAM, b)
        yield _block(world, rng, start, m, rates.block_counts(start, m))


@lru_cache(maxsize=4)
def holders(world: w.World) -> w.Holders:
    """Clean existing (存续/在业) entities of the world's register: certificate holders."""
    codes, entity_names, divisions, established = [], [], [], []
    for batch, clean in _blocks(world):
        keep = pa.array(np.flatnonzero(clean))
        codes.append(batch.column(0).take(keep))
        entity_names.append(batch.column(1).take(keep))
        divisions.append(np.array(batch.column(8).take(keep).to_pylist(), dtype=np.int64))
        established.append(batch.column(6).take(keep).to_numpy(zero_copy_only=False).astype("M8[D]"))
    if not codes:
        empty = pa.array([], pa.string())
        return w.Holders(empty, empty, np.empty(0, np.int64), np.empty(0, "M8[D]"))
    return w.Holders(
        codes=pa.concat_arrays(codes),
        names=pa.concat_arrays(entity_names),
        divisions=np.concatenate(divisions),
        established=np.concatenate(established),
    )


def _block(
    world: w.World,
    rng: np.random.Generator,
    start: int,
    m: int,
    counts: dict[str, int],
    *,
    established_on: np.datetime64 | None = None,
) -> tuple[pa.RecordBatch, np.ndarray]:
    """``m`` records of global positions ``start ..``, and the mask of clean existing ones."""
    people = world.people
    places = arrays.places(world.as_of.year)
    today = np.datetime64(world.as_of.date(), "D")
    type_codes = np.array(list(TYPE_WEIGHTS))[arrays.pick(rng, TYPE_WEIGHTS, m)]
    place = rng.integers(0, places.codes.size, m)
    rep = people.adult[rng.integers(0, people.adult.size, m)]
    if established_on is None:
        adult_at = people.births[rep] + np.timedelta64(18 * 365 + 5, "D")
        established = arrays.between(rng, np.maximum(adult_at, EARLIEST), np.full(m, today))
    else:
        established = np.full(m, established_on)

    index = np.arange(start, start + m, dtype=np.int64)
    legacy = established < _LEGACY_CODES_UNTIL
    body = np.empty((m, 8), dtype=np.uint8)
    body[:] = arrays.digits(arrays.permuted(index, 10**8, world.seed, 61_803_399), 8)
    body[~legacy, :2] = np.frombuffer(b"MA", dtype=np.uint8)
    body[~legacy, 2:] = arrays.base_chars(
        arrays.permuted(index[~legacy], 31**6, world.seed, 548_509_931), 6, arrays.USCC_ALPHABET
    )
    prefix = np.frombuffer(b"91", dtype=np.uint8)[None, :].repeat(m, axis=0)
    for code, two in _USCC_PREFIX.items():
        prefix[type_codes == code] = np.frombuffer(two.encode(), dtype=np.uint8)
    uscc = arrays.uscc_matrix(prefix, places.codes[place], body)

    at = arrays.assign(rng, m, counts, DefectRates.DUPLICATE)
    for kind, breaker in (
        ("bad_uscc_check", arrays.break_uscc_check),
        ("bad_org_code_check", arrays.break_org_check),
    ):
        part = uscc[at[kind]]
        breaker(rng, part)
        uscc[at[kind]] = part
    dups, sources = at["duplicate_uscc"], at["_sources"]
    uscc[dups] = uscc[sources]
    unknown = at["unknown_entity_type"]
    type_codes = type_codes.astype("U4")
    type_codes[unknown] = np.array(list(UNKNOWN_TYPES))[rng.integers(0, len(UNKNOWN_TYPES), unknown.size)]

    rep_ids = people.ids.take(pa.array(rep))
    bad_rep = at["invalid_rep_id"]
    if bad_rep.size:
        broken = arrays.break_ric(rng, rep_ids.take(pa.array(bad_rep)))
        mask = np.zeros(m, dtype=bool)
        mask[bad_rep] = True
        rep_ids = pc.replace_with_mask(rep_ids, pa.array(mask), broken)

    industry = rng.integers(0, len(INDUSTRIES), m)
    trade = rng.integers(0, len(_TRADE_FIRST) * len(_TRADE_SECOND), m)
    combos = len(_TRADE_FIRST) * len(_TRADE_SECOND)
    trade[dups] = np.where(trade[dups] == trade[sources], (trade[dups] + 1) % combos, trade[dups])
    status = (
        np.array(list(STATUS))[arrays.pick(rng, STATUS, m)]
        if established_on is None
        else np.full(m, ACTIVE[0])
    )
    capital = _capital(rng, type_codes)
    columns = {
        "uscc": arrays.strings(uscc),
        "name": _names(rng, type_codes, place, industry, trade, places),
        "entity_type": pa.array(type_codes, pa.string()),
        "legal_rep_name": people.names.take(pa.array(rep)),
        "legal_rep_id_number": rep_ids,
        "registered_capital": _decimal(capital),
        "establishment_date": arrays.dates(established),
        "registration_authority": _authorities(type_codes, place, places),
        "division_code": pa.array(places.codes[place]).cast(pa.string()),
        "address": _addresses(rng, place, places),
        "status": pa.array(status, pa.string()),
        "business_scope": arrays.pool(tuple(s for _, _, s in INDUSTRIES)).take(pa.array(industry)),
        "updated_at": arrays.timestamps_after(rng, established, world.as_of),
    }
    target = schema()
    batch = pa.RecordBatch.from_arrays([columns[f.name].cast(f.type) for f in target], schema=target)
    clean = ~arrays.defective(m, at) & np.isin(status, ACTIVE)
    return batch, clean


def _capital(rng: np.random.Generator, type_codes: np.ndarray) -> np.ndarray:
    """Registered capital in units of 0.0001 万元 (one yuan): whole 万元 for companies, 0.1 万元
    steps for individual businesses and cooperatives, which declare small sums."""
    m = type_codes.size
    wan = np.round(10 ** rng.uniform(0.5, 4.0, m)).astype(np.int64) * 10_000
    small = np.isin(type_codes, ("9100", "9200", "4100"))
    wan[small] = rng.integers(10, 500, int(small.sum())) * 1_000
    return wan


def _decimal(units: np.ndarray) -> pa.Array:
    """decimal128(20, 4) from non-negative integers counted in units of 0.0001."""
    pairs = np.zeros((units.size, 2), dtype=np.int64)
    pairs[:, 0] = units
    return pa.Array.from_buffers(pa.decimal128(20, 4), units.size, [None, pa.py_buffer(pairs)])


def _names(
    rng: np.random.Generator,
    type_codes: np.ndarray,
    place: np.ndarray,
    industry: np.ndarray,
    trade: np.ndarray,
    places: arrays.Places,
) -> pa.Array:
    individual = np.isin(type_codes, ("9100", "9200"))
    city = arrays.pool(tuple(arrays.short_city(c) for c in places.cities)).take(pa.array(place))
    county = arrays.pool(places.counties).take(pa.array(place))
    first = arrays.pool(tuple(_TRADE_FIRST)).take(pa.array(trade // len(_TRADE_SECOND)))
    second = arrays.pool(tuple(_TRADE_SECOND)).take(pa.array(trade % len(_TRADE_SECOND)))
    word = pc.if_else(
        pa.array(individual),
        arrays.pool(tuple(s for _, s, _ in INDUSTRIES)).take(pa.array(industry)),
        arrays.pool(tuple(i for i, _, _ in INDUSTRIES)).take(pa.array(industry)),
    )
    suffix = arrays.pool(tuple(_SUFFIX.values())).take(pa.array(_suffix_index(type_codes, list(_SUFFIX))))
    return arrays.concat([pc.if_else(pa.array(individual), county, city), first, second, word, suffix])


def _suffix_index(type_codes: np.ndarray, kinds: list[str]) -> np.ndarray:
    out = np.zeros(type_codes.size, dtype=np.int64)
    for i, code in enumerate(kinds):
        out[type_codes == code] = i
    return out


def _authorities(type_codes: np.ndarray, place: np.ndarray, places: arrays.Places) -> pa.Array:
    """Companies limited by shares and foreign-invested ones register at the prefecture."""
    county = arrays.pool(places.counties).take(pa.array(place))
    city = arrays.pool(places.cities).take(pa.array(place))
    upper = pa.array(np.isin(type_codes, ("1200", "5000")))
    return arrays.concat([pc.if_else(upper, city, county), pa.array(["市场监督管理局"] * type_codes.size)])


def _addresses(rng: np.random.Generator, place: np.ndarray, places: arrays.Places) -> pa.Array:
    m = place.size
    floor = pc.binary_join_element_wise(pa.array(rng.integers(1, 30, m)).cast(pa.string()), "楼", "")
    in_building = pa.array(rng.random(m) < 0.5)
    return arrays.concat(
        [
            arrays.pool(places.prefixes).take(pa.array(place)),
            arrays.pool(names.STREETS).take(pa.array(rng.integers(0, len(names.STREETS), m))),
            pa.array(rng.integers(1, 500, m)).cast(pa.string()),
            pa.array(["号"] * m),
            pc.if_else(in_building, floor, ""),
        ]
    )


# --- the register's own table ------------------------------------------------------------------


def register_table(name: str = DEFAULT_TABLE) -> sa.Table:
    """The register's table, in its own column names; no primary key, so the simulator can
    store the duplicates it plants (indexes on the code and the change time are added)."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("tyshxydm", sa.String(18)),
        sa.Column("qymc", sa.String(200)),
        sa.Column("qylx", sa.String(50)),
        sa.Column("fddbr", sa.String(50)),
        sa.Column("fddbrzjhm", sa.String(18)),
        sa.Column("zczb", sa.Numeric(20, 4)),
        sa.Column("clrq", sa.Date),
        sa.Column("djjg", sa.String(100)),
        sa.Column("xzqhdm", sa.CHAR(6)),
        sa.Column("zs", sa.String(300)),
        sa.Column("djzt", sa.String(10)),
        sa.Column("jyfw", sa.String(1000)),
        sa.Column("gxsj", sa.DateTime),
        mysql_charset="utf8mb4",
    )


def to_system_columns(records: pa.Table | pa.RecordBatch) -> pa.Table:
    """Canonical records as the register stores them: its column names, type names not codes."""
    table = records if isinstance(records, pa.Table) else pa.Table.from_batches([records])
    known = {**ENTITY_TYPES, **UNKNOWN_TYPES}
    index = pc.index_in(table.column("entity_type"), value_set=pa.array(list(known)))
    table = table.set_column(
        table.schema.get_field_index("entity_type"),
        "entity_type",
        arrays.pool(tuple(known.values())).take(index),
    )
    return table.rename_columns([SYSTEM_COLUMNS[c] for c in table.column_names])


def _for_sql(table: pa.Table) -> pa.Table:
    """Amounts as their decimal text: every driver takes it (sqlite3 refuses Decimal objects)."""
    i = table.schema.get_field_index("zczb")
    return table.set_column(i, "zczb", table.column(i).cast(pa.string()))


def fill(
    url: str,
    n: int,
    *,
    table: str = DEFAULT_TABLE,
    seed: int | None = None,
    rates: DefectRates = DefectRates(),
    replace: bool = True,
    progress: Callable[[int], object] | None = None,
    chunk_rows: int = population.DEFAULT_CHUNK_ROWS,
    world: w.World | None = None,
    as_of: dt.datetime | None = None,
) -> SimulationReport:
    """Write ``n`` generated entities into ``table`` at ``url`` in the register's column names.

    ``replace=True`` drops and recreates the table; otherwise rows are appended. PostgreSQL
    through psycopg is loaded with COPY, other databases (MariaDB through PyMySQL, which
    folds an ``executemany`` into multi-row INSERTs) with ``executemany``, one transaction
    per chunk so that a failure leaves whole chunks only.
    """
    started = time.perf_counter()
    register = _world(n, seed=seed, rates=rates, world=world, as_of=as_of)
    batches = arrays.rebatch((batch for batch, _ in _blocks(register)), chunk_rows)
    population.load_table(
        url,
        register_table(table),
        (_for_sql(to_system_columns(b)).combine_chunks().to_batches()[0] for b in batches),
        replace=replace,
        progress=progress,
        index_columns=("tyshxydm", "gxsj"),
    )
    defects = _rates(register).counts(n)
    return SimulationReport(
        table=table,
        rows=n,
        defects=defects,
        expected_quarantined=_rates(register).expected_quarantined(n),
        seconds=time.perf_counter() - started,
    )


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
    """Day ``day``'s changes to the register ``generate(n_existing, ...)`` built.

    ``new`` entities are set up that day (clean, codes never used); ``updated`` clean
    existing entities move, change capital and, one in three, their legal representative;
    ``deregistered`` clean existing entities are 注销. Every change has a later ``updated_at``.
    """
    if new > MAX_NEW_PER_DAY:
        raise ValueError(f"at most {MAX_NEW_PER_DAY:,} new entities a day, got {new:,}")
    register = _world(n_existing, seed=seed, rates=rates, world=world, as_of=as_of)
    anchor = register.as_of
    batches, clean = [], []
    for batch, mask in _blocks(register):
        batches.append(batch)
        clean.append(mask)
    target = schema()
    existing = pa.Table.from_batches(batches, schema=target).combine_chunks()
    candidates = np.flatnonzero(np.concatenate(clean)) if clean else np.empty(0, np.int64)
    if updated + deregistered > candidates.size:
        raise ValueError(
            f"{updated} updates and {deregistered} deregistrations need that many clean existing entities; "
            f"the register of {n_existing} rows has {candidates.size}"
        )
    rng = arrays.block_rng(register.seed, _NEW_STREAM + day, 0)
    picked = rng.choice(candidates, updated + deregistered, replace=False)

    opened = np.datetime64(day_start(anchor, day).date(), "D")
    fresh = [
        _block(
            register,
            arrays.block_rng(register.seed, _NEW_STREAM + day, 1 + b),
            n_existing + (day - 2) * MAX_NEW_PER_DAY + b * BLOCK_ROWS,
            min(BLOCK_ROWS, new - b * BLOCK_ROWS),
            dict.fromkeys(DEFECT_KINDS, 0),
            established_on=opened,
        )[0]
        for b in range((new + BLOCK_ROWS - 1) // BLOCK_ROWS)
    ]
    added = pa.Table.from_batches(fresh, schema=target)
    added = _stamp(added, rng, anchor, day)

    moved = existing.take(pa.array(picked[:updated]))
    places = arrays.places(anchor.year)
    row_of = {code: row for row, code in enumerate(places.codes.tolist())}
    place = np.array([row_of[int(c)] for c in moved.column("division_code").to_pylist()], dtype=np.int64)
    moved = _set(moved, "address", _addresses(rng, place, places))
    moved = _set(
        moved,
        "registered_capital",
        _decimal(_capital(rng, np.full(updated, "1100"))).cast(target.field("registered_capital").type),
    )
    people = register.people
    rep = people.adult[rng.integers(0, people.adult.size, updated)]
    change_rep = pa.array(rng.random(updated) < 1 / 3)
    moved = _set(
        moved,
        "legal_rep_name",
        pc.if_else(change_rep, people.names.take(pa.array(rep)), moved.column("legal_rep_name")),
    )
    moved = _set(
        moved,
        "legal_rep_id_number",
        pc.if_else(change_rep, people.ids.take(pa.array(rep)), moved.column("legal_rep_id_number")),
    )
    moved = _stamp(moved, rng, anchor, day)

    closed = existing.take(pa.array(picked[updated:]))
    closed = _stamp(_set(closed, "status", pa.array(["注销"] * deregistered, pa.string())), rng, anchor, day)
    return Changes(
        dataset="legal_entity", key="uscc", day=day, new=added, updated=moved, status_changed=closed
    )


def _set(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _stamp(table: pa.Table, rng: np.random.Generator, as_of: dt.datetime, day: int) -> pa.Table:
    return _set(table, "updated_at", day_timestamps(rng, table.num_rows, as_of, day))


def apply_changes(url: str, table: str, changes: Changes) -> population.ApplyReport:
    """Upsert ``changes`` into the register's table at ``url`` (a changed code's row is replaced)."""
    records = _for_sql(to_system_columns(changes.records()))
    return population.upsert(
        url, register_table(table), "tyshxydm", records, replaced=changes.rows - changes.new.num_rows
    )
