"""The Alembic migrations build exactly the schema the models describe, on SQLite here and
on PostgreSQL in tests/integration/test_migrations_postgres.py."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text

from catalog.metadata import MetadataStore, migrate
from tests.support.migrations import schema_differences


def test_a_new_database_is_migrated_to_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    MetadataStore(url).dispose()
    assert schema_differences(url) == []
    engine = create_engine(url)
    with engine.connect() as connection:
        assert migrate.current(connection) == migrate.heads()
    engine.dispose()


def test_opening_a_migrated_database_again_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    MetadataStore(url).dispose()
    MetadataStore(url).dispose()
    assert schema_differences(url) == []


def test_a_database_made_before_migrations_is_stamped_and_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = create_engine(url)
    # the tables as the code before migrations made them: the baseline, without its version row
    with engine.begin() as connection:
        command.upgrade(migrate._config(connection, None), migrate.BASELINE)
        connection.execute(text(f"DROP TABLE {migrate.VERSION_TABLE}"))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO hub_batches (id, dataset, source, full_refresh, contract_version, status, "
                "started_at, updated_at, messages_published) VALUES ('b1', 'population', 'p', 1, "
                "'1.0.0', 'registered', '2026-11-01 00:00:00', '2026-11-01 00:00:00', 0)"
            )
        )
    engine.dispose()

    store = MetadataStore(url)
    assert store.get_batch("b1").dataset == "population"
    store.dispose()
    assert schema_differences(url) == []
    engine = create_engine(url)
    assert migrate.VERSION_TABLE in inspect(engine).get_table_names()
    engine.dispose()
