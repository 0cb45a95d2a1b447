"""The SQL connector against SQLite files: schema, chunking, conversion, errors."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest

from connectors.errors import (
    SourceConfigError,
    SourceDataError,
    SourceSchemaError,
    SourceUnreachableError,
)
from connectors.simulator import fill, generate
from connectors.sql import SqlConnector
from hub.errors import ContractError, TransientError
from schemas.contract import load_contract

CONTRACT = load_contract("population")
FIELDS = [f.name for f in CONTRACT.fields]


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


def test_streams_in_key_order_in_the_contract_schema(registry: str) -> None:
    connector = SqlConnector("population", registry, "population_registry", CONTRACT, chunk_rows=1_000)
    connector.check()
    batches = list(connector.iter_batches())
    assert [b.num_rows for b in batches] == [1_000, 1_000, 500]
    assert connector.count() == 2_500
    for batch in batches:
        assert batch.schema.equals(CONTRACT.arrow_schema(), check_metadata=True)
    read = pa.Table.from_batches(batches)
    ids = read.column("id_number").to_pylist()
    assert ids == sorted(ids)

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
    (batch,) = connector.iter_batches()
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
    (batch,) = SqlConnector("types", url, "t", CONTRACT).iter_batches()
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
    assert batch.schema.equals(CONTRACT.arrow_schema())


def test_a_value_that_cannot_convert_names_row_field_and_type_not_value(tmp_path: Path) -> None:
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
    assert (error.source, error.row, error.field, error.value_type) == ("bad-source", 4, "birth_date", "str")
    assert "1990-02-30" not in str(error)
    assert "bad-source" in str(error) and "row 4" in str(error) and "birth_date" in str(error)


def test_a_value_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    url = make_db(
        tmp_path / "blob.db",
        "CREATE TABLE t (" + ", ".join(FIELDS) + ")",
        [("A", b"\x00\x01", "1", "01", "2001-02-03", "110105", None, None, "1", "2025-01-02")],
    )
    with pytest.raises(SourceDataError, match=r"row 1, field 'name': a value of type bytes"):
        list(SqlConnector("blob", url, "t", CONTRACT).iter_batches())


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
        list(connector.iter_batches())


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
    for call in (connector.check, connector.count, lambda: list(connector.iter_batches())):
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
        rows = sum(batch.num_rows for batch in connector.iter_batches())
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
