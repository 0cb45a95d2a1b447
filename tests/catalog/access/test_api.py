"""The consumers' HTTP API through FastAPI's TestClient, over a real hub home.

The module builds one hub: departments, systems and grants through the sharing workflow,
and the three shared datasets written by the pipeline's own masking, commit and
verification-index functions from raw rows whose identifiers and names are known here.
Every call is checked against the access log, and no raw identifier or name may reach it.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from catalog.metadata import MetadataStore
from catalog.sharing import CREDENTIAL_PATTERN
from hub.settings import HubSettings
from tests.support.sharing import HOUSING, SOCIAL, build_world

PEOPLE = {
    "11010519491231002X": "张三丰",
    "440524188001010014": "欧阳娜娜",
    "110105194912310029": "李四",
}
"""Identity number -> name of the registered people."""
ENTITIES = {"91110000600037341L": "北京国贸物业管理有限公司", "9144030071526726XG": "深圳市华强电子有限公司"}
CERTIFICATE = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
RAW_VALUES = [*PEOPLE, *PEOPLE.values(), *ENTITIES.values(), "13800138000"]
"""Values that must never appear in the access log (company codes and names are public)."""


def _raw(dataset: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Raw rows in a contract's canonical schema; fields not given get plausible fillers."""
    from schemas.contract import load_contract

    schema = load_contract(dataset).arrow_schema()
    filler: dict[pa.DataType, Any] = {
        pa.string(): "1",
        pa.date32(): date(2001, 5, 1),
        pa.timestamp("us"): datetime(2026, 1, 1, 8, 0),
        pa.decimal128(20, 4): Decimal("100.0000"),
    }
    columns = {f.name: pa.array([r.get(f.name, filler.get(f.type)) for r in rows], f.type) for f in schema}
    return pa.table(columns, schema=schema)


def register(settings: HubSettings, dataset: str, rows: pa.Table, batch_id: str) -> int:
    """What the pipeline's mask and register steps do with valid rows, minus the batch record."""
    from catalog.access import INDEX_NAMESPACE, IndexStager, register_staged
    from catalog.tables import SharedTables
    from masking.apply import mask_table
    from masking.keys import Keyring
    from schemas.contract import load_contract

    contract = load_contract(dataset)
    keyring = Keyring.load(settings.masking.keyring_path)
    tables = SharedTables.from_settings(settings.catalog)
    folder = settings.staging_dir / batch_id
    folder.mkdir(parents=True, exist_ok=True)
    stager = IndexStager(folder, dataset, keyring, mapping_days=settings.masking.token_mapping_days)
    stager.add(rows)
    stager.close()
    snapshot = tables.commit(
        contract, mask_table(rows, contract, keyring, batch_id=batch_id), batch_id=batch_id, mode="upsert"
    )
    assert settings.catalog.iceberg_url and settings.catalog.warehouse
    internal = SharedTables(
        settings.catalog.iceberg_url, settings.catalog.warehouse, namespace=INDEX_NAMESPACE
    )
    register_staged(folder, dataset, internal, batch_id=batch_id)
    return snapshot


@dataclass
class Hub:
    settings: HubSettings
    store: MetadataStore
    credentials: dict[str, str]
    grants: dict[str, int] = field(default_factory=dict)

    def headers(self, system: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials[system]}"}

    def entries(self) -> list[dict[str, Any]]:
        from catalog.audit import AccessLog

        return list(AccessLog(self.store).entries())


