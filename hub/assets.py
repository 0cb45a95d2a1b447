"""Airflow Assets of the hub: one per shared dataset, and the retry policy every task uses.

Producers (the register task of a dataset's DAG) name the asset in ``outlets``; DAGs that
consume a dataset (later: per-grant deliveries) schedule on it. Only DAG files import this
module, so importing Airflow here costs the ``hub`` command nothing.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, ExceptionRetryPolicy, RetryAction, RetryRule


def shared_dataset(name: str) -> Asset:
    """The asset of a shared dataset's current table (changes on every registered batch)."""
    return Asset(name=f"shared.{name}", uri=f"hub://shared/{name}", group="shared-dataset")


RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception="schemas.errors.TransientError",
            action=RetryAction.RETRY,
            retry_delay=timedelta(minutes=2),
            reason="a source, the metadata store or the broker was unreachable",
        ),
        RetryRule(
            exception="schemas.errors.HubError",
            action=RetryAction.FAIL,
            reason="configuration, contract or data problem: retrying cannot help",
        ),
    ],
)
"""Transient errors retry; every other hub error fails the task at once (STYLE rule 3)."""


def source_schedule(
    schedule: str, depends_on: tuple[str, ...] = (), timezone: str = "Asia/Shanghai"
) -> object:
    """A source's own schedule, or also whenever every dataset it depends on has been refreshed.

    A source whose checks read other datasets (certificate holders must exist in population
    or legal entities) runs after those tables change, so its checks see fresh data.
    """
    if not depends_on:
        return schedule
    from airflow.sdk import AssetAll, AssetOrTimeSchedule, CronTriggerTimetable

    return AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(schedule, timezone=timezone),
        assets=AssetAll(*(shared_dataset(name) for name in depends_on)),
    )
