"""QueryEngine: DuckDB views over the current Iceberg snapshots, in a locked-down connection.

Both readers are exercised: ``read_parquet`` always, ``iceberg_scan`` when the iceberg and
avro extension packages are installed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from catalog.errors import ExtensionUnavailableError, QueryDeniedError, QueryError
from catalog.tables import QueryEngine, SharedTables, extension_file
from schemas.contract import Contract
from schemas.errors import AccessDeniedError, HubError

PublishedRows = Callable[..., pa.Table]
NATIVE = extension_file("iceberg") is not None and extension_file("avro") is not None


@pytest.fixture(
    params=[
        pytest.param(False, id="read_parquet"),
        pytest.param(
            True,
            id="iceberg_scan",
            marks=pytest.mark.skipif(not NATIVE, reason="duckdb-extension-avro is not installed"),
        ),
    ]
)
def engine(request: pytest.FixtureRequest, tables: SharedTables) -> QueryEngine:
    return QueryEngine(tables, native=request.param)


@pytest.fixture
def loaded(tables: SharedTables, population: Contract, published_rows: PublishedRows) -> int:
    tables.commit(population, published_rows(40, "b1"), batch_id="b1")
    return tables.commit(population, published_rows(25, "b2", start=100), batch_id="b2")


def test_view_returns_the_current_snapshot(engine: QueryEngine, loaded: int) -> None:
    result = engine.run(
        "SELECT _batch_id, count(*) AS n, count(DISTINCT person_token) AS people, "
        "min(birth_year) AS oldest FROM population GROUP BY _batch_id"
    )
    assert result.to_pylist() == [{"_batch_id": "b2", "n": 25, "people": 25, "oldest": 1950}]
    (view,) = engine.views()
    assert view.dataset == "population" and view.snapshot_id == loaded


def test_connection_is_pinned_to_the_snapshot_it_opened_on(
    engine: QueryEngine,
    tables: SharedTables,
    population: Contract,
    published_rows: PublishedRows,
    loaded: int,
) -> None:
    connection = engine.connect()
    try:
        tables.commit(population, published_rows(3, "b3"), batch_id="b3")
        assert connection.execute("SELECT count(*) FROM population").fetchone() == (25,)
    finally:
        connection.close()
    assert engine.run("SELECT count(*) AS n FROM population").column("n").to_pylist() == [3]


def test_sandbox_blocks_files_settings_and_extensions(
    engine: QueryEngine, loaded: int, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n", encoding="utf-8")
    for sql in (
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM read_parquet('{tmp_path}/warehouse/**/*.parquet')",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        "LOAD httpfs",
    ):
        with pytest.raises(AccessDeniedError) as caught:
            engine.run(sql)
        assert isinstance(caught.value, QueryDeniedError)
        assert "Permission Error" in str(caught.value)
    with pytest.raises(HubError, match="configuration"):
        engine.run("SET enable_external_access = true")
    with pytest.raises(HubError, match="locked"):
        engine.run("SET threads = 1")


def test_unsandboxed_connection_can_read_files(tables: SharedTables, loaded: int, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n", encoding="utf-8")
    open_engine = QueryEngine(tables, native=False, sandbox=False)
    assert open_engine.run(f"SELECT a FROM read_csv('{tmp_path / 'x.csv'}')").to_pylist() == [{"a": 1}]


def test_duckdb_errors_become_hub_errors(engine: QueryEngine, loaded: int) -> None:
    with pytest.raises(QueryError, match="no_such_column"):
        engine.run("SELECT no_such_column FROM population")
    with pytest.raises(QueryError, match="Parser Error"):
        engine.run("SELEKT 1")


def test_empty_and_unwritten_tables_still_have_typed_views(
    engine: QueryEngine, tables: SharedTables, population: Contract, published_rows: PublishedRows
) -> None:
    tables.ensure_table(population)
    described = engine.run("DESCRIBE population")
    assert described.column("column_name").to_pylist() == population.published_schema().names
    assert engine.run("SELECT count(*) AS n FROM population").column("n").to_pylist() == [0]
    tables.commit(population, published_rows(0, "b1"), batch_id="b1")
    assert engine.run("SELECT count(*) AS n FROM population").column("n").to_pylist() == [0]


def test_auto_mode_says_why_it_falls_back(tables: SharedTables) -> None:
    engine = QueryEngine(tables)
    if NATIVE:
        assert engine.reader == "iceberg_scan" and engine.fallback_reason is None
    else:
        assert engine.reader == "read_parquet"
        assert engine.fallback_reason is not None and "duckdb-extension-avro" in engine.fallback_reason
        with pytest.raises(ExtensionUnavailableError, match="duckdb-extension-avro"):
            QueryEngine(tables, native=True)


def test_iceberg_extension_package_is_installed() -> None:
    assert extension_file("iceberg") is not None
