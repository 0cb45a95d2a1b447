"""Versioned migrations of the hub metadata (Alembic), run when a store opens.

The revisions live in ``catalog/metadata/migrations/versions``. :func:`upgrade` brings a database
to the newest revision: a new database gets every revision in order, an existing one only
those it lacks, and one created before migrations existed (its tables present, no version
table) is first stamped at the baseline those tables match.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

VERSION_TABLE = "hub_alembic_version"
BASELINE = "0001_baseline"
_LOCATION = Path(__file__).resolve().parent / "migrations"
_ADVISORY_LOCK = 0x6875_625F_6462  # "hub_db": serialises migrations across PostgreSQL sessions
_LOCK = threading.Lock()  # alembic's context is process-global: one migration at a time


def _config(connection: Connection, schema: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_LOCATION))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def heads() -> set[str]:
    """The newest revision(s) of the code."""
    script = ScriptDirectory(str(_LOCATION))
    return set(script.get_heads())


def current(connection: Connection, schema: str | None = None) -> set[str]:
    """The revision(s) a database is at (empty when it has never been migrated)."""
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE, "version_table_schema": schema}
    )
    return set(context.get_current_heads())


def upgrade(engine: Engine, schema: str | None = None, *, attempts: int = 5) -> None:
    """Bring the database behind ``engine`` to the newest revision (no-op when it is there).

    Processes that open a new database at once (Airflow tasks, say) take turns: on
    PostgreSQL through an advisory lock; on SQLite, whose DDL does not wait, the loser of
    the race sees the winner's tables and tries again.
    """
    wanted = heads()
    with engine.connect() as connection:
        if current(connection, schema) == wanted:
            return
    with _LOCK:
        for attempt in range(attempts):
            try:
                _upgrade_once(engine, schema, wanted)
                return
            except DBAPIError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))


def _upgrade_once(engine: Engine, schema: str | None, wanted: set[str]) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        at = current(connection, schema)
        if at == wanted:  # another process got here first
            return
        config = _config(connection, schema)
        if not at and inspect(connection).has_table("hub_batches", schema=schema):
            command.stamp(config, BASELINE)
        command.upgrade(config, "heads")
