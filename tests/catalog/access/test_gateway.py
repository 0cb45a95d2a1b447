"""The consumer gateway: a system sees only its grant's views and columns, and every escape
attempt named in the consumer-access issue is refused before anything runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from catalog.access import Gateway, Limits, referenced_tables
from catalog.errors import QueryDeniedError
from catalog.tables import QueryEngine, SharedTables, extension_file
from schemas.contract import Contract

NATIVE = extension_file("iceberg") is not None and extension_file("avro") is not None


@dataclass(frozen=True)
class Grant:
    id: int
    system: str
    dataset: str
    level: str
    columns: tuple[str, ...]


GRANT = Grant(1, "shebao-core", "population", "conditional", ("person_token", "gender", "birth_year"))


@pytest.fixture(params=[pytest.param(False, id="read_parquet"), pytest.param(True, id="iceberg_scan")])
def gateway(
    request: pytest.FixtureRequest,
    tables: SharedTables,
    population: Contract,
    published_rows: Callable[..., pa.Table],
) -> Gateway:
    if request.param and not NATIVE:
        pytest.fail("the iceberg and avro DuckDB extension packages are pinned dependencies")
    tables.commit(population, published_rows(40, "b1"), batch_id="b1")
    return Gateway(QueryEngine(tables, native=request.param))


def test_the_view_holds_only_the_granted_columns(gateway: Gateway) -> None:
    result = gateway.run("SELECT * FROM population ORDER BY person_token LIMIT 2", [GRANT])
    assert result.table.column_names == ["person_token", "gender", "birth_year"]
    assert result.table.num_rows == 2
    assert result.datasets == ("population",)
    assert result.snapshots["population"] is not None
    assert result.columns == {"population": GRANT.columns}


def test_aggregates_joins_ctes_and_subqueries_over_granted_views_run(gateway: Gateway) -> None:
    sql = """
        WITH born AS (SELECT person_token, birth_year FROM population WHERE birth_year < 1980)
        SELECT count(*) AS n FROM born JOIN population p USING (person_token)
        WHERE p.gender IN (SELECT gender FROM population)
    """
    assert gateway.run(sql, [GRANT]).table.to_pylist() == [{"n": 30}]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT name FROM population", "name"),
        ("SELECT mobile FROM population", "mobile"),
        ("SELECT * FROM (SELECT address FROM population)", "address"),
        ('SELECT "name" FROM population', "name"),
        ("SELECT person_token FROM population WHERE name LIKE '张%'", "name"),
    ],
)
def test_columns_outside_the_grant_do_not_exist(gateway: Gateway, sql: str, reason: str) -> None:
    with pytest.raises(QueryDeniedError, match=f"{reason}.*granted columns: population\\(person_token"):
        gateway.run(sql, [GRANT])


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM read_parquet('/tmp/*.parquet')", "read_parquet"),
        ("FROM glob('/etc/*')", "glob"),
        ("SELECT * FROM population, read_text('/etc/hostname')", "read_text"),
        ("SELECT * FROM population WHERE 1 IN (SELECT 1 FROM read_csv_auto('x.csv'))", "read_csv_auto"),
        ("SELECT * FROM iceberg_scan('/tmp/x')", "iceberg_scan"),
        ("SELECT * FROM query_table('population')", "query_table"),
        ("SELECT * FROM duckdb_views()", "duckdb_views"),
        ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
        ("ATTACH '/tmp/x.db' AS x", "ATTACH"),
        ("COPY population TO '/tmp/out.csv'", "COPY"),
        ("INSTALL httpfs", "INSTALL|LOAD"),
        ("LOAD httpfs", "LOAD"),
        ("SET enable_external_access = true", "SET|VARIABLE_SET"),
        ("PRAGMA database_list", "pragma_database_list"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT * FROM population; DROP VIEW population", "one statement"),
        ("SELECT * FROM main.population", "qualified"),
        ("SELECT * FROM memory.main.population", "qualified"),
        ("SELECT * FROM information_schema.tables", "qualified"),
        ("SELECT * FROM legal_entity", "not granted"),
        ("SELECT * FROM population_unconditional", "not granted"),
        ("DESCRIBE population", "DESCRIBE"),
        ("SELECT * FROM population /* ; ATTACH 'x' */ -- ; COPY", None),
        ("", "empty"),
        ("SELEC * FROM population", "does not parse"),
    ],
)
def test_escape_attempts_are_refused(gateway: Gateway, sql: str, message: str | None) -> None:
    if message is None:  # comments hide nothing: the statement is the SELECT alone
        assert gateway.run(sql, [GRANT]).table.num_rows == 40
        return
    with pytest.raises(QueryDeniedError, match=message):
        gateway.run(sql, [GRANT])


def test_the_hidden_full_view_cannot_be_named(gateway: Gateway) -> None:
    connection, _ = gateway._connect([GRANT])
    try:
        names = [
            r[0]
            for r in connection.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        ]
    finally:
        connection.close()
    hidden = next(n for n in names if n.startswith("_hub_"))
    with pytest.raises(QueryDeniedError, match="not granted"):
        gateway.run(f"SELECT name FROM {hidden}", [GRANT])


def test_no_grant_no_data(gateway: Gateway) -> None:
    with pytest.raises(QueryDeniedError, match="no active grant"):
        gateway.run("SELECT 1", [])


def test_the_row_limit_truncates_and_says_so(gateway: Gateway) -> None:
    result = gateway.run("SELECT person_token FROM population", [GRANT], limits=Limits(rows=7))
    assert result.table.num_rows == 7 and result.truncated
    full = gateway.run("SELECT person_token FROM population", [GRANT], limits=Limits(rows=40))
    assert full.table.num_rows == 40 and not full.truncated


def test_the_time_limit_interrupts_a_runaway_query(gateway: Gateway) -> None:
    sql = "SELECT count(*) FROM range(100000000000) a"
    with pytest.raises(QueryDeniedError):  # a table function: refused before it could run
        gateway.run(sql, [GRANT])
    slow = (
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100000000000) "
        "SELECT count(*) FROM r, population"
    )
    with pytest.raises(QueryDeniedError, match="longer than the limit"):
        gateway.run(slow, [GRANT], limits=Limits(seconds=0.5))


def test_an_unconditional_grant_reads_the_k_anonymous_table(
    tables: SharedTables, population: Contract, published_rows: Callable[..., pa.Table], tmp_path: Path
) -> None:
    rows = published_rows(10, "b1")
    tables.commit(population, rows, batch_id="b1")
    unconditional = population.published_schema("unconditional")
    tables.replace_rows(
        "population_unconditional",
        pa.table(
            {f.name: _filler(f, 3) for f in unconditional},
            schema=unconditional,
        ),
        batch_id="b1",
        properties={},
    )
    grant = Grant(2, "stats", "population", "unconditional", ("gender",))
    result = Gateway(QueryEngine(tables, native=False)).run("SELECT count(*) AS n FROM population", [grant])
    assert result.table.to_pylist() == [{"n": 3}]


def _filler(field: pa.Field, n: int) -> pa.Array:
    if field.nullable:
        return pa.nulls(n, field.type)
    if pa.types.is_timestamp(field.type):
        return pa.array([datetime(2026, 1, 1)] * n, field.type)
    return pa.array([f"{field.name}-{i}" for i in range(n)], field.type)


def test_referenced_tables_sees_through_nesting() -> None:
    tables, ctes = referenced_tables(
        "WITH a AS (SELECT * FROM x) SELECT * FROM a JOIN (SELECT * FROM y) USING (k) "
        "WHERE k IN (SELECT k FROM z)"
    )
    assert sorted(tables) == ["a", "x", "y", "z"] and ctes == {"a"}
