"""The access log on the local PostgreSQL, in a throw-away schema: every kind of tampering
detected, concurrent writers from several processes, retention, reports and exports."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

import catalog.audit.log as audit
from catalog.audit import AccessLog, Filters, load_keys, public_key_pem, read_public_keys, record_access
from catalog.metadata import MetadataStore
from masking.keys import Keyring
from tests.support.audit import run_writers
from tests.support.tampering import SCENARIOS, Logged, check, fill

pytestmark = pytest.mark.integration

_REAL_UTCNOW = audit.utcnow


@pytest.fixture
def store(postgres_url: str, hub_home: Path) -> Iterator[MetadataStore]:
    from hub.settings import get_settings

    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)
    name = f"hub_audit_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    made = MetadataStore(postgres_url, schema=name)
    made.test_schema = name  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        made.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_tampering_is_detected_on_postgresql(store: MetadataStore, name: str) -> None:
    check(fill(store, store.test_schema), name)  # type: ignore[attr-defined]


def test_concurrent_writers_keep_the_chain_gapless_on_postgresql(store: MetadataStore) -> None:
    schema = store.test_schema  # type: ignore[attr-defined]
    run_writers(store.url, processes=4, each=50, env={"HUB_AUDIT__CHECKPOINT_EVERY": "30"}, schema=schema)
    logged = Logged(store, AccessLog(store), schema)
    assert [r["seq"] for r in logged.rows()] == list(range(1, 201))
    assert [c.seq for c in logged.log.checkpoints()] == [30, 60, 90, 120, 150, 180]
    assert logged.log.verify().ok


def test_an_entry_commits_with_the_callers_transaction_on_postgresql(store: MetadataStore) -> None:
    with pytest.raises(RuntimeError), store.session() as session:
        record_access(session, action="approve", outcome="allowed", actor="steward")
        raise RuntimeError("approval failed")
    with store.session() as session:
        assert record_access(session, action="approve", outcome="allowed", actor="steward") == 1
    assert record_access(store, action="grant", outcome="allowed") == 2
    assert AccessLog(store).verify().ok


def test_purge_report_and_export_on_postgresql(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    for when, n in ((now - timedelta(days=400), 4), (now - timedelta(days=3), 3)):
        monkeypatch.setattr(audit, "utcnow", lambda when=when: when)
        for _ in range(n):
            record_access(
                store, action="query", outcome="allowed", system="tax", dataset="population", rows=2
            )
    monkeypatch.setattr(audit, "utcnow", _REAL_UTCNOW)
    record_access(store, action="query", outcome="denied", system="tax", reason="outside the grant")
    log = AccessLog(store)

    report = log.report()
    assert report.calls == 8 and report.denied == 1 and report.rows == 14
    assert report.by_day[0].name == (now - timedelta(days=400)).strftime("%Y-%m-%d")

    result = log.purge((now - timedelta(days=200)).date(), actor="auditor")
    assert result.purged == 4 and result.first_seq == 5
    assert log.verify().ok
    public = read_public_keys(public_key_pem(load_keys().public_keys()[1]))
    assert log.verify(public_keys=public).ok

    out = tmp_path / "log.parquet"
    assert log.export(out, fmt="parquet", filters=Filters(system="tax")) == 4
    table = pq.read_table(out)
    assert table.column("seq").to_pylist() == [5, 6, 7, 8]
    assert str(table.schema.field("at").type) == "timestamp[us, tz=UTC]"