def _grants(hub: Hub) -> None:
    from catalog.metadata import utcnow
    from catalog.sharing import (
        add_system,
        approve_request,
        revoke_grant,
        revoke_system,
        submit_request,
    )

    store = hub.store
    for system, name, department in (
        ("expired-sys", "过期授权系统", SOCIAL),
        ("revoked-grant-sys", "撤销授权系统", SOCIAL),
        ("no-grant-sys", "无授权系统", HOUSING),
        ("gone-sys", "已注销系统", SOCIAL),
        ("limit-sys", "限流测试系统", SOCIAL),
    ):
        hub.credentials[system] = add_system(store, system, name, department, actor="wang.hub")[1]
    columns = ["person_token", "name", "gender", "birth_year", "registration_status"]

    def conditional(system: str, dataset: str, cols: list[str], actor: str, steward: str, **when: Any) -> int:
        request, _ = submit_request(
            store, dataset, system=system, purpose="养老保险待遇资格认证", columns=cols, actor=actor, **when
        )
        return approve_request(store, request.id, actor=steward, **when).id

    hub.grants["population"] = conditional("shebao-core", "population", columns, "zhang.clerk", "li.police")
    _, grant = submit_request(
        store, "legal_entity", system="shebao-core", purpose="参保单位核验", actor="zhang.clerk"
    )
    assert grant is not None
    hub.grants["legal_entity"] = grant.id
    hub.grants["certificate"] = conditional(
        "gjj-core", "certificate", ["certificate_id", "type_name", "status"], "sun.housing", "wang.hub"
    )
    past = utcnow() - timedelta(days=10)
    request, _ = submit_request(
        store,
        "population",
        system="expired-sys",
        purpose="历史核对",
        columns=columns,
        actor="zhang.clerk",
        days=1,
        now=past,
    )
    hub.grants["expired"] = approve_request(store, request.id, actor="li.police", now=past).id
    revoked = conditional("revoked-grant-sys", "population", columns, "zhang.clerk", "li.police")
    revoke_grant(store, revoked, actor="li.police", reason="用途已结束")
    hub.grants["revoked"] = revoked
    hub.grants["limit"] = conditional("limit-sys", "population", columns, "zhang.clerk", "li.police")
    revoke_system(store, "gone-sys", "系统下线", actor="wang.hub")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    from catalog.entries import Catalogue
    from hub.settings import get_settings
    from masking.keys import Keyring

    tmp = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUB_HOME", str(tmp / "hub"))
        patch.setenv("HUB_MASKING__KEYRING_PATH", str(tmp / "keys" / "keyring.json"))
        patch.delenv("HUB_SETTINGS_FILE", raising=False)
        get_settings.cache_clear()
        settings = get_settings()
        settings.ensure_home()
        Keyring.init(settings.masking.keyring_path)
        assert settings.catalog.metadata_url
        store = MetadataStore(settings.catalog.metadata_url)
        try:
            found = Hub(settings, store, build_world(store))
            _grants(found)
            people = [
                {
                    "id_number": k,
                    "name": n,
                    "gender": "1",
                    "birth_date": date(1949, 12, 31),
                    "division_code": "110105",
                    "address": "北京市朝阳区建国路1号",
                    "mobile": "13800138000",
                    "registration_status": "1",
                    "ethnicity": "01",
                }
                for k, n in PEOPLE.items()
            ]
            register(settings, "population", _raw("population", people), "b-population")
            entities = [
                {
                    "uscc": k,
                    "name": n,
                    "entity_type": "1100",
                    "legal_rep_name": "张三丰",
                    "legal_rep_id_number": "11010519491231002X",
                    "status": "存续",
                    "division_code": "110105",
                }
                for k, n in ENTITIES.items()
            ]
            register(settings, "legal_entity", _raw("legal_entity", entities), "b-legal")
            certificate = {
                "certificate_id": CERTIFICATE,
                "type_name": "营业执照",
                "holder_name": "张三丰",
                "holder_code": "11010519491231002X",
                "holder_code_type": "111",
                "status": "有效",
                "number": "11010519491231002X",
                "division_code": "110105",
            }
            register(settings, "certificate", _raw("certificate", [certificate]), "b-certificate")
            Catalogue(store).publish("population", by="li.police")
            yield found
        finally:
            store.dispose()
            get_settings.cache_clear()


def client_for(hub: Hub, **api: Any) -> TestClient:
    """A client of a fresh app (its own limits and caches) over the module's hub."""
    from catalog.access import create_app

    settings = hub.settings.model_copy(update={"api": hub.settings.api.model_copy(update=api)})
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(hub: Hub) -> Iterator[TestClient]:
    """A client whose limits the other tests never reach (those tests make their own)."""
    roomy = {
        f"{bucket}_{kind}": 10_000 for bucket in ("query", "verify", "catalog") for kind in ("rate", "burst")
    }
    with client_for(hub, enumeration_no_match=10_000, **roomy) as client:
        yield client


def assert_problem(response: Any, status: int, slug: str, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "instance"}
    assert body["type"] == f"urn:gov-data-hub:problem:{slug}" and body["status"] == status
    assert body["instance"].startswith("urn:uuid:")
    assert body["instance"].endswith(response.headers["x-request-id"][-12:])
    for needle in needles:
        assert needle in body["detail"], body["detail"]
    return dict(body)


