"""The catalogue on the local PostgreSQL, in a throw-away schema: entries generated, edited,
published and versioned, and two stewards editing at once give one version each or a refusal.

Uses the ``postgres_url`` fixture of tests/conftest.py: skipped when the server is not
reachable, failed instead when CI is set.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from catalog.entries import Catalogue, ConcurrentEditError
from catalog.metadata import MetadataStore

pytestmark = pytest.mark.integration


@pytest.fixture
def store(postgres_url: str, hub_home: Path) -> Iterator[MetadataStore]:
    from catalog.sharing import add_person
    from hub.settings import get_settings
    from masking.keys import Keyring

    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)  # the access log signs what stewards do
    schema = f"hub_test_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store = MetadataStore(postgres_url, schema=schema)
    add_person(store, "li", roles=["steward"], hub_wide=True, actor=None)
    try:
        yield store
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_entries_are_generated_edited_published_and_versioned_on_postgres(store: MetadataStore) -> None:
    catalogue = Catalogue(store)
    assert {v.dataset: v.status for v in catalogue.entries()} == {
        "certificate": "draft",
        "legal_entity": "draft",
        "population": "draft",
    }
    catalogue.edit("population", {"keywords": "人口,户籍"}, by="li", note="portal keywords")
    for dataset in ("population", "legal_entity", "certificate"):
        assert catalogue.publish(dataset, by="li").status == "published"
    history = catalogue.history("population")
    assert [(h.version, h.change) for h in history] == [(1, "generated"), (2, "edited"), (3, "published")]
    assert history[-1].published and history[1].note == "portal keywords"
    assert catalogue.entry("population").content.keywords == ("人口", "户籍")
    assert catalogue.entry("population").published_at is not None
    assert catalogue.entry("population").published_at.utcoffset() is not None  # type: ignore[union-attr]
    assert [h.dataset for h in catalogue.search("户籍")] == ["population"]


def test_two_stewards_editing_at_once_give_no_lost_update(store: MetadataStore) -> None:
    Catalogue(store).entries()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def edit(n: int) -> None:
        catalogue = Catalogue(store)
        barrier.wait()
        try:
            catalogue.edit("legal_entity", {"format": f"格式{n}"}, by="li", note=f"edit {n}")
            outcomes.append("saved")
        except ConcurrentEditError:
            outcomes.append("refused")

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = Catalogue(store).history("legal_entity")
    saved = outcomes.count("saved")
    assert saved >= 1 and len(outcomes) == 4
    assert [h.version for h in history] == list(range(1, saved + 2))  # no gap, no duplicate
