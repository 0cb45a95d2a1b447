"""Alembic environment of the hub metadata.

Migrations always run on a connection handed in by :func:`catalog.metadata.migrate.upgrade` (the
hub's own engine, with its schema translation), so there is no URL in any ini file.
"""

from __future__ import annotations

from alembic import context

from catalog.metadata.base import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when alembic is run by hand
    raise RuntimeError("run migrations with `hub db upgrade`, which hands alembic its connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table="hub_alembic_version",
    version_table_schema=config.attributes.get("schema"),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