def last_entry(hub: Hub) -> dict[str, Any]:
    return hub.entries()[-1]


def assert_clean_log(hub: Hub) -> None:
    text = json.dumps(hub.entries(), ensure_ascii=False, default=str)
    for value in RAW_VALUES:
        assert value not in text, f"{value} reached the access log"
    for secret in hub.credentials.values():
        # The secret half of hub_sys_<id>_<secret>; it may itself contain "_".
        match = CREDENTIAL_PATTERN.match(secret)
        assert match is not None and secret not in text and match.group(2) not in text


# -- the service --------------------------------------------------------------------------------


def test_openapi_docs_and_health_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/query", "/v1/verify", "/v1/catalog", "/v1/catalog/{dataset}", "/healthz"} <= set(
        spec["paths"]
    )
    assert any(s.get("scheme") == "bearer" for s in spec["components"]["securitySchemes"].values())
    assert "VerifyBody" in spec["components"]["schemas"] and "QueryBody" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "verification_indexes": {"population": "loaded", "legal_entity": "loaded", "certificate": "loaded"},
    }
    assert_problem(client.get("/v2/nothing"), 404, "not-found")


# -- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (None, "no credential"),
        ("Bearer ", "no credential"),
        ("Basic dXNlcjpwYXNz", "no credential"),
        ("Bearer not-a-credential", "not a hub system credential"),
        ("Bearer hub_sys_000000000000_" + "A" * 43, "000000000000 is not valid"),
    ],
)
def test_missing_or_wrong_credentials_are_refused_and_recorded(
    hub: Hub, client: TestClient, header: str | None, needle: str
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.post("/v1/verify", json={"kind": "person"}, headers=headers)
    assert_problem(response, 401, "unauthenticated", needle)
    assert response.headers["www-authenticate"].startswith("Bearer")
    entry = last_entry(hub)
    assert response.json()["access_log_entry"] == entry["seq"]
    assert (entry["action"], entry["outcome"], entry["client"]) == (
        "system.authenticate",
        "denied",
        "testclient",
    )
    assert needle in entry["reason"] and json.loads(entry["detail"])["path"] == "/v1/verify"
    assert_clean_log(hub)


def test_a_tampered_credential_and_a_revoked_system_are_refused(hub: Hub, client: TestClient) -> None:
    good = hub.credentials["shebao-core"]
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    response = client.get("/v1/catalog", headers={"Authorization": f"Bearer {tampered}"})
    assert_problem(response, 401, "unauthenticated", "is not valid (unknown, rotated or mistyped)")
    response = client.get("/v1/catalog", headers=hub.headers("gone-sys"))
    assert_problem(response, 401, "unauthenticated", "system gone-sys was revoked", "系统下线")
    entry = last_entry(hub)
    assert (entry["system"], entry["department"], entry["outcome"]) == ("gone-sys", SOCIAL, "denied")
    assert_clean_log(hub)


def test_a_revocation_or_rotation_is_refused_once_the_short_cache_expires(hub: Hub) -> None:
    from catalog.sharing import add_system, revoke_system, rotate_credential

    hub.credentials["cache-sys"] = add_system(hub.store, "cache-sys", "缓存测试", SOCIAL, actor="wang.hub")[1]
    hub.credentials["rotate-sys"] = add_system(hub.store, "rotate-sys", "轮换测试", SOCIAL, actor="wang.hub")[
        1
    ]
    with client_for(hub, auth_cache_seconds=0.5) as client:
        assert client.get("/v1/catalog", headers=hub.headers("cache-sys")).status_code == 200
        assert client.get("/v1/catalog", headers=hub.headers("rotate-sys")).status_code == 200
        revoke_system(hub.store, "cache-sys", "测试撤销", actor="wang.hub")
        old = hub.headers("rotate-sys")
        hub.credentials["rotate-sys"] = rotate_credential(hub.store, "rotate-sys", actor="wang.hub")
        # Within the documented cache time the earlier success may still be reused ...
        assert client.get("/v1/catalog", headers=hub.headers("cache-sys")).status_code in (200, 401)
        time.sleep(0.6)
        # ... and after it, never.
        assert_problem(client.get("/v1/catalog", headers=hub.headers("cache-sys")), 401, "unauthenticated")
        assert_problem(client.get("/v1/catalog", headers=old), 401, "unauthenticated", "rotated")
        assert client.get("/v1/catalog", headers=hub.headers("rotate-sys")).status_code == 200


# -- catalogue ------------------------------------------------------------------------------------


def test_catalogue_reads_list_published_entries_and_are_recorded(hub: Hub, client: TestClient) -> None:
    response = client.get("/v1/catalog", headers=hub.headers("gjj-core"))
    assert response.status_code == 200
    body = response.json()
    assert [e["dataset"] for e in body["entries"]] == ["population"]
    assert body["entries"][0]["status"] == "published"
    entry = last_entry(hub)
    assert body["access_log_entry"] == entry["seq"] == int(response.headers["x-hub-access-entry"])
    assert (entry["action"], entry["outcome"], entry["system"], entry["rows"]) == (
        "catalog.read",
        "allowed",
        "gjj-core",
        1,
    )
    one = client.get("/v1/catalog/population", headers=hub.headers("gjj-core"))
    assert one.status_code == 200 and one.json()["dataset"] == "population"
    assert last_entry(hub)["dataset"] == "population"
    for name in ("legal_entity", "no_such_dataset"):  # unpublished, unknown
        missing = client.get(f"/v1/catalog/{name}", headers=hub.headers("gjj-core"))
        assert_problem(missing, 404, "not-found", name)
        entry = last_entry(hub)
        assert (entry["action"], entry["outcome"], entry["dataset"]) == ("catalog.read", "denied", name)


# -- queries --------------------------------------------------------------------------------------


def test_a_query_returns_granted_rows_and_is_recorded_for_replay(hub: Hub, client: TestClient) -> None:
    sql = "SELECT person_token, name, birth_year FROM population ORDER BY birth_year, name"
    response = client.post(
        "/v1/query", json={"sql": sql, "purpose": "养老保险待遇资格认证"}, headers=hub.headers("shebao-core")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["row_count"] == 3 and not body["truncated"]
    assert [c["name"] for c in body["columns"]] == ["person_token", "name", "birth_year"]
    assert {r["name"] for r in body["rows"]} == {"张**", "欧阳**", "李*"}
    assert all(r["person_token"].startswith("k1_") for r in body["rows"])
    entry = last_entry(hub)
    assert body["access_log_entry"] == entry["seq"]
    assert (entry["action"], entry["outcome"], entry["system"], entry["department"]) == (
        "query",
        "allowed",
        "shebao-core",
        SOCIAL,
    )
    assert (entry["dataset"], entry["rows"], entry["purpose"], entry["client"]) == (
        "population",
        3,
        "养老保险待遇资格认证",
        "testclient",
    )
    assert "population.birth_year" in json.loads(entry["columns"])
    detail = json.loads(entry["detail"])
    assert detail["sql"] == sql and detail["snapshots"] == body["snapshots"]
    assert entry["snapshot_id"] == body["snapshots"]["population"]
    assert_clean_log(hub)


def test_csv_parquet_and_max_rows(hub: Hub, client: TestClient) -> None:
    sql = "SELECT person_token, birth_year FROM population ORDER BY person_token"
    csv = client.post(
        "/v1/query",
        json={"sql": sql, "purpose": "核对", "format": "csv", "max_rows": 2},
        headers=hub.headers("shebao-core"),
    )
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == '"person_token","birth_year"' and len(csv.text.splitlines()) == 3
    assert csv.headers["x-hub-truncated"] == "true" and csv.headers["x-hub-row-count"] == "2"
    parquet = client.post(
        "/v1/query",
        json={"sql": sql, "purpose": "核对", "format": "parquet"},
        headers=hub.headers("shebao-core"),
    )
    assert parquet.status_code == 200 and parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 3 and table.column_names == ["person_token", "birth_year"]
    assert last_entry(hub)["seq"] == int(parquet.headers["x-hub-access-entry"])


@pytest.mark.parametrize(
    ("system", "sql", "status", "slug", "needle"),
    [
        ("shebao-core", "SELECT mobile FROM population", 403, "query-refused", "mobile"),
        ("shebao-core", "SELECT * FROM certificate", 403, "query-refused", "not granted"),
        ("shebao-core", "SELECT * FROM read_csv('/etc/passwd')", 403, "query-refused", "read_csv"),
        ("shebao-core", "SELECT * FROM population, glob('/etc/*')", 403, "query-refused", "glob"),
        ("shebao-core", "ATTACH '/tmp/x.db' AS x", 403, "query-refused", "ATTACH"),
        ("shebao-core", "COPY population TO '/tmp/out.csv'", 403, "query-refused", "COPY"),
        ("shebao-core", "SELECT 1 FROM population; SELECT 2", 403, "query-refused", "one statement"),
        ("shebao-core", "SELECT * FROM main.population", 403, "query-refused", "qualified"),
        ("shebao-core", "SET enable_external_access = true", 403, "query-refused", "SET"),
        ("shebao-core", "SELEC * FROM population", 400, "invalid-sql", "does not parse"),
        ("expired-sys", "SELECT count(*) FROM population", 403, "query-refused", "no active grant"),
        ("revoked-grant-sys", "SELECT count(*) FROM population", 403, "query-refused", "no active grant"),
        ("no-grant-sys", "SELECT 1", 403, "query-refused", "no active grant"),
    ],
)
def test_refused_queries_are_problems_on_record(
    hub: Hub, client: TestClient, system: str, sql: str, status: int, slug: str, needle: str
) -> None:
    response = client.post("/v1/query", json={"sql": sql, "purpose": "核对"}, headers=hub.headers(system))
    body = assert_problem(response, status, slug, needle)
    entry = last_entry(hub)
    assert body["access_log_entry"] == entry["seq"]
    assert (entry["action"], entry["outcome"], entry["system"], entry["client"]) == (
        "query",
        "denied",
        system,
        "testclient",
    )
    assert needle in entry["reason"] and json.loads(entry["detail"])["sql"] == sql


def test_a_query_needs_a_purpose_and_a_valid_body(hub: Hub, client: TestClient) -> None:
    response = client.post(
        "/v1/query",
        json={"sql": "SELECT 1 FROM population", "purpose": "  "},
        headers=hub.headers("shebao-core"),
    )
    assert_problem(response, 400, "purpose-required", "purpose")
    assert (last_entry(hub)["outcome"], last_entry(hub)["action"]) == ("denied", "query")
    response = client.post("/v1/query", json={"sql": "SELECT 1"}, headers=hub.headers("shebao-core"))
    assert_problem(response, 400, "invalid-request", "purpose: Field required")
    entry = last_entry(hub)
    assert (entry["action"], entry["outcome"], entry["system"]) == ("query", "denied", "shebao-core")
    response = client.post(
        "/v1/query",
        content=b"{not json",
        headers={**hub.headers("shebao-core"), "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid-request")


def test_a_runaway_query_is_stopped_at_the_time_limit(hub: Hub) -> None:
    slow = (
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100000000000) "
        "SELECT count(*) FROM r, population"
    )
    with client_for(hub, query_seconds=0.5) as client:
        response = client.post(
            "/v1/query", json={"sql": slow, "purpose": "核对"}, headers=hub.headers("shebao-core")
        )
    assert_problem(response, 422, "query-time-limit", "longer than the limit of 0.5 s")
    assert last_entry(hub)["outcome"] == "denied"


# -- verification --------------------------------------------------------------------------------


def verify(client: TestClient, hub: Hub, system: str = "shebao-core", **body: Any) -> Any:
    body.setdefault("purpose", "养老保险待遇资格认证")
    return client.post("/v1/verify", json=body, headers=hub.headers(system))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"kind": "person", "id_number": "11010519491231002X", "name": "张三丰"}, True),
        ({"kind": "person", "id_number": "11010519491231002x", "name": " 张 三丰 "}, True),  # normalised
        (
            {"kind": "person", "id_number": "１１０１０５１９４９１２３１００２Ｘ", "name": "张三丰"},
            True,
        ),  # full width
        ({"kind": "person", "id_number": "11010519491231002X", "name": "张三"}, False),
        ({"kind": "person", "id_number": "440524188001010014", "name": "欧阳娜娜"}, True),
        ({"kind": "person", "id_number": "440524188001010022", "name": "欧阳娜娜"}, False),  # unknown number
        ({"kind": "legal_entity", "uscc": "91110000600037341L", "name": "北京国贸物业管理有限公司"}, True),
        ({"kind": "legal_entity", "uscc": "91110000600037341L", "name": "深圳市华强电子有限公司"}, False),
        ({"kind": "legal_entity", "uscc": "91310115MA1K3BTP2B", "name": "北京国贸物业管理有限公司"}, False),
        ({"kind": "certificate", "certificate_id": CERTIFICATE}, True),
        ({"kind": "certificate", "certificate_id": CERTIFICATE, "name": "张三丰"}, True),
        ({"kind": "certificate", "certificate_id": CERTIFICATE, "name": "李四"}, False),
        ({"kind": "certificate", "certificate_id": CERTIFICATE.replace("2430599", "2430598")}, False),
    ],
)
def test_verify_answers_match_or_no_match_for_each_kind(
    hub: Hub, client: TestClient, body: dict[str, Any], match: bool
) -> None:
    response = verify(client, hub, "gjj-core", **body)
    assert response.status_code == 200, response.text
    assert response.json() == {"match": match}
    entry = last_entry(hub)
    assert int(response.headers["x-hub-access-entry"]) == entry["seq"]
    detail = json.loads(entry["detail"])
    assert (entry["action"], entry["outcome"], entry["system"], entry["department"]) == (
        "verify",
        "allowed",
        "gjj-core",
        HOUSING,
    )
    assert (entry["purpose"], entry["rows"], entry["client"]) == ("养老保险待遇资格认证", 0, "testclient")
    assert (detail["kind"], detail["match"]) == (body["kind"], match)
    assert detail["subject"].startswith("k1_") and entry["snapshot_id"] == detail["index_snapshot"]
    assert_clean_log(hub)


