"""Population basic information (人口基础信息): registry -> checks -> masking -> shared table -> topic.

Each task calls the same library step as ``hub run population`` and hands the next task
only the batch id and its staging folder. Rows failing the contract's checks are
quarantined in ``validate``; ``register`` commits one atomic Iceberg snapshot and updates
the ``shared.population`` asset; ``publish`` can be re-run alone after a broker outage.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from hub.assets import RETRY_POLICY, shared_dataset

DATASET = "population"


@dag(
    dag_id=DATASET,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["hub", "population", "人口"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_policy": RETRY_POLICY,
    },
)
def population() -> None:
    @task
    def extract() -> dict[str, str]:
        from hub import pipeline

        return pipeline.extract(DATASET).to_xcom()

    @task
    def validate(ref: dict[str, str]) -> dict[str, str]:
        from hub import pipeline

        return pipeline.validate(pipeline.BatchRef.from_xcom(ref)).to_xcom()

    @task
    def mask(ref: dict[str, str]) -> dict[str, str]:
        from hub import pipeline

        return pipeline.mask(pipeline.BatchRef.from_xcom(ref)).to_xcom()

    @task(outlets=[shared_dataset(DATASET)])
    def register(ref: dict[str, str]) -> str:
        from hub import pipeline

        batch = pipeline.BatchRef.from_xcom(ref)
        pipeline.register(batch)
        return batch.batch_id

    @task
    def publish(batch_id: str) -> int:
        from hub import pipeline

        return pipeline.publish(batch_id)

    publish(register(mask(validate(extract()))))


population()
