"""The scorecard's queries on the local PostgreSQL (metadata in a throw-away schema)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

import catalog.entries as reports
from catalog.metadata import MetadataStore
from tests.support.scorecards import MARKET, NOW, STANDARD, add_batch, card_of

pytestmark = pytest.mark.integration


@pytest.fixture
def store(postgres_url: str) -> Iterator[MetadataStore]:
    name = f"hub_rep_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    opened = MetadataStore(postgres_url, schema=name)
    try:
        yield opened
    finally:
        opened.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def test_scorecard_on_postgresql(store: MetadataStore) -> None:
    add_batch(store, "p-1", violations=STANDARD, started=NOW - timedelta(days=2))
    add_batch(store, "p-2", rows_in=3000, rows_valid=2970, started=NOW - timedelta(hours=10))
    add_batch(store, "l-1", dataset="legal_entity", rows_in=200, rows_valid=180, department=MARKET)
    card = reports.scorecard(store, datadocs=None, now=NOW)
    population = card_of(card, "population")
    assert population.score.validity == pytest.approx((950 + 2970) / 4000)
    assert population.score.uniqueness == pytest.approx(1 - 10 / 4000)
    assert population.timeliness.status == "ok"
    assert [b.batch_id for b in population.trend] == ["p-1", "p-2"]
    assert card_of(card, "legal_entity").score.validity == pytest.approx(0.9)
    assert card_of(card, "certificate").timeliness.status == "never"