def test_verify_returns_granted_fields_of_the_one_record(hub: Hub, client: TestClient) -> None:
    response = verify(
        client,
        hub,
        kind="person",
        id_number="11010519491231002X",
        name="张三丰",
        fields=["name", "birth_year", "registration_status"],
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "match": True,
        "fields": {"name": "张**", "birth_year": 1949, "registration_status": "1"},
    }
    entry = last_entry(hub)
    assert json.loads(entry["columns"]) == ["name", "birth_year", "registration_status"]
    assert entry["rows"] == 1 and json.loads(entry["detail"])["grant"] == hub.grants["population"]
    # no match: no fields, nothing read
    response = verify(
        client, hub, kind="person", id_number="11010519491231002X", name="张三", fields=["name"]
    )
    assert response.json() == {"match": False}
    assert last_entry(hub)["rows"] == 0
    # certificates, under another system's grant
    response = verify(
        client, hub, "gjj-core", kind="certificate", certificate_id=CERTIFICATE, fields=["status"]
    )
    assert response.json() == {"match": True, "fields": {"status": "有效"}}
    # an unconditional grant: a company's public code is kept, its fields are there
    response = verify(
        client,
        hub,
        kind="legal_entity",
        uscc="91110000600037341L",
        name="北京国贸物业管理有限公司",
        fields=["entity_type", "status"],
    )
    assert response.json() == {"match": True, "fields": {"entity_type": "1100", "status": "存续"}}
    assert_clean_log(hub)


