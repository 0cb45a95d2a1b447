"""The shared connector suite on the SQL connector over SQLite; the same harness serves
PostgreSQL and MariaDB in tests/integration/.

The harness's table uses Chinese pinyin abbreviations for two columns and 男/女 for gender,
as department systems do, so the column mapping and code values are exercised too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.connector_suite import ConnectorSuite
from tests.support.sql_harness import SqlHarness


class TestSqliteConnector(ConnectorSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> SqlHarness:
        return SqlHarness(f"sqlite:///{tmp_path / 'registry.db'}")
