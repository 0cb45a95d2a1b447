"""The HTTP API connector over an in-memory transport: paging, mapping, retries, errors, secrets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pyarrow as pa
import pytest

from connectors import http as http_module
from connectors.base import ERRORS_COLUMN
from connectors.config import SourceConfig
from connectors.errors import SourceConfigError, SourceSchemaError, SourceUnreachableError
from connectors.http import HttpConnector, SourceAccessDeniedError, SourceRequestError, SourceResponseError
from schemas.contract import load_contract
from schemas.errors import AccessDeniedError, ConfigurationError, ContractError, FatalError, TransientError

CONTRACT = load_contract("population")
TOKEN = "unit-secret-token-51c"
BASE = "http://registry.example:8080"
COLUMNS = {"id_number": "sfzh", "name": "xm"}


def record(i: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "sfzh": f"11010519491231{i:04d}",
        "xm": "张三",
        "gender": "1",
        "ethnicity": "01",
        "birth_date": "1949-12-31",
        "division_code": "110105",
        "address": None,
        "mobile": None,
        "registration_status": "1",
        "updated_at": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}",
    }
    row.update(changes)
    return row


class FakeApi:
    """Pages ``records`` like the issuing system; ``answers`` (status codes or exceptions)
    are used up first, one per request."""

    def __init__(
        self, records: list[dict[str, object]], answers: list[int | Exception] | None = None
    ) -> None:
        self.records = records
        self.answers = list(answers or [])
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return httpx.Response(answer, json={"error": "scripted"})
        params = request.url.params
        size = int(params["page_size"])
        after = params.get("updated_after")
        rows = [r for r in self.records if after is None or str(r["updated_at"]) > after]
        start = int(params.get("page_token", "0"))
        page = rows[start : start + size]
        more = start + size < len(rows)
        return httpx.Response(
            200, json={"records": page, "next_page_token": str(start + size) if more else None}
        )


def connector(api: Callable[[httpx.Request], httpx.Response], **options: Any) -> HttpConnector:
    settings: dict[str, Any] = {
        "path": "/api/v1/people",
        "token": TOKEN,
        "columns": COLUMNS,
        "cursor": "updated_at",
        "page_size": 4,
        "chunk_rows": 5,
        "retries": 2,
        "backoff_s": 0.0,
        "transport": httpx.MockTransport(api),
    }
    settings.update(options)
    return HttpConnector("registry_api", BASE, CONTRACT, **settings)


def read(conn: HttpConnector, since: str | None = None) -> list[pa.RecordBatch]:
    return list(conn.read(since=since))


def test_pages_are_mapped_regrouped_into_chunks_and_sent_with_the_token() -> None:
    api = FakeApi([record(i) for i in range(11)])
    conn = connector(api)
    batches = read(conn)
    assert [b.num_rows for b in batches] == [5, 5, 1]
    table = pa.Table.from_batches(batches)
    assert table.column("id_number").to_pylist() == [f"11010519491231{i:04d}" for i in range(11)]
    assert set(table.column("name").to_pylist()) == {"张三"}
    assert table.column(ERRORS_COLUMN).null_count == 11
    assert conn.watermark == "2025-01-01T00:00:10"
    assert len(api.requests) == 3  # pages of 4, 4, 3
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in api.requests)
    assert all(r.url.path == "/api/v1/people" for r in api.requests)


def test_incremental_read_sends_the_watermark_and_keeps_it_when_nothing_came() -> None:
    api = FakeApi([record(i) for i in range(6)])
    conn = connector(api)
    assert sum(b.num_rows for b in read(conn, since="2025-01-01T00:00:03")) == 2
    assert api.requests[0].url.params["updated_after"] == "2025-01-01T00:00:03"
    assert conn.watermark == "2025-01-01T00:00:05"
    assert read(conn, since="2025-01-01T00:00:05") == []
    assert conn.watermark == "2025-01-01T00:00:05"


def test_a_value_that_does_not_convert_flags_its_row() -> None:
    api = FakeApi([record(0), record(1, birth_date="31/12/1949"), record(2)])
    (batch,) = read(connector(api))
    assert batch.column(ERRORS_COLUMN).to_pylist() == [None, ["birth_date"], None]
    assert batch.column("birth_date").to_pylist()[1] is None


def test_a_key_no_record_carries_fails_naming_it_and_a_key_some_omit_is_null() -> None:
    rows = [record(i) for i in range(3)]
    del rows[1]["address"]
    (batch,) = read(connector(FakeApi(rows)))
    assert batch.column("address").to_pylist() == [None, None, None]

    gone = [{k: v for k, v in record(i).items() if k != "xm"} for i in range(3)]
    with pytest.raises(SourceSchemaError) as caught:
        connector(FakeApi(gone)).check()
    assert "xm (for field name)" in str(caught.value) and "registry_api" in str(caught.value)
    with pytest.raises(ContractError):
        read(connector(FakeApi(gone)))


def test_a_new_key_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    read(connector(FakeApi([record(0, hjlx="x")])))
    assert "hjlx" in caplog.text


def test_5xx_timeouts_and_lost_connections_are_retried_with_doubling_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(http_module.time, "sleep", pauses.append)
    answers: list[int | Exception] = [503, httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), 429]
    api = FakeApi([record(0)], answers)
    batches = read(connector(api, retries=4, backoff_s=0.25))
    assert sum(b.num_rows for b in batches) == 1
    assert pauses == [0.25, 0.5, 1.0, 2.0]
    assert len(api.requests) == 5


def test_backoff_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(http_module.time, "sleep", pauses.append)
    with pytest.raises(SourceUnreachableError):
        read(connector(FakeApi([], [500] * 9), retries=8, backoff_s=1.0))
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_persistent_5xx_is_transient_naming_source_url_and_status() -> None:
    api = FakeApi([record(0)], [502, 502, 502])
    with pytest.raises(TransientError) as caught:
        read(connector(api))
    message = str(caught.value)
    assert isinstance(caught.value, SourceUnreachableError)
    assert "registry_api" in message and "HTTP 502" in message and "3 attempts" in message
    assert f"{BASE}/api/v1/people" in message
    assert TOKEN not in message


def test_401_and_403_are_access_errors_without_retry_or_token() -> None:
    for status in (401, 403):
        api = FakeApi([record(0)], [status])
        with pytest.raises(AccessDeniedError) as caught:
            connector(api).check()
        assert isinstance(caught.value, SourceAccessDeniedError)
        assert caught.value.status == status
        assert f"HTTP {status}" in str(caught.value) and "registry_api" in str(caught.value)
        assert TOKEN not in str(caught.value)
        assert len(api.requests) == 1


def test_other_4xx_is_fatal_without_retry() -> None:
    api = FakeApi([record(0)], [404])
    with pytest.raises(FatalError) as caught:
        read(connector(api))
    assert isinstance(caught.value, SourceRequestError)
    assert "HTTP 404 (scripted)" in str(caught.value)
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b'{"items": []}',
        b'{"records": [1, 2]}',
        b'{"records": [], "next_page_token": 3}',
    ],
)
def test_an_answer_outside_the_protocol_is_a_contract_error(body: bytes) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    with pytest.raises(SourceResponseError) as caught:
        read(connector(api))
    assert "registry_api" in str(caught.value) and "page 1" in str(caught.value)


def test_a_repeated_page_token_stops_the_read() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"records": [record(0)], "next_page_token": "same"})

    with pytest.raises(SourceResponseError, match="same next_page_token"):
        read(connector(api))


def test_the_token_is_never_in_repr_or_vars() -> None:
    conn = connector(FakeApi([]))
    assert TOKEN not in repr(conn)
    assert TOKEN not in repr(vars(conn))
    assert TOKEN not in str(vars(conn))


def source(connector_settings: dict[str, Any], **extra: Any) -> SourceConfig:
    return SourceConfig.model_validate(
        {
            "name": "registry_api",
            "department": {"code": "11000000000013338W", "name": "公安厅"},
            "dataset": "population",
            "connector": {"kind": "http", "path": "/api/v1/people", **connector_settings},
            "columns": COLUMNS,
            "cursor": "updated_at",
            **extra,
        }
    )


def test_from_source_expands_the_url_and_reads_the_token_variable() -> None:
    config = source({"url": "${API_BASE}/v2", "token_env": "API_TOKEN", "page_size": 7, "retries": 1})
    conn = HttpConnector.from_source(config, chunk_rows=1_000, env={"API_BASE": BASE, "API_TOKEN": TOKEN})
    assert conn.url == f"{BASE}/v2/api/v1/people"
    assert (conn.page_size, conn.retries, conn.chunk_rows, conn.cursor) == (7, 1, 1_000, "updated_at")
    assert conn.client.headers["Authorization"] == f"Bearer {TOKEN}"


def test_from_source_without_the_token_variable_names_it_not_a_value() -> None:
    config = source({"url": BASE, "token_env": "API_TOKEN"})
    with pytest.raises(ConfigurationError, match="API_TOKEN"):
        HttpConnector.from_source(config, chunk_rows=1_000, env={})


def test_a_url_with_credentials_gives_the_token_and_loses_them() -> None:
    config = source({"url_env": "API_URL"})
    conn = HttpConnector.from_source(
        config, chunk_rows=1_000, env={"API_URL": f"http://hub:{TOKEN}@registry.example:8080"}
    )
    assert conn.url == f"{BASE}/api/v1/people"
    assert conn.client.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(conn)


def test_a_source_of_another_kind_or_an_unknown_field_is_refused() -> None:
    files = SourceConfig.model_validate(
        {
            "name": "drop",
            "department": {"code": "1", "name": "d"},
            "dataset": "population",
            "connector": {"kind": "file", "folder": "/tmp"},
        }
    )
    with pytest.raises(SourceConfigError):
        HttpConnector.from_source(files, chunk_rows=1_000)
    with pytest.raises(SourceConfigError, match="no_such_field"):
        HttpConnector("x", BASE, CONTRACT, columns={"no_such_field": "a"})


def test_json_numbers_and_codes_map_through_values() -> None:
    api = FakeApi([record(0, gender="男"), record(1, gender="女", registration_status=1)])
    (batch,) = read(connector(api, values={"gender": {"男": "1", "女": "2"}}))
    assert batch.column("gender").to_pylist() == ["1", "2"]
    assert batch.column("registration_status").to_pylist() == ["1", "1"]
    assert json.dumps(batch.column(ERRORS_COLUMN).to_pylist()) == "[null, null]"


def test_an_http_source_without_its_url_names_the_source_and_variable() -> None:
    from connectors.config import get_source
    from connectors.errors import SourceConfigError
    from connectors.http import HttpConnector

    with pytest.raises(SourceConfigError, match=r"'certificate_api'.*HUB_SOURCE_CERTIFICATE_API_URL"):
        HttpConnector.from_source(get_source("certificate_api"), chunk_rows=1_000, env={})