@pytest.mark.parametrize(
    ("system", "body", "needle"),
    [
        ("shebao-core", {"fields": ["mobile"]}, "does not include mobile"),
        ("gjj-core", {"fields": ["name"]}, "has no grant for dataset population"),
        ("expired-sys", {"fields": ["name"]}, "was expired on"),
        ("revoked-grant-sys", {"fields": ["name"]}, "was revoked on"),
    ],
)
def test_fields_outside_an_active_grant_are_refused(
    hub: Hub, client: TestClient, system: str, body: dict[str, Any], needle: str
) -> None:
    response = verify(
        client, hub, system, kind="person", id_number="11010519491231002X", name="张三丰", **body
    )
    assert_problem(response, 403, "fields-not-granted", needle)
    entry = last_entry(hub)
    assert (entry["action"], entry["outcome"], entry["system"], entry["dataset"]) == (
        "verify",
        "denied",
        system,
        "population",
    )
    assert needle in entry["reason"]


@pytest.mark.parametrize(
    ("body", "status", "slug", "needle"),
    [
        (
            {"kind": "person", "id_number": "11010519491231002X", "name": "张三丰", "purpose": ""},
            400,
            "purpose-required",
            "purpose",
        ),
        ({"kind": "person", "id_number": "11010519491231002X"}, 400, "invalid-request", "name is required"),
        (
            {"kind": "person", "uscc": "91110000600037341L", "name": "x"},
            400,
            "invalid-request",
            "id_number only",
        ),
        ({"kind": "person", "id_number": "1101051949", "name": "张三丰"}, 400, "invalid-request", "GB 11643"),
        (
            {"kind": "person", "id_number": ["11010519491231002X", "440524188001010014"], "name": "张三丰"},
            400,
            "invalid-request",
            "id_number",
        ),
        (
            {"kind": "people", "id_number": "11010519491231002X", "name": "张三丰"},
            400,
            "invalid-request",
            "kind",
        ),
        (
            {"kind": "person", "id_number": "11010519491231002X", "name": "张三丰", "limit": 1000},
            400,
            "invalid-request",
            "limit",
        ),
    ],
)
def test_invalid_verifications_are_refused_without_echoing_values(
    hub: Hub, client: TestClient, body: dict[str, Any], status: int, slug: str, needle: str
) -> None:
    response = verify(client, hub, **body)
    assert_problem(response, status, slug, needle)
    assert "11010519491231002X" not in response.text and "张三丰" not in response.text
    entry = last_entry(hub)
    assert (entry["action"], entry["outcome"], entry["system"]) == ("verify", "denied", "shebao-core")
    assert_clean_log(hub)


