"""The access log on SQLite: appending, the chain, checkpoints, keys, concurrency, retention."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

import catalog.audit as audit_package
import catalog.audit.keys as audit_keys
import catalog.audit.log as audit
from catalog.audit import (
    AccessLog,
    AuditIntegrityError,
    Filters,
    RetentionError,
    load_keys,
    read_public_keys,
    record_access,
)
from catalog.metadata import MetadataStore
from masking.keys import Keyring, Secret
from tests.support.audit import run_writers

_REAL_UTCNOW = audit.utcnow


@pytest.fixture
def store(hub_home: Path) -> Iterator[MetadataStore]:
    from hub.settings import get_settings

    settings = get_settings()
    settings.ensure_home()
    Keyring.init(settings.masking.keyring_path)
    assert settings.catalog.metadata_url is not None
    made = MetadataStore(settings.catalog.metadata_url)
    yield made
    made.dispose()


def _rows(store: MetadataStore) -> list[dict[str, object]]:
    with store.engine.connect() as connection:
        return [
            dict(r._mapping) for r in connection.execute(text("SELECT * FROM hub_access_log ORDER BY seq"))
        ]


def _query(store: MetadataStore, n: int = 1, **fields: object) -> list[int]:
    values: dict[str, object] = {
        "action": "query",
        "outcome": "allowed",
        "system": "tax-portal",
        "department": "税务局",
        "dataset": "population",
        "columns": ["person_token", "birth_year"],
        "purpose": "核验纳税人身份",
        "rows": 10,
        "snapshot_id": 4_611_686_018_427_387_904,
        "client": "203.0.113.7",
    }
    values.update(fields)
    return [record_access(store, **values) for _ in range(n)]  # type: ignore[arg-type]


# -- appending ---------------------------------------------------------------------------------


def test_record_access_appends_gapless_entries_that_verify(store: MetadataStore) -> None:
    assert _query(store, 3) == [1, 2, 3]
    denied = record_access(
        store,
        action="refusal",
        outcome="denied",
        system="tax-portal",
        dataset="population",
        reason="column id_number is outside grant 7",
        detail={"grant": 7, "sql": "SELECT id_number FROM population"},
    )
    assert denied == 4
    rows = _rows(store)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["prev_hash"] == audit_package.GENESIS
    assert all(rows[i]["prev_hash"] == rows[i - 1]["entry_hash"] for i in range(1, 4))
    assert json.loads(str(rows[0]["columns"])) == ["person_token", "birth_year"]
    assert rows[0]["department"] == "税务局" and rows[0]["snapshot_id"] == 4_611_686_018_427_387_904
    assert json.loads(str(rows[3]["detail"])) == {"grant": 7, "sql": "SELECT id_number FROM population"}
    assert rows[3]["outcome"] == "denied" and "grant 7" in str(rows[3]["reason"])
    result = AccessLog(store).verify()
    assert result.ok and result.entries == 4 and (result.first_seq, result.last_seq) == (1, 4)


def test_the_canonical_form_is_fixed(store: MetadataStore) -> None:
    """An outside verifier can recompute an entry's hash from the documented serialisation."""
    _query(store, 2)
    row = _rows(store)[1]
    at = row["at"]
    assert isinstance(at, str)  # SQLite keeps UTC text
    document = {
        "type": "gov-data-hub access log entry",
        "format": 1,
        "seq": 2,
        "at": datetime.fromisoformat(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        **{
            k: row[k]
            for k in (
                "action",
                "outcome",
                "actor",
                "system",
                "department",
                "dataset",
                "columns",
                "purpose",
                "rows",
                "snapshot_id",
                "reason",
                "client",
                "detail",
                "key_version",
                "prev_hash",
            )
        },
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    import hashlib
    import hmac

    assert hashlib.sha256(raw).hexdigest() == row["entry_hash"]
    key = load_keys().mac_key(1)
    previous = _rows(store)[0]["entry_mac"]
    with_prev = json.dumps(
        {**document, "prev_mac": previous}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert hmac.new(key, with_prev, hashlib.sha256).hexdigest() == row["entry_mac"]


def test_an_entry_in_the_callers_session_commits_and_rolls_back_with_it(store: MetadataStore) -> None:
    with store.session() as session:
        assert (
            record_access(session, action="grant", outcome="allowed", system="s", dataset="population") == 1
        )
    with pytest.raises(RuntimeError), store.session() as session:
        record_access(session, action="grant", outcome="allowed", system="s", dataset="population")
        raise RuntimeError("the grant failed")
    assert [r["seq"] for r in _rows(store)] == [1]
    assert record_access(store, action="revoke", outcome="allowed") == 2
    assert AccessLog(store).verify().ok


@pytest.mark.parametrize(
    ("fields", "error", "needle"),
    [
        ({"action": "Query!"}, ValueError, "short lower-case name"),
        ({"outcome": "maybe"}, ValueError, "allowed, denied"),
        ({"columns": "a,b"}, TypeError, "not one string"),
        ({"rows": -1}, ValueError, "negative"),
        ({"rows": 2**63}, ValueError, "64-bit"),
        ({"detail": {"raw": b"\x00\x01"}}, TypeError, "detail.raw is a bytes"),
        ({"detail": {"ratio": float("nan")}}, ValueError, "NaN"),
        ({"detail": {"blob": ["x" * 1500] * 20}}, ValueError, "at most"),
    ],
)
def test_malformed_entries_are_refused_before_anything_is_written(
    store: MetadataStore, fields: dict[str, object], error: type[Exception], needle: str
) -> None:
    values: dict[str, object] = {"action": "query", "outcome": "allowed", **fields}
    with pytest.raises(error, match=needle):
        record_access(store, **values)  # type: ignore[arg-type]
    assert _rows(store) == []


def test_text_is_kept_bounded_and_storable(store: MetadataStore) -> None:
    _query(store, purpose="a\x00b" + "长" * 5000, system="s" * 300, detail={"sql": "x" * 13_000})
    row = _rows(store)[0]
    assert "\x00" not in str(row["purpose"]) and str(row["purpose"]).startswith("a\ufffdb长")
    assert len(str(row["purpose"])) <= 4000 and "chars]" in str(row["purpose"])
    assert len(str(row["system"])) <= 128
    assert len(json.loads(str(row["detail"]))["sql"]) <= 12_000
    assert AccessLog(store).verify().ok


def test_key_material_never_reaches_entries_errors_or_reprs(store: MetadataStore) -> None:
    keys = load_keys()
    material = [keys.mac_key(1), *(k for k in _signing_seeds())]
    with pytest.raises(TypeError) as caught:
        record_access(store, action="query", outcome="allowed", detail={"key": Secret(material[0])})
    _query(store, 3)
    AccessLog(store, checkpoint_every=2).checkpoint(actor="auditor")
    dumped = json.dumps(_rows(store), default=str) + repr(keys) + str(caught.value)
    with store.engine.connect() as connection:
        for table in ("hub_access_head", "hub_access_checkpoints"):
            dumped += json.dumps(
                [list(r) for r in connection.execute(text(f"SELECT * FROM {table}"))], default=str
            )
    for secret in material:
        for form in (
            secret.hex(),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode(),
        ):
            assert form not in dumped


def _signing_seeds() -> list[bytes]:
    from hub.settings import get_settings

    keyring = Keyring.load(get_settings().masking.keyring_path)
    return [keyring.key("audit-sign", i.version).secret.reveal() for i in keyring.versions("audit-sign")]


# -- checkpoints and keys ----------------------------------------------------------------------


def test_checkpoints_are_written_every_n_entries_and_signed(store: MetadataStore) -> None:
    log = AccessLog(store, checkpoint_every=3)
    for _ in range(7):
        log.append(action="query", outcome="allowed", system="s")
    checkpoints = log.checkpoints()
    assert [(c.number, c.seq, c.reason, c.entries) for c in checkpoints] == [
        (1, 3, "periodic", 3),
        (2, 6, "periodic", 6),
    ]
    demand = log.checkpoint(actor="审计员")
    assert (demand.number, demand.seq, demand.reason) == (3, 7, "demand")
    assert _rows(store)[-1]["action"] == "audit.checkpoint"
    public = read_public_keys(
        "".join(audit_package.public_key_pem(k) for k in load_keys().public_keys().values())
    )
    result = log.verify(public_keys=public)
    assert result.ok and not result.macs_checked and result.checkpoints == 3


def test_batched_appends_cross_checkpoints_in_one_transaction(store: MetadataStore) -> None:
    log = AccessLog(store, checkpoint_every=4)
    numbers = log.append_many(
        {"action": "delivery", "outcome": "allowed", "system": "s", "rows": i} for i in range(10)
    )
    assert numbers == list(range(1, 11))
    assert [c.seq for c in log.checkpoints()] == [4, 8]
    assert log.verify().ok


def test_an_older_keyring_gets_the_audit_keys_on_first_use(store: MetadataStore) -> None:
    from hub.settings import get_settings

    path = get_settings().masking.keyring_path
    document = json.loads(path.read_text())
    document["keys"] = [k for k in document["keys"] if k["kind"] in ("token", "encrypt")]
    document["current"] = {k: v for k, v in document["current"].items() if k in ("token", "encrypt")}
    path.write_text(json.dumps(document))
    before = Keyring.load(path)
    assert not before.has("audit")
    audit_keys._KEY_CACHE.clear()

    _query(store, 2)

    after = Keyring.load(path)
    assert after.has("audit") and after.has("audit-sign")
    assert after.token_key().secret.reveal() == before.token_key().secret.reveal()
    assert AccessLog(store).verify().ok


def test_rotating_the_audit_keys_keeps_old_entries_verifiable(store: MetadataStore) -> None:
    from hub.settings import get_settings

    log = AccessLog(store, checkpoint_every=2)
    log.append(action="query", outcome="allowed")
    log.append(action="query", outcome="allowed")
    Keyring.load(get_settings().masking.keyring_path).rotate("audit").rotate("audit-sign")
    rotated = AccessLog(store, checkpoint_every=2)
    rotated.append(action="query", outcome="allowed")
    rotated.append(action="query", outcome="allowed")
    assert [r["key_version"] for r in _rows(store)] == [1, 1, 2, 2]
    assert [c.key_version for c in rotated.checkpoints()] == [1, 2]
    assert rotated.verify().ok
    public = read_public_keys(
        "".join(audit_package.public_key_pem(k) for k in load_keys().public_keys().values())
    )
    assert len(public) == 2 and rotated.verify(public_keys=public).ok
    only_new = read_public_keys(audit_package.public_key_pem(load_keys().public_keys()[2]))
    problem = rotated.verify(public_keys=only_new).first_problem
    assert problem is not None and "checkpoint 1" in str(problem) and "signature" in str(problem)


# -- concurrency -------------------------------------------------------------------------------


def test_concurrent_writers_keep_the_chain_gapless_and_linear(store: MetadataStore) -> None:
    run_writers(store.url, processes=4, each=40, env={"HUB_AUDIT__CHECKPOINT_EVERY": "25"})
    rows = _rows(store)
    assert [r["seq"] for r in rows] == list(range(1, 161))
    assert {r["system"] for r in rows} == {f"writer-{n}" for n in range(4)}
    log = AccessLog(store)
    assert [c.seq for c in log.checkpoints()] == [25, 50, 75, 100, 125, 150]
    assert log.verify().ok


# -- retention ---------------------------------------------------------------------------------


def _append_at(store: MetadataStore, monkeypatch: pytest.MonkeyPatch, when: datetime, n: int) -> None:
    monkeypatch.setattr(audit, "utcnow", lambda: when)
    for _ in range(n):
        record_access(store, action="query", outcome="allowed", system="s", rows=1)
    monkeypatch.setattr(audit, "utcnow", _REAL_UTCNOW)


def test_purge_removes_old_entries_and_the_chain_still_verifies(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    _append_at(store, monkeypatch, now - timedelta(days=400), 5)
    _append_at(store, monkeypatch, now - timedelta(days=10), 3)
    log = AccessLog(store, checkpoint_every=1000)

    result = log.purge((now - timedelta(days=200)).date(), actor="审计员")

    assert result.purged == 5 and result.first_seq == 6 and result.seq == 9
    assert [r["seq"] for r in _rows(store)] == [6, 7, 8, 9]
    (checkpoint,) = log.checkpoints()
    assert (checkpoint.reason, checkpoint.first_seq, checkpoint.seq) == ("purge", 6, 8)
    last = _rows(store)[-1]
    assert last["action"] == "audit.purge" and json.loads(str(last["detail"]))["purged"] == 5
    assert log.verify().ok
    public = read_public_keys(audit_package.public_key_pem(load_keys().public_keys()[1]))
    assert log.verify(public_keys=public).ok
    # removing the new first entry is still detected
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM hub_access_log WHERE seq = 6"))
    problem = log.verify().first_problem
    assert problem is not None and problem.seq == 6 and "missing at the start" in str(problem)


def test_purge_refuses_entries_younger_than_retention_and_records_it(store: MetadataStore) -> None:
    _query(store, 2)
    log = AccessLog(store)
    with pytest.raises(RetentionError) as caught:
        log.purge(date.today() - timedelta(days=179), actor="审计员")
    assert caught.value.exit_code == 5 and "180 days" in str(caught.value)
    assert [r["seq"] for r in _rows(store)] == [1, 2, 3]
    refused = _rows(store)[-1]
    assert (refused["action"], refused["outcome"], refused["actor"]) == ("audit.purge", "denied", "审计员")


def test_purge_refuses_a_log_that_does_not_verify(store: MetadataStore) -> None:
    _query(store, 3)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE hub_access_log SET rows = 99 WHERE seq = 2"))
    with pytest.raises(AuditIntegrityError, match="entry 2"):
        AccessLog(store).purge(date(2000, 1, 1), actor="审计员")
    assert len(_rows(store)) == 4


def test_purge_with_nothing_old_enough_keeps_everything(store: MetadataStore) -> None:
    _query(store, 2)
    result = AccessLog(store).purge(date.today() - timedelta(days=365), actor="a")
    assert result.purged == 0 and result.checkpoint is None
    assert AccessLog(store).verify().ok


# -- reports -----------------------------------------------------------------------------------


def test_report_counts_by_system_dataset_day_and_flags_unusual_days(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for day in range(6):
        monkeypatch.setattr(audit, "utcnow", lambda day=day: start + timedelta(days=day))
        calls = 40 if day == 5 else 4
        for _ in range(calls):
            record_access(
                store, action="query", outcome="allowed", system="tax", dataset="population", rows=10
            )
        record_access(
            store, action="query", outcome="allowed", system="quiet", dataset="legal_entity", rows=1
        )
    record_access(
        store, action="query", outcome="denied", system="tax", dataset="population", reason="outside grant"
    )
    monkeypatch.setattr(audit, "utcnow", _REAL_UTCNOW)
    log = AccessLog(store)

    report = log.report(unusual_factor=3.0, unusual_min_days=5)

    assert report.calls == 6 * 4 + 36 + 6 + 1 and report.denied == 1
    assert [(t.name, t.calls) for t in report.by_system] == [("tax", 61), ("quiet", 6)]
    assert {t.name for t in report.by_dataset} == {"population", "legal_entity"}
    assert [u.day for u in report.unusual if u.system == "tax"] == ["2026-03-07", "2026-03-07"]
    assert {u.metric for u in report.unusual} == {"calls", "rows"}
    assert [e["reason"] for e in report.denied_entries] == ["outside grant"]
    only = log.report(Filters(system="quiet", since=start + timedelta(days=3)))
    assert only.calls == 3 and [t.name for t in only.by_day] == ["2026-03-05", "2026-03-06", "2026-03-07"]
    assert log.count(Filters(outcome="denied")) == 1


def test_group_appender_shares_transactions_between_threads(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    log = AccessLog(store, checkpoint_every=7)
    appender = audit_package.GroupAppender(log)
    transactions: list[int] = []
    real = log.append_fields

    def counted(entries: list[dict[str, object]]) -> list[int]:
        transactions.append(len(entries))
        return real(entries)  # type: ignore[arg-type]

    monkeypatch.setattr(log, "append_fields", counted)
    numbers: list[int] = []

    def work(n: int) -> None:
        for i in range(25):
            numbers.append(appender.append(action="delivery", outcome="allowed", system=f"s{n}", rows=i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(numbers) == list(range(1, 201)) and sum(transactions) == 200
    assert len(transactions) < 200  # entries handed in meanwhile went together
    assert [c.seq for c in log.checkpoints()][:3] == [7, 14, 21]
    assert log.verify().ok

    def broken(entries: list[dict[str, object]]) -> list[int]:
        raise audit_package.AuditKeyError("no audit key")

    monkeypatch.setattr(log, "append_fields", broken)
    with pytest.raises(audit_package.AuditKeyError):
        appender.append(action="query", outcome="allowed")
    monkeypatch.setattr(log, "append_fields", real)
    assert appender.append(action="query", outcome="allowed") == 201


def test_a_checkpoint_of_an_empty_log_verifies(store: MetadataStore) -> None:
    log = AccessLog(store)
    made = log.checkpoint(actor="审计员")
    assert (made.number, made.seq, made.entries) == (1, 0, 0)
    assert [r["action"] for r in _rows(store)] == ["audit.checkpoint"]
    assert log.verify().ok
