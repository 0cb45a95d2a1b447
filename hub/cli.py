"""The ``hub`` command: the everyday operations of the exchange hub.

Every expected failure is a :class:`hub.errors.HubError`; :func:`main` prints its message
(one clear line, never a traceback) and exits with the error's code.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub import audit_cli, catalog_cli, corrections_cli, quality_cli, sharing_cli
from hub.errors import HubError
from hub.keys_cli import decrypt_app, keys_app
from hub.scan_cli import scan as scan_command
from hub.settings import HubSettings, get_settings

app = typer.Typer(
    help="Inter-department government data-sharing exchange hub (政务数据共享交换平台).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
broker_app = typer.Typer(help="The embedded Kafka-compatible broker.", no_args_is_help=True)
db_app = typer.Typer(help="The hub metadata database and its migrations.", no_args_is_help=True)
batches_app = typer.Typer(help="Batch records: what came in, what was registered.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(decrypt_app)
app.add_typer(broker_app, name="broker")
app.add_typer(batches_app, name="batches")
app.add_typer(db_app, name="db")
app.command("scan")(scan_command)
for _module in (catalog_cli, sharing_cli, quality_cli, corrections_cli, audit_cli):
    _module.register(app)

console = Console()
err = Console(stderr=True)


def _settings() -> HubSettings:
    settings = get_settings()
    settings.ensure_home()
    return settings


# -- broker -------------------------------------------------------------------------------


def _broker(settings: HubSettings):
    from catalog.broker import EmbeddedBroker

    return EmbeddedBroker(settings.home, settings.kafka.bootstrap_servers)


@broker_app.command("start")
def broker_start() -> None:
    """Start the embedded broker on 127.0.0.1 (no-op when already running)."""
    status = _broker(_settings()).start()
    console.print(f"broker running at [bold]{status.address}[/] (pid {status.pid}, log {status.log_path})")


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the embedded broker (its topics are gone; replay them from the catalogue)."""
    _broker(_settings()).stop()
    console.print("broker stopped")


@broker_app.command("status")
def broker_status() -> None:
    """Whether the embedded broker runs, where, and its log."""
    status = _broker(_settings()).status()
    if status.running:
        console.print(f"running at {status.address} (pid {status.pid}, log {status.log_path})")
    else:
        console.print(f"not running (address {status.address}, log {status.log_path})")
        raise typer.Exit(1)


# -- metadata database --------------------------------------------------------------------


@db_app.command("current")
def db_current() -> None:
    """The revision the metadata database is at, and the newest one this hub knows."""
    from sqlalchemy import create_engine

    from catalog import migrate
    from hub.errors import redact_url

    settings = _settings()
    url = settings.catalog.metadata_url or ""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            at = migrate.current(connection)
    finally:
        engine.dispose()
    newest = migrate.heads()
    console.print(f"database {redact_url(url)}")
    console.print(f"  at revision  {', '.join(sorted(at)) or '(none: never migrated)'}")
    console.print(f"  newest       {', '.join(sorted(newest))}")
    if at != newest:
        console.print("  behind: it is upgraded the next time the hub opens it, or run `hub db upgrade`")
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the metadata database to the newest revision (also done whenever the hub opens it)."""
    from hub.pipeline import _store

    _store(_settings())
    db_current()


# -- sources ------------------------------------------------------------------------------


@app.command()
def simulate(
    source: Annotated[str, typer.Argument(help="Source whose department system to fill, e.g. population.")],
    rows: Annotated[int, typer.Option(min=1, help="Records to generate.")] = 100_000,
    url: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default: the source's own.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same records).")] = None,
    defect_rate: Annotated[
        float | None, typer.Option(min=0.0, max=0.1, help="Rate of each defect kind (default 0.2%).")
    ] = None,
) -> None:
    """Fill a simulated department system with records carrying known defects."""
    from hub.pipeline import _source
    from hub.simulate import simulate as fill

    settings = _settings()
    config = _source(source, settings)
    with _progress() as bar:
        task = bar.add_task("simulate", total=rows)
        report = fill(
            config,
            settings,
            rows=rows,
            url=url,
            seed=seed,
            defect_rate=defect_rate,
            progress=lambda done: bar.update(task, completed=done),
        )
    console.print(report.summary())


@app.command("sources")
def sources_list() -> None:
    """Sources with their department, dataset, kind, last batch and watermark."""
    from connectors.config import load_sources
    from hub.pipeline import _store

    settings = _settings()
    store = _store(settings)
    table = Table("source", "department", "dataset", "kind", "schedule", "last batch", "state", "watermark")
    for name, source in sorted(load_sources(settings.connectors.sources_dir).items()):
        last = store.last_batch_of_source(name)
        table.add_row(
            name,
            source.department.name,
            source.dataset,
            source.connector.kind,
            source.schedule,
            last.id if last else "",
            str(last.status) if last else "never run",
            store.last_watermark(name) or "",
        )
    console.print(table)


# -- pipeline -----------------------------------------------------------------------------


def _progress():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


@app.command("run")
def run_source(
    source: Annotated[str, typer.Argument(help="Source name (see `hub sources`), e.g. population.")],
    full: Annotated[
        bool, typer.Option(help="Read everything, not only changes since the watermark.")
    ] = False,
    publish: Annotated[bool, typer.Option(help="Publish registered rows to Kafka.")] = True,
) -> None:
    """Run one batch of a source in this process: extract, validate, mask, register, publish."""
    from hub import pipeline

    settings = _settings()
    with _progress() as bar:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=None)
            bar.update(tasks[step], completed=done)

        result = pipeline.run(source, settings=settings, full=full, publish_rows=publish, progress=progress)
    _print_batch(settings, result.batch_id)


@app.command("publish")
def publish_batch(batch_id: Annotated[str, typer.Argument(help="A registered batch id.")]) -> None:
    """Publish (again) the rows a registered batch committed, e.g. after a broker outage."""
    from hub import pipeline

    sent = pipeline.publish(batch_id, settings=_settings())
    console.print(f"published {sent} messages for batch {batch_id}")


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def query(
    sql: Annotated[
        str, typer.Argument(help="SQL over the shared datasets, e.g. SELECT count(*) FROM population.")
    ],
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
    limit: Annotated[int, typer.Option(help="Rows printed at most in table format.")] = 50,
) -> None:
    """Query the shared tables' current snapshots with DuckDB."""
    from catalog.query import QueryEngine
    from hub.pipeline import _tables

    result = QueryEngine(_tables(_settings())).run(sql)
    if output is OutputFormat.json:
        for row in result.to_pylist():
            sys.stdout.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    elif output is OutputFormat.csv:
        import pyarrow.csv as pacsv

        pacsv.write_csv(result, sys.stdout.buffer)
    else:
        console.print(_arrow_table(result, limit))


