"""Source DAGs through real Airflow against the real servers: PostgreSQL and MariaDB registries."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import sqlalchemy as sa

from hub import airflow_runner
from hub.context import HubContext

ROOT = Path(__file__).resolve().parents[2]


def test_population_from_postgresql_and_legal_entities_from_mariadb(  # type: ignore[no-untyped-def]
    ready_hub, postgres_url, mariadb_url, tmp_path: Path, monkeypatch
) -> None:
    from connectors.simulator import legal_entity, population
    from connectors.simulator.world import World
    from hub.settings import get_settings

    suffix = secrets.token_hex(3)
    sources = tmp_path / "sources"
    sources.mkdir()
    for name, table in (("population", "population_registry"), ("legal_entity", "market_entities")):
        text = (ROOT / "connectors" / "sources" / f"{name}.yaml").read_text(encoding="utf-8")
        (sources / f"{name}.yaml").write_text(
            text.replace(f"table: {table}", f"table: {table}_{suffix}"), "utf-8"
        )
    monkeypatch.setenv("HUB_CONNECTORS__SOURCES_DIR", str(sources))
    monkeypatch.setenv("HUB_SOURCE_POPULATION_URL", postgres_url)
    monkeypatch.setenv("HUB_SOURCE_LEGAL_ENTITY_URL", mariadb_url)
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow.db'}")
    get_settings.cache_clear()
    settings = get_settings()

    world = World(seed=41, persons=3_000, entities=600)
    people = population.fill(
        postgres_url,
        world.persons,
        table=f"population_registry_{suffix}",
        seed=world.seed,
        rates=world.population_rates,
    )
    firms = legal_entity.fill(mariadb_url, world.entities, table=f"market_entities_{suffix}", world=world)
    log = tmp_path / "airflow.log"
    try:
        airflow_runner.migrate(settings, log_path=log)
        airflow_runner.run_dag("population", settings, log_path=log)
        airflow_runner.run_dag("legal_entity", settings, log_path=log)
        store = HubContext(settings).store
        for source, report in (("population", people), ("legal_entity", firms)):
            batch = store.last_batch_of_source(source)
            assert batch is not None and batch.status == "published"
            assert batch.rows_in == report.rows
            assert batch.rows_quarantined == report.expected_quarantined
        from catalog.tables import QueryEngine

        joined = QueryEngine(HubContext(settings).tables).run(
            "SELECT count(*) AS n FROM legal_entity l JOIN population p ON l.legal_rep_token = p.person_token"
        )
        assert joined.column("n")[0].as_py() == store.last_batch_of_source("legal_entity").rows_valid
    finally:
        for url, table in (
            (postgres_url, f"population_registry_{suffix}"),
            (mariadb_url, f"market_entities_{suffix}"),
        ):
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            engine.dispose()
        shutil.rmtree(sources, ignore_errors=True)
        get_settings.cache_clear()
