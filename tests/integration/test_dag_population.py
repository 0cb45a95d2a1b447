"""The population DAG run by real Airflow (``airflow dags test``), as ``hub demo`` does."""

from __future__ import annotations

from pathlib import Path

from hub import airflow_runner
from hub.context import HubContext


def test_dag_runs_end_to_end_through_airflow(ready_hub, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from catalog.deliveries import count_messages, grant_topic
    from catalog.tables import QueryEngine
    from hub.simulate import simulate
    from tests.integration.conftest import subscribe

    # Airflow's own metadata database for this test only.
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow.db'}")
    report = simulate(HubContext(ready_hub).source("population"), ready_hub, rows=2_000, seed=11)
    grant = subscribe(ready_hub)
    log = tmp_path / "airflow.log"
    started: list[str] = []
    airflow_runner.migrate(ready_hub, log_path=log)
    airflow_runner.run_dag("population", ready_hub, log_path=log, on_task=started.append)
    assert started == ["extract", "validate", "mask", "register", "publish"]

    batch = HubContext(ready_hub).store.latest_batch("population")
    assert batch is not None and batch.status == "published"
    assert batch.rows_in == 2_000
    assert batch.rows_quarantined == report.expected_quarantined
    count = QueryEngine(HubContext(ready_hub).tables).run("SELECT count(*) AS n FROM population")
    assert count.column("n")[0].as_py() == batch.rows_valid
    topic = grant_topic(ready_hub.kafka.topic_prefix, grant)
    assert count_messages(ready_hub.kafka.bootstrap_servers, topic, batch_id=batch.id) == batch.rows_valid
    _assert_openlineage_events(ready_hub.home, started)
    places = [log, tmp_path / "airflow.db", ready_hub.home / "hub.db", *ready_hub.home.rglob("*.parquet")]
    places += list(ready_hub.home.rglob("*.jsonl"))
    places += list(ready_hub.home.rglob("*.json")) + list(ready_hub.home.rglob("*.avro"))
    _assert_no_key_material(ready_hub.masking.keyring_path, places)


def _assert_openlineage_events(home: Path, tasks: list[str]) -> None:
    """Each task emitted START then COMPLETE to the file transport, naming the datasets it touched."""
    from catalog.entries import openlineage_events, openlineage_file

    events = openlineage_events(openlineage_file(home))
    by_task: dict[str, list[str]] = {}
    for event in events:
        by_task.setdefault(event["job"]["name"], []).append(event["eventType"])
    for task in tasks:
        assert by_task.get(f"population.{task}") == ["START", "COMPLETE"], by_task
    register = next(e for e in events if e["job"]["name"] == "population.register")
    assert [(d["namespace"], d["name"]) for d in register["outputs"]] == [("hub", "shared.population")]
    extract = next(e for e in events if e["job"]["name"] == "population.extract")
    assert [d["namespace"] for d in extract["inputs"]] == ["hub-source:11100000000013338W"]


def _assert_no_key_material(keyring_path: Path, places: list[Path]) -> None:
    """No form of any data or master key appears in logs, XComs (Airflow's DB), the catalogue or tables."""
    import base64

    from masking.keys import Keyring

    keyring = Keyring.load(keyring_path)
    secrets: list[bytes] = []
    for info in keyring.versions():
        raw = keyring.key(info.kind, info.version).secret.reveal()
        secrets += [
            raw,
            raw.hex().encode(),
            base64.b64encode(raw),
            base64.urlsafe_b64encode(raw).rstrip(b"="),
        ]
    master = keyring_path.parent / "master.key"
    if master.exists():
        secrets.append(master.read_bytes().strip())
    assert secrets
    for place in places:
        if place.exists():
            content = place.read_bytes()
            leaked = [s for s in secrets if s in content]
            assert not leaked, f"key material found in {place}"


def test_failed_task_fails_the_run_with_the_hub_error(ready_hub, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from schemas.errors import FatalError

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow.db'}")
    ready_hub.masking.keyring_path.unlink()  # no keyring: extract must fail at once, not retry
    log = tmp_path / "airflow.log"
    airflow_runner.migrate(ready_hub, log_path=log)
    with pytest.raises(FatalError) as info:
        airflow_runner.run_dag("population", ready_hub, log_path=log)
    assert "hub keys init" in str(info.value)
