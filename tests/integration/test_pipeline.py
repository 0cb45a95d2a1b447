"""``hub run population`` end to end in one process, against a real broker, Iceberg and DuckDB."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.context import HubContext
from schemas.errors import ConfigurationError, HubError, TransientError

ROWS = 3_000
ID_NUMBER = re.compile(r"\d{17}[\dX]")


def _fill(settings, rows: int = ROWS, seed: int = 7):  # type: ignore[no-untyped-def]
    from hub.simulate import simulate

    return simulate(HubContext(settings).source("population"), settings, rows=rows, seed=seed)


def test_batch_is_checked_masked_registered_published_and_queryable(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from catalog.deliveries import count_messages, grant_topic, read_messages
    from catalog.tables import QueryEngine
    from hub import pipeline
    from tests.integration.conftest import subscribe

    report = _fill(ready_hub)
    grant = subscribe(ready_hub)
    result = pipeline.run("population", settings=ready_hub)

    store = HubContext(ready_hub).store
    batch = store.get_batch(result.batch_id)
    assert batch.status == "published"
    assert batch.rows_in == ROWS
    assert batch.rows_quarantined == report.expected_quarantined > 0
    assert batch.rows_valid + batch.rows_quarantined == batch.rows_in
    assert batch.snapshot_id == result.snapshot_id
    assert batch.messages_published == batch.rows_valid

    engine = QueryEngine(HubContext(ready_hub).tables)
    table = engine.run("SELECT * FROM population")
    assert table.num_rows == batch.rows_valid
    tokens = table.column("person_token").to_pylist()
    assert all(t.startswith("k1_") for t in tokens)
    assert len(set(tokens)) == len(tokens)
    dumped = str(table.to_pylist())
    assert not ID_NUMBER.search(dumped), "a raw identity number reached the shared table"
    assert all(n.endswith("*") for n in table.column("name").to_pylist())
    assert all("****" in m for m in table.column("mobile").to_pylist() if m)

    topic = grant_topic(ready_hub.kafka.topic_prefix, grant)
    assert count_messages(ready_hub.kafka.bootstrap_servers, topic, batch_id=batch.id) == batch.rows_valid
    key, value, headers = read_messages(ready_hub.kafka.bootstrap_servers, topic, 1, batch_id=batch.id)[0]
    assert key == value["person_token"]
    assert headers["contract"] == "population" and headers["batch_id"] == batch.id
    assert not ID_NUMBER.search(str(value))

    rules = {rule for rule, _field, _count in store.violations_summary(batch.id)}
    assert {"gb11643.check_digit", "key.duplicate", "required", "id_gender"} <= rules
    assert not Path(result_staging(ready_hub, batch.id)).exists(), "staging is removed after the commit"


def result_staging(settings, batch_id: str) -> Path:  # type: ignore[no-untyped-def]
    return settings.staging_dir / batch_id


def test_rerun_reads_nothing_new_and_full_rerun_changes_nothing(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from catalog.tables import QueryEngine
    from hub import pipeline

    _fill(ready_hub, rows=1_000)
    first = pipeline.run("population", settings=ready_hub, publish_rows=False)
    engine = QueryEngine(HubContext(ready_hub).tables)
    query = "SELECT count(*) AS n, count(DISTINCT person_token) AS d FROM population"
    before = engine.run(query).to_pylist()[0]
    store = HubContext(ready_hub).store
    valid = store.get_batch(first.batch_id).rows_valid
    assert before == {"n": valid, "d": valid}

    again = pipeline.run("population", settings=ready_hub, publish_rows=False)
    assert store.get_batch(again.batch_id).rows_in == 0
    assert store.get_batch(again.batch_id).watermark_to == store.get_batch(first.batch_id).watermark_to

    full = pipeline.run("population", settings=ready_hub, full=True, publish_rows=False)
    assert store.get_batch(full.batch_id).rows_in == 1_000
    assert store.get_batch(full.batch_id).full_refresh
    assert QueryEngine(HubContext(ready_hub).tables).run(query).to_pylist()[0] == before


def test_day_two_reads_exactly_the_changes_and_updates_by_key(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from catalog.tables import QueryEngine
    from connectors.config import resolve_url
    from connectors.simulator import population
    from hub import pipeline

    report = _fill(ready_hub, rows=2_000)
    first = pipeline.run("population", settings=ready_hub, publish_rows=False)
    store = HubContext(ready_hub).store
    valid_day_one = store.get_batch(first.batch_id).rows_valid
    assert valid_day_one == 2_000 - report.expected_quarantined

    source = HubContext(ready_hub).source("population")
    day_two = population.changes(2_000, seed=7, new=40, updated=30, deregistered=20)
    population.apply_changes(
        resolve_url(source.connector, ready_hub.source_env()), "population_registry", day_two
    )
    second = pipeline.run("population", settings=ready_hub, publish_rows=False)
    batch = store.get_batch(second.batch_id)
    assert batch.rows_in == day_two.rows == 90
    assert batch.rows_quarantined == 0 and not batch.full_refresh
    assert batch.watermark_from == store.get_batch(first.batch_id).watermark_to
    assert batch.watermark_to > batch.watermark_from

    engine = QueryEngine(HubContext(ready_hub).tables)
    assert engine.run("SELECT count(*) AS n FROM population").to_pylist()[0]["n"] == valid_day_one + 40
    statuses = engine.run(
        f"SELECT registration_status AS s, count(*) AS n FROM population WHERE _batch_id = '{batch.id}' GROUP BY 1"
    ).to_pylist()
    changed = {row["s"]: row["n"] for row in statuses}
    expected = {}
    for status in day_two.records().column("registration_status").to_pylist():
        expected[status] = expected.get(status, 0) + 1
    assert changed == expected
    assert day_two.status_changed.num_rows == 20


def test_missing_keyring_says_to_run_keys_init(hub_home: Path) -> None:
    from hub import pipeline
    from hub.settings import get_settings

    settings = get_settings()
    _fill(settings, rows=200)
    with pytest.raises(ConfigurationError, match=r"hub keys init") as info:
        pipeline.extract("population", settings=settings)
    assert "\n" not in str(info.value)


def test_unreachable_source_names_it_without_password(ready_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hub import pipeline

    monkeypatch.setenv(
        "HUB_SOURCE_POPULATION_URL", "postgresql+psycopg://registry:s3cret-pw@127.0.0.1:1/registry"
    )
    with pytest.raises(TransientError) as info:
        pipeline.extract("population", settings=ready_hub)
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "127.0.0.1:1/registry" in message


def test_broker_outage_keeps_batch_registered_and_names_the_retry(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from hub import pipeline
    from tests.conftest import free_port
    from tests.integration.conftest import subscribe

    _fill(ready_hub, rows=500)
    subscribe(ready_hub)
    ref = pipeline.extract("population", settings=ready_hub)
    pipeline.validate(ref, settings=ready_hub)
    pipeline.mask(ref, settings=ready_hub)
    pipeline.register(ref, settings=ready_hub)
    good = ready_hub.kafka.bootstrap_servers
    dead = f"127.0.0.1:{free_port()}"
    ready_hub.kafka.bootstrap_servers = dead
    ready_hub.kafka.request_timeout_ms = 3_000
    with pytest.raises(TransientError) as info:
        pipeline.publish(ref.batch_id, settings=ready_hub)
    assert dead in str(info.value)
    assert f"hub publish {ref.batch_id}" in str(info.value)
    store = HubContext(ready_hub).store
    assert store.get_batch(ref.batch_id).status == "registered"

    ready_hub.kafka.bootstrap_servers = good
    sent = pipeline.publish(ref.batch_id, settings=ready_hub)
    assert sent == store.get_batch(ref.batch_id).rows_valid
    assert store.get_batch(ref.batch_id).status == "published"


def test_unknown_dataset_is_a_clear_error(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from hub import pipeline

    with pytest.raises(HubError, match=r"no source 'people' .*population"):
        pipeline.run("people", settings=ready_hub)


def test_a_failed_batch_never_advances_the_watermark(ready_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from connectors.config import resolve_url
    from connectors.simulator import population
    from hub import pipeline

    _fill(ready_hub, rows=800)
    first = pipeline.run("population", settings=ready_hub, publish_rows=False)
    store = HubContext(ready_hub).store
    watermark = store.get_batch(first.batch_id).watermark_to

    source = HubContext(ready_hub).source("population")
    changes = population.changes(800, seed=7, new=10, updated=10, deregistered=5)
    population.apply_changes(
        resolve_url(source.connector, ready_hub.source_env()), "population_registry", changes
    )
    ref = pipeline.extract("population", settings=ready_hub)
    pipeline.validate(ref, settings=ready_hub)
    pipeline.mask(ref, settings=ready_hub)

    def broken_commit(*args, **kwargs):  # type: ignore[no-untyped-def]
        from catalog.errors import CatalogUnavailableError

        raise CatalogUnavailableError("the catalog database went away")

    with monkeypatch.context() as patched:
        patched.setattr("catalog.tables.iceberg.SharedTables.commit", broken_commit)
        with pytest.raises(TransientError):
            pipeline.register(ref, settings=ready_hub)
    assert store.get_batch(ref.batch_id).status == "failed"
    assert store.last_watermark("population") == watermark
    assert ref.folder.exists(), "staging is kept after a failure for inspection"

    retry = pipeline.run("population", settings=ready_hub, publish_rows=False)
    assert store.get_batch(retry.batch_id).rows_in == changes.rows


def test_unconditional_view_is_k_anonymous_and_its_k_recorded(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from catalog.tables import QueryEngine
    from hub import pipeline
    from masking.kanon import measure
    from schemas.contract import load_contract

    _fill(ready_hub, rows=3_000)
    result = pipeline.run("population", settings=ready_hub, publish_rows=False)
    batch = HubContext(ready_hub).store.get_batch(result.batch_id)
    contract = load_contract("population")
    assert batch.k_anonymity is not None and batch.k_anonymity >= contract.k_anonymity

    tables = HubContext(ready_hub).tables
    assert "population_unconditional" in tables.datasets()
    shared = tables.load("population_unconditional")
    assert shared.properties["hub.k_anonymity"] == str(batch.k_anonymity)
    view = QueryEngine(tables).run("SELECT * FROM population_unconditional")
    assert measure(view, contract.published_quasi_identifiers).k >= contract.k_anonymity
    assert view.num_rows + batch.k_suppressed_rows == batch.rows_valid
    assert view.column("name").null_count == view.num_rows
    assert "internal" not in str(tables.datasets())
