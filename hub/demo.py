"""``hub demo``: three departments' data through the whole path on embedded defaults.

Keyring (created outside the repository if missing) -> embedded broker -> one synthetic
world behind three simulated department systems (population registry and
market-regulation register in SQLite, a certificate issuing system's HTTP API, and a GBK
CSV file drop) -> one DAG per source run by real Airflow (``airflow dags test``) -> each
batch's catalogue record, DuckDB queries over the shared tables (tokens join datasets
without raw identity numbers), and the messages a Kafka consumer reads back from the
topics of a subscriber system's grants, per batch.

Running it again is safe and shows incremental loading: the systems receive a further
day of changes (new, updated and deregistered records) and each source reads only those.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from hub.context import HubContext
from hub.render import arrow_table
from hub.settings import HubSettings
from schemas.errors import FatalError

# The demo imports the catalogue, masking and simulators inside its steps, as the commands do,
# so that importing it (to list commands) loads none of them.

SOURCES = ("population", "legal_entity", "certificate_api", "certificate_files")
DAG_TASKS = ("extract", "validate", "mask", "register", "publish")
SEED = 20261121
API_SHARE = 0.7
"""Share of certificates the issuing system serves by API; the rest arrive as a file drop."""
STEWARD = "demo.steward"
PURPOSE = "社会保险待遇资格认证 / social insurance eligibility"
SUBSCRIBER = ("111000000000130127", "人力资源和社会保障厅", "shebao-core", "社会保险核心业务系统")
"""The consumer department and system whose grants (one per dataset) receive the batches."""
DATASETS = ("population", "legal_entity", "certificate")

QUERIES = {
    "people by gender": (
        "SELECT gender, count(*) AS people, min(birth_year) AS born_from, max(birth_year) AS born_to "
        "FROM population GROUP BY gender ORDER BY gender"
    ),
    "legal representatives found in population (joined by token)": (
        "SELECT count(*) AS entities, count(p.person_token) AS representatives_in_population "
        "FROM legal_entity l LEFT JOIN population p ON l.legal_rep_token = p.person_token"
    ),
    "certificates by holder type": (
        "SELECT c.holder_code_type, count(*) AS certificates, count(p.person_token) AS holders_in_population "
        "FROM certificate c LEFT JOIN population p ON c.holder_token = p.person_token "
        "GROUP BY 1 ORDER BY 1"
    ),
    "a few shared people": (
        "SELECT person_token, name, gender, birth_year, division_code, address, mobile "
        "FROM population ORDER BY person_token LIMIT 3"
    ),
}


def run_demo(settings: HubSettings, *, rows: int, console: Console, progress: Callable[[], Any]) -> None:
    from catalog.deliveries import EmbeddedBroker
    from masking.keys import Keyring

    keyring_path = settings.masking.keyring_path
    if not keyring_path.exists():
        Keyring.init(keyring_path, master_key_file=settings.masking.master_key_file)
        console.print(f"[1/5] created keyring at {keyring_path} (mode 0600, outside the repository)")
    else:
        Keyring.load(keyring_path, master_key_file=settings.masking.master_key_file)
        console.print(f"[1/5] using keyring at {keyring_path}")

    if settings.kafka.embedded:
        status = EmbeddedBroker(settings.home, settings.kafka.bootstrap_servers).start()
        console.print(f"[2/5] embedded broker at {status.address} (log {status.log_path})")
    else:
        console.print(f"[2/5] using Kafka at {settings.kafka.bootstrap_servers}")

    _subscribe(settings, console=console)
    day = 1 + sum(
        1 for b in HubContext(settings).store.list_batches(dataset="population", limit=1000) if b.snapshot_id
    )
    with _departments(settings, rows=rows, day=day, console=console, progress=progress):
        batches = _run_dags(settings, console=console, progress=progress)
    _show(settings, batches, console=console)
    console.print(
        "The broker keeps running (`hub broker stop`); `hub query`, `hub batches list` and "
        "`hub sources` look further. Run `make demo` again for the next day's changes."
    )


def _subscribe(settings: HubSettings, *, console: Console) -> None:
    """A social-security system granted every dataset (once; later runs reuse the grants), so
    each batch is delivered to its grants' topics."""
    from catalog.sharing import (
        active_grant,
        add_department,
        add_owner_departments,
        add_person,
        add_system,
        approve_request,
        list_departments,
        list_people,
        list_systems,
        submit_request,
    )
    from schemas.contract import load_contract

    store = HubContext(settings).store
    code, department, system, name = SUBSCRIBER
    if STEWARD not in {person.name for person, _ in list_people(store)}:
        add_person(store, STEWARD, roles=["steward"], hub_wide=True, actor=STEWARD)
    add_owner_departments(store, [load_contract(d) for d in DATASETS], actor=STEWARD)
    if code not in {d.code for d in list_departments(store)}:
        add_department(store, code, department, actor=STEWARD)
    if system not in {s.id for s in list_systems(store)}:
        add_system(store, system, name, code, actor=STEWARD)  # its credential is not needed here
    grants = []
    for dataset in DATASETS:
        grant = active_grant(store, system, dataset)
        if grant is None:
            request, grant = submit_request(
                store, dataset, system=system, purpose=PURPOSE,
                actor=STEWARD,
            )  # fmt: skip
            grant = grant or approve_request(store, request.id, actor=STEWARD)
        grants.append(f"{dataset} grant {grant.id}")
    console.print(f"      subscriber {system} ({department}): {', '.join(grants)}")
    from catalog.entries import Catalogue

    catalogue = Catalogue(store, tables=HubContext(settings).tables)
    published = [catalogue.publish(dataset, by=STEWARD, note="demo") for dataset in DATASETS]
    console.print(
        "      catalogue entries published: "
        + ", ".join(f"{e.content.resource_code} {e.content.resource_name}" for e in published)
    )


