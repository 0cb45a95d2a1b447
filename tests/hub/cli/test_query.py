"""``hub query --as SYSTEM``: a consumer system sees its grant's columns only, states a purpose,
and every query, allowed or refused, is in the access log with its SQL and snapshot."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from catalog.audit import AccessLog
from hub.context import HubContext
from hub.settings import get_settings
from schemas.contract import load_contract
from tests.support.commands import Hub, ok, refused, set_up


def _population(n: int, batch: str = "b1") -> pa.Table:
    schema = load_contract("population").published_schema()
    numbers = range(n)
    return pa.table(
        {
            "person_token": [f"tok-{i:08d}" for i in numbers],
            "name": ["张*"] * n,
            "gender": ["1" if i % 2 else "2" for i in numbers],
            "ethnicity": ["01"] * n,
            "birth_year": pa.array([1950 + i % 60 for i in numbers], pa.int32()),
            "division_code": ["110105"] * n,
            "address": ["北京市朝阳区"] * n,
            "mobile": ["138****8000"] * n,
            "registration_status": ["1"] * n,
            "updated_at": pa.array(
                [datetime(2026, 1, 1) + timedelta(seconds=i) for i in numbers], pa.timestamp("us")
            ),
            "_batch_id": [batch] * n,
        },
        schema=schema,
    )


def _grant_population(hub: Hub) -> str:
    set_up(hub)
    pending = ok(
        hub(
            "request",
            "population",
            "--system",
            "shebao-core",
            "--columns",
            "person_token,birth_year",
            "--purpose",
            "养老金资格认证",
            user="zhang.clerk",
        )
    )
    (request_id,) = re.findall(r"request (\d+): waiting", pending)
    approved = ok(hub("approve", request_id, "--as", "li.police"))
    (grant_id,) = re.findall(r"grant (\d+) gives", approved)
    return grant_id


def test_a_consumer_queries_its_grant_and_every_query_is_on_record(hub: Hub, tmp_path: Path) -> None:
    grant_id = _grant_population(hub)
    settings = get_settings()
    snapshot = HubContext(settings).tables.commit(load_contract("population"), _population(30), batch_id="b1")

    table = hub(
        "query",
        "SELECT * FROM population ORDER BY person_token",
        "--as",
        "shebao-core",
        "--purpose",
        "资格认证",
        "--format",
        "json",
    )
    rows = [json.loads(line) for line in ok(table).splitlines()]
    assert len(rows) == 30 and set(rows[0]) == {"person_token", "birth_year"}
    assert f"population snapshot {snapshot}" in table.stderr and "access-log entry" in table.stderr

    out = tmp_path / "result.parquet"
    ok(
        hub(
            "query",
            "SELECT count(*) AS n FROM population",
            "--as",
            "shebao-core",
            "--purpose",
            "统计",
            "--format",
            "parquet",
            "--out",
            str(out),
        )
    )
    assert pq.read_table(out).to_pylist() == [{"n": 30}]
    csv = ok(
        hub(
            "query",
            "SELECT birth_year FROM population WHERE birth_year = 1950",
            "--as",
            "shebao-core",
            "--purpose",
            "核对",
            "--format",
            "csv",
        )
    )
    assert csv.splitlines()[0].strip('"') == "birth_year" and len(csv.splitlines()) == 2
    assert pa.csv.read_csv(io.BytesIO(csv.encode())).num_rows == 1

    refused(
        hub("query", "SELECT name FROM population", "--as", "shebao-core", "--purpose", "x"),
        5,
        "name",
        "granted columns",
    )
    refused(
        hub("query", "SELECT * FROM read_csv('/etc/passwd')", "--as", "shebao-core", "--purpose", "x"),
        5,
        "read_csv",
    )
    refused(
        hub("query", "SELECT * FROM legal_entity", "--as", "shebao-core", "--purpose", "x"), 5, "not granted"
    )
    refused(hub("query", "SELECT * FROM population", "--as", "shebao-core"), 5, "purpose")
    refused(hub("query", "SELECT 1", "--as", "nobody", "--purpose", "x"), 5, "no system 'nobody'")

    ok(hub("revoke", grant_id, "--reason", "项目结束", "--as", "li.police"))
    refused(
        hub("query", "SELECT * FROM population", "--as", "shebao-core", "--purpose", "x"),
        5,
        "no active grant",
    )

    log = AccessLog(HubContext(settings).store)
    queries = [e for e in log.entries() if e["action"] == "query"]
    assert [e["outcome"] for e in queries] == ["allowed"] * 3 + ["denied"] * 5
    first = queries[0]
    assert first["system"] == "shebao-core" and first["dataset"] == "population" and first["rows"] == 30
    assert first["snapshot_id"] == snapshot and first["purpose"] == "资格认证"
    assert json.loads(first["columns"]) == ["population.person_token", "population.birth_year"]
    detail = json.loads(first["detail"] or "{}")
    assert detail["sql"].startswith("SELECT * FROM population") and detail["snapshots"] == {
        "population": snapshot
    }
    assert all(e["reason"] for e in queries[3:])
    assert log.verify().ok

    # the auditor re-runs the first query: the same rows, from the snapshot it read, although the
    # table has moved on and the grant is revoked
    HubContext(settings).tables.commit(load_contract("population"), _population(45, "b2"), batch_id="b2")
    ok(hub("people", "add", "zhao.audit", "--role", "auditor", "--as", "wang.hub"))
    refused(hub("audit", "replay", str(first["seq"]), "--as", "zhang.clerk"), 5, "not an auditor")
    replayed = ok(
        hub("audit", "replay", str(first["seq"]), "--as", "zhao.audit", "--out", str(tmp_path / "r.parquet"))
    )
    assert f"population snapshot {snapshot}: 30 rows, the same row count as logged" in " ".join(
        replayed.split()
    )
    assert pq.read_table(tmp_path / "r.parquet").column_names == ["person_token", "birth_year"]
    refused(hub("audit", "replay", str(queries[3]["seq"]), "--as", "zhao.audit"), 2, "only allowed queries")
    assert [e["action"] for e in log.entries()][-1] == "audit.replay"
