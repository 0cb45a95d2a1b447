"""The certificate issuing system's HTTP server, and the HTTP connector against it over the network:
protocol, auth, retries on injected 503s and timeouts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pyarrow as pa
import pytest

from connectors.errors import SourceUnreachableError
from connectors.http import HttpConnector, SourceAccessDeniedError
from connectors.simulator.issuing_api import PATH, IssuingApi
from schemas.contract import load_contract
from schemas.errors import AccessDeniedError, TransientError

TOKEN = "integration-token-77d1"
CONTRACT = load_contract("certificate")
COLUMNS = {
    "certificate_id": "certificateId", "type_name": "typeName", "type_code": "typeCode",
    "holder_name": "holderName", "holder_code": "holderCode", "holder_code_type": "holderCodeType",
    "issuer_name": "issuerName", "issuer_code": "issuerCode", "issue_date": "issueDate",
    "valid_from": "validFrom", "valid_until": "validUntil", "division_code": "divisionCode",
    "updated_at": "updatedAt",
}  # fmt: skip


def records(n: int, *, start: int = 0, day: int = 1) -> pa.Table:
    ids = range(start, start + n)
    return pa.table(
        {
            "certificateId": [f"C{i:05d}" for i in ids],
            "typeName": ["营业执照"] * n,
            "typeCode": ["11100000000013338W032"] * n,
            "number": [f"No.{i}" for i in ids],
            "holderName": ["张三"] * n,
            "holderCode": ["11010519491231002X"] * n,
            "holderCodeType": ["111"] * n,
            "issuerName": ["市场监督管理局"] * n,
            "issuerCode": ["11220000013544541J"] * n,
            "issueDate": [dt.date(2020, 1, 2)] * n,
            "validFrom": [dt.date(2020, 1, 2)] * n,
            "validUntil": [None] * n,
            "divisionCode": ["110105"] * n,
            "status": ["有效"] * n,
            # several records share each instant, so ordering must fall back to the identifier
            "updatedAt": [dt.datetime(2025, 1, day, 8) + dt.timedelta(minutes=i // 3) for i in ids],
        }
    )


@pytest.fixture
def api() -> Iterator[IssuingApi]:
    server = IssuingApi(records(25), token=TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def get(api: IssuingApi, token: str | None = TOKEN, **params: str | int) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{api.base_url}{PATH}", params=params, headers=headers, timeout=10)


def connector(api: IssuingApi, **options: object) -> HttpConnector:
    settings: dict[str, object] = {
        "path": PATH, "token": TOKEN, "columns": COLUMNS, "cursor": "updated_at",
        "page_size": 10, "chunk_rows": 1_000, "retries": 3, "backoff_s": 0.01,
    }  # fmt: skip
    settings.update(options)
    assert api.base_url is not None
    return HttpConnector("certificate_api", api.base_url, CONTRACT, **settings)  # type: ignore[arg-type]


def test_requests_without_or_with_a_wrong_token_get_401(api: IssuingApi) -> None:
    assert get(api, token=None).status_code == 401
    assert get(api, token="wrong").status_code == 401
    assert get(api).status_code == 200


def test_pages_follow_updated_at_then_identifier_and_filter_by_updated_after(api: IssuingApi) -> None:
    seen: list[dict[str, object]] = []
    token: str | None = None
    while True:
        body = (get(api, page_size=7, page_token=token) if token else get(api, page_size=7)).json()
        seen += body["records"]
        token = body["next_page_token"]
        if token is None:
            break
    keys = [(r["updatedAt"], r["certificateId"]) for r in seen]
    assert keys == sorted(keys) and len(keys) == 25
    after = get(api, updated_after="2025-01-01T08:03:00").json()["records"]
    assert {r["certificateId"] for r in after} == {f"C{i:05d}" for i in range(12, 25)}
    assert get(api, page_size=0).status_code == 422


def test_a_change_while_paging_does_not_repeat_or_skip_unread_records(api: IssuingApi) -> None:
    first = get(api, page_size=10).json()
    api.upsert(records(1, start=2, day=2))  # C00002 (already read) moves to the end
    rest = get(api, page_size=100, page_token=first["next_page_token"]).json()["records"]
    ids = [r["certificateId"] for r in first["records"] + rest]
    assert len(ids) == 26 and ids[-1] == "C00002"
    assert sorted(set(ids)) == [f"C{i:05d}" for i in range(25)]


def test_the_connector_reads_everything_then_only_changes(api: IssuingApi) -> None:
    conn = connector(api)
    conn.check()
    table = pa.Table.from_batches(list(conn.read(since=None)))
    assert table.num_rows == 25 and table.column("number").to_pylist()[0] == "No.0"
    mark = conn.watermark
    assert mark == "2025-01-01T08:08:00"
    api.upsert(records(3, start=30, day=2))
    again = pa.Table.from_batches(list(conn.read(since=mark)))
    assert again.column("certificate_id").to_pylist() == ["C00030", "C00031", "C00032"]


def test_injected_503s_are_retried_and_the_read_completes(api: IssuingApi) -> None:
    api.fail_next(2)
    before = api.requests
    table = pa.Table.from_batches(list(connector(api).read(since=None)))
    assert table.num_rows == 25
    assert api.requests - before == 2 + 3  # two refused, then three pages


def test_a_timeout_is_retried(api: IssuingApi) -> None:
    api.delay_next(1, 1.5)
    table = pa.Table.from_batches(list(connector(api, timeout_s=0.3).read(since=None)))
    assert table.num_rows == 25


def test_503s_beyond_the_retries_are_transient(api: IssuingApi) -> None:
    api.fail_next(10)
    with pytest.raises(TransientError) as caught:
        connector(api, retries=2).check()
    assert isinstance(caught.value, SourceUnreachableError)
    assert "certificate_api" in str(caught.value) and "HTTP 503" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_wrong_token_is_a_clear_access_error(api: IssuingApi) -> None:
    with pytest.raises(AccessDeniedError) as caught:
        connector(api, token="not-the-token").check()
    assert isinstance(caught.value, SourceAccessDeniedError)
    message = str(caught.value)
    assert "certificate_api" in message and "HTTP 401" in message and PATH in message
    assert "not-the-token" not in message and TOKEN not in message


def test_a_stopped_server_is_transient(api: IssuingApi) -> None:
    conn = connector(api, retries=1)
    api.stop()
    with pytest.raises(SourceUnreachableError, match="certificate_api"):
        conn.check()
