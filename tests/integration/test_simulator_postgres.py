"""The simulator filling a real PostgreSQL through COPY."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connectors.simulator.population import DefectRates, fill

pytestmark = pytest.mark.integration


@pytest.fixture
def table(postgres_url: str) -> Iterator[str]:
    name = f"sim_{uuid.uuid4().hex[:12]}"
    yield name
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
    engine.dispose()


def test_fill_postgres_with_copy(postgres_url: str, table: str) -> None:
    rates = DefectRates(missing_name=0.01, duplicate_id=0.005)
    seen: list[int] = []
    report = fill(
        postgres_url, 6_000, table=table, seed=3, rates=rates, chunk_rows=2_500, progress=seen.append
    )
    assert seen == [2_500, 5_000, 6_000]
    assert report.expected_quarantined == sum(rates.counts(6_000).values()) + 30
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:

        def scalar(sql: str, **params: object) -> object:
            return conn.execute(sa.text(sql), params).scalar_one()

        assert scalar(f'SELECT count(*) FROM "{table}"') == 6_000
        assert scalar(f'SELECT count(*) FROM "{table}" WHERE name IS NULL') == 60
        assert scalar(f"SELECT count(*) FROM \"{table}\" WHERE name = ''") == 0
        assert scalar(f'SELECT count(DISTINCT id_number) FROM "{table}"') == 6_000 - 30
        places = (
            f'SELECT count(*) FROM "{table}" '
            "WHERE address LIKE :province OR address LIKE :city OR address LIKE :region"
        )
        assert scalar(places, province="%省%", city="%市%", region="%自治区%") == 6_000
        assert scalar(f"SELECT min(birth_date) >= DATE '1930-01-01' FROM \"{table}\"") is True
    engine.dispose()

    again = fill(postgres_url, 100, table=table, seed=3)
    assert again.rows == 100
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar_one() == 100
    engine.dispose()
