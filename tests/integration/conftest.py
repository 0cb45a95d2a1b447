"""Fixtures that start real components: the embedded broker, a prepared hub home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real embedded Kafka-compatible broker on a free loopback port; yields its address."""
    from catalog.broker import EmbeddedBroker

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
