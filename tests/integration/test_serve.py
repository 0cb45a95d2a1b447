"""``hub serve`` as a separate process, over the shared tables of a real pipeline run.

A small population batch goes through every step (extract, validate, mask, register), so
its verification index is the one the pipeline built; the server is then started on a free
port and called over HTTP like a department system would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.context import HubContext
from tests.conftest import free_port

pytestmark = pytest.mark.integration

HUB = str(Path(sys.executable).with_name("hub"))


def _env(home: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    values.update(
        HUB_HOME=os.environ["HUB_HOME"],
        HUB_MASKING__KEYRING_PATH=os.environ["HUB_MASKING__KEYRING_PATH"],
        COLUMNS="200",
    )
    return values


def _registered_person(settings: Any) -> tuple[str, str, str]:
    """A person of the simulated registry that the batch registered: (id number, name, token)."""
    import sqlite3

    import pyarrow as pa

    from catalog.tables import QueryEngine
    from masking.keys import Keyring
    from masking.rules import token

    shared = set(
        QueryEngine(HubContext(settings).tables)
        .run("SELECT person_token FROM population")
        .column(0)
        .to_pylist()
    )
    key = Keyring.load(settings.masking.keyring_path).current_key("token")
    with sqlite3.connect(settings.home / "sources" / "population.db") as connection:
        rows = connection.execute(
            "SELECT id_number, name FROM population_registry ORDER BY id_number"
        ).fetchall()
    for id_number, name in rows:
        if id_number and name:
            tok = token(pa.array([id_number]), key)[0].as_py()
            if tok in shared:
                return id_number, name, tok
    raise AssertionError("no registered person found")


@pytest.fixture
def served(hub_home: Path) -> Iterator[dict[str, Any]]:
    from catalog.sharing import approve_request, submit_request
    from hub import pipeline
    from hub.settings import get_settings
    from hub.simulate import simulate
    from masking.keys import Keyring
    from tests.support.sharing import build_world

    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)
    simulate(HubContext(settings).source("population"), settings, rows=400, seed=11)
    result = pipeline.run("population", settings=settings, publish_rows=False)
    store = HubContext(settings).store
    credentials = build_world(store)
    request, _ = submit_request(
        store,
        "population",
        system="shebao-core",
        purpose="养老保险待遇资格认证",
        columns=["person_token", "name", "birth_year"],
        actor="zhang.clerk",
    )
    grant = approve_request(store, request.id, actor="li.police")
    port = free_port()
    log = hub_home / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [HUB, "serve", "--port", str(port), "--no-access-log"],
            env=_env(hub_home),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"hub serve did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield {
            "base": base,
            "credentials": credentials,
            "store": store,
            "person": _registered_person(settings),
            "snapshot": result.snapshot_id,
            "grant": grant.id,
            "process": process,
            "log": log,
        }
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_department_system_verifies_and_queries_over_http(
    served: dict[str, Any], broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.audit import AccessLog, Filters
    from catalog.deliveries import grant_topic, read_messages
    from hub import pipeline
    from hub.settings import get_settings

    base, store = served["base"], served["store"]
    id_number, name, person_token = served["person"]
    auth = {"Authorization": f"Bearer {served['credentials']['shebao-core']}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/healthz").json()["verification_indexes"]["population"] == "loaded"
        assert "/v1/verify" in client.get("/openapi.json").json()["paths"]

        ask = {"kind": "person", "id_number": id_number, "name": name, "purpose": "养老保险待遇资格认证"}
        answer = client.post("/v1/verify", json={**ask, "fields": ["name", "birth_year"]}, headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["match"] is True and body["fields"]["name"].endswith("*")
        assert body["fields"]["birth_year"] == int(id_number[6:10])
        wrong = client.post("/v1/verify", json={**ask, "name": name + "某"}, headers=auth)
        assert wrong.json() == {"match": False}

        query = client.post(
            "/v1/query",
            json={"sql": "SELECT count(*) AS n FROM population", "purpose": "统计核对"},
            headers=auth,
        )
        assert query.status_code == 200, query.text
        assert query.json()["snapshots"] == {"population": served["snapshot"]}

        refused = client.post(
            "/v1/query", json={"sql": "SELECT mobile FROM population", "purpose": "x"}, headers=auth
        )
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        unknown = client.post("/v1/verify", json=ask, headers={"Authorization": "Bearer hub_sys_nope"})
        assert unknown.status_code == 401 and unknown.json()["status"] == 401

    entries = list(AccessLog(store).entries())[-5:]
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("verify", "allowed"),
        ("verify", "allowed"),
        ("query", "allowed"),
        ("query", "denied"),
        ("system.authenticate", "denied"),
    ]
    assert {e["client"] for e in entries} == {"127.0.0.1"}
    assert json.loads(entries[0]["detail"])["subject"] == person_token
    logged = json.dumps(entries, ensure_ascii=False, default=str)
    assert id_number not in logged and name not in logged
    assert served["credentials"]["shebao-core"] not in logged
    assert AccessLog(store).verify().ok

    # the same system subscribes: its grant's topic carries only the granted columns
    monkeypatch.setenv("HUB_KAFKA__BOOTSTRAP_SERVERS", broker)
    get_settings.cache_clear()
    settings = get_settings()
    sent = pipeline.publish_pending(settings=settings)
    assert sent.messages() > 0
    topic = grant_topic(settings.kafka.topic_prefix, served["grant"])
    messages = read_messages(broker, topic, 5)
    assert messages and all(set(value) == {"person_token", "name", "birth_year"} for _, value, _ in messages)
    assert all(h["grant_id"] == str(served["grant"]) for _, _, h in messages)

    # the auditor's report lists each of those actions for the system; the log verifies
    report = AccessLog(store).report(Filters(system="shebao-core"))
    actions = {t.name: t for t in report.by_action}
    assert {"query", "verify", "delivery"} <= set(actions)
    assert actions["query"].denied == 1 and actions["delivery"].rows == sent.messages()
    assert AccessLog(store).verify().ok

    served["process"].send_signal(signal.SIGTERM)
    assert served["process"].wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    assert "Application shutdown complete" in served["log"].read_text()


def test_hub_serve_without_a_keyring_is_one_clear_error(hub_home: Path) -> None:
    result = subprocess.run(
        [HUB, "serve", "--port", str(free_port())],
        env=_env(hub_home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.lstrip().startswith("error: ") and "hub keys init" in result.stderr
