"""Fixtures of the catalogue tests: a hub home with stewards and the shared tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.metadata import MetadataStore
from catalog.tables import SharedTables
from tests.support.catalogue import PROVIDER_STEWARD, STEWARD, Hub


@pytest.fixture
def hub(hub_home: Path) -> Iterator[Hub]:
    """A hub home with a keyring, a hub-wide steward and a steward of the population department."""
    from catalog.sharing import add_department, add_person
    from hub.settings import get_settings
    from masking.keys import Keyring

    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)
    assert settings.catalog.metadata_url and settings.catalog.iceberg_url and settings.catalog.warehouse
    store = MetadataStore(settings.catalog.metadata_url)
    add_person(store, STEWARD, roles=["steward"], hub_wide=True, actor=None)
    add_department(store, "11100000000013338W", "公安厅", actor=STEWARD)
    add_person(store, PROVIDER_STEWARD, roles=["steward"], department="11100000000013338W", actor=STEWARD)
    tables = SharedTables(settings.catalog.iceberg_url, settings.catalog.warehouse)
    yield Hub(store, tables, hub_home)
    store.dispose()
