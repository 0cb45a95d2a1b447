"""One DAG per department source file: extract -> validate -> mask -> register -> publish.

Each task calls the same library step as ``hub run SOURCE`` and hands the next task only
the batch reference (id, source, dataset, staging folder). Rows failing the contract's
checks are quarantined in ``validate``; ``register`` commits one atomic Iceberg snapshot
and updates the dataset's asset; ``publish`` can be re-run alone after a broker outage.

Parsing reads only the small source files (no contracts, no databases), so it stays cheap.

Tasks declare lineage for OpenLineage (``airflow.cfg`` [openlineage]): ``extract`` reads the
department's source, ``register`` writes the shared table, ``publish`` reads it, so each
task's START and COMPLETE events name the datasets it touched. The hub's own lineage (source ->
batch -> snapshot) is in its metadata: ``hub lineage DATASET``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.lineage.entities import Table
from airflow.sdk import dag, task

from connectors.config import SourceConfig, load_sources
from hub.assets import RETRY_POLICY, shared_dataset, source_schedule
from hub.settings import get_settings


def source_table(source: SourceConfig) -> Table:
    """The department system a source reads, as an OpenLineage dataset (never its URL)."""
    return Table(
        cluster=f"hub-source:{source.department.code}",
        database=source.connector.kind,
        name=source.name,
        description=f"{source.department.name}: source {source.name} of dataset {source.dataset}",
    )


def shared_table(dataset: str) -> Table:
    """A shared dataset's Iceberg table (namespace ``shared``) as an OpenLineage dataset."""
    return Table(cluster="hub", database="shared", name=dataset, description=f"shared table of {dataset}")


def source_dag(source: SourceConfig) -> None:
    name = source.name

    @dag(
        dag_id=name,
        schedule=source_schedule(source.schedule, source.depends_on),
        start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
        catchup=False,
        max_active_runs=1,
        tags=["hub", source.dataset, source.department.name],
        doc_md=f"{__doc__}\n\nSource `{name}` of {source.department.name} feeds dataset `{source.dataset}`.",
        default_args={
            "retries": 2,
            "retry_delay": timedelta(minutes=2),
            "retry_policy": RETRY_POLICY,
        },
    )
    def pipeline() -> None:
        @task(inlets=[source_table(source)])
        def extract() -> dict[str, str]:
            from hub import pipeline

            return pipeline.extract(name).to_xcom()

        @task
        def validate(ref: dict[str, str]) -> dict[str, str]:
            from hub import pipeline

            return pipeline.validate(pipeline.BatchRef.from_xcom(ref)).to_xcom()

        @task
        def mask(ref: dict[str, str]) -> dict[str, str]:
            from hub import pipeline

            return pipeline.mask(pipeline.BatchRef.from_xcom(ref)).to_xcom()

        @task(outlets=[shared_dataset(source.dataset), shared_table(source.dataset)])
        def register(ref: dict[str, str]) -> str:
            from hub import pipeline

            batch = pipeline.BatchRef.from_xcom(ref)
            pipeline.register(batch)
            return batch.batch_id

        @task(inlets=[shared_table(source.dataset)])
        def publish(batch_id: str) -> int:
            from hub import pipeline

            return pipeline.publish(batch_id)

        publish(register(mask(validate(extract()))))

    pipeline()


for _source in load_sources(get_settings().connectors.sources_dir, check_contract=False).values():
    source_dag(_source)
