"""The SQL connector against SQLite files: schema, chunking, conversion, errors."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from connectors.base import ERRORS_COLUMN, Connector, batch_schema
from connectors.config import SourceConfig
from connectors.errors import (
    SourceConfigError,
    SourceDataError,
    SourceSchemaError,
    SourceUnreachableError,
)
from connectors.factory import open_connector
from connectors.simulator.population import fill, generate
from connectors.sql import WATERMARK_SETTING, SqlConnector, adbc_chunks, adbc_uri, rechunk
from schemas.contract import load_contract
from schemas.errors import ConfigurationError, ContractError, TransientError

CONTRACT = load_contract("population")
FIELDS = [f.name for f in CONTRACT.fields]
BATCH = batch_schema(CONTRACT.arrow_schema())


def read(connector: Connector, since: str | None = None) -> pa.Table:
    return pa.Table.from_batches(list(connector.read(since=since)), schema=BATCH)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sql") / "registry.db"
    fill(f"sqlite:///{path}", 2_500, seed=4, chunk_rows=700)
    return f"sqlite:///{path}"


def make_db(path: Path, ddl: str, rows: list[tuple[object, ...]]) -> str:
    with sqlite3.connect(path) as db:
        db.execute(ddl)
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            db.executemany(f"INSERT INTO t VALUES ({marks})", rows)
    return f"sqlite:///{path}"


def test_streams_in_chunks_in_the_contract_schema(registry: str) -> None:
    connector = SqlConnector("population", registry, "population_registry", CONTRACT, chunk_rows=1_000)
    connector.check()
    batches = list(connector.read(since=None))
    assert [b.num_rows for b in batches] == [1_000, 1_000, 500]
    assert connector.count() == 2_500
    for batch in batches:
        assert batch.schema.equals(BATCH, check_metadata=True)
        assert batch.column(ERRORS_COLUMN).null_count == batch.num_rows
    read = pa.Table.from_batches(batches).drop_columns([ERRORS_COLUMN])

    written = pa.Table.from_batches(generate(2_500, seed=4, chunk_rows=700))
    order = [("id_number", "ascending"), ("name", "ascending")]
    expected = written.sort_by(order).drop_columns(["updated_at"])
    assert read.sort_by(order).drop_columns(["updated_at"]).equals(expected)
    assert read.column("updated_at").type == pa.timestamp("us")


def test_column_mapping_reads_other_names(tmp_path: Path) -> None:
    url = make_db(
        tmp_path / "mapped.db",
        "CREATE TABLE t (sfzh TEXT, xm TEXT, gender TEXT, ethnicity TEXT, birth_date TEXT,"
        " division_code TEXT, address TEXT, mobile TEXT, registration_status TEXT, updated_at TEXT)",
        [("11010519491231002X", "张三", "2", "01", "1949-12-31", "110105", None, None, "1",
          "2025-01-02 03:04:05")],
    )  # fmt: skip
    connector = SqlConnector("mapped", url, "t", CONTRACT, columns={"id_number": "sfzh", "name": "xm"})
    (batch,) = connector.read(since=None)
    row = batch.to_pylist()[0]
    assert row["id_number"] == "11010519491231002X"
    assert row["name"] == "张三"
    assert row["birth_date"] == dt.date(1949, 12, 31)
    assert row["updated_at"] == dt.datetime(2025, 1, 2, 3, 4, 5)


def test_converts_text_dates_padding_and_numeric_codes(tmp_path: Path) -> None:
    url = make_db(
        tmp_path / "types.db",
        "CREATE TABLE t (id_number TEXT, name TEXT, gender CHAR(3), ethnicity TEXT, birth_date,"
        " division_code INTEGER, address TEXT, mobile TEXT, registration_status TEXT, updated_at)",
        [
            ("A", "甲", "1  ", "01", "2001-02-03", 440305, "x ", None, "1", "2025-01-02T03:04:05+08:00"),
            ("B", "乙", "2", "01", "2001-02-03 00:00:00", 110105, None, None, "1", "2025-01-02"),
            ("C", None, "1", None, None, None, None, None, "1", "2025-01-02 03:04:05.250000"),
        ],
    )
    (batch,) = SqlConnector("types", url, "t", CONTRACT).read(since=None)
    rows = batch.to_pylist()
    assert [r["gender"] for r in rows] == ["1", "2", "1"]
    assert rows[0]["address"] == "x"
    assert [r["division_code"] for r in rows] == ["440305", "110105", None]
    assert [r["birth_date"] for r in rows] == [dt.date(2001, 2, 3), dt.date(2001, 2, 3), None]
    assert [r["updated_at"] for r in rows] == [
        dt.datetime(2025, 1, 1, 19, 4, 5),
        dt.datetime(2025, 1, 2),
        dt.datetime(2025, 1, 2, 3, 4, 5, 250000),
    ]
    assert batch.schema.equals(BATCH)
    assert batch.column(ERRORS_COLUMN).null_count == 3


def test_a_value_that_cannot_convert_is_null_and_flags_its_row(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = [
        (f"{i:03d}", "名", "1", "01", "2001-02-03", "110105", None, None, "1", "2025-01-02") for i in range(5)
    ]
    rows[3] = ("003", b"\x00", "1", "01", "1990-02-30", "110105", None, None, "1", "2025-01-02")
    url = make_db(tmp_path / "bad.db", "CREATE TABLE t (" + ", ".join(FIELDS) + ")", rows)
    table = read(SqlConnector("bad-source", url, "t", CONTRACT, chunk_rows=2))
    assert table.num_rows == 5
    assert table.column(ERRORS_COLUMN).to_pylist() == [None, None, None, ["name", "birth_date"], None]
    assert table.column("birth_date").to_pylist()[3] is None and table.column("name").to_pylist()[3] is None
    assert table.column("birth_date").to_pylist()[4] == dt.date(2001, 2, 3)


def test_iter_batches_refuses_what_it_cannot_quarantine(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = [
        (f"{i:03d}", "名", "1", "01", "2001-02-03", "110105", None, None, "1", "2025-01-02") for i in range(5)
    ]
    rows[3] = ("003", "名", "1", "01", "1990-02-30", "110105", None, None, "1", "2025-01-02")
    url = make_db(tmp_path / "bad.db", "CREATE TABLE t (" + ", ".join(FIELDS) + ")", rows)
    connector = SqlConnector("bad-source", url, "t", CONTRACT, chunk_rows=2)
    with pytest.raises(SourceDataError) as caught:
        list(connector.iter_batches())
    error = caught.value
    assert isinstance(error, ContractError)
    assert (error.source, error.row, error.field) == ("bad-source", 4, "birth_date")
    assert "1990-02-30" not in str(error)
    assert "bad-source" in str(error) and "row 4" in str(error) and "birth_date" in str(error)


def test_missing_columns_are_all_named(tmp_path: Path) -> None:
    url = make_db(tmp_path / "short.db", "CREATE TABLE t (sfzh TEXT, name TEXT, gender TEXT)", [])
    connector = SqlConnector("short", url, "t", CONTRACT, columns={"id_number": "sfzh", "mobile": "sjhm"})
    with pytest.raises(SourceSchemaError) as caught:
        connector.check()
    message = str(caught.value)
    assert "'short'" in message and "'t'" in message
    for column in ("ethnicity", "birth_date", "division_code", "address", "sjhm (for field mobile)"):
        assert column in message
    assert "sfzh" not in message and "gender" not in caught.value.missing
    with pytest.raises(SourceSchemaError):
        list(connector.read(since=None))


def test_missing_table(tmp_path: Path) -> None:
    url = make_db(tmp_path / "other.db", "CREATE TABLE other (x TEXT)", [])
    with pytest.raises(SourceSchemaError, match="table 'population_registry': the table does not exist"):
        SqlConnector("p", url, "population_registry", CONTRACT).check()


def test_extra_columns_are_fine_but_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = make_db(tmp_path / "extra.db", "CREATE TABLE t (" + ", ".join([*FIELDS, "hjlx", "bz"]) + ")", [])
    with caplog.at_level(logging.WARNING, logger="connectors.sql"):
        SqlConnector("extra", url, "t", CONTRACT).check()
    assert "bz, hjlx" in caplog.text and "'extra'" in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://registry:s3cr3t-pw@127.0.0.1:1/registry",
        "mysql+pymysql://registry:s3cr3t-pw@127.0.0.1:1/registry",
    ],
)
def test_unreachable_names_source_and_url_without_password(url: str) -> None:
    connector = SqlConnector("population", url, "population_registry", CONTRACT)
    for call in (connector.check, connector.count, lambda: list(connector.read(since=None))):
        with pytest.raises(SourceUnreachableError) as caught:
            call()
        assert isinstance(caught.value, TransientError) and caught.value.retriable
        assert "s3cr3t-pw" not in str(caught.value)
        assert "'population'" in str(caught.value) and "registry:***@127.0.0.1:1" in str(caught.value)
    assert "s3cr3t-pw" not in repr(connector)


def test_missing_sqlite_file_is_unreachable_not_an_empty_source(tmp_path: Path) -> None:
    missing = tmp_path / "absent.db"
    with pytest.raises(SourceUnreachableError, match="does not exist"):
        SqlConnector("p", f"sqlite:///{missing}", "t", CONTRACT).check()
    assert not missing.exists()


def test_configuration_mistakes() -> None:
    with pytest.raises(SourceConfigError, match=r"field\(s\) nickname"):
        SqlConnector("p", "sqlite://", "t", CONTRACT, columns={"nickname": "x"})
    with pytest.raises(SourceConfigError, match="not a database URL"):
        SqlConnector("p", "no url at all", "t", CONTRACT).check()
    with pytest.raises(SourceConfigError, match="no database driver"):
        SqlConnector("p", "nosuchdb://u:pw@h/db", "t", CONTRACT).check()


def _peak_streaming(url: str) -> int:
    connector = SqlConnector("p", url, "population_registry", CONTRACT, chunk_rows=500)
    tracemalloc.start()
    try:
        rows = sum(batch.num_rows for batch in connector.read(since=None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        connector.close()
    assert rows > 0
    return peak


def test_memory_does_not_grow_with_the_source(tmp_path: Path, registry: str) -> None:
    large = f"sqlite:///{tmp_path / 'large.db'}"
    fill(large, 12_500, seed=9)
    _peak_streaming(registry)  # warm caches (contract, dialect) before measuring
    small_peak = _peak_streaming(registry)
    large_peak = _peak_streaming(large)
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak)


def _source(**overrides: object) -> SourceConfig:
    config: dict[str, object] = {
        "name": "registry",
        "department": {"code": "11000000000013338W", "name": "公安厅"},
        "dataset": "population",
        "connector": {"kind": "sql", "url": "sqlite:///${HUB_HOME}/registry.db", "table": "t"},
        "cursor": "updated_at",
    }
    config.update(overrides)
    return SourceConfig.model_validate(config)


def _stamped(tmp_path: Path) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = [
        (f"{i:03d}", "名", "男", "01", "2001-02-03", "110105", None, None, "1", f"2025-01-0{i + 1} 08:00:00")
        for i in range(4)
    ]
    make_db(tmp_path / "registry.db", "CREATE TABLE t (" + ", ".join(FIELDS) + ")", rows)
    return rows


def test_from_source_expands_the_url_and_reads_incrementally(tmp_path: Path) -> None:
    _stamped(tmp_path)
    source = _source(values={"gender": {"男": "1"}})
    connector = open_connector(source, chunk_rows=1_000, env={"HUB_HOME": str(tmp_path)})
    assert isinstance(connector, SqlConnector)
    everything = read(connector)
    assert everything.column("gender").to_pylist() == ["1"] * 4
    assert connector.watermark == "2025-01-04T08:00:00"
    later = read(connector, since="2025-01-02T08:00:00")
    assert later.column("id_number").to_pylist() == ["002", "003"]
    assert connector.watermark == "2025-01-04T08:00:00"
    assert read(connector, since="2025-01-04T08:00:00").num_rows == 0
    assert connector.watermark == "2025-01-04T08:00:00"
    connector.commit(connector.checkpoint())
    connector.close()
    connector.close()


def test_watermark_with_a_zone_is_compared_in_utc(tmp_path: Path) -> None:
    _stamped(tmp_path)
    connector = open_connector(_source(), chunk_rows=1_000, env={"HUB_HOME": str(tmp_path)})
    assert read(connector, since="2025-01-02T16:00:00+08:00").column("id_number").to_pylist() == [
        "002",
        "003",
    ]
    with pytest.raises(SourceConfigError, match="watermark is not a timestamp"):
        read(connector, since="yesterday")


def test_url_from_an_environment_variable_or_errors_naming_it(tmp_path: Path) -> None:
    _stamped(tmp_path)
    located = {"kind": "sql", "url_env": "REGISTRY_URL", "table": "t"}
    source = _source(connector=located)
    connector = open_connector(
        source, chunk_rows=1_000, env={"REGISTRY_URL": f"sqlite:///{tmp_path}/registry.db"}
    )
    assert read(connector).num_rows == 4
    with pytest.raises(SourceConfigError, match=r"'registry'.*REGISTRY_URL") as caught:
        open_connector(source, chunk_rows=1_000, env={})
    assert isinstance(caught.value, ConfigurationError)
    with pytest.raises(SourceConfigError, match="HUB_HOME"):
        open_connector(_source(), chunk_rows=1_000, env={})


def test_an_unknown_airflow_connection_is_a_configuration_error() -> None:
    source = _source(connector={"kind": "sql", "airflow_connection": "no_such_conn_hub_test", "table": "t"})
    with pytest.raises(SourceConfigError, match=r"'registry'.*no_such_conn_hub_test"):
        open_connector(source, chunk_rows=1_000, env={})


def test_the_source_file_chunk_size_wins(tmp_path: Path) -> None:
    _stamped(tmp_path)
    connector = SqlConnector.from_source(
        _source(chunk_rows=1_000), chunk_rows=50_000, env={"HUB_HOME": str(tmp_path)}
    )
    assert connector.chunk_rows == 1_000


def test_rechunk_gives_exact_chunks_from_batches_of_any_size() -> None:
    sizes = [3, 0, 7, 1, 12, 2]
    start = 0
    batches = []
    for size in sizes:
        batches.append(pa.record_batch({"n": pa.array(range(start, start + size), pa.int64())}))
        start += size
    chunks = list(rechunk(batches, 5))
    assert [c.num_rows for c in chunks] == [5, 5, 5, 5, 5]
    assert [v for c in chunks for v in c.column("n").to_pylist()] == list(range(25))
    assert [c.num_rows for c in rechunk(batches[:2], 5)] == [3]
    assert list(rechunk([], 5)) == []


def test_the_adbc_query_reads_the_watermark_from_a_setting_not_the_sql_text() -> None:
    connector = SqlConnector("p", "sqlite://", "t", CONTRACT, cursor="updated_at")
    query = connector.query("2025-01-02T08:00:00+08:00", setting=WATERMARK_SETTING)
    compiled = query.compile(dialect=postgresql.dialect())
    text = str(compiled)
    assert not compiled.params and "2025" not in text
    assert f"updated_at > CAST(current_setting('{WATERMARK_SETTING}') AS TIMESTAMP WITHOUT TIME ZONE)" in text
    assert text.endswith("ORDER BY t.updated_at, t.id_number")
    bound = connector.query("2025-01-02T08:00:00+08:00").compile()
    assert bound.params == {"since": dt.datetime(2025, 1, 2, 0, 0)}


def test_adbc_reads_refuse_bound_parameters() -> None:
    connector = SqlConnector("p", "sqlite://", "t", CONTRACT, cursor="updated_at")
    url = "postgresql+psycopg://u@127.0.0.1:1/db"
    with pytest.raises(ValueError, match="no bound parameters"):
        next(adbc_chunks("p", url, connector.query("2025-01-02"), 10, table="t"))


def test_adbc_uri_is_a_libpq_uri_with_a_timeout() -> None:
    url = sa.make_url("postgresql+psycopg://u:pw@h:5433/db?options=-c%20TimeZone%3DUTC")
    assert adbc_uri(url) == "postgresql://u:pw@h:5433/db?connect_timeout=10&options=-c%20TimeZone%3DUTC"
    assert (
        adbc_uri(sa.make_url("postgresql://u@h/db?connect_timeout=3"))
        == "postgresql://u@h/db?connect_timeout=3"
    )
