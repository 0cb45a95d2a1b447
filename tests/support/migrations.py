"""The difference between the migrated metadata schema and the models (empty when they agree)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from catalog.metadata import Base, migrate


def schema_differences(url: str, schema: str | None = None) -> list[object]:
    # Autogenerate inspects the connection's default schema: point it at the test's.
    options = {"connect_args": {"options": f"-csearch_path={schema}"}} if schema else {}
    engine = create_engine(url, **options)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_schemas": False,
                    "version_table": migrate.VERSION_TABLE,
                },
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()
