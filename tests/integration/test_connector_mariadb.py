"""The SQL connector on a real MariaDB server (the SQLAlchemy streaming road): the shared suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.connectors.suite import ConnectorSuite
from tests.connectors.test_sql_suite import SqlHarness

pytestmark = pytest.mark.integration


class TestMariadbConnector(ConnectorSuite):
    @pytest.fixture
    def harness(self, mariadb_url: str) -> Iterator[SqlHarness]:
        harness = SqlHarness(mariadb_url)
        yield harness
        harness.close()
