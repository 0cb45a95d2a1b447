"""Issue #4 done-when, on a PostgreSQL source with SQLite metadata: a simulated day with
injected defects ends with exactly the defective rows quarantined, a correction request for
each, certificate holders checked against the shared registers by token, and the gate
stopping a batch that crosses the threshold until a steward releases it."""

from __future__ import annotations

import random
import secrets
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from hub.context import HubContext
from quality.errors import BatchHeldError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POLICE = "11100000000013338W"
PERSONS, ENTITIES, CERTIFICATES = 3_000, 600, 1_500


def _sources(tmp_path: Path, suffix: str) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    for name, table in (("population", "population_registry"), ("legal_entity", "market_entities")):
        text = (ROOT / "connectors" / "sources" / f"{name}.yaml").read_text(encoding="utf-8")
        (folder / f"{name}.yaml").write_text(
            text.replace(f"table: {table}", f"table: {table}_{suffix}"), "utf-8"
        )
    shutil.copy(ROOT / "connectors" / "sources" / "certificate_files.yaml", folder)
    return folder


def _strangers() -> pa.Table:
    """Two valid certificates whose holders are in neither register: a person and a company."""
    from connectors.simulator import certificate
    from tests.support import samples

    rng = random.Random(99)
    rows = []
    for n, kind in enumerate(("111", "001")):
        record = samples.good_certificate(rng, n)
        record.pop("_row")
        record["holder_code_type"] = kind
        record["holder_code"] = (
            samples.make_id("110105", date(1970, 1, 1 + n), 901)
            if kind == "111"
            else samples.make_uscc("440305", "QQQQQQQ" + str(n))
        )
        rows.append(record)
    return pa.Table.from_pylist(rows, schema=certificate.schema())


