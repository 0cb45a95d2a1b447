"""Fixtures that start real components: the embedded broker, a prepared hub home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.context import HubContext
from tests.conftest import free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real embedded Kafka-compatible broker on a free loopback port; yields its address."""
    from catalog.deliveries import EmbeddedBroker

    home = tmp_path_factory.mktemp("broker-home")
    embedded = EmbeddedBroker(home, f"127.0.0.1:{free_port()}")
    status = embedded.start()
    try:
        yield status.address
    finally:
        embedded.stop()


@pytest.fixture
def ready_hub(hub_home: Path, broker: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A hub home with a keyring and the broker configured; returns the settings."""
    from hub.settings import get_settings
    from masking.keys import Keyring

    monkeypatch.setenv("HUB_KAFKA__BOOTSTRAP_SERVERS", broker)
    get_settings.cache_clear()
    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)
    return settings


def subscribe(settings: Any, dataset: str = "population", *, steward: str = "hub.steward") -> int:
    """Grant a consumer system every column ``dataset`` shares, so its batches are delivered
    to that grant's topic; registers ``steward`` (hub-wide) and the system as needed.

    Returns the grant id (``catalog.deliveries.publish.grant_topic`` names its topic).
    """
    from catalog.sharing import (
        add_department,
        add_person,
        add_system,
        approve_request,
        list_departments,
        list_people,
        list_systems,
        submit_request,
    )

    store = HubContext(settings).store
    social, system = "111000000000130127", "shebao-core"
    if steward not in {person.name for person, _ in list_people(store)}:
        add_person(store, steward, roles=["steward"], hub_wide=True, actor=steward)
    if social not in {d.code for d in list_departments(store)}:
        add_department(store, social, "人力资源和社会保障厅", actor=steward)
    if system not in {s.id for s in list_systems(store)}:
        add_system(store, system, "社会保险核心业务系统", social, actor=steward)
    request, grant = submit_request(store, dataset, system=system, purpose="养老保险资格认证", actor=steward)
    return (grant or approve_request(store, request.id, actor=steward)).id
