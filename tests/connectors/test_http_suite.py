"""The HTTP API connector passes the shared connector suite against the issuing-system server.

The server is the real local simulator (uvicorn on a free loopback port, in-process); the
records carry the system's own camelCase keys, mapped to the contract through ``columns``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from connectors.config import SourceConfig
from connectors.http import HttpConnector
from connectors.simulator.issuing_api import IssuingApi
from tests.conftest import free_port
from tests.support.connector_suite import CONTRACT, KEY, ConnectorSuite

TOKEN = "suite-bearer-token-8f3a"


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


COLUMNS = {f.name: camel(f.name) for f in CONTRACT.fields}


class ApiHarness:
    source_name = "issuing_suite"

    def __init__(self) -> None:
        self.api = IssuingApi(token=TOKEN, id_field=COLUMNS[KEY], cursor_field=COLUMNS["updated_at"])
        self.base_url = self.api.start()
        self.rows = pa.table({})

    def connector(self, full: bool = False) -> HttpConnector:
        source = SourceConfig.model_validate(
            {
                "name": self.source_name,
                "department": {"code": "11100000MB0143028R", "name": "政务服务管理局"},
                "dataset": "population",
                "connector": {
                    "kind": "http",
                    "url": "${ISSUING_URL}",
                    "token_env": "ISSUING_TOKEN",
                    "path": "/api/v1/certificates",
                    "page_size": 40,
                    "timeout_s": 5,
                    "retries": 1,
                },
                "columns": COLUMNS,
                "cursor": "updated_at",
            }
        )
        env = {"ISSUING_URL": self.base_url, "ISSUING_TOKEN": TOKEN}
        return HttpConnector.from_source(source, chunk_rows=50, env=env)

    @staticmethod
    def _system(rows: pa.Table) -> pa.Table:
        return rows.rename_columns([COLUMNS.get(n, n) for n in rows.column_names])

    def load(self, rows: pa.Table) -> None:
        self.rows = rows
        self.api.replace(self._system(rows))

    def upsert(self, rows: pa.Table) -> None:
        self.api.upsert(self._system(rows))

    def drop_column(self, field: str) -> None:
        self.api.replace(self._system(self.rows).drop_columns([COLUMNS[field]]))

    def add_column(self, name: str) -> None:
        extra = pa.array(["x"] * self.rows.num_rows, pa.string())
        self.api.replace(self._system(self.rows).append_column(name, extra))

    def put_bad_value(self, field: str, row: int) -> None:
        values = self.rows.column(field).cast(pa.string()).to_pylist()
        values[row] = "not-a-value"
        index = self.rows.schema.get_field_index(field)
        changed = self.rows.set_column(index, field, pa.array(values, pa.string()))
        self.api.replace(self._system(changed))

    def make_unreachable(self) -> str | None:
        self.api.stop()
        self.base_url = f"http://127.0.0.1:{free_port()}"
        return TOKEN

    def close(self) -> None:
        self.api.stop()


class TestHttpConnectorSuite(ConnectorSuite):
    @pytest.fixture
    def harness(self) -> Iterator[ApiHarness]:
        harness = ApiHarness()
        try:
            yield harness
        finally:
            harness.close()
