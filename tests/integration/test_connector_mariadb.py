"""The SQL connector on a real MariaDB server (the SQLAlchemy streaming road): the shared suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.connector_suite import ConnectorSuite
from tests.support.sql_harness import SqlHarness

pytestmark = pytest.mark.integration


class TestMariadbConnector(ConnectorSuite):
    @pytest.fixture
    def harness(self, mariadb_url: str) -> Iterator[SqlHarness]:
        harness = SqlHarness(mariadb_url)
        yield harness
        harness.close()
