"""The market-regulation register simulator against the local MariaDB server."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors.simulator import legal_entity as le
from connectors.simulator import population
from connectors.simulator.world import World

AS_OF = dt.datetime(2025, 6, 1)
RATES = le.DefectRates.uniform(0.01)
WORLD = World(seed=21, persons=5_000, population_rates=population.DefectRates.uniform(0.01), as_of=AS_OF)


@pytest.fixture
def table(mariadb_url: str) -> Iterator[str]:
    name = f"market_entities_{uuid.uuid4().hex[:10]}"
    yield name
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS `{name}`")
    engine.dispose()


def test_fill_and_apply_changes_in_the_register_column_names(mariadb_url: str, table: str) -> None:
    report = le.fill(mariadb_url, 6_000, table=table, rates=RATES, world=WORLD, chunk_rows=2_500)
    assert report.rows == 6_000 and report.expected_quarantined == RATES.expected_quarantined(6_000)
    expected = pa.Table.from_batches(le.generate(6_000, rates=RATES, world=WORLD)).to_pylist()
    engine = sa.create_engine(mariadb_url)
    try:
        with engine.connect() as conn:
            columns = conn.exec_driver_sql(
                "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            rows = conn.exec_driver_sql(
                f"SELECT tyshxydm, qymc, qylx, zczb, clrq, gxsj FROM `{table}`"
            ).fetchall()
        assert [c[0] for c in columns] == list(le.SYSTEM_COLUMNS.values())
        types = {c[0]: (c[1], c[2], c[3]) for c in columns}
        assert types["zczb"] == ("decimal", 20, 4)
        assert types["clrq"][0] == "date" and types["gxsj"][0] == "datetime"
        names = {**le.ENTITY_TYPES, **le.UNKNOWN_TYPES}
        got = {(r[0], r[1]): r for r in rows}
        assert len(rows) == 6_000
        for want in expected:
            _, _, kind, capital, founded, changed = got[(want["uscc"], want["name"])]
            assert kind == names[want["entity_type"]]
            assert Decimal(capital) == want["registered_capital"]
            assert (founded, changed) == (want["establishment_date"], want["updated_at"])

        changes = le.changes(6_000, new=80, updated=60, deregistered=25, rates=RATES, world=WORLD)
        applied = le.apply_changes(mariadb_url, table, changes)
        assert (applied.inserted, applied.replaced) == (80, 85)
        with engine.connect() as conn:
            total = conn.exec_driver_sql(f"SELECT count(*) FROM `{table}`").scalar_one()
            since = conn.exec_driver_sql(
                f"SELECT count(*), count(DISTINCT tyshxydm) FROM `{table}` WHERE gxsj >= %s", (AS_OF,)
            ).one()
            closed = conn.exec_driver_sql(
                f"SELECT count(*) FROM `{table}` WHERE djzt = '注销' AND gxsj >= %s", (AS_OF,)
            ).scalar_one()
        assert total == 6_080
        assert tuple(since) == (changes.rows, changes.rows)
        assert closed == 25
    finally:
        engine.dispose()
