"""The SQL connector reading a real PostgreSQL table (through ADBC), and the shared suite."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest
import sqlalchemy as sa

import connectors.sql
from connectors.base import ERRORS_COLUMN, batch_schema
from connectors.errors import SourceQueryError, SourceSchemaError, SourceUnreachableError
from connectors.simulator.population import fill, generate
from connectors.sql import SqlConnector, adbc_chunks
from schemas.contract import load_contract
from tests.support.connector_suite import ConnectorSuite
from tests.support.sql_harness import SqlHarness

pytestmark = pytest.mark.integration
CONTRACT = load_contract("population")
ROWS = 5_000


@pytest.fixture(scope="module")
def filled(postgres_url: str) -> Iterator[str]:
    name = f"conn_{uuid.uuid4().hex[:12]}"
    fill(postgres_url, ROWS, table=name, seed=21, chunk_rows=2_000)
    yield name
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
    engine.dispose()


def test_reads_back_what_the_simulator_wrote(postgres_url: str, filled: str) -> None:
    connector = SqlConnector("population", postgres_url, filled, CONTRACT, chunk_rows=1_500)
    connector.check()
    assert connector.count() == ROWS
    batches = list(connector.read(since=None))
    connector.close()
    assert [b.num_rows for b in batches] == [1_500, 1_500, 1_500, 500]
    assert all(b.schema.equals(batch_schema(CONTRACT.arrow_schema()), check_metadata=True) for b in batches)

    read = pa.Table.from_batches(batches)
    assert read[ERRORS_COLUMN].null_count == ROWS
    read = read.drop_columns([ERRORS_COLUMN])
    written = pa.Table.from_batches(generate(ROWS, seed=21, chunk_rows=2_000))
    order = [("id_number", "ascending"), ("name", "ascending")]
    assert (
        read.sort_by(order)
        .drop_columns(["updated_at"])
        .equals(written.sort_by(order).drop_columns(["updated_at"]))
    )
    first = read.slice(0, 1).to_pylist()[0]
    assert len(first["id_number"]) == 18 and first["division_code"] == first["id_number"][:6]
    assert isinstance(first["birth_date"], dt.date) and isinstance(first["updated_at"], dt.datetime)


def test_char_padding_nulls_and_empty_strings(postgres_url: str) -> None:
    name = f"pad_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url)
    types = {"gender": "CHAR(4)", "birth_date": "DATE", "updated_at": "TIMESTAMPTZ"}
    columns = ", ".join(f"{f.name} {types.get(f.name, 'TEXT')}" for f in CONTRACT.fields)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE TABLE "{name}" ({columns})')
            conn.exec_driver_sql(
                f'INSERT INTO "{name}" (id_number, name, gender, birth_date, address, updated_at) '
                "VALUES ('A', '', '1', '2001-02-03', E'line\\n\"two\", 3', '2025-01-02 03:04:05+08')"
            )
        (batch,) = SqlConnector("pad", postgres_url, name, CONTRACT).read(since=None)
        row = batch.to_pylist()[0]
        assert row["gender"] == "1"
        assert row["updated_at"] == dt.datetime(2025, 1, 1, 19, 4, 5)
        assert row["name"] == "" and row["mobile"] is None
        assert row["address"] == 'line\n"two", 3'
        assert row[ERRORS_COLUMN] is None
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
        engine.dispose()


def test_missing_column_on_postgres(postgres_url: str, filled: str) -> None:
    connector = SqlConnector("population", postgres_url, filled, CONTRACT, columns={"mobile": "sjhm"})
    with pytest.raises(SourceSchemaError, match=r"sjhm \(for field mobile\)"):
        connector.check()


def test_wrong_password_is_not_in_the_message(postgres_url: str) -> None:
    url = (
        sa.make_url(postgres_url)
        .set(username="no_such_role", password="s3cr3t-pw", database="no_such_db")
        .render_as_string(hide_password=False)
    )
    with pytest.raises(SourceUnreachableError) as caught:
        SqlConnector("population", url, "population_registry", CONTRACT).check()
    assert "s3cr3t-pw" not in str(caught.value)
    assert "no_such_role:***@" in str(caught.value)


def test_incremental_read_through_adbc(postgres_url: str, filled: str) -> None:
    connector = SqlConnector(
        "population", postgres_url, filled, CONTRACT, cursor="updated_at", chunk_rows=700
    )
    everything = pa.Table.from_batches(list(connector.read(since=None)))
    mark = connector.watermark
    assert mark is not None and everything.num_rows == ROWS
    stamps = sorted(everything["updated_at"].to_pylist())
    since = stamps[-10].isoformat()
    later = pa.Table.from_batches(list(connector.read(since=since)))
    assert later.num_rows == sum(1 for s in stamps if s > stamps[-10])
    assert later["updated_at"].to_pylist() == sorted(later["updated_at"].to_pylist())
    assert connector.watermark == mark
    connector.close()


@pytest.fixture
def scratch(postgres_url: str) -> Iterator[tuple[sa.Engine, str]]:
    """An engine and a unique relation name, dropped (as table or view) afterwards."""
    name = f"adbc_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url)
    yield engine, name
    with engine.begin() as conn:
        kind = conn.execute(sa.text("SELECT relkind FROM pg_class WHERE relname = :n"), {"n": name}).scalar()
        if kind is not None:
            conn.exec_driver_sql(f'DROP {"VIEW" if kind == "v" else "TABLE"} "{name}"')
    engine.dispose()


def test_numeric_integer_and_json_columns_convert(postgres_url: str, scratch: tuple[sa.Engine, str]) -> None:
    engine, name = scratch
    types = {
        "division_code": "INTEGER",
        "registration_status": "NUMERIC(2, 0)",
        "mobile": "NUMERIC",
        "address": "JSONB",
        "birth_date": "TEXT",
        "updated_at": "TIMESTAMPTZ",
    }
    columns = ", ".join(f"{f.name} {types.get(f.name, 'VARCHAR(40)')}" for f in CONTRACT.fields)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TABLE "{name}" ({columns})')
        conn.exec_driver_sql(
            f'INSERT INTO "{name}" (id_number, name, gender, division_code, registration_status, mobile,'
            " address, birth_date, updated_at) VALUES"
            " ('A', '甲', '1', 110105, 1, 13800138000, '{\"room\": 1}', '2001-02-03', '2025-01-02 08:00:00+08'),"
            " ('B', '乙', '2', NULL, NULL, 1.5, NULL, '2001-02-30', NULL)"
        )
    table = pa.Table.from_batches(list(SqlConnector("typed", postgres_url, name, CONTRACT).read(since=None)))
    rows = sorted(table.to_pylist(), key=lambda r: r["id_number"])
    assert [r["division_code"] for r in rows] == ["110105", None]
    assert [r["registration_status"] for r in rows] == ["1", None]
    assert rows[0]["mobile"] == "13800138000" and rows[0]["address"] == '{"room": 1}'
    assert rows[0]["updated_at"] == dt.datetime(2025, 1, 2) and rows[0][ERRORS_COLUMN] is None
    assert rows[1]["birth_date"] is None and rows[1][ERRORS_COLUMN] == ["birth_date"]


def test_incremental_read_compares_a_zoned_cursor_in_utc(
    postgres_url: str, scratch: tuple[sa.Engine, str]
) -> None:
    engine, name = scratch
    columns = ", ".join(
        f"{f.name} {'TIMESTAMPTZ' if f.name == 'updated_at' else 'VARCHAR(40)'}" for f in CONTRACT.fields
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TABLE "{name}" ({columns})')
        conn.exec_driver_sql(
            f'INSERT INTO "{name}" (id_number, updated_at) VALUES'
            " ('early', '2025-01-02 08:00:00+08'), ('late', '2025-01-02 09:00:00+08'),"
            " ('o''brien', '2025-01-02 10:00:00+08')"
        )
    # A session in another zone would read the naive UTC watermark as local time.
    shanghai = sa.make_url(postgres_url).update_query_dict({"options": "-c TimeZone=Asia/Shanghai"})
    url = shanghai.render_as_string(hide_password=False)
    connector = SqlConnector("zoned", url, name, CONTRACT, cursor="updated_at")
    later = pa.Table.from_batches(list(connector.read(since="2025-01-02T00:30:00")))
    assert later["id_number"].to_pylist() == ["late", "o'brien"]
    assert connector.watermark == "2025-01-02T02:00:00"
    assert list(connector.read(since="2025-01-02T10:00:00+08:00")) == []
    assert connector.watermark == "2025-01-02T10:00:00+08:00"


def test_adbc_unreachable_names_source_without_password() -> None:
    connector = SqlConnector("population", "postgresql+psycopg://u@h/db", "t", CONTRACT)
    url = "postgresql+psycopg://registry:s3cr3t-pw@127.0.0.1:1/registry"
    with pytest.raises(SourceUnreachableError) as caught:
        next(adbc_chunks("population", url, connector.query(), 100, table="t"))
    assert "s3cr3t-pw" not in str(caught.value) and "registry:***@127.0.0.1:1" in str(caught.value)


def test_a_refused_statement_is_a_query_error(postgres_url: str, filled: str) -> None:
    query = sa.select(sa.column("no_such_column")).select_from(sa.table(filled))
    with pytest.raises(SourceQueryError, match="no_such_column"):
        next(adbc_chunks("population", postgres_url, query, 100, table=filled))


def test_losing_the_server_mid_stream_names_the_rows_read(
    postgres_url: str, scratch: tuple[sa.Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, name = scratch
    values = ", ".join(
        "'2025-01-01'::timestamp + g * interval '1 second' AS updated_at"
        if f.name == "updated_at"
        else f"g::text AS {f.name}"
        for f in CONTRACT.fields
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE VIEW "{name}" AS SELECT {values} FROM generate_series(1, 5000000) AS g')
    monkeypatch.setattr(connectors.sql, "ADBC_BATCH_BYTES", 64 << 10)
    chunks = SqlConnector("endless", postgres_url, name, CONTRACT, chunk_rows=1_000).read(since=None)
    assert next(chunks).num_rows == 1_000
    with engine.begin() as conn:
        killed = conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE query LIKE 'COPY%%{name}%%' AND pid <> pg_backend_pid()"
        ).all()
    assert killed
    with pytest.raises(SourceUnreachableError, match=r"'endless'.*lost after \d+ rows") as caught:
        for _ in chunks:
            pass
    assert caught.value.retriable


class TestPostgresConnector(ConnectorSuite):
    @pytest.fixture
    def harness(self, postgres_url: str) -> Iterator[SqlHarness]:
        harness = SqlHarness(postgres_url)
        yield harness
        harness.close()