def _count(url: str, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def test_a_simulated_day_quarantines_the_injected_defects_and_the_gate_holds_a_broken_one(  # type: ignore[no-untyped-def]
    ready_hub, postgres_url: str, tmp_path: Path, monkeypatch
) -> None:
    from catalog.corrections import Corrections
    from catalog.deliveries import count_messages, grant_topic
    from catalog.metadata import CorrectionStatus
    from catalog.sharing import add_department, add_person
    from connectors.simulator import certificate, drop, legal_entity, population
    from connectors.simulator.world import World
    from hub import pipeline
    from hub.settings import get_settings
    from tests.integration.conftest import subscribe

    suffix = secrets.token_hex(3)
    registry = f"population_registry_{suffix}"
    monkeypatch.setenv("HUB_CONNECTORS__SOURCES_DIR", str(_sources(tmp_path, suffix)))
    monkeypatch.setenv("HUB_SOURCE_POPULATION_URL", postgres_url)
    monkeypatch.setenv("HUB_SOURCE_LEGAL_ENTITY_URL", postgres_url)
    get_settings.cache_clear()
    settings = get_settings()
    world = World(seed=47, persons=PERSONS, entities=ENTITIES)
    try:
        people = population.fill(
            postgres_url, world.persons, table=registry, seed=world.seed, rates=world.population_rates
        )
        firms = legal_entity.fill(
            postgres_url, world.entities, table=f"market_entities_{suffix}", world=world
        )
        certificates = pa.concat_tables(
            [pa.Table.from_batches(list(certificate.generate(CERTIFICATES, world=world))), _strangers()]
        )
        folder = settings.home / "drops" / "certificates"
        folder.mkdir(parents=True)
        drop.write_csv(certificate.to_csv_columns(certificates), folder / "day1.csv", headers=None)
        injected = {
            "population": people.expected_quarantined,
            "legal_entity": firms.expected_quarantined,
            "certificate_files": certificate.DefectRates().expected_quarantined(CERTIFICATES) + 2,
        }

        # day 1: every source once, in dependency order; a system subscribes to population
        store = HubContext(settings).store
        grant = subscribe(settings, steward="wang.hub")
        corrections = Corrections(store)
        batches = {}
        for source in ("population", "legal_entity", "certificate_files"):
            result = pipeline.run(source, settings=settings, publish_rows=source == "population")
            batches[source] = batch = store.get_batch(result.batch_id)
            assert batch.status in ("registered", "published")
            assert batch.rows_quarantined == injected[source], source
            assert batch.rows_in == batch.rows_valid + batch.rows_quarantined
            opened = [r for r in corrections.find(limit=None) if r.batch_id == batch.id]
            assert len(opened) == batch.rows_quarantined, f"{source}: one request per quarantined row"
            assert {r.department_code for r in opened} == {batch.department_code}
        holders = {
            (rule, field): n for rule, field, n in store.violations_summary(batches["certificate_files"].id)
        }
        assert holders[("holder_exists", "holder_code")] == 2, "every clean holder is found by token"
        assert not batches["certificate_files"].warnings

        # day 2: the registry fixes the missing names and sends a broken export of 300 rows
        day1 = batches["population"]
        snapshot = HubContext(settings).tables.current_snapshot_id("population")
        quarantined = store.quarantined_records(day1.id)
        missing_names = [
            e.record["id_number"] for e in quarantined if [v.rule for v in e.violations] == ["required"]
        ]
        assert missing_names
        bad_ids = {e.record["id_number"] for e in quarantined}
        engine = sa.create_engine(postgres_url)
        with engine.begin() as conn:
            clean = [
                row[0]
                for row in conn.execute(
                    sa.text(f"SELECT id_number FROM {registry} ORDER BY id_number LIMIT 800")
                )
                if row[0] not in bad_ids
            ][:300]
            conn.execute(
                sa.text(
                    f"UPDATE {registry} SET name = '张三', updated_at = now() WHERE id_number = ANY(:ids)"
                ),
                {"ids": missing_names},
            )
            conn.execute(
                sa.text(f"UPDATE {registry} SET name = NULL, updated_at = now() WHERE id_number = ANY(:ids)"),
                {"ids": clean[:150]},
            )
            conn.execute(
                sa.text(f"UPDATE {registry} SET updated_at = now() WHERE id_number = ANY(:ids)"),
                {"ids": clean[150:]},
            )
        engine.dispose()
        with pytest.raises(BatchHeldError) as info:
            pipeline.run("population", settings=settings)
        held = store.last_batch_of_source("population")
        assert held is not None and held.status == "held" and held.id in str(info.value)
        assert (held.rows_in, held.rows_quarantined) == (len(missing_names) + 300, 150)
        assert "150 of" in str(info.value) and "required on name 150" in str(info.value)
        assert HubContext(settings).tables.current_snapshot_id("population") == snapshot
        topic = grant_topic(settings.kafka.topic_prefix, grant)
        assert count_messages(settings.kafka.bootstrap_servers, topic, batch_id=held.id, timeout_s=5) == 0
        assert store.last_watermark("population") == day1.watermark_to

        # a steward of the registry's department releases it
        add_department(store, POLICE, "公安厅", actor="wang.hub")
        add_person(store, "li.police", department=POLICE, roles=["steward"], actor="wang.hub")
        result = pipeline.release(
            held.id, steward="li.police", reason="export fixed at source", settings=settings
        )
        done = store.get_batch(held.id)
        assert done.status == "published" and done.released_by == "li.police"
        assert (
            result.snapshot_id != snapshot and result.messages == done.rows_valid == len(missing_names) + 150
        )
        assert count_messages(settings.kafka.bootstrap_servers, topic, batch_id=held.id) == done.rows_valid
        assert store.last_watermark("population") == done.watermark_to > (day1.watermark_to or "")
        statuses: dict[tuple[str | None, CorrectionStatus], int] = {}
        for request in corrections.find(dataset="population", limit=None):
            key = (request.batch_id, request.status)
            statuses[key] = statuses.get(key, 0) + 1
        assert statuses[(day1.id, CorrectionStatus.CORRECTED)] == len(missing_names), (
            "the registered corrected records closed their requests"
        )
        assert statuses[(held.id, CorrectionStatus.OPEN)] == 150
    finally:
        for table in (registry, f"market_entities_{suffix}"):
            _count(postgres_url, f"DROP TABLE IF EXISTS {table}")
        get_settings.cache_clear()


def test_under_airflow_a_held_batch_fails_its_validate_task_once(
    ready_hub, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import time

    from hub import airflow_runner
    from hub.simulate import simulate
    from schemas.errors import FatalError

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow.db'}")
    simulate(HubContext(ready_hub).source("population"), ready_hub, rows=1_000, seed=3, defect_rate=0.02)
    log = tmp_path / "airflow.log"
    started: list[str] = []
    airflow_runner.migrate(ready_hub, log_path=log)
    began = time.monotonic()
    with pytest.raises(FatalError) as info:
        airflow_runner.run_dag("population", ready_hub, log_path=log, on_task=started.append)
    assert time.monotonic() - began < 110, "no retry: the policy fails the task at once (retry delay 2 min)"
    assert started == ["extract", "validate"], "validate ran once; mask, register and publish never started"
    assert "quality.errors.BatchHeldError: batch population-" in log.read_text(encoding="utf-8")
    assert "BatchHeldError" in str(info.value)
    batch = HubContext(ready_hub).store.latest_batch("population")
    assert batch is not None and batch.status == "held"
    assert "population" not in HubContext(ready_hub).tables.datasets()


def test_requests_and_releases_on_postgresql_metadata(postgres_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from catalog.corrections import STAGED_SCHEMA, Corrections
    from catalog.errors import ReleaseRefusedError
    from catalog.metadata import CorrectionStatus, MetadataStore
    from schemas.contract import load_contract

    schema = f"hub_gate_{secrets.token_hex(4)}"
    _count(postgres_url, f'CREATE SCHEMA "{schema}"')
    store = MetadataStore(postgres_url, schema=schema)
    try:
        for batch_id in ("b1", "b2"):
            store.start_batch(batch_id, dataset="population", source="population", contract_version="1.0.0")
            store.update_batch(batch_id, department="公安厅", department_code=POLICE)
        rows = 20_000
        staged = pa.Table.from_pylist(
            [
                {"row": n, "key_token": f"k1_{n}" if n % 10 else None, "fields": "name", "rules": "required",
                 "reason": "必填字段「name」为空 / required field name is missing or empty"}
                for n in range(rows)
            ],
            schema=STAGED_SCHEMA,
        )  # fmt: skip
        corrections = Corrections(store)
        first = corrections.open_from_quarantine(
            store.get_batch("b1"), [staged], due_on=date(2026, 12, 4), department_code=POLICE
        )
        again = corrections.open_from_quarantine(
            store.get_batch("b2"), [staged.slice(0, 100)], due_on=date(2026, 12, 4), department_code=POLICE
        )
        assert (first.opened, again.opened, again.already_open) == (rows, 10, 90)
        closed = corrections.close_corrected(
            "population",
            "b3",
            [pa.table({"person_token": ["k1_1", "k1_2", "k1_11"]})],
            load_contract("population"),
        )
        assert closed == 3
        counts = corrections.counts(dataset="population", today=date(2026, 12, 1))
        assert counts[CorrectionStatus.CORRECTED.value] == 3 and counts["open"] == rows + 10 - 3

        store.hold_batch("b2", "held")

        def release(name: str) -> str:
            try:
                store.release_batch("b2", steward=name, reason=name)
            except ReleaseRefusedError:
                return "refused"
            return "released"

        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = sorted(pool.map(release, ["a", "b", "c", "d"]))
        assert outcomes == ["refused", "refused", "refused", "released"]
    finally:
        store.dispose()
        _count(postgres_url, f'DROP SCHEMA "{schema}" CASCADE')
