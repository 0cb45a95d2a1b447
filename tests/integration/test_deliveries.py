"""Deliveries to grants' topics through the outbox, on the real embedded broker and Iceberg.

One hub for the module (``hub``): four systems hold population grants, a conditional one
with the key column, a conditional one without it (derived keys), an unconditional one
(read from the k-anonymous view) and one for the revocation test; a fifth, expired grant
is refused. The first batch is run and delivered once; each test then checks one promise
and adds only what it needs (a further batch, a grant, a replay).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.context import HubContext
from schemas.errors import AccessDeniedError, TransientError
from tests.conftest import free_port

pytestmark = pytest.mark.integration

ROWS = 400
POLICE = "11100000000013338W"
SOCIAL = "111000000000130127"
HOUSING = "12100000000013020Y"
HUB = str(Path(sys.executable).with_name("hub"))
HEADERS = {"contract", "contract_version", "batch_id", "snapshot_id", "grant_id"}


@dataclass
class Hub:
    settings: Any
    grants: dict[str, int]
    first: Any
    """The first batch, delivered to every grant as its initial delivery."""

    @property
    def store(self) -> Any:
        return HubContext(self.settings).store

    def messages(self, grant: str, **headers: str) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        from catalog.deliveries import grant_topic, read_messages

        topic = grant_topic(self.settings.kafka.topic_prefix, self.grants[grant])
        return read_messages(self.settings.kafka.bootstrap_servers, topic, 100 * ROWS, headers=headers)

    def deliveries(self, grant: str, **filters: Any) -> list[Any]:
        from catalog.deliveries import list_deliveries

        return list_deliveries(self.store, grant_id=self.grants[grant], limit=None, **filters)


def _grant(store: Any, system: str, columns: tuple[str, ...]) -> int:
    from catalog.sharing import approve_request, submit_request

    request, _ = submit_request(
        store, "population", system=system, purpose="养老保险资格认证", columns=columns, actor="wang.hub"
    )
    return approve_request(store, request.id, actor="wang.hub").id


def _raw_grant(store: Any, system: str, level: str, columns: tuple[str, ...], days: float) -> int:
    """A grant written as a contract change or the passing of time would leave it."""
    from catalog.metadata import Grant, Request, RequestStatus, utcnow

    with store.session() as session:
        request = Request(
            dataset="population", system=system, department=SOCIAL, columns=json.dumps(columns),
            purpose="统计分析", days=30, level=level, status=RequestStatus.APPROVED,
        )  # fmt: skip
        session.add(request)
        session.flush()
        grant = Grant(
            request_id=request.id, system=system, department=SOCIAL, dataset="population", level=level,
            columns=json.dumps(columns), purpose="统计分析", expires_at=utcnow() + timedelta(days=days),
        )  # fmt: skip
        session.add(grant)
        session.flush()
        return int(grant.id)


@pytest.fixture(scope="module")
def hub(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    from catalog.sharing import add_department, add_owner_departments, add_person, add_system
    from hub import pipeline
    from hub.settings import get_settings
    from hub.simulate import simulate
    from masking.keys import Keyring
    from schemas.contract import load_contract

    root = tmp_path_factory.mktemp("deliveries")
    with pytest.MonkeyPatch.context() as patch:
        for name in [k for k in os.environ if k.startswith("HUB_")]:
            patch.delenv(name)
        patch.setenv("HUB_HOME", str(root / "home"))
        patch.setenv("HUB_MASKING__KEYRING_PATH", str(root / "keys" / "keyring.json"))
        patch.setenv("HUB_KAFKA__BOOTSTRAP_SERVERS", broker)
        # the broker outlives this hub, and grant numbers restart in every hub: topics of their own
        patch.setenv("HUB_KAFKA__TOPIC_PREFIX", f"hub.{secrets.token_hex(4)}.")
        get_settings.cache_clear()
        settings = get_settings()
        settings.ensure_home()
        Keyring.init(settings.masking.keyring_path)
        store = HubContext(settings).store
        add_person(store, "wang.hub", roles=["steward"], hub_wide=True, actor="wang.hub")
        add_owner_departments(store, [load_contract("population")], actor="wang.hub")
        add_department(store, SOCIAL, "人力资源和社会保障厅", actor="wang.hub")
        add_department(store, HOUSING, "住房公积金管理中心", actor="wang.hub")
        for system, department in (
            ("shebao-core", SOCIAL), ("gjj-core", HOUSING), ("shebao-stats", SOCIAL),
            ("shebao-archive", SOCIAL), ("shebao-old", SOCIAL),
        ):  # fmt: skip
            add_system(store, system, system, department, actor="wang.hub")
        grants = {
            "keyed": _grant(store, "shebao-core", ("person_token", "name", "birth_year")),
            "keyless": _grant(store, "gjj-core", ("name", "gender", "division_code")),
            "view": _raw_grant(
                store,
                "shebao-stats",
                "unconditional",
                ("person_token", "gender", "birth_year", "division_code"),
                30,
            ),
            "revoked": _grant(store, "shebao-archive", ("person_token", "registration_status")),
            "expired": _raw_grant(store, "shebao-old", "conditional", ("person_token",), -1),
        }
        simulate(HubContext(settings).source("population"), settings, rows=ROWS, seed=5)
        result = pipeline.run("population", settings=settings)
        yield Hub(settings, grants, HubContext(settings).store.get_batch(result.batch_id))
    get_settings.cache_clear()


def test_each_grant_topic_carries_only_its_columns(hub: Hub) -> None:

    first = hub.first
    assert first.status == "published"
    initial = {name: hub.deliveries(name, batch_id=first.id) for name in ("keyed", "keyless", "view")}
    assert all(len(d) == 1 and d[0].kind == "initial" and d[0].status == "sent" for d in initial.values())
    assert first.messages_published == sum(d[0].messages for d in initial.values()) + (
        hub.deliveries("revoked", batch_id=first.id)[0].messages
    )

    keyed = hub.messages("keyed")
    assert len(keyed) == first.rows_valid == initial["keyed"][0].messages
    for key, value, headers in keyed:
        assert set(value) == {"person_token", "name", "birth_year"}
        assert key == value["person_token"] and key.startswith("k1_")
        assert value["name"].endswith("*")
        assert set(headers) == HEADERS
        assert headers["batch_id"] == first.id and headers["grant_id"] == str(hub.grants["keyed"])
        assert headers["snapshot_id"] == str(first.snapshot_id) and headers["contract"] == "population"

    keyless = hub.messages("keyless")
    assert len(keyless) == first.rows_valid
    tokens = {value["person_token"] for _, value, _ in keyed}
    for key, value, _ in keyless:
        assert set(value) == {"name", "gender", "division_code"}
        assert len(key) == 43 and key not in tokens, "a grant without the token must not get it as key"
    assert len({key for key, _, _ in keyless}) == len(keyless)

    view = hub.messages("view")
    rows = HubContext(hub.settings).tables.load("population_unconditional").scan().to_arrow()
    assert len(view) == rows.num_rows == initial["view"][0].messages
    assert initial["view"][0].source_table == "population_unconditional"
    assert {v["division_code"] for _, v, _ in view} == set(rows.column("division_code").to_pylist())
    assert all(set(v) == {"person_token", "gender", "birth_year", "division_code"} for _, v, _ in view)
    assert not hub.deliveries("expired"), "an expired grant gets nothing"


def test_deliveries_are_in_the_access_log_and_the_lineage(hub: Hub) -> None:
    from catalog.audit import AccessLog
    from catalog.entries import dataset_lineage

    sent = hub.deliveries("keyed", batch_id=hub.first.id)[0]
    entries = {e["seq"]: e for e in AccessLog(hub.store).entries() if e["action"] == "delivery"}
    entry = entries[sent.access_seq]
    assert entry["outcome"] == "allowed" and entry["system"] == "shebao-core"
    assert entry["department"] == SOCIAL and entry["dataset"] == "population"
    assert json.loads(entry["columns"]) == ["person_token", "name", "birth_year"]
    assert entry["purpose"] == "养老保险资格认证"
    assert entry["rows"] == sent.messages and entry["snapshot_id"] == hub.first.snapshot_id
    detail = json.loads(entry["detail"])
    assert detail["grant"] == hub.grants["keyed"] and detail["delivery"] == sent.id
    assert detail["batch"] == hub.first.id and detail["kind"] == "initial"
    view = entries[hub.deliveries("view", batch_id=hub.first.id)[0].access_seq]
    assert json.loads(view["detail"])["table"] == "population_unconditional"
    assert AccessLog(hub.store).verify().ok

    graph = dataset_lineage(hub.store, "population")
    [node] = [b for s in graph.sources for b in s.batches if b.batch_id == hub.first.id]
    assert node.snapshot is not None
    delivered = {(d.grant_id, d.channel) for d in node.snapshot.deliveries}
    assert {(hub.grants["keyed"], "kafka"), (hub.grants["view"], "kafka")} <= delivered


def test_leak_scan_of_the_grant_topics_passes(hub: Hub) -> None:
    from hub.leak_scan import scan_outputs

    assert scan_outputs(hub.settings, tables=False, topics=True) == []


def test_outage_leaves_deliveries_pending_until_publish_pending_sends_them_once(hub: Hub) -> None:
    from hub import pipeline

    batch = pipeline.run("population", settings=hub.settings, full=True, publish_rows=False)
    good = hub.settings.kafka.bootstrap_servers
    hub.settings.kafka.bootstrap_servers = f"127.0.0.1:{free_port()}"
    hub.settings.kafka.request_timeout_ms = 2_000
    try:
        with pytest.raises(TransientError, match="hub publish --pending") as caught:
            pipeline.publish(batch.batch_id, settings=hub.settings)
    finally:
        hub.settings.kafka.bootstrap_servers = good
        hub.settings.kafka.request_timeout_ms = 15_000
    assert f"hub publish {batch.batch_id}" in str(caught.value)
    assert hub.store.get_batch(batch.batch_id).status == "registered"
    pending = hub.deliveries("keyed", batch_id=batch.batch_id)
    assert [(d.kind, d.status, d.attempts) for d in pending] == [("batch", "pending", 1)]
    assert "unreachable" in (pending[0].error or "")

    report = pipeline.publish_pending(settings=hub.settings)
    assert {d.batch_id for d in report.sent} >= {batch.batch_id}
    done = hub.store.get_batch(batch.batch_id)
    assert done.status == "published" and done.messages_published == report.messages(batch.batch_id)
    again = pipeline.publish_pending(settings=hub.settings)
    assert again.messages() == 0 and not again.sent
    assert pipeline.publish(batch.batch_id, settings=hub.settings) == 0
    delivered = hub.messages("keyed", batch_id=batch.batch_id)
    assert len(delivered) == done.rows_valid, "each row delivered exactly once"


def test_revoking_a_grant_cancels_its_pending_deliveries_and_stops_new_ones(hub: Hub) -> None:
    from catalog.audit import AccessLog
    from catalog.deliveries import Outbox
    from catalog.sharing import revoke_grant
    from hub import pipeline

    before = len(hub.messages("revoked"))
    batch = pipeline.run("population", settings=hub.settings, full=True, publish_rows=False)
    outbox: Outbox = pipeline.open_outbox(hub.settings)
    outbox.queue_batch(batch.batch_id)
    [queued] = hub.deliveries("revoked", batch_id=batch.batch_id)
    assert queued.status == "pending"
    revoke_grant(hub.store, hub.grants["revoked"], actor="wang.hub", reason="项目结束")

    report = pipeline.publish_pending(settings=hub.settings)
    [cancelled] = hub.deliveries("revoked", batch_id=batch.batch_id)
    assert cancelled.status == "cancelled" and "revoked" in (cancelled.reason or "")
    assert cancelled.id in {d.id for d in report.cancelled}
    assert hub.store.get_batch(batch.batch_id).status == "published"
    assert outbox.queue_batch(batch.batch_id) == []
    assert len(hub.messages("revoked")) == before

    with pytest.raises(AccessDeniedError, match=rf"grant {hub.grants['revoked']} .*revoked"):
        pipeline.replay(hub.grants["revoked"], hub.first.snapshot_id, actor="wang.hub", settings=hub.settings)
    [refusal] = [
        e for e in AccessLog(hub.store).entries() if e["action"] == "delivery" and e["outcome"] == "denied"
    ][-1:]
    assert json.loads(refusal["detail"])["grant"] == hub.grants["revoked"]
    assert "revoked" in refusal["reason"] and refusal["actor"] == "wang.hub"


def test_replay_resends_every_batch_since_a_snapshot_from_the_catalogue(hub: Hub) -> None:
    from catalog.deliveries import DeliveryError
    from hub import pipeline

    registered = [b for b in hub.store.list_batches("population", limit=100) if b.snapshot_id is not None]
    report = pipeline.replay(
        hub.grants["keyless"], hub.first.snapshot_id, actor="zhao", settings=hub.settings
    )
    assert sorted(d.batch_id for d in report.sent) == sorted(b.id for b in registered)
    assert all(d.kind == "replay" and d.from_snapshot_id == hub.first.snapshot_id for d in report.sent)
    for delivery in report.sent:
        batch = hub.store.get_batch(delivery.batch_id)
        assert delivery.messages == batch.rows_valid
        assert delivery.snapshot_id == batch.snapshot_id
    again = hub.messages("keyless", batch_id=hub.first.id)
    assert len(again) == 2 * hub.first.rows_valid, "the initial delivery, then the replay"
    assert hub.store.get_batch(hub.first.id).messages_published == hub.first.messages_published

    with pytest.raises(DeliveryError, match="hub lineage population"):
        pipeline.replay(hub.grants["keyless"], 12345, settings=hub.settings)


def test_a_new_grant_gets_the_current_state_once(hub: Hub) -> None:
    from catalog.sharing import add_system
    from hub import pipeline

    add_system(hub.store, "shebao-new", "新系统", SOCIAL, actor="wang.hub")
    grant = _grant(hub.store, "shebao-new", ("person_token", "gender"))
    report = pipeline.publish_pending(settings=hub.settings)
    [initial] = [d for d in report.sent if d.grant_id == grant]
    assert initial.kind == "initial"
    latest = max(
        (b for b in hub.store.list_batches("population", limit=100) if b.snapshot_id is not None),
        key=lambda b: b.registered_at,
    )
    assert initial.batch_id == latest.id
    rows = sum(
        b.num_rows for b in HubContext(hub.settings).tables.scan("population", snapshot_id=latest.snapshot_id)
    )
    assert initial.messages == rows
    assert not [d for d in pipeline.publish_pending(settings=hub.settings).sent if d.grant_id == grant]


def test_publish_and_deliveries_commands(hub: Hub) -> None:
    env = {**os.environ, "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=120)

    usage = run("publish")
    assert usage.returncode == 2 and "exactly one of BATCH_ID, --pending or --replay" in usage.stderr
    pending = run("publish", "--pending")
    assert pending.returncode == 0 and "nothing pending" in pending.stdout, pending.stderr
    expired = run(
        "publish", "--replay", str(hub.grants["expired"]), "--from-snapshot", str(hub.first.snapshot_id)
    )
    assert expired.returncode == 5 and "Traceback" not in expired.stderr
    assert f"grant {hub.grants['expired']} of system shebao-old for population expired on" in expired.stderr

    schema = run("deliveries", "schema", str(hub.grants["keyless"]), "--json")
    described = json.loads(schema.stdout)
    from catalog.deliveries import grant_topic

    expected_topic = grant_topic(hub.settings.kafka.topic_prefix, hub.grants["keyless"])
    assert described["topic"] == expected_topic and described["key"] == "derived"
    assert list(described["value_schema"]["properties"]) == ["name", "gender", "division_code"]
    listed = run("deliveries", "list", "--grant", str(hub.grants["keyed"]))
    assert listed.returncode == 0 and hub.first.id in listed.stdout and "initial" in listed.stdout


@pytest.fixture
def pg_outboxes(postgres_url: str, hub_home: Path, tmp_path: Path) -> Iterator[tuple[Any, Any, int, str]]:
    """Two outboxes (as two processes would have) on one PostgreSQL schema, one grant, one batch."""
    import secrets

    from sqlalchemy import create_engine, text

    from catalog.deliveries import Outbox
    from catalog.metadata import MetadataStore
    from catalog.sharing import add_department, add_person, add_system
    from catalog.tables import SharedTables
    from hub.settings import get_settings
    from masking.keys import Keyring
    from schemas.contract import load_contract
    from tests.support.publishing import BATCH_ID, published_rows

    Keyring.init(get_settings().masking.keyring_path)
    schema = f"hub_test_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    stores = [MetadataStore(postgres_url, schema=schema) for _ in range(2)]
    try:
        store = stores[0]
        add_person(store, "wang.hub", roles=["steward"], hub_wide=True, actor="wang.hub")
        add_department(store, SOCIAL, "人力资源和社会保障厅", actor="wang.hub")
        add_system(store, "shebao-core", "shebao-core", SOCIAL, actor="wang.hub")
        grant = _grant(store, "shebao-core", ("person_token", "name"))
        (tmp_path / "warehouse").mkdir()
        tables = SharedTables(f"sqlite:///{tmp_path / 'iceberg.db'}", (tmp_path / "warehouse").as_uri())
        contract = load_contract("population")
        snapshot = tables.commit(contract, published_rows(10), batch_id=BATCH_ID, mode="upsert")
        store.start_batch(
            BATCH_ID, dataset="population", source="population", contract_version="1.0.0", rows_in=10
        )
        store.update_batch(
            BATCH_ID, status="registered", snapshot_id=snapshot, rows_valid=10, rows_quarantined=0
        )
        outboxes = [Outbox(s, tables, bootstrap="127.0.0.1:1", lease_wait_s=0) for s in stores]
        yield outboxes[0], outboxes[1], grant, BATCH_ID
    finally:
        for store in stores:
            store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_concurrent_queueing_and_leasing_on_postgres(pg_outboxes: tuple[Any, Any, int, str]) -> None:
    import threading

    from catalog.deliveries import list_deliveries

    first, second, grant, batch_id = pg_outboxes
    for _ in range(5):
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def queue(outbox: Any, barrier: threading.Barrier = barrier, results: list[Any] = results) -> None:
            barrier.wait()
            results.append(outbox.queue_batch(batch_id))

        threads = [threading.Thread(target=queue, args=(o,)) for o in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 2, "neither writer failed"
    assert len(list_deliveries(first.store, grant_id=grant, limit=None)) == 1

    for _ in range(5):
        barrier = threading.Barrier(2)
        won: list[bool] = []

        def lease(outbox: Any, barrier: threading.Barrier = barrier, won: list[bool] = won) -> None:
            barrier.wait()
            won.append(outbox._try_lease(grant))

        threads = [threading.Thread(target=lease, args=(o,)) for o in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(won) == [False, True], "exactly one sender holds a grant"
        first._release(grant)
        second._release(grant)
