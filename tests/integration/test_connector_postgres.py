"""The SQL connector reading a real PostgreSQL table (the COPY road), and the shared suite."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors.base import ERRORS_COLUMN, batch_schema
from connectors.errors import SourceSchemaError, SourceUnreachableError
from connectors.simulator import fill, generate
from connectors.sql import SqlConnector
from schemas.contract import load_contract
from tests.connectors.suite import ConnectorSuite
from tests.connectors.test_sql_suite import SqlHarness

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


def test_incremental_read_through_copy(postgres_url: str, filled: str) -> None:
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


class TestPostgresConnector(ConnectorSuite):
    @pytest.fixture
    def harness(self, postgres_url: str) -> Iterator[SqlHarness]:
        harness = SqlHarness(postgres_url)
        yield harness
        harness.close()
