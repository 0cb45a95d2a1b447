"""The gate inside the pipeline (SQLite source and metadata, local Iceberg): a held batch
registers nothing and keeps its watermark; a steward's release continues it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.context import HubContext
from quality.errors import BatchHeldError
from schemas.errors import AccessDeniedError, TransientError

POLICE = "11100000000013338W"
"""Source department of the population registry (公安厅)."""
SOCIAL = "111000000000130127"


@pytest.fixture
def hub(hub_home: Path) -> Any:
    from hub.settings import get_settings
    from masking.keys import Keyring

    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)
    return settings


def people(settings: Any) -> None:
    """A hub-wide steward, a steward of the police (the source) and one of another department."""
    from catalog.sharing import add_department, add_person

    store = HubContext(settings).store
    add_person(store, "wang.hub", roles=["steward"], hub_wide=True, actor=None)
    add_department(store, POLICE, "公安厅", actor="wang.hub")
    add_department(store, SOCIAL, "人力资源和社会保障厅", actor="wang.hub")
    add_person(store, "li.police", department=POLICE, roles=["steward"], actor="wang.hub")
    add_person(store, "zhao.social", department=SOCIAL, roles=["steward"], actor="wang.hub")


def fill(settings: Any, *, rows: int = 1_000, rate: float | None = 0.02, seed: int = 3) -> Any:
    from hub.simulate import simulate

    return simulate(
        HubContext(settings).source("population"), settings, rows=rows, seed=seed, defect_rate=rate
    )


def held_batch(settings: Any) -> tuple[Any, Any]:
    from hub import pipeline

    report = fill(settings)
    with pytest.raises(BatchHeldError) as info:
        pipeline.run("population", settings=settings, publish_rows=False)
    batch = HubContext(settings).store.latest_batch("population")
    assert batch is not None and batch.id in str(info.value)
    return batch, report


def test_a_batch_over_the_threshold_is_held_and_registers_nothing(hub: Any) -> None:
    from catalog.corrections import Corrections

    batch, report = held_batch(hub)
    store = HubContext(hub).store
    assert batch.status == "held" and batch.held_at is not None
    assert batch.rows_quarantined == report.expected_quarantined
    assert report.expected_quarantined / report.rows > 0.05
    assert batch.snapshot_id is None and batch.registered_at is None
    assert "held by the quality gate" in (batch.error or "")
    assert "population" not in HubContext(hub).tables.datasets(), "a held batch creates no shared table"
    assert store.last_watermark("population") is None
    assert Corrections(store).find() == [], "a held batch opens no correction request until released"
    assert (hub.staging_dir / batch.id / "valid.parquet").exists(), "staged rows wait for a release"


def test_a_batch_within_the_threshold_goes_on_and_opens_requests(hub: Any) -> None:
    from catalog.corrections import Corrections
    from hub import pipeline

    report = fill(hub, rate=0.002)
    result = pipeline.run("population", settings=hub, publish_rows=False)
    store = HubContext(hub).store
    batch = store.get_batch(result.batch_id)
    assert batch.status == "registered" and batch.rows_quarantined == report.expected_quarantined > 0
    requests = Corrections(store).find(limit=None)
    assert len(requests) == batch.rows_quarantined
    assert {r.department_code for r in requests} == {POLICE}
    assert {r.batch_id for r in requests} == {batch.id}
    impossible = store.quarantined_records(batch.id, rule="gb11643.birth_date")
    assert len(impossible) == report.defects["impossible_date"] > 0
    for entry in impossible:  # every rule the row broke, each with both messages
        assert {v.rule for v in entry.violations} == {"gb11643.birth_date", "id_birth_date"}
        assert all(v.message_zh and v.message_en and v.field in v.message_en for v in entry.violations)
    by_row = {r.row: r for r in requests}
    assert by_row[impossible[0].row].rules == "gb11643.birth_date,id_birth_date"


def test_a_steward_of_the_source_releases_it_and_it_is_registered(hub: Any) -> None:
    from catalog.corrections import Corrections
    from hub import pipeline

    people(hub)
    batch, report = held_batch(hub)
    store = HubContext(hub).store
    for who, needle in (
        (None, "--as NAME"),
        ("nobody", "no person 'nobody'"),
        ("zhao.social", "not of 公安厅"),
    ):
        with pytest.raises(AccessDeniedError, match=needle):
            pipeline.release(batch.id, steward=who, reason="checked", settings=hub, publish_rows=False)
    assert store.get_batch(batch.id).status == "held"

    result = pipeline.release(
        batch.id, steward="li.police", reason="source confirmed the defects", settings=hub, publish_rows=False
    )
    done = store.get_batch(batch.id)
    assert done.status == "registered" and done.snapshot_id == result.snapshot_id
    assert (done.released_by, done.release_reason) == ("li.police", "source confirmed the defects")
    assert done.released_at is not None
    assert store.last_watermark("population") == done.watermark_to is not None
    rows = HubContext(hub).tables.scan("population", selected_fields=("person_token",))
    assert sum(b.num_rows for b in rows) == report.rows - report.expected_quarantined
    assert len(Corrections(store).find(limit=None)) == report.expected_quarantined
    assert not (hub.staging_dir / batch.id).exists()

    from catalog.errors import ReleaseRefusedError

    with pytest.raises(ReleaseRefusedError, match="registered, not held"):
        pipeline.release(batch.id, steward="li.police", reason="again", settings=hub)


def test_a_release_whose_continuation_failed_is_continued_by_releasing_again(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.errors import CatalogUnavailableError
    from hub import pipeline

    people(hub)
    batch, _ = held_batch(hub)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise CatalogUnavailableError("the catalog database went away")

    with monkeypatch.context() as patched:
        patched.setattr("catalog.tables.iceberg.SharedTables.commit", broken)
        with pytest.raises(TransientError):
            pipeline.release(batch.id, steward="li.police", reason="ok", settings=hub, publish_rows=False)
    store = HubContext(hub).store
    failed = store.get_batch(batch.id)
    assert failed.status == "failed" and failed.released_by == "li.police"
    assert store.last_watermark("population") is None
    pipeline.release(
        batch.id, steward="li.police", reason="retry after outage", settings=hub, publish_rows=False
    )
    done = store.get_batch(batch.id)
    assert done.status == "registered"
    assert done.release_reason == "ok", "the release on record is the first one"


def test_a_held_batch_superseded_by_a_later_registered_one_is_not_released(hub: Any) -> None:
    from catalog.errors import ReleaseRefusedError
    from hub import pipeline

    people(hub)
    first, _ = held_batch(hub)
    with pytest.raises(BatchHeldError):
        pipeline.run("population", settings=hub, publish_rows=False)  # reads the same rows again
    store = HubContext(hub).store
    second = store.latest_batch("population")
    assert second is not None and second.id != first.id and second.watermark_from is None
    pipeline.release(second.id, steward="li.police", reason="newest", settings=hub, publish_rows=False)
    with pytest.raises(ReleaseRefusedError, match=f"superseded by batch {second.id}"):
        pipeline.release(first.id, steward="li.police", reason="older", settings=hub, publish_rows=False)
    assert store.get_batch(first.id).status == "held"


def test_a_held_batch_links_its_data_docs_for_the_steward(hub: Any) -> None:
    batch, _ = held_batch(hub)
    assert batch.data_docs is not None
    page = Path(batch.data_docs)
    assert page.is_file() and page.is_relative_to(hub.home / "datadocs")


def test_data_docs_that_cannot_be_written_do_not_stop_the_batch(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub import pipeline
    from quality.errors import DataDocsError

    def broken(self: Any, batch_id: str, root: Path) -> Path:
        raise DataDocsError(f"batch {batch_id}: disk full")

    monkeypatch.setattr("quality.validate.Validator.build_data_docs", broken)
    fill(hub, rows=300, rate=0.002)
    result = pipeline.run("population", settings=hub, publish_rows=False)
    batch = HubContext(hub).store.get_batch(result.batch_id)
    assert batch.status == "registered" and batch.data_docs is None
    assert (
        batch.warnings is not None
        and "Data Docs not written" in batch.warnings
        and "disk full" in batch.warnings
    )
