"""MetadataStore on SQLite: batches, quarantine, violations and the accounting check."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from catalog.errors import (
    AccountingError,
    BatchNotFoundError,
    MetadataUnavailableError,
    QuarantineInputError,
)
from catalog.metadata import BatchStatus, MetadataStore, new_batch_id
from quality.validate import Violation
from schemas.errors import QualityError, TransientError


def quarantined(rows: list[int]) -> pa.Table:
    return pa.table(
        {
            "id_number": [f"bad-{r}" for r in rows],
            "birth_date": [date(1990, 1, 2)] * len(rows),
            "updated_at": [datetime(2026, 1, 1, 8, 30)] * len(rows),
            "_row": pa.array(rows, pa.int64()),
        }
    )


def violation(row: int, field: str = "id_number", rule: str = "gb11643.check_digit") -> Violation:
    return Violation(row, field, rule, f"第{row}行校验位错误", f"row {row}: bad check digit")


def start(store: MetadataStore, batch_id: str = "population-20261121T230102-3f9a") -> str:
    store.start_batch(
        batch_id, dataset="population", source="population_db", contract_version="1.0.0", rows_in=10
    )
    return batch_id


def test_batch_lifecycle_records_steps_and_times(store: MetadataStore) -> None:
    batch_id = start(store)
    batch = store.get_batch(batch_id)
    assert batch.status is BatchStatus.EXTRACTED
    assert batch.rows_in == 10 and batch.rows_valid is None
    assert batch.started_at.tzinfo is not None

    store.update_batch(batch_id, status="registered", snapshot_id=2**62 + 5, rows_valid=9)
    batch = store.get_batch(batch_id)
    assert batch.status is BatchStatus.REGISTERED
    assert batch.snapshot_id == 2**62 + 5  # int64 snapshot ids survive
    assert batch.registered_at is not None and batch.registered_at >= batch.started_at
    assert batch.published_at is None

    store.update_batch(batch_id, status=BatchStatus.PUBLISHED, messages_published=9)
    batch = store.get_batch(batch_id)
    assert batch.published_at is not None and batch.messages_published == 9


def test_update_rejects_unknown_fields_and_statuses(store: MetadataStore) -> None:
    batch_id = start(store)
    with pytest.raises(ValueError, match="no field"):
        store.update_batch(batch_id, colour="red")
    with pytest.raises(ValueError):
        store.update_batch(batch_id, status="half-done")


def test_missing_batch_is_named(store: MetadataStore) -> None:
    with pytest.raises(BatchNotFoundError, match="nope"):
        store.get_batch("nope")
    with pytest.raises(BatchNotFoundError):
        store.update_batch("nope", status="failed")


def test_latest_and_list_are_newest_first(store: MetadataStore) -> None:
    first = start(store, new_batch_id("population", datetime(2026, 1, 1, tzinfo=UTC)))
    second = start(store, new_batch_id("population", datetime(2026, 1, 2, tzinfo=UTC)))
    store.start_batch("legal-1", dataset="legal_entity", source="s", contract_version="1.0.0")
    latest = store.latest_batch("population")
    assert latest is not None and latest.id == second
    assert [b.id for b in store.list_batches("population")] == [second, first]
    assert len(store.list_batches()) == 3
    assert len(store.list_batches(limit=1)) == 1
    assert store.latest_batch("certificate") is None


def test_quarantine_stores_rows_and_violations(store: MetadataStore) -> None:
    batch_id = start(store)
    violations = [violation(2), violation(5), violation(5, "birth_date", "id_birth_date"), violation(7)]
    assert store.add_quarantine(batch_id, quarantined([2, 5, 7]), violations) == 3
    assert store.quarantine_count(batch_id) == 3
    assert store.violations_summary(batch_id) == [
        ("gb11643.check_digit", "id_number", 3),
        ("id_birth_date", "birth_date", 1),
    ]
    from sqlalchemy import select

    from catalog.metadata import QuarantinedRow

    with store.engine.connect() as conn:
        record = conn.execute(select(QuarantinedRow.record).where(QuarantinedRow.row == 5)).scalar_one()
    assert json.loads(record) == {
        "id_number": "bad-5",
        "birth_date": "1990-01-02",
        "updated_at": "2026-01-01T08:30:00",
    }


def test_quarantine_retry_replaces_rather_than_duplicates(store: MetadataStore) -> None:
    batch_id = start(store)
    for _ in range(2):
        store.add_quarantine(batch_id, quarantined([1, 2]), [violation(1), violation(2)])
    assert store.quarantine_count(batch_id) == 2
    assert store.violations_summary(batch_id) == [("gb11643.check_digit", "id_number", 2)]
    store.clear_quarantine(batch_id)
    assert store.quarantine_count(batch_id) == 0
    assert store.violations_summary(batch_id) == []


def test_restarting_a_batch_forgets_the_earlier_attempt(store: MetadataStore) -> None:
    batch_id = start(store)
    store.add_quarantine(batch_id, quarantined([1]), [violation(1)])
    store.update_batch(batch_id, status="failed", error="broker down", rows_valid=3)
    start(store, batch_id)
    batch = store.get_batch(batch_id)
    assert batch.status is BatchStatus.EXTRACTED
    assert batch.error is None and batch.rows_valid is None
    assert store.quarantine_count(batch_id) == 0


@pytest.mark.parametrize(
    ("rows", "violations", "message"),
    [
        (quarantined([1]).drop_columns(["_row"]), [violation(1)], "'_row' column"),
        (quarantined([1]), [violation(1), violation(9)], r"rows \[9\] that are not"),
        (quarantined([1, 2]), [violation(1)], r"rows \[2\] have no violation"),
        (quarantined([3, 3]), [violation(3)], r"rows \[3\] are quarantined twice"),
    ],
)
def test_quarantine_input_is_checked(
    store: MetadataStore, rows: pa.Table, violations: list[Violation], message: str
) -> None:
    batch_id = start(store)
    with pytest.raises(QuarantineInputError, match=message):
        store.add_quarantine(batch_id, rows, violations)
    assert store.quarantine_count(batch_id) == 0


def test_quarantine_for_unknown_batch_fails(store: MetadataStore) -> None:
    with pytest.raises(BatchNotFoundError):
        store.add_quarantine("ghost", quarantined([1]), [violation(1)])


def test_accounting_holds(store: MetadataStore) -> None:
    batch_id = start(store)
    store.add_quarantine(batch_id, quarantined([0, 4]), [violation(0), violation(4)])
    store.update_batch(batch_id, rows_valid=8, rows_quarantined=2)
    assert store.check_accounting(batch_id).id == batch_id


def test_accounting_mismatch_names_the_figures(store: MetadataStore) -> None:
    batch_id = start(store)
    store.add_quarantine(batch_id, quarantined([0]), [violation(0)])
    store.update_batch(batch_id, rows_valid=8, rows_quarantined=1)
    with pytest.raises(QualityError) as caught:
        store.check_accounting(batch_id)
    message = str(caught.value)
    assert isinstance(caught.value, AccountingError)
    for fact in (batch_id, "population_db", "rows_in 10", "rows_valid 8", "rows_quarantined 1", "+1"):
        assert fact in message


def test_accounting_checks_the_quarantine_really_holds_the_rows(store: MetadataStore) -> None:
    batch_id = start(store)
    store.add_quarantine(batch_id, quarantined([0]), [violation(0)])
    store.update_batch(batch_id, rows_valid=8, rows_quarantined=2)
    with pytest.raises(AccountingError, match="rows_quarantined 2 but the quarantine holds 1"):
        store.check_accounting(batch_id)


def test_accounting_needs_every_count(store: MetadataStore) -> None:
    batch_id = start(store)
    with pytest.raises(AccountingError, match="not counted yet: rows_valid, rows_quarantined"):
        store.check_accounting(batch_id)


def test_bulk_quarantine_of_tens_of_thousands_of_rows(store: MetadataStore) -> None:
    batch_id = start(store)
    rows = list(range(0, 60_000, 2))
    store.add_quarantine(batch_id, quarantined(rows), [violation(r) for r in rows])
    assert store.quarantine_count(batch_id) == 30_000
    assert store.violations_summary(batch_id) == [("gb11643.check_digit", "id_number", 30_000)]


def test_unreachable_database_is_transient_and_hides_the_password() -> None:
    url = "postgresql+psycopg://hub:s3cret-pw@127.0.0.1:1/hub?connect_timeout=2"
    with pytest.raises(TransientError) as caught:
        MetadataStore(url)
    assert isinstance(caught.value, MetadataUnavailableError)
    assert "127.0.0.1:1" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


def test_unopenable_sqlite_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(MetadataUnavailableError, match="no-such-dir"):
        MetadataStore(f"sqlite:///{tmp_path / 'no-such-dir' / 'hub.db'}")