def _arrow_table(result, limit: int) -> Table:
    table = Table(*result.column_names, caption=f"{result.num_rows} row(s)")
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    return table


# -- batches ------------------------------------------------------------------------------


@batches_app.command("list")
def batches_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """Recent batches with their accounting."""
    from hub.pipeline import _store

    table = Table("batch", "status", "in", "valid", "quarantined", "snapshot", "messages", "started")
    for b in _store(_settings()).list_batches(dataset=dataset, limit=limit):
        table.add_row(
            b.id,
            b.status,
            *(str(v) if v is not None else "" for v in (b.rows_in, b.rows_valid, b.rows_quarantined)),
            str(b.snapshot_id or ""),
            str(b.messages_published if b.messages_published is not None else ""),
            f"{b.started_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)


@batches_app.command("show")
def batches_show(batch_id: Annotated[str, typer.Argument(help="Batch id.")]) -> None:
    """One batch's catalogue record and why rows were quarantined."""
    _print_batch(_settings(), batch_id)


def _print_batch(settings: HubSettings, batch_id: str) -> None:
    from hub.pipeline import _store

    store = _store(settings)
    b = store.get_batch(batch_id)
    record = Table(title=f"batch {b.id}", show_header=False)
    for label, value in (
        ("dataset", b.dataset),
        ("source", b.source),
        ("contract version", b.contract_version),
        ("status", b.status),
        ("rows in", b.rows_in),
        ("valid", b.rows_valid),
        ("quarantined", b.rows_quarantined),
        ("in == valid + quarantined", _accounting(b)),
        ("snapshot id", b.snapshot_id),
        ("k-anonymity of the unconditional view", b.k_anonymity),
        ("rows suppressed for k", b.k_suppressed_rows),
        ("messages published", b.messages_published),
        ("started", b.started_at),
        ("registered", b.registered_at),
        ("error", b.error),
    ):
        record.add_row(label, "" if value is None else str(value))
    console.print(record)
    summary = store.violations_summary(batch_id)
    if summary:
        rules = Table("rule", "field", "rows", title="quarantine by rule")
        for rule, field, count in summary:
            rules.add_row(rule, field, str(count))
        console.print(rules)


def _accounting(b) -> str:
    if None in (b.rows_in, b.rows_valid, b.rows_quarantined):
        return "pending"
    return "holds" if b.rows_in == b.rows_valid + b.rows_quarantined else "BROKEN"


# -- demo ---------------------------------------------------------------------------------


@app.command()
def demo(
    rows: Annotated[int, typer.Option(min=100, help="Simulated population records.")] = 100_000,
) -> None:
    """Whole path on embedded defaults: source -> Airflow DAG -> Iceberg -> DuckDB -> Kafka."""
    from hub.demo import run_demo

    run_demo(_settings(), rows=rows, console=console, progress=_progress)


@app.command("settings")
def show_settings() -> None:
    """Effective settings (URLs shown without passwords)."""
    from hub.errors import redact_url

    data = get_settings().model_dump(mode="json")
    for section in data.values():
        if isinstance(section, dict):
            for key, value in section.items():
                if isinstance(value, str) and "://" in value:
                    section[key] = redact_url(value)
    console.print_json(json.dumps(data, ensure_ascii=False))


def main() -> None:
    """Entry point: expected failures become one message and an exit code."""
    try:
        app()
    except HubError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()


__all__ = ["app", "main"]
