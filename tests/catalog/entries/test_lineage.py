"""Lineage (source -> batch -> snapshot -> deliveries) and coverage and freshness, read from the
batch records of a real SQLite metadata store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog.entries import (
    Delivery,
    Provider,
    allowed_age,
    dataset_lineage,
    openlineage_events,
    status,
)
from catalog.metadata import MetadataStore
from connectors.config import load_sources
from schemas.contract import UpdateCycle

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def batch(
    store: MetadataStore,
    batch_id: str,
    *,
    dataset: str = "certificate",
    source: str = "certificate_api",
    snapshot: int | None = None,
    at: datetime = NOW,
    failed: bool = False,
) -> None:
    store.start_batch(batch_id, dataset=dataset, source=source, contract_version="1.0.0", rows_in=10)
    store.update_batch(batch_id, department="政务服务管理局", started_at=at - timedelta(minutes=5))
    if failed:
        store.update_batch(batch_id, status="failed", error="source answered 503")
    else:
        store.update_batch(
            batch_id,
            status="registered",
            snapshot_id=snapshot,
            rows_valid=9,
            rows_quarantined=1,
            registered_at=at,
        )


def test_lineage_goes_source_batch_snapshot_newest_first(store: MetadataStore) -> None:
    batch(store, "api-1", snapshot=101, at=NOW - timedelta(days=2))
    batch(store, "api-2", snapshot=103, at=NOW - timedelta(days=1))
    batch(store, "files-1", source="certificate_files", snapshot=102, at=NOW - timedelta(hours=30))
    batch(store, "api-3", at=NOW, failed=True)
    batch(store, "pop-1", dataset="population", source="population", snapshot=900)

    graph = dataset_lineage(store, "certificate", current_snapshot_id=103)
    assert [s.name for s in graph.sources] == ["certificate_api", "certificate_files"]
    api = graph.sources[0]
    assert api.department == "政务服务管理局"
    assert [b.batch_id for b in api.batches] == ["api-3", "api-2", "api-1"]
    failed, latest, first = api.batches
    assert failed.snapshot is None and failed.error == "source answered 503" and failed.status == "failed"
    assert latest.snapshot is not None and latest.snapshot.snapshot_id == 103 and latest.snapshot.current
    assert first.snapshot is not None and not first.snapshot.current and first.snapshot.rows == 9
    assert (first.rows_in, first.rows_valid, first.rows_quarantined) == (10, 9, 1)

    assert [b.batch_id for b in dataset_lineage(store, "certificate", limit=1).sources[0].batches] == [
        "api-3"
    ]
    as_json = graph.to_json()
    assert as_json["sources"][0]["batches"][1]["snapshot"]["snapshot_id"] == 103
    assert dataset_lineage(store, "legal_entity").sources == []


def test_deliveries_hang_under_the_snapshot_they_read(store: MetadataStore) -> None:
    batch(store, "api-1", snapshot=101)

    def deliveries(_: MetadataStore, dataset: str) -> Iterable[Delivery]:
        if dataset == "certificate":
            yield Delivery(7, "shebao-core", "人力资源和社会保障厅", 101, NOW, rows=9, channel="kafka")

    graph = dataset_lineage(store, "certificate", delivery_sources=[deliveries])
    snapshot = graph.sources[0].batches[0].snapshot
    assert snapshot is not None
    assert [(d.grant_id, d.system, d.channel) for d in snapshot.deliveries] == [(7, "shebao-core", "kafka")]
    assert graph.to_json()["sources"][0]["batches"][0]["snapshot"]["deliveries"][0]["grant_id"] == 7


def test_openlineage_events_are_read_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "openlineage.jsonl"
    assert openlineage_events(path) == []
    path.write_text('{"eventType": "START"}\n\n{"eventType": "COMPLETE"}\n', encoding="utf-8")
    assert [e["eventType"] for e in openlineage_events(path)] == ["START", "COMPLETE"]


PROVIDERS = [
    Provider("population", "公安厅", "11100000000013338W", UpdateCycle.DAILY),
    Provider("legal_entity", "市场监督管理局", "11100000000013127D", UpdateCycle.DAILY),
    Provider("certificate", "政务服务管理局", "11100000MB0143028R", UpdateCycle.WEEKLY),
]


def test_status_reports_connection_rate_and_freshness(store: MetadataStore) -> None:
    sources = load_sources(check_contract=False)
    batch(store, "pop-1", dataset="population", source="population", snapshot=1, at=NOW - timedelta(hours=29))
    batch(
        store, "le-1", dataset="legal_entity", source="legal_entity", snapshot=2, at=NOW - timedelta(hours=31)
    )
    batch(store, "cert-1", source="certificate_files", at=NOW, failed=True)

    report = status(store, sources, PROVIDERS, now=NOW)
    states = {d.dataset: d.state for d in report.datasets}
    assert states == {"population": "fresh", "legal_entity": "stale", "certificate": "never"}
    connected = {d.code: d.connected for d in report.departments}
    assert connected == {"11100000000013338W": True, "11100000000013127D": True, "11100000MB0143028R": False}
    assert report.connection_rate == pytest.approx(2 / 3)
    assert {d.dataset for d in report.stale} == {"legal_entity", "certificate"}
    certificate = next(d for d in report.departments if d.code == "11100000MB0143028R")
    assert certificate.sources == ("certificate_api", "certificate_files")

    batch(store, "cert-2", source="certificate_api", snapshot=3, at=NOW - timedelta(days=8))
    report = status(store, sources, PROVIDERS, now=NOW)
    certificate_status = next(d for d in report.datasets if d.dataset == "certificate")
    assert certificate_status.state == "fresh" and certificate_status.last_batch == "cert-2"
    assert report.connection_rate == 1.0
    data = report.to_json()
    assert data["departments_connected"] == 3 and data["datasets_stale"] == 1
    hours = {d["dataset"]: d["allowed_age_hours"] for d in data["datasets"]}
    assert hours == {"certificate": 210.0, "legal_entity": 30.0, "population": 30.0}


def test_a_provider_without_any_source_file_is_not_connected(store: MetadataStore) -> None:
    extra = Provider("land", "自然资源厅", "11100000000019005X", UpdateCycle.MONTHLY)
    report = status(store, {}, [extra], now=NOW)
    assert report.connection_rate == 0.0
    assert report.departments[0].sources == () and report.datasets[0].state == "never"
    assert status(store, {}, [], now=NOW).connection_rate is None


def test_allowed_age_is_the_cycle_plus_a_quarter() -> None:
    assert allowed_age(UpdateCycle.DAILY) == timedelta(hours=30)
    assert allowed_age(UpdateCycle.TEN_DAYS) == timedelta(days=12.5)