@contextmanager
def _departments(
    settings: HubSettings, *, rows: int, day: int, console: Console, progress: Callable[[], Any]
) -> Iterator[None]:
    """Fill (day 1) or change (day 2 on) the simulated systems; serve the API while in use."""
    from connectors.config import FileConnectorConfig, expand
    from connectors.simulator import certificate, drop, legal_entity, population
    from connectors.simulator.issuing_api import IssuingApi
    from connectors.simulator.world import World
    from hub.simulate import target_url

    env = settings.source_env()
    world = World(seed=SEED, persons=rows, entities=max(rows // 5, 100), as_of=_as_of(settings, day))
    n_certificates = max(rows // 2, 100)
    population_url = target_url(HubContext(settings).source("population"), settings)
    entity_url = target_url(HubContext(settings).source("legal_entity"), settings)
    drop_source = HubContext(settings).source("certificate_files").connector
    if not isinstance(drop_source, FileConnectorConfig):
        raise FatalError("source certificate_files is expected to be a file drop")
    drops = Path(expand(drop_source.folder, env))
    drops.mkdir(parents=True, exist_ok=True)
    all_certificates = pa.Table.from_batches(list(certificate.generate(n_certificates, world=world)))
    served = int(n_certificates * API_SHARE)

    if day == 1:
        console.print(
            f"[3/5] simulating departments: {world.persons:,} people, {world.entities:,} legal entities, "
            f"{n_certificates:,} certificates ({served:,} by API, the rest as a GBK CSV drop)"
        )
        with progress() as bar:
            task = bar.add_task("registries", total=world.persons + world.entities)
            report = population.fill(
                population_url,
                world.persons,
                seed=world.seed,
                rates=world.population_rates,
                chunk_rows=world.population_chunk_rows,
                progress=lambda n: bar.update(task, completed=n),
            )
            entities = legal_entity.fill(
                entity_url,
                world.entities,
                world=world,
                progress=lambda n: bar.update(task, completed=world.persons + n),
            )
        console.print(f"      {report.summary()}")
        console.print(f"      {entities.summary()}")
        api_records = all_certificates.slice(0, served)
        drop.write_csv(
            certificate.to_csv_columns(all_certificates.slice(served)),
            drops / "certificates-day1.csv",
            headers=None,
        )
    else:
        console.print(f"[3/5] day {day}: the departments record a day of changes")
        people = population.changes(world.persons, seed=world.seed, day=day, rates=world.population_rates)
        population.apply_changes(population_url, "population_registry", people)
        firms = legal_entity.changes(world.entities, day=day, world=world)
        legal_entity.apply_changes(entity_url, "market_entities", firms)
        certs = certificate.changes(n_certificates, day=day, world=world)
        changed = certs.records()
        api_records = all_certificates.slice(0, served)
        console.print(
            f"      population {people.counts()}; legal entities {firms.counts()}; certificates {certs.counts()}"
        )
        drop.write_csv(
            certificate.to_csv_columns(changed.slice(changed.num_rows // 2)),
            drops / f"certificates-day{day}.csv",
            headers=None,
        )
        api_changes = changed.slice(0, changed.num_rows // 2)
    token = secrets.token_urlsafe(24)
    api = IssuingApi(certificate.to_system_columns(api_records), token=token)
    if day > 1:
        api.upsert(certificate.to_system_columns(api_changes))
    base_url = api.start()
    saved = {
        k: os.environ.get(k) for k in ("HUB_SOURCE_CERTIFICATE_API_URL", "HUB_SOURCE_CERTIFICATE_API_TOKEN")
    }
    os.environ["HUB_SOURCE_CERTIFICATE_API_URL"] = base_url
    os.environ["HUB_SOURCE_CERTIFICATE_API_TOKEN"] = token
    try:
        yield
    finally:
        api.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _as_of(settings: HubSettings, day: int) -> dt.datetime:
    """The world's reference time, fixed at day 1 and kept in the hub home, so that later
    days change the same world whatever the date (a new date would mean a new world)."""
    path = settings.home / "demo-world.json"
    if day > 1 and path.exists():
        return dt.datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["as_of"])
    from connectors.simulator.arrays import start_of_today

    as_of = start_of_today()
    path.write_text(json.dumps({"as_of": as_of.isoformat(), "seed": SEED}), encoding="utf-8")
    return as_of


def _run_dags(settings: HubSettings, *, console: Console, progress: Callable[[], Any]) -> dict[str, Any]:
    from hub import airflow_runner

    log_path = settings.home / "airflow" / "demo.log"
    console.print(f"[4/5] running one DAG per source through Airflow (log {log_path})")
    store = HubContext(settings).store
    batches: dict[str, Any] = {}
    with progress() as bar:
        steps = bar.add_task("airflow", total=1 + len(SOURCES) * len(DAG_TASKS))
        bar.update(steps, description="db migrate")
        airflow_runner.migrate(settings, log_path=log_path)
        bar.update(steps, advance=1)
        for i, source in enumerate(SOURCES):
            base = 1 + i * len(DAG_TASKS)

            def on_task(task_id: str, base: int = base, source: str = source) -> None:
                done = DAG_TASKS.index(task_id) if task_id in DAG_TASKS else 0
                bar.update(steps, completed=base + done, description=f"{source}.{task_id}")

            airflow_runner.run_dag(source, settings, log_path=log_path, on_task=on_task)
            batch = store.last_batch_of_source(source)
            if batch is None or batch.status != "published":
                raise FatalError(f"the {source} DAG left no published batch; see {log_path}")
            batches[source] = batch
        bar.update(steps, completed=1 + len(SOURCES) * len(DAG_TASKS), description="done")
    return batches


def _read_back(settings: HubSettings, batch: Any) -> int:
    """Messages a Kafka consumer finds on the grants' topics for the batch's deliveries."""
    from catalog.deliveries import count_messages, list_deliveries
    from catalog.metadata import DeliveryKind, DeliveryStatus

    read = 0
    for delivery in list_deliveries(
        HubContext(settings).store, batch_id=batch.id, status=DeliveryStatus.SENT, limit=None
    ):
        if delivery.kind is DeliveryKind.REPLAY:
            continue
        read += count_messages(
            settings.kafka.bootstrap_servers,
            delivery.topic,
            expected=delivery.messages,
            headers={"grant_id": str(delivery.grant_id), "snapshot_id": str(delivery.snapshot_id)},
        )
    return read


def _show(settings: HubSettings, batches: dict[str, Any], *, console: Console) -> None:
    from catalog.tables import QueryEngine

    console.print("[5/5] results")
    store = HubContext(settings).store
    table = Table("source", "rows in", "valid", "quarantined", "in = valid + q", "published", "read back")
    for source, batch in batches.items():
        read = _read_back(settings, batch)
        if read != batch.messages_published:
            raise FatalError(
                f"read back {read} messages of batch {batch.id} but {batch.messages_published} were published"
            )
        holds = batch.rows_in == batch.rows_valid + batch.rows_quarantined
        table.add_row(
            source,
            f"{batch.rows_in:,}",
            f"{batch.rows_valid:,}",
            f"{batch.rows_quarantined:,}",
            "holds" if holds else "BROKEN",
            f"{batch.messages_published:,}",
            f"{read:,}",
        )
    console.print(table)
    for source, batch in batches.items():
        console.print(f"  {source}: batch {batch.id}, Iceberg snapshot {batch.snapshot_id}")
    rules = Table("source", "rule", "field", "rows", title="quarantine by rule")
    for source, batch in batches.items():
        for rule, field, count in store.violations_summary(batch.id):
            rules.add_row(source, rule, field, str(count))
    if rules.row_count:
        console.print(rules)
    from catalog.access import Gateway, QueryRequest, run_query
    from catalog.sharing import live_system

    gateway = Gateway(QueryEngine(HubContext(settings).tables))
    subscriber = live_system(store, SUBSCRIBER[2])
    for title, sql in QUERIES.items():
        request = QueryRequest(system=subscriber, sql=sql, purpose=PURPOSE, client="hub demo")
        result, entry = run_query(store, gateway, request)
        console.print(f"DuckDB as {subscriber.id}, {title} (access-log entry {entry}):\n  {sql}")
        console.print(arrow_table(result.table, 10))
    population = batches["population"]
    if population.k_anonymity is not None:
        console.print(
            f"Unconditional view population_unconditional: k-anonymity {population.k_anonymity} "
            f"on gender, age band, prefecture ({population.k_suppressed_rows or 0} rows suppressed)"
        )
    from hub.leak_scan import scan_outputs

    findings = scan_outputs(settings, topics=True)
    if findings:
        raise FatalError(
            "leak scan found raw personal data in shared outputs: " + "; ".join(map(str, findings))
        )
    console.print(
        "Leak scan of every shared table, view and topic: no raw identifiers, mobiles or names found"
    )
    from catalog.audit import AccessLog

    log = AccessLog(store)
    verified = log.verify()
    if not verified.ok:
        raise FatalError(f"the access log does not verify: {verified}")
    actions: dict[str, int] = {}
    for logged in log.entries():
        key = f"{logged['action']} ({logged['outcome']})"
        actions[key] = actions.get(key, 0) + 1
    console.print(
        f"Access log: {sum(actions.values())} entries, hash chain and signed checkpoints verify; "
        + ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
    )
