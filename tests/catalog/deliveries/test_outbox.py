"""The delivery outbox on SQLite and local Iceberg tables, without a broker: what is queued
for whom, in which order, what is cancelled or refused, leases and message schemas.

Sending is exercised against the embedded broker in tests/integration/test_deliveries.py;
here the bootstrap address answers nothing, so any attempt to reach it would fail the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import update

from catalog.deliveries import (
    DeliveryError,
    Outbox,
    derived_keys,
    list_deliveries,
    message_schema,
    subscription,
)
from catalog.entries import dataset_lineage
from catalog.metadata import DeliveryStatus, Grant, MetadataStore, OutboxDelivery, utcnow
from catalog.sharing import (
    SharingError,
    add_department,
    add_person,
    add_system,
    approve_request,
    list_grants,
    revoke_grant,
    revoke_system,
    submit_request,
)
from catalog.tables import SharedTables
from schemas.contract import Contract
from schemas.errors import ContractError, FatalError

SOCIAL = "111000000000130127"
COLUMNS = ("person_token", "name", "birth_year")
NOWHERE = "127.0.0.1:1"


@dataclass
class Hub:
    store: MetadataStore
    tables: SharedTables
    population: Contract
    rows: Callable[..., pa.Table]

    def outbox(self, **options: Any) -> Outbox:
        options.setdefault("lease_wait_s", 0.3)
        return Outbox(self.store, self.tables, bootstrap=NOWHERE, request_timeout_ms=1_000, **options)

    def register(self, batch_id: str, n: int = 10, start: int = 0) -> int:
        """A batch committed to the population table and recorded as registered."""
        snapshot = self.tables.commit(
            self.population, self.rows(n, batch_id, start=start), batch_id=batch_id, mode="upsert"
        )
        self.store.start_batch(
            batch_id, dataset="population", source="population", contract_version="1.0.0", rows_in=n
        )
        self.store.update_batch(
            batch_id, status="registered", snapshot_id=snapshot, rows_valid=n, rows_quarantined=0
        )
        return snapshot

    def grant(self, system: str, columns: tuple[str, ...] = COLUMNS) -> int:
        add_system(self.store, system, system, SOCIAL, actor="wang.hub")
        request, _ = submit_request(
            self.store,
            "population",
            system=system,
            purpose="养老保险资格认证",
            columns=columns,
            actor="wang.hub",
        )
        return approve_request(self.store, request.id, actor="wang.hub").id

    def deliveries(self, **filters: Any) -> list[Any]:
        return sorted(list_deliveries(self.store, limit=None, **filters), key=lambda d: d.id)


@pytest.fixture
def hub(
    hub_home: Path,
    store: MetadataStore,
    tables: SharedTables,
    population: Contract,
    published_rows: Callable[..., pa.Table],
) -> Iterator[Hub]:
    from hub.settings import get_settings
    from masking.keys import Keyring

    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)  # the access log's keys
    add_person(store, "wang.hub", roles=["steward"], hub_wide=True, actor="wang.hub")
    add_department(store, SOCIAL, "人力资源和社会保障厅", actor="wang.hub")
    yield Hub(store, tables, population, published_rows)


def test_a_registered_batch_owes_each_active_grant_one_delivery(hub: Hub) -> None:
    first, second = hub.grant("shebao-core"), hub.grant("gjj-core", ("name", "gender"))
    revoked = hub.grant("shebao-old")
    revoke_grant(hub.store, revoked, actor="wang.hub", reason="项目结束")
    gone = hub.grant("shebao-gone")
    revoke_system(hub.store, "shebao-gone", "decommissioned", actor="wang.hub")
    outbox = hub.outbox()

    s1 = hub.register("b1")
    made = outbox.queue_batch("b1")
    assert [(d.grant_id, d.kind, d.status, d.snapshot_id) for d in made] == [
        (first, "initial", "pending", s1),
        (second, "initial", "pending", s1),
    ]
    assert made[1].topic == f"hub.grant.{second}" and made[1].columns == ("name", "gender")
    assert outbox.queue_batch("b1") == [], "queueing again adds nothing"
    assert {d.grant_id for d in hub.deliveries()} == {first, second}
    assert gone not in outbox.grants_owed() and revoked not in outbox.grants_owed()
    assert hub.store.get_batch("b1").status == "registered", "it owes two deliveries"

    hub.register("b2", start=5)
    assert [(d.grant_id, d.kind) for d in outbox.queue_batch("b2")] == [(first, "batch"), (second, "batch")]
    assert outbox.queue_batch("b2") == []
    assert outbox.grants_owed("b2") == [first, second]

    with pytest.raises(FatalError, match="batch b3 is not registered"):
        hub.store.start_batch("b3", dataset="population", source="population", contract_version="1.0.0")
        outbox.queue_batch("b3")


def test_a_new_grant_starts_from_the_latest_registered_snapshot(hub: Hub) -> None:
    hub.register("b1")
    s2 = hub.register("b2", start=5)
    grant = hub.grant("shebao-core")
    outbox = hub.outbox()

    [initial] = outbox.queue_initials()
    assert (initial.kind, initial.batch_id, initial.snapshot_id) == ("initial", "b2", s2)
    assert outbox.queue_initials() == []
    assert outbox.queue_batch("b1") == [] and outbox.queue_batch("b2") == [], "already in the initial one"
    assert hub.store.get_batch("b1").status == "published"
    assert hub.store.get_batch("b1").messages_published == 0

    hub.register("b3", start=20)
    [later] = outbox.queue_batch("b3")
    assert later.kind == "batch"
    assert [d.batch_id for d in outbox._pending(grant)] == ["b2", "b3"], "sent in snapshot order"


def test_deliveries_queued_late_are_still_sent_in_snapshot_order(hub: Hub) -> None:
    grant = hub.grant("shebao-core")
    outbox = hub.outbox()
    hub.register("b1")
    outbox.queue_batch("b1")
    hub.register("b2", start=5)
    hub.register("b3", start=10)
    outbox.queue_batch("b3")
    outbox.queue_batch("b2")  # e.g. its publish step ran later
    assert [d.batch_id for d in outbox._pending(grant)] == ["b1", "b2", "b3"]
    assert [d.batch_id for d in outbox.queue_registered()] == []


def test_a_batch_owing_nothing_is_published_and_an_older_count_is_kept(hub: Hub) -> None:
    outbox = hub.outbox()
    hub.register("b1")
    assert outbox.queue_batch("b1") == []
    batch = hub.store.get_batch("b1")
    assert batch.status == "published" and batch.messages_published == 0 and batch.published_at

    hub.register("b2", start=5)
    hub.store.update_batch("b2", status="published", messages_published=10)  # sent to the old dataset topic
    assert outbox.queue_batch("b2") == []
    assert hub.store.get_batch("b2").messages_published == 10


def test_pending_deliveries_of_a_grant_that_stopped_are_cancelled_without_sending(hub: Hub) -> None:
    revoked, expired, dropped = hub.grant("shebao-core"), hub.grant("gjj-core"), hub.grant("shebao-stats")
    outbox = hub.outbox()
    hub.register("b1")
    hub.register("b2", start=5)
    outbox.queue_batch("b1")
    outbox.queue_batch("b2")
    revoke_grant(hub.store, revoked, actor="wang.hub", reason="项目结束")
    with hub.store.session() as session:
        session.execute(
            update(Grant).where(Grant.id == expired).values(expires_at=utcnow() - timedelta(days=1))
        )
    revoke_system(hub.store, "shebao-stats", "decommissioned", actor="wang.hub")

    report = outbox.send()
    assert not report.sent and not report.failed and not report.busy
    reasons = {(d.grant_id, d.batch_id): d.reason or "" for d in report.cancelled}
    assert set(reasons) == {(g, b) for g in (revoked, expired, dropped) for b in ("b1", "b2")}
    assert f"grant {revoked} of system shebao-core for population was revoked on" in reasons[(revoked, "b1")]
    assert "项目结束" in reasons[(revoked, "b2")]
    assert "expired on" in reasons[(expired, "b1")]
    assert "system was revoked" in reasons[(dropped, "b1")] and "decommissioned" in reasons[(dropped, "b1")]
    assert {d.status for d in hub.deliveries()} == {DeliveryStatus.CANCELLED}
    assert hub.store.get_batch("b2").status == "published", "nothing of it is pending any more"
    hub.register("b3", start=10)
    assert outbox.queue_batch("b3") == [], "no new deliveries for stopped grants"


def test_a_replay_queues_every_batch_since_the_snapshot_and_is_refused_for_a_revoked_grant(hub: Hub) -> None:
    from catalog.audit import AccessLog

    grant = hub.grant("shebao-core")
    outbox = hub.outbox()
    hub.register("b1")
    s2 = hub.register("b2", start=5)
    s3 = hub.register("b3", start=10)
    made = outbox.replay(grant, s2, actor="zhao.social")
    assert [(d.kind, d.batch_id, d.snapshot_id) for d in made] == [("replay", "b2", s2), ("replay", "b3", s3)]
    assert all(d.from_snapshot_id == s2 and d.requested_by == "zhao.social" for d in made)
    assert len(outbox.replay(grant, s2)) == 2, "a replay can be asked for again"
    assert hub.store.get_batch("b2").status == "registered", "replays do not settle batches"

    with pytest.raises(
        DeliveryError, match=r"snapshot 42 is not .* dataset population; `hub lineage population`"
    ):
        outbox.replay(grant, 42)
    with pytest.raises(SharingError, match="no grant 999"):
        outbox.replay(999, s2)

    revoke_grant(hub.store, grant, actor="wang.hub", reason="项目结束")
    with pytest.raises(
        SharingError, match=rf"grant {grant} of system shebao-core .* revoked .* nothing is replayed"
    ):
        outbox.replay(grant, s2, actor="zhao.social")
    refused = [e for e in AccessLog(hub.store).entries() if e["action"] == "delivery"]
    assert [e["outcome"] for e in refused] == ["denied", "denied"]
    last = refused[-1]
    assert last["system"] == "shebao-core" and last["actor"] == "zhao.social" and "项目结束" in last["reason"]
    assert json.loads(last["detail"]) == {"grant": grant, "kind": "replay", "replay_from": s2}


def test_one_sender_works_through_a_grant_at_a_time(hub: Hub) -> None:
    grant = hub.grant("shebao-core")
    hub.register("b1")
    first, second = hub.outbox(), hub.outbox()
    first.queue_batch("b1")
    assert first._try_lease(grant) and first._try_lease(grant), "a holder may take its lease again"
    assert not second._try_lease(grant)
    report = second.send()
    assert report.busy == [grant] and not report.sent and not report.cancelled
    first._release(grant)
    assert second._try_lease(grant)
    second._release(grant)

    stale = hub.outbox(lease_s=-1)  # a sender that stopped renewing (crashed)
    assert stale._try_lease(grant)
    assert first._try_lease(grant), "an expired lease can be taken over"
    with pytest.raises(FatalError, match=f"another sender took over the deliveries of grant {grant}"):
        stale._renew(grant)


def test_message_schema_holds_only_the_grant_columns_at_its_level(population: Contract) -> None:
    schema = message_schema(population, "conditional", COLUMNS, grant_id=7)
    assert list(schema["properties"]) == list(COLUMNS)
    assert schema["additionalProperties"] is False and "grant 7" in schema["title"]
    assert schema["properties"]["birth_year"]["type"] == "integer"
    assert "person_token" in schema["required"]
    assert "姓名" in schema["properties"]["name"]["description"]
    opened = message_schema(population, "unconditional", ("person_token", "birth_year"), grant_id=8)
    assert opened["properties"]["birth_year"] != schema["properties"]["birth_year"], "age bands, not years"
    with pytest.raises(ContractError, match="grant 7: column 'id_number'"):
        message_schema(population, "conditional", ("id_number",), grant_id=7)


def test_subscription_and_derived_keys(hub: Hub) -> None:
    keyed, keyless = hub.grant("shebao-core"), hub.grant("gjj-core", ("name", "gender"))
    described = subscription(hub.store, keyed, topic_prefix="hub.")
    assert described["topic"] == f"hub.grant.{keyed}" and described["key"] == "person_token"
    assert described["headers"] == ["contract", "contract_version", "batch_id", "snapshot_id", "grant_id"]
    assert subscription(hub.store, keyless, topic_prefix="hub.")["key"] == "derived"

    tokens = pa.array(["k1_abc", "k1_def", "k1_abc"])
    one, other = derived_keys(keyless, tokens).to_pylist(), derived_keys(keyed, tokens).to_pylist()
    assert one[0] == one[2] != one[1], "stable per record"
    assert not set(one) & set(other), "not linkable across grants"
    assert all(len(k) == 43 and "abc" not in k for k in one)


def test_lineage_hangs_sent_deliveries_under_their_snapshot(hub: Hub) -> None:
    grant = hub.grant("shebao-core")
    s1 = hub.register("b1")
    [delivery] = hub.outbox().queue_batch("b1")
    assert dataset_lineage(hub.store, "population").sources[0].batches[0].snapshot.deliveries == ()  # type: ignore[union-attr]
    with hub.store.session() as session:
        session.execute(
            update(OutboxDelivery)
            .where(OutboxDelivery.id == delivery.id)
            .values(status=DeliveryStatus.SENT, sent_at=utcnow(), messages=10)
        )
    snapshot = dataset_lineage(hub.store, "population").sources[0].batches[0].snapshot
    assert snapshot is not None and snapshot.snapshot_id == s1
    [shown] = snapshot.deliveries
    assert (shown.grant_id, shown.system, shown.department, shown.rows, shown.channel) == (
        grant,
        "shebao-core",
        SOCIAL,
        10,
        "kafka",
    )


def test_a_delivery_that_cannot_be_made_waits_with_its_reason_and_others_go_on(hub: Hub) -> None:
    broken, stopped = hub.grant("shebao-core"), hub.grant("gjj-core")
    with hub.store.session() as session:
        session.execute(update(Grant).where(Grant.id == broken).values(columns='["person_token", "ghost"]'))
    hub.register("b1")
    outbox = hub.outbox()
    outbox.queue_batch("b1")
    revoke_grant(hub.store, stopped, actor="wang.hub", reason="项目结束")

    report = outbox.send()
    [(failed, message)] = report.failed
    assert failed.grant_id == broken and "column(s) ghost are not in table population" in message
    assert [d.grant_id for d in report.cancelled] == [stopped], "the next grant still went on"
    [waiting] = hub.deliveries(grant_id=broken)
    assert waiting.status == "pending" and waiting.attempts == 1 and "ghost" in (waiting.error or "")
    assert hub.store.get_batch("b1").status == "registered"
    assert outbox.send().failed, "it fails the same way until the grant is fixed"


def test_a_batch_queued_after_a_newer_one_was_sent_sends_only_its_rows_still_current(hub: Hub) -> None:
    grant = hub.grant("shebao-core")
    outbox = hub.outbox()
    hub.register("b1")
    outbox.queue_batch("b1")
    hub.register("b2", start=5)  # tokens 5..14
    s3 = hub.register("b3", start=10)  # tokens 10..19 replace 10..14 of b2
    outbox.queue_batch("b3")
    with hub.store.session() as session:  # b1 (initial) and b3 went out before b2 was queued
        session.execute(
            update(OutboxDelivery)
            .where(OutboxDelivery.batch_id.in_(["b1", "b3"]))
            .values(status=DeliveryStatus.SENT, sent_at=utcnow(), messages=10)
        )
    [late] = outbox.queue_batch("b2")
    [granted] = [g for g in list_grants(hub.store) if g.id == grant]
    plan = outbox._plan(late, granted, hub.population)
    assert (plan.snapshot_id, plan.dataset_snapshot, plan.row_filter_batch) == (s3, s3, "b2")
    rows = pa.Table.from_batches(
        list(
            hub.tables.scan(
                "population", snapshot_id=plan.snapshot_id, batch_id="b2", selected_fields=plan.fields
            )
        )
    )
    assert sorted(rows.column("person_token").to_pylist()) == [f"tok-{i:08d}" for i in range(5, 10)]


def test_batches_still_registered_are_queued_oldest_first(hub: Hub) -> None:
    hub.grant("shebao-core")
    hub.register("b1")
    hub.register("b2", start=5)
    outbox = hub.outbox()
    assert outbox.queue_registered("certificate") == []
    assert [(d.batch_id, d.kind) for d in outbox.queue_registered("population")] == [
        ("b1", "initial"),
        ("b2", "batch"),
    ]
    assert outbox.queue_registered() == []
