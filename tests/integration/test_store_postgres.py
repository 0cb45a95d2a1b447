"""MetadataStore against the local PostgreSQL, in a throw-away schema.

Uses the ``postgres_url`` fixture of tests/conftest.py: skipped when the server is not
reachable, failed instead when CI is set.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

from catalog.errors import AccountingError, BatchNotFoundError
from catalog.metadata import Base, BatchStatus, MetadataStore, migrate
from quality.validate import Violation

pytestmark = pytest.mark.integration


@pytest.fixture
def store(postgres_url: str) -> Iterator[MetadataStore]:
    schema = f"hub_test_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store = MetadataStore(postgres_url, schema=schema)
    try:
        yield store
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_tables_live_in_the_given_schema(store: MetadataStore) -> None:
    schema = store.engine.get_execution_options()["schema_translate_map"][None]
    with store.engine.connect() as conn:
        names = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": schema},
        ).scalars()
        expected = set(Base.metadata.tables) | {migrate.VERSION_TABLE}
        assert set(names) == expected
    with store.engine.connect() as conn:
        public = conn.execute(
            text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY(:t)"
            ),
            {"t": sorted(expected)},
        ).scalar_one()
    assert public == 0, "hub tables leaked into the public schema"


def test_batch_quarantine_and_accounting_on_postgres(store: MetadataStore) -> None:
    batch_id = "population-20261121T230102-3f9a"
    store.start_batch(
        batch_id, dataset="population", source="population_db", contract_version="1.0.0", rows_in=20_000
    )
    bad = list(range(0, 20_000, 4))
    rows = pa.table(
        {
            "id_number": [f"bad-{r}" for r in bad],
            "birth_date": [date(1990, 1, 2)] * len(bad),
            "_row": pa.array(bad, pa.int64()),
        }
    )
    violations = [
        Violation(r, "id_number", "gb11643.check_digit", "校验位错误", "bad check digit") for r in bad
    ]
    violations += [
        Violation(r, "birth_date", "id_birth_date", "出生日期不符", "birth date differs") for r in bad[:10]
    ]
    assert store.add_quarantine(batch_id, rows, violations) == 5_000
    assert store.add_quarantine(batch_id, rows, violations) == 5_000  # a retry replaces
    assert store.quarantine_count(batch_id) == 5_000
    assert store.violations_summary(batch_id) == [
        ("gb11643.check_digit", "id_number", 5_000),
        ("id_birth_date", "birth_date", 10),
    ]

    store.update_batch(batch_id, status="validated", rows_valid=14_999, rows_quarantined=5_000)
    with pytest.raises(AccountingError, match="rows_in 20000 != rows_valid 14999"):
        store.check_accounting(batch_id)
    store.update_batch(batch_id, rows_valid=15_000)
    store.check_accounting(batch_id)

    store.update_batch(batch_id, status="registered", snapshot_id=9_123_456_789_012_345_678)
    batch = store.get_batch(batch_id)
    assert batch.status is BatchStatus.REGISTERED
    assert batch.snapshot_id == 9_123_456_789_012_345_678
    assert batch.registered_at is not None and batch.registered_at.utcoffset() is not None
    latest = store.latest_batch("population")
    assert latest is not None and latest.id == batch_id
    assert [b.id for b in store.list_batches()] == [batch_id]
    with pytest.raises(BatchNotFoundError):
        store.get_batch("missing")