def test_too_many_no_match_answers_start_a_cool_down(hub: Hub) -> None:
    with client_for(hub, enumeration_no_match=3, enumeration_cooldown_seconds=120) as client:
        for number in ("440524188001010022", "440524188001010030", "440524188001010049"):
            assert verify(client, hub, kind="person", id_number=number, name="欧阳娜娜").json() == {
                "match": False
            }
        refused = verify(client, hub, kind="person", id_number="11010519491231002X", name="张三丰")
        body = assert_problem(refused, 429, "enumeration-suspected", "enumeration suspected", "3 no-match")
        assert 115 <= int(refused.headers["retry-after"]) <= 120
        entry = last_entry(hub)
        assert body["access_log_entry"] == entry["seq"]
        assert (entry["action"], entry["outcome"]) == ("verify", "denied")
        assert entry["reason"].startswith("enumeration suspected")
        # the cool-down holds even for a perfectly good request, and for every kind
        again = verify(
            client, hub, kind="legal_entity", uscc="91110000600037341L", name="北京国贸物业管理有限公司"
        )
        assert_problem(again, 429, "enumeration-suspected")
        # other systems are not affected
        assert verify(client, hub, "gjj-core", kind="certificate", certificate_id=CERTIFICATE).json() == {
            "match": True
        }


