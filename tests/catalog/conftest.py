"""Fixtures of the catalogue tests: a SQLite metadata store and an Iceberg catalog in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from catalog.metadata import MetadataStore
from catalog.tables import SharedTables
from schemas.contract import Contract, load_contract


@pytest.fixture(scope="session")
def population() -> Contract:
    return load_contract("population")


@pytest.fixture
def published_rows(population: Contract) -> Callable[..., pa.Table]:
    """Build ``n`` masked population rows by hand, in the contract's published schema."""
    schema = population.published_schema()

    def build(n: int, batch_id: str, *, start: int = 0) -> pa.Table:
        numbers = range(start, start + n)
        return pa.table(
            {
                "person_token": [f"tok-{i:08d}" for i in numbers],
                "name": ["张*" if i % 2 else "欧阳**" for i in numbers],
                "gender": ["1" if i % 2 else "2" for i in numbers],
                "ethnicity": [None if i % 7 == 0 else "01" for i in numbers],
                "birth_year": pa.array([1950 + i % 60 for i in numbers], pa.int32()),
                "division_code": ["110105"] * n,
                "address": ["北京市朝阳区"] * n,
                "mobile": [None if i % 5 == 0 else "138****8000" for i in numbers],
                "registration_status": ["1"] * n,
                "updated_at": pa.array(
                    [datetime(2026, 1, 1) + timedelta(seconds=i) for i in numbers], pa.timestamp("us")
                ),
                "_batch_id": [batch_id] * n,
            },
            schema=schema,
        )

    return build


@pytest.fixture
def tables(tmp_path: Path) -> SharedTables:
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    return SharedTables(f"sqlite:///{tmp_path / 'iceberg.db'}", warehouse.as_uri())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    store = MetadataStore(f"sqlite:///{tmp_path / 'hub.db'}")
    yield store
    store.dispose()
