"""The market-regulation register simulator, checked against python-stdnum and the world's persons."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from stdnum.cn import ric, uscc

from connectors.config import SOURCES_DIR, load_source_file
from connectors.simulator import legal_entity as le
from connectors.simulator import population
from connectors.simulator.world import World
from schemas.contract import load_contract
from tests.support.codes import org_code_ok

AS_OF = dt.datetime(2025, 6, 1)
RATES = le.DefectRates(
    bad_uscc_check=0.01,
    bad_org_code_check=0.015,
    invalid_rep_id=0.02,
    unknown_entity_type=0.005,
    duplicate_uscc=0.01,
)
N = 12_345
WORLD = World(seed=7, persons=8_000, population_rates=population.DefectRates.uniform(0.01), as_of=AS_OF)


def classify(table: pa.Table) -> tuple[Counter[str], int]:
    """Defect kind of every row from the data alone, and the rows a validator quarantines."""
    rows = table.to_pylist()
    by_code = Counter(r["uscc"] for r in rows)
    types = set(load_contract("legal_entity").field("entity_type").values or ())
    kinds: Counter[str] = Counter()
    for r in rows:
        code = r["uscc"]
        if not uscc.is_valid(code):
            kinds["bad_uscc_check"] += 1
        elif not org_code_ok(code[8:17]):
            kinds["bad_org_code_check"] += 1
        elif by_code[code] > 1:
            kinds["shared_uscc"] += 1
        elif not ric.is_valid(r["legal_rep_id_number"]):
            kinds["invalid_rep_id"] += 1
        elif r["entity_type"] not in types:
            kinds["unknown_entity_type"] += 1
        else:
            kinds["clean"] += 1
    return kinds, len(rows) - kinds["clean"]


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return pa.Table.from_batches(le.generate(N, rates=RATES, chunk_rows=4_000, world=WORLD))


def test_batches_have_the_contract_schema_and_chunk_size() -> None:
    batches = list(le.generate(2_500, chunk_rows=1_000, world=WORLD))
    assert [b.num_rows for b in batches] == [1_000, 1_000, 500]
    assert all(b.schema.equals(load_contract("legal_entity").arrow_schema()) for b in batches)


def test_defects_are_exact_disjoint_and_fail_as_they_should(sample: pa.Table) -> None:
    expected = RATES.counts(N)
    kinds, quarantined = classify(sample)
    for kind in ("bad_uscc_check", "bad_org_code_check", "invalid_rep_id", "unknown_entity_type"):
        assert kinds[kind] == expected[kind], kind
    assert kinds["shared_uscc"] == 2 * expected["duplicate_uscc"]
    assert quarantined == RATES.expected_quarantined(N) == sum(expected.values()) + expected["duplicate_uscc"]


def test_duplicates_are_different_entities(sample: pa.Table) -> None:
    groups: dict[str, list[dict[str, object]]] = {}
    for r in sample.to_pylist():
        groups.setdefault(str(r["uscc"]), []).append(r)
    shared = [g for g in groups.values() if len(g) > 1]
    assert len(shared) == RATES.counts(N)["duplicate_uscc"]
    assert all(len(g) == 2 and g[0]["name"] != g[1]["name"] for g in shared)


def test_clean_rows_are_consistent_and_their_reps_are_world_persons(sample: pa.Table) -> None:
    people = WORLD.people
    persons = dict(zip(people.ids.to_pylist(), people.names.to_pylist(), strict=True))
    births = dict(zip(people.ids.to_pylist(), people.births.tolist(), strict=True))
    shared = Counter(sample.column("uscc").to_pylist())
    rows = [
        r
        for r in sample.to_pylist()
        if uscc.is_valid(r["uscc"]) and shared[r["uscc"]] == 1 and ric.is_valid(r["legal_rep_id_number"])
    ]
    assert len(rows) > 0.9 * N
    for r in rows:
        assert persons[r["legal_rep_id_number"]] == r["legal_rep_name"]
        born = births[r["legal_rep_id_number"]]
        assert r["establishment_date"] >= born + dt.timedelta(days=18 * 365)
        assert r["division_code"] == r["uscc"][2:8]
        assert r["establishment_date"] < AS_OF.date()
        assert AS_OF - dt.timedelta(days=366) <= r["updated_at"] < AS_OF
        assert r["registered_capital"] > 0
        assert r["registration_authority"].endswith("市场监督管理局")
        if r["entity_type"] in le.ENTITY_TYPES:
            assert r["uscc"][:2] == {"9100": "92", "9200": "93"}.get(r["entity_type"], "91")
        assert (r["uscc"][8:10] == "MA") == (r["establishment_date"] >= dt.date(2015, 10, 1))
    statuses = Counter(r["status"] for r in rows)
    assert set(statuses) <= set(load_contract("legal_entity").field("status").values or ())
    assert statuses["存续"] > statuses["注销"] > 0


def test_codes_are_unique_without_planted_duplicates() -> None:
    table = pa.Table.from_batches(le.generate(15_000, rates=le.DefectRates.uniform(0), world=WORLD))
    codes = table.column("uscc").to_pylist()
    assert len(set(codes)) == 15_000
    assert classify(table)[1] == 0


def test_same_seed_same_records_other_seed_other_records() -> None:
    first = pa.Table.from_batches(le.generate(3_000, rates=RATES, world=WORLD, chunk_rows=1_000))
    again = pa.Table.from_batches(le.generate(3_000, rates=RATES, world=WORLD, chunk_rows=777))
    other = pa.Table.from_batches(le.generate(3_000, seed=8, rates=RATES, as_of=AS_OF))
    assert first.equals(again)
    assert not first.column("uscc").equals(other.column("uscc"))
    with pytest.raises(ValueError, match="seed"):
        next(le.generate(10, seed=8, world=WORLD))


def test_the_source_file_maps_the_register_columns_and_type_names() -> None:
    source = load_source_file(SOURCES_DIR / "legal_entity.yaml")
    assert source.columns == le.SYSTEM_COLUMNS
    assert source.values["entity_type"] == {name: code for code, name in le.ENTITY_TYPES.items()}
    assert source.connector.kind == "sql" and source.connector.table == le.DEFAULT_TABLE
    assert source.cursor == "updated_at" and source.department.code == "11100000000013127D"
    raw = yaml.safe_load((SOURCES_DIR / "legal_entity.yaml").read_text(encoding="utf-8"))
    assert raw["connector"]["url"] == "sqlite:///${HUB_HOME}/sources/legal_entity.db"


def test_fill_sqlite_with_the_register_column_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'register.db'}"
    seen: list[int] = []
    report = le.fill(url, 4_321, rates=RATES, world=WORLD, progress=seen.append, chunk_rows=1_000)
    assert report.rows == 4_321 and report.defects == RATES.counts(4_321)
    assert report.expected_quarantined == RATES.expected_quarantined(4_321)
    assert seen == [1_000, 2_000, 3_000, 4_000, 4_321]
    expected = pa.Table.from_batches(le.generate(4_321, rates=RATES, world=WORLD)).to_pylist()
    with sqlite3.connect(tmp_path / "register.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(market_entities)")]
        assert columns == list(le.SYSTEM_COLUMNS.values())
        rows = db.execute("SELECT tyshxydm, qylx, zczb, clrq, gxsj FROM market_entities").fetchall()
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert indexes == {"ix_market_entities_tyshxydm", "ix_market_entities_gxsj"}
    assert len(rows) == 4_321
    names = {**le.ENTITY_TYPES, **le.UNKNOWN_TYPES}
    for (code, kind, capital, founded, changed), want in zip(rows, expected, strict=True):
        assert code == want["uscc"] and kind == names[want["entity_type"]]
        assert Decimal(str(capital)) == want["registered_capital"]
        assert founded == want["establishment_date"].isoformat()
        assert changed.startswith(want["updated_at"].isoformat(sep=" "))


def test_changes_are_exact_and_apply_to_sqlite(tmp_path: Path) -> None:
    existing = pa.Table.from_batches(le.generate(3_000, rates=RATES, world=WORLD))
    changes = le.changes(3_000, new=60, updated=45, deregistered=30, rates=RATES, world=WORLD)
    assert changes.counts() == {"new": 60, "updated": 45, "status_changed": 30}
    before = {r["uscc"]: r for r in existing.to_pylist()}
    new = changes.new.to_pylist()
    assert not {r["uscc"] for r in new} & set(before)
    assert classify(changes.new)[1] == 0 and all(r["status"] == "存续" for r in new)
    assert all(r["establishment_date"] == AS_OF.date() for r in new)
    for r in changes.updated.to_pylist():
        old = before[r["uscc"]]
        assert old["status"] in le.ACTIVE and r["name"] == old["name"]
        assert (r["address"], r["registered_capital"]) != (old["address"], old["registered_capital"])
    assert all(
        before[r["uscc"]]["status"] in le.ACTIVE and r["status"] == "注销"
        for r in changes.status_changed.to_pylist()
    )
    assert min(changes.records().column("updated_at").to_pylist()) >= AS_OF
    assert classify(pa.concat_tables([changes.updated, changes.status_changed]))[1] == 0

    day3 = le.changes(3_000, day=3, new=60, updated=1, deregistered=1, rates=RATES, world=WORLD)
    assert not day3.keys() & {r["uscc"] for r in new}
    assert min(day3.records().column("updated_at").to_pylist()) >= AS_OF + dt.timedelta(days=1)

    url = f"sqlite:///{tmp_path / 'register.db'}"
    le.fill(url, 3_000, rates=RATES, world=WORLD)
    report = le.apply_changes(url, "market_entities", changes)
    assert (report.inserted, report.replaced) == (60, 75)
    with sqlite3.connect(tmp_path / "register.db") as db:
        assert db.execute("SELECT count(*) FROM market_entities").fetchone() == (3_060,)
        since = db.execute(
            "SELECT count(*), count(DISTINCT tyshxydm) FROM market_entities WHERE gxsj >= ?",
            (AS_OF.isoformat(sep=" "),),
        ).fetchone()
        assert since == (changes.rows, changes.rows)
        assert db.execute(
            "SELECT count(*) FROM market_entities WHERE djzt = '注销' AND gxsj >= ?",
            (AS_OF.isoformat(sep=" "),),
        ).fetchone() == (30,)