def test_sequentially_close_identity_numbers_start_a_cool_down(hub: Hub) -> None:
    with client_for(hub, enumeration_close=3) as client:
        prefix = "11010519491231"  # the same county and birth date: only the sequence differs
        for tail in ("002X", "0029", "0037"):
            assert (
                verify(client, hub, kind="person", id_number=prefix + tail, name="张三丰").status_code == 200
            )
        # the same number again is not a new one
        assert verify(client, hub, kind="person", id_number=prefix + "002X", name="张三丰").status_code == 200
        refused = verify(client, hub, kind="person", id_number=prefix + "0045", name="张三丰")
        assert_problem(refused, 429, "enumeration-suspected", "sharing their first 14 characters")
        assert last_entry(hub)["reason"].startswith("enumeration suspected")


def test_the_rate_limit_answers_429_with_retry_after(hub: Hub) -> None:
    with client_for(hub, verify_rate=0.5, verify_burst=2, query_rate=0.5, query_burst=1) as client:
        for _ in range(2):
            assert (
                verify(client, hub, "limit-sys", kind="certificate", certificate_id=CERTIFICATE).status_code
                == 200
            )
        refused = verify(client, hub, "limit-sys", kind="certificate", certificate_id=CERTIFICATE)
        assert_problem(refused, 429, "rate-limited", "limit-sys", "0.5 requests/s")
        assert refused.headers["retry-after"] == "2"
        entry = last_entry(hub)
        assert (entry["action"], entry["outcome"], entry["system"]) == ("verify", "denied", "limit-sys")
        # buckets are per endpoint and per system
        query = {"sql": "SELECT count(*) AS n FROM population", "purpose": "核对"}
        assert client.post("/v1/query", json=query, headers=hub.headers("limit-sys")).status_code == 200
        assert_problem(
            client.post("/v1/query", json=query, headers=hub.headers("limit-sys")), 429, "rate-limited"
        )
        assert (
            verify(client, hub, "gjj-core", kind="certificate", certificate_id=CERTIFICATE).status_code == 200
        )


