"""Sources through the whole pipeline: drift, unconvertible values, file drops, the HTTP API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from hub.context import HubContext
from schemas.errors import ContractError


def _fill_population(settings, rows: int = 500):  # type: ignore[no-untyped-def]
    from hub.simulate import simulate

    return simulate(HubContext(settings).source("population"), settings, rows=rows, seed=3)


def _registry(settings) -> Path:  # type: ignore[no-untyped-def]
    return settings.home / "sources" / "population.db"


def test_unconvertible_value_quarantines_its_row_with_the_field(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from hub import pipeline

    report = _fill_population(ready_hub)
    with sqlite3.connect(_registry(ready_hub)) as db:
        db.execute("UPDATE population_registry SET birth_date = 'not a date' WHERE rowid = 7")
    result = pipeline.run("population", settings=ready_hub, publish_rows=False)
    store = HubContext(ready_hub).store
    batch = store.get_batch(result.batch_id)
    assert batch.rows_in == 500
    assert batch.rows_valid + batch.rows_quarantined == 500
    assert batch.rows_quarantined in (report.expected_quarantined, report.expected_quarantined + 1)
    assert ("type", "birth_date", 1) in store.violations_summary(batch.id)


def test_new_source_column_is_a_warning_and_the_batch_goes_on(ready_hub, caplog) -> None:  # type: ignore[no-untyped-def]
    from hub import pipeline

    _fill_population(ready_hub)
    with sqlite3.connect(_registry(ready_hub)) as db:
        db.execute("ALTER TABLE population_registry ADD COLUMN hukou_type TEXT")
    with caplog.at_level("WARNING"):
        result = pipeline.run("population", settings=ready_hub, publish_rows=False)
    assert HubContext(ready_hub).store.get_batch(result.batch_id).rows_in == 500
    assert "hukou_type" in caplog.text


def test_missing_mapped_column_fails_naming_column_and_source(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from hub import pipeline

    _fill_population(ready_hub)
    with sqlite3.connect(_registry(ready_hub)) as db:
        db.execute("ALTER TABLE population_registry RENAME COLUMN mobile TO phone")
    with pytest.raises(ContractError) as info:
        pipeline.run("population", settings=ready_hub, publish_rows=False)
    assert "mobile" in str(info.value) and "population" in str(info.value)


def _certificates(n: int) -> pa.Table:
    from connectors.simulator import certificate

    return pa.Table.from_batches(list(certificate.generate(n, seed=5)))


def test_file_drop_is_registered_once_archived_and_bad_files_rejected(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from connectors.simulator import certificate, drop
    from hub import pipeline

    folder = ready_hub.home / "drops" / "certificates"
    folder.mkdir(parents=True)
    records = _certificates(300)
    drop.write_csv(certificate.to_csv_columns(records), folder / "day1.csv", headers=None)
    drop.write_broken(folder / "broken.csv", "bad_bytes")
    first = pipeline.run("certificate_files", settings=ready_hub, publish_rows=False)
    store = HubContext(ready_hub).store
    batch = store.get_batch(first.batch_id)
    assert batch.rows_in == 300 and batch.rows_valid + batch.rows_quarantined == 300
    assert not (folder / "day1.csv").exists()
    assert list((folder / "archive").rglob("day1.csv"))
    reasons = list((folder / "rejected").glob("broken.csv*reason*"))
    assert reasons and "broken.csv" in reasons[0].read_text(encoding="utf-8")

    # the same file dropped again is not read twice
    drop.write_csv(certificate.to_csv_columns(records), folder / "again.csv", headers=None)
    second = pipeline.run("certificate_files", settings=ready_hub, publish_rows=False)
    assert store.get_batch(second.batch_id).rows_in == 0


def test_http_source_reads_incrementally(ready_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from connectors.simulator import certificate
    from connectors.simulator.issuing_api import IssuingApi
    from hub import pipeline

    records = certificate.to_system_columns(_certificates(400))
    api = IssuingApi(records.slice(0, 300), token="test-token-123456")
    monkeypatch.setenv("HUB_SOURCE_CERTIFICATE_API_URL", api.start())
    monkeypatch.setenv("HUB_SOURCE_CERTIFICATE_API_TOKEN", "test-token-123456")
    try:
        first = pipeline.run("certificate_api", settings=ready_hub, publish_rows=False)
        store = HubContext(ready_hub).store
        assert store.get_batch(first.batch_id).rows_in > 0
        second = pipeline.run("certificate_api", settings=ready_hub, publish_rows=False)
        assert store.get_batch(second.batch_id).rows_in == 0
        assert store.get_batch(second.batch_id).watermark_from == store.get_batch(first.batch_id).watermark_to
    finally:
        api.stop()
