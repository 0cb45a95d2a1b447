"""The population DAG run by real Airflow (``airflow dags test``), as ``hub demo`` does."""

from __future__ import annotations

from pathlib import Path

from hub import airflow_runner


def test_dag_runs_end_to_end_through_airflow(ready_hub, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from catalog.publish import count_messages, topic_name
    from catalog.query import QueryEngine
    from hub import pipeline
    from hub.simulate import simulate

    # Airflow's own metadata database for this test only.
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow.db'}")
    report = simulate(pipeline._source("population", ready_hub), ready_hub, rows=2_000, seed=11)
    log = tmp_path / "airflow.log"
    started: list[str] = []
    airflow_runner.migrate(ready_hub, log_path=log)
    airflow_runner.run_dag("population", ready_hub, log_path=log, on_task=started.append)
    assert started == ["extract", "validate", "mask", "register", "publish"]

    batch = pipeline._store(ready_hub).latest_batch("population")
    assert batch is not None and batch.status == "published"
    assert batch.rows_in == 2_000
    assert batch.rows_quarantined == report.expected_quarantined
    count = QueryEngine(pipeline._tables(ready_hub)).run("SELECT count(*) AS n FROM population")
    assert count.column("n")[0].as_py() == batch.rows_valid
    topic = topic_name(ready_hub.kafka.topic_prefix, "population")
    assert count_messages(ready_hub.kafka.bootstrap_servers, topic, batch_id=batch.id) == batch.rows_valid
    _assert_no_key_material(ready_hub.masking.keyring_path, log.read_text(encoding="utf-8"))


def _assert_no_key_material(keyring: Path, text: str) -> None:
    """No string of the keyring long enough to be key material appears in the Airflow log."""
    import json

    def strings(value: object) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) and len(value) >= 32 else []

    secrets = strings(json.loads(keyring.read_text(encoding="utf-8")))
    assert secrets, "the keyring holds no key material to look for"
    assert not [s for s in secrets if s in text]


def test_failed_task_fails_the_run_with_the_hub_error(ready_hub, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from hub.errors import FatalError

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow.db'}")
    ready_hub.masking.keyring_path.unlink()  # no keyring: extract must fail at once, not retry
    log = tmp_path / "airflow.log"
    airflow_runner.migrate(ready_hub, log_path=log)
    with pytest.raises(FatalError) as info:
        airflow_runner.run_dag("population", ready_hub, log_path=log)
    assert "hub keys init" in str(info.value)