def test_every_call_appends_exactly_one_entry(hub: Hub, client: TestClient) -> None:
    calls = [
        lambda: client.get("/v1/catalog", headers=hub.headers("gjj-core")),
        lambda: client.get("/v1/catalog/legal_entity", headers=hub.headers("gjj-core")),
        lambda: client.get("/v1/catalog"),
        lambda: client.post(
            "/v1/query",
            json={"sql": "SELECT 1 FROM population", "purpose": "x"},
            headers=hub.headers("shebao-core"),
        ),
        lambda: client.post(
            "/v1/query",
            json={"sql": "SELECT name FROM certificate", "purpose": "x"},
            headers=hub.headers("shebao-core"),
        ),
        lambda: verify(client, hub, kind="person", id_number="110105194912310029", name="李四"),
        lambda: verify(
            client, hub, kind="person", id_number="110105194912310029", name="李四", fields=["mobile"]
        ),
        lambda: verify(client, hub, kind="person", id_number="110105194912310029"),
    ]
    for call in calls:
        before = len(hub.entries())
        response = call()
        entries = hub.entries()
        assert len(entries) == before + 1, response.text
        header = response.headers.get("x-hub-access-entry")
        number = int(header) if header else response.json()["access_log_entry"]
        assert number == entries[-1]["seq"]


def test_the_index_follows_new_batches_while_serving(hub: Hub) -> None:
    newcomer = {
        "id_number": "110105200001010016",
        "name": "王小明",
        "gender": "1",
        "birth_date": date(2000, 1, 1),
        "division_code": "110105",
        "registration_status": "1",
    }
    with client_for(hub, index_reload_seconds=0.2) as client:
        ask = {"kind": "person", "id_number": newcomer["id_number"], "name": "王小明"}
        assert verify(client, hub, "gjj-core", **ask).json() == {"match": False}
        register(hub.settings, "population", _raw("population", [newcomer]), "b-newcomer")
        deadline = time.monotonic() + 20
        while verify(client, hub, "gjj-core", **ask).json() != {"match": True}:
            assert time.monotonic() < deadline, "the new batch never reached the served index"
            time.sleep(0.2)
        assert verify(
            client, hub, "gjj-core", kind="person", id_number="11010519491231002X", name="张三丰"
        ).json()["match"]


def test_the_server_refuses_to_start_without_a_keyring(hub: Hub, tmp_path: Path) -> None:
    from catalog.access import create_app
    from schemas.errors import ConfigurationError

    settings = hub.settings.model_copy(
        update={"masking": hub.settings.masking.model_copy(update={"keyring_path": tmp_path / "none.json"})}
    )
    with pytest.raises(ConfigurationError, match="keyring"):
        create_app(settings)


def test_the_writer_appender_commits_every_entry_once_in_order_of_hand_in(tmp_path: Path) -> None:
    import threading

    from catalog.audit import AccessLog, GroupAppender, load_keys
    from masking.keys import Keyring

    keyring_path = tmp_path / "keys" / "keyring.json"
    Keyring.init(keyring_path)
    store = MetadataStore(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        log = AccessLog(store, keys=load_keys(keyring_path), checkpoint_every=50, retention_days=180)
        appender = GroupAppender(log)
        numbers: list[int] = []
        lock = threading.Lock()

        def work(worker: int) -> None:
            for i in range(25):
                number = appender.append(action="verify", outcome="allowed", system=f"s{worker}", rows=i)
                with lock:
                    numbers.append(number)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        appender.close()
        assert sorted(numbers) == list(range(1, 201))  # each committed once, numbers without gaps
        assert log.verify().ok and len(log.checkpoints()) == 4
        with pytest.raises(RuntimeError, match="closed"):
            appender.append(action="verify", outcome="allowed")
    finally:
        store.dispose()
