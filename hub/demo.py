"""``hub demo``: the whole path on embedded defaults, safe to run again.

Keyring (created outside the repository if missing) -> embedded broker -> simulated
population registry -> the ``population`` DAG run by real Airflow (``airflow dags test``)
-> the batch's catalogue record, a DuckDB query over the shared table, and the number of
messages a Kafka consumer reads back for the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from hub.errors import FatalError
from hub.settings import HubSettings

DAG_TASKS = ("extract", "validate", "mask", "register", "publish")

DEMO_QUERY = """
SELECT gender, count(*) AS people, min(birth_year) AS born_from, max(birth_year) AS born_to,
       count(DISTINCT division_code) AS divisions
FROM population GROUP BY gender ORDER BY gender
""".strip()

SAMPLE_QUERY = (
    "SELECT person_token, name, gender, birth_year, division_code, address, mobile "
    "FROM population ORDER BY person_token LIMIT 5"
)


def run_demo(settings: HubSettings, *, rows: int, console: Console, progress: Callable[[], Any]) -> None:
    from catalog.broker import EmbeddedBroker
    from catalog.publish import count_messages, topic_name
    from catalog.query import QueryEngine
    from connectors.simulator.population import fill
    from hub import airflow_runner
    from hub.pipeline import _store, _tables
    from masking.keys import Keyring

    keyring_path = settings.masking.keyring_path
    if not keyring_path.exists():
        Keyring.init(keyring_path)
        console.print(f"[1/5] created keyring at {keyring_path} (mode 0600, outside the repository)")
    else:
        Keyring.load(keyring_path)
        console.print(f"[1/5] using keyring at {keyring_path}")

    if settings.kafka.embedded:
        status = EmbeddedBroker(settings.home, settings.kafka.bootstrap_servers).start()
        console.print(f"[2/5] embedded broker at {status.address} (log {status.log_path})")
    else:
        console.print(f"[2/5] using Kafka at {settings.kafka.bootstrap_servers}")

    console.print(f"[3/5] simulating the population registry: {rows:,} records")
    with progress() as bar:
        task = bar.add_task("simulate", total=rows)
        assert settings.connectors.population_url is not None
        report = fill(
            settings.connectors.population_url,
            rows,
            table=settings.connectors.population_table,
            progress=lambda done: bar.update(task, completed=done),
        )
    console.print(f"      {report.summary()}")

    log_path = settings.home / "airflow" / "demo.log"
    console.print(f"[4/5] running DAG 'population' through Airflow (log {log_path})")
    with progress() as bar:
        steps = bar.add_task("airflow", total=len(DAG_TASKS) + 1)
        bar.update(steps, description="db migrate")
        airflow_runner.migrate(settings, log_path=log_path)
        bar.update(steps, advance=1)

        def on_task(task_id: str) -> None:
            done = DAG_TASKS.index(task_id) + 1 if task_id in DAG_TASKS else 0
            bar.update(steps, completed=done, description=task_id)

        airflow_runner.run_dag("population", settings, log_path=log_path, on_task=on_task)
        bar.update(steps, completed=len(DAG_TASKS) + 1, description="done")

    store = _store(settings)
    batch = store.latest_batch("population")
    if batch is None or batch.status != "published":
        raise FatalError(f"the DAG run left no published batch; see {log_path}")
    console.print("[5/5] results")
    from hub.cli import _arrow_table, _print_batch

    _print_batch(settings, batch.id)
    engine = QueryEngine(_tables(settings))
    console.print(f"DuckDB over the shared table:\n{DEMO_QUERY}")
    console.print(_arrow_table(engine.run(DEMO_QUERY), 10))
    console.print(SAMPLE_QUERY)
    console.print(_arrow_table(engine.run(SAMPLE_QUERY), 5))
    topic = topic_name(settings.kafka.topic_prefix, "population")
    read = count_messages(
        settings.kafka.bootstrap_servers, topic, expected=batch.messages_published, batch_id=batch.id
    )
    console.print(
        f"Kafka consumer read back [bold]{read:,}[/] messages of batch {batch.id} from topic {topic} "
        f"({batch.messages_published:,} published)"
    )
    if read != batch.messages_published:
        raise FatalError(f"read back {read} messages but {batch.messages_published} were published")
