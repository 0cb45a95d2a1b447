"""Shared fixtures: an isolated hub home per test, and the local database servers.

Airflow reads its configuration when first imported, so AIRFLOW_HOME (the repository root)
and a throw-away metadata database are set here, before any test module imports it.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_TMP = Path(tempfile.mkdtemp(prefix="hub-airflow-"))
os.environ["AIRFLOW_HOME"] = str(ROOT)
# Rich fixes a console's width when it is made (at import): wide enough for the tables the
# command tests read, whatever terminal (or none, as in a pytest-xdist worker) runs them.
os.environ["COLUMNS"] = "250"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_TMP / 'airflow.db'}"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_AIRFLOW_TMP / "logs")

POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("HUB_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _server(url: str, host: str, port: int, name: str) -> str:
    if _reachable(host, port):
        return url
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the local PostgreSQL (fails in CI when unreachable)."""
    return _server(POSTGRES_URL, "127.0.0.1", 5432, "PostgreSQL")


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """SQLAlchemy URL of the local MariaDB (fails in CI when unreachable)."""
    return _server(MARIADB_URL, "127.0.0.1", 3306, "MariaDB")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def hub_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh hub home and keyring location; settings re-read from the environment."""
    from hub.settings import get_settings

    home = tmp_path / "hub"
    monkeypatch.setenv("HUB_HOME", str(home))
    monkeypatch.setenv("HUB_MASKING__KEYRING_PATH", str(tmp_path / "keys" / "keyring.json"))
    # One broker serves a whole test session while grant numbers restart in every hub home:
    # each home writes topics of its own.
    monkeypatch.setenv("HUB_KAFKA__TOPIC_PREFIX", f"hub.{secrets.token_hex(4)}.")
    monkeypatch.delenv("HUB_SETTINGS_FILE", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration share the local servers' tables: with several workers
    (pytest-xdist), all of them run on one worker, one after the other."""
    for item in items:
        if item.nodeid.startswith("tests/integration/"):
            item.add_marker(pytest.mark.xdist_group("servers"))
