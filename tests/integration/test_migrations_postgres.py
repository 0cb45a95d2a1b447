"""The Alembic migrations on the local PostgreSQL, in a throw-away schema: they build the
models' schema exactly, and two stores opening a new database at once both succeed."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from catalog.metadata import MetadataStore
from tests.conftest import ROOT
from tests.support.migrations import schema_differences

pytestmark = pytest.mark.integration


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    name = f"hub_mig_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def test_migrations_build_the_models_schema_on_postgresql(postgres_url: str, schema: str) -> None:
    MetadataStore(postgres_url, schema=schema).dispose()
    assert schema_differences(postgres_url, schema) == []
    MetadataStore(postgres_url, schema=schema).dispose()
    assert schema_differences(postgres_url, schema) == []


def test_processes_opening_a_new_database_at_once_all_succeed(postgres_url: str, schema: str) -> None:
    script = (
        "import sys; from catalog.metadata.store import MetadataStore; "
        "MetadataStore(sys.argv[1], schema=sys.argv[2]).dispose()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, postgres_url, schema], cwd=ROOT, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    failures = [proc.stderr.read().decode() for proc in procs if proc.wait(timeout=120) != 0 and proc.stderr]
    assert failures == []
    assert schema_differences(postgres_url, schema) == []
