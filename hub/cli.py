"""The ``hub`` command: the everyday operations of the exchange hub.

Every expected failure is a :class:`schemas.errors.HubError`; :func:`main` prints its message
(one clear line, never a traceback) and exits with the error's code.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hub import (
    audit_cli,
    catalog_cli,
    corrections_cli,
    deliveries_cli,
    quality_cli,
    serve_cli,
    sharing_cli,
)
from hub.context import HubContext, hub_context
from hub.keys_cli import decrypt_app, keys_app
from hub.render import arrow_table
from hub.scan_cli import scan as scan_command
from hub.settings import HubSettings, get_settings
from schemas.errors import HubError

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
for _module in (catalog_cli, sharing_cli, quality_cli, corrections_cli, audit_cli, serve_cli, deliveries_cli):
    _module.register(app)

console = Console()
err = Console(stderr=True)


# -- broker -------------------------------------------------------------------------------


def _broker(settings: HubSettings):
    from catalog.deliveries import EmbeddedBroker

    return EmbeddedBroker(settings.home, settings.kafka.bootstrap_servers)


@broker_app.command("start")
def broker_start() -> None:
    """Start the embedded broker on 127.0.0.1 (no-op when already running)."""
    status = _broker(hub_context().settings).start()
    console.print(f"broker running at [bold]{status.address}[/] (pid {status.pid}, log {status.log_path})")


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the embedded broker (its topics are gone; replay them from the catalogue)."""
    _broker(hub_context().settings).stop()
    console.print("broker stopped")


@broker_app.command("status")
def broker_status() -> None:
    """Whether the embedded broker runs, where, and its log."""
    status = _broker(hub_context().settings).status()
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

    from catalog.metadata import migrate
    from schemas.errors import redact_url

    settings = hub_context().settings
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
    hub_context().store.engine.dispose()  # opening the store migrates it
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
    from hub.simulate import simulate as fill

    settings = hub_context().settings
    config = HubContext(settings).source(source)
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

    settings = hub_context().settings
    store = HubContext(settings).store
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

    settings = hub_context().settings
    with _progress() as bar:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=None)
            bar.update(tasks[step], completed=done)

        result = pipeline.run(source, settings=settings, full=full, publish_rows=publish, progress=progress)
    _print_batch(settings, result.batch_id)


@app.command("publish")
def publish_batch(
    batch_id: Annotated[
        str | None,
        typer.Argument(metavar="BATCH_ID", help="A registered batch: send its deliveries (after an outage)."),
    ] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Send every pending delivery, of every batch and grant.")
    ] = False,
    replay: Annotated[
        int | None,
        typer.Option(
            "--replay", metavar="GRANT", help="Send a grant the batches since --from-snapshot again."
        ),
    ] = None,
    from_snapshot: Annotated[
        int | None,
        typer.Option(
            "--from-snapshot", metavar="ID", help="With --replay: first snapshot (see `hub lineage`)."
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--as", envvar="HUB_USER", help="Who asks for a replay (recorded).")
    ] = None,
) -> None:
    """Send deliveries to the grants' topics: a batch's, every pending one, or a replay."""
    from hub import pipeline

    given = (("BATCH_ID", batch_id is not None), ("--pending", pending), ("--replay", replay is not None))
    chosen = [name for name, on in given if on]
    if len(chosen) != 1:
        raise typer.BadParameter(
            f"give exactly one of BATCH_ID, --pending or --replay GRANT (got {', '.join(chosen) or 'none'})"
        )
    if (replay is None) != (from_snapshot is None):
        raise typer.BadParameter("--replay GRANT and --from-snapshot ID go together")
    settings = hub_context().settings
    with _progress() as bar:
        task = bar.add_task("publish", total=None)

        def progress(_step: str, done: int) -> None:
            bar.update(task, completed=done)

        if batch_id is not None:
            sent = pipeline.publish(batch_id, settings=settings, progress=progress)
        elif replay is not None and from_snapshot is not None:
            report = pipeline.replay(replay, from_snapshot, actor=actor, settings=settings, progress=progress)
        else:
            report = pipeline.publish_pending(settings=settings, progress=progress)
    if batch_id is not None:
        batch = HubContext(settings).store.get_batch(batch_id)
        console.print(
            f"batch {batch_id}: {sent} messages sent now; {batch.status}, "
            f"{batch.messages_published} messages in all"
        )
        return
    _print_report(report)


def _print_report(report: Any) -> None:
    """What a send did: deliveries sent and cancelled, grants left to another sender."""
    if not (report.sent or report.cancelled or report.busy):
        console.print("nothing pending")
        return
    table = Table("delivery", "grant", "kind", "batch", "snapshot", "topic", "messages", "status")
    for d in report.sent:
        table.add_row(
            str(d.id), str(d.grant_id), d.kind.value, d.batch_id, str(d.snapshot_id), d.topic,
            f"{d.messages or 0:,}", "sent",
        )  # fmt: skip
    for d in report.cancelled:
        table.add_row(
            str(d.id), str(d.grant_id), d.kind.value, d.batch_id, str(d.snapshot_id), d.topic, "",
            Text(f"cancelled: {d.reason}"),
        )  # fmt: skip
    console.print(table)
    console.print(f"{report.messages():,} messages in {len(report.sent)} deliveries")
    for grant in report.busy:
        console.print(f"grant {grant}: another process is sending its deliveries (it sends what is pending)")


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


@app.command()
def query(
    sql: Annotated[
        str,
        typer.Argument(
            help="One SELECT over the system's granted views, e.g. SELECT count(*) FROM population."
        ),
    ],
    system: Annotated[
        str,
        typer.Option(
            "--as",
            envvar="HUB_SYSTEM",
            show_envvar=True,
            help="The consumer system asking (its grants decide what it sees).",
        ),
    ],
    purpose: Annotated[str, typer.Option(help="Why the data is needed; recorded with the query.")] = "",
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
    out: Annotated[
        Path | None, typer.Option(help="Write the result to this file instead of standard output.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows printed at most in table format.")] = 50,
    max_rows: Annotated[
        int | None, typer.Option(min=1, help="Rows returned at most (default: the API setting).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds the query may run (default: the API setting).")
    ] = None,
) -> None:
    """Query shared tables as a consumer system: only its grants, masked, and on record."""
    import getpass
    import socket

    from catalog.access import Gateway, Limits, QueryRequest, run_query
    from catalog.sharing import live_system
    from catalog.tables import QueryEngine

    settings = hub_context().settings
    store = HubContext(settings).store
    defaults = Limits(seconds=settings.api.query_seconds, rows=settings.api.query_max_rows)
    limits = Limits(
        seconds=timeout if timeout is not None else defaults.seconds,
        rows=max_rows if max_rows is not None else defaults.rows,
    )
    if output is OutputFormat.parquet and out is None and sys.stdout.isatty():
        raise typer.BadParameter("Parquet is binary: give --out FILE or redirect standard output")
    request = QueryRequest(
        system=live_system(store, system),
        sql=sql,
        purpose=purpose,
        client=f"cli:{getpass.getuser()}@{socket.gethostname()}",
        limits=limits,
    )
    result, entry = run_query(store, Gateway(QueryEngine(HubContext(settings).tables)), request)
    table = result.table
    if output is OutputFormat.table and out is None:
        console.print(arrow_table(table, limit))
    else:
        _write_result(table, output, out)
    snapshots = ", ".join(f"{d} snapshot {s}" for d, s in result.snapshots.items())
    note = " (truncated at the row limit)" if result.truncated else ""
    err.print(f"{table.num_rows} row(s){note}; {snapshots}; access-log entry {entry}")


def _write_result(table, output: OutputFormat, out: Path | None) -> None:
    import io

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    if output is OutputFormat.json:
        for row in table.to_pylist():
            sink.write((json.dumps(row, ensure_ascii=False, default=str) + "\n").encode())
    elif output is OutputFormat.csv:
        pacsv.write_csv(table, sink)
    elif output is OutputFormat.parquet:
        pq.write_table(table, sink)
    else:
        sink.write(str(table.to_pandas()).encode())
    if out is None:
        sys.stdout.buffer.write(sink.getvalue())
        sys.stdout.buffer.flush()
    else:
        out.write_bytes(sink.getvalue())


# -- batches ------------------------------------------------------------------------------


@batches_app.command("list")
def batches_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """Recent batches with their accounting."""

    table = Table("batch", "status", "in", "valid", "quarantined", "snapshot", "messages", "started")
    for b in hub_context().store.list_batches(dataset=dataset, limit=limit):
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
    _print_batch(hub_context().settings, batch_id)


def _print_batch(settings: HubSettings, batch_id: str) -> None:

    store = HubContext(settings).store
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
        ("held by the quality gate", b.held_at),
        ("released", f"{b.released_at} by {b.released_by}: {b.release_reason}" if b.released_at else None),
        ("registered", b.registered_at),
        ("warnings", b.warnings),
        ("data docs", b.data_docs),
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

    run_demo(hub_context().settings, rows=rows, console=console, progress=_progress)


@app.command("settings")
def show_settings() -> None:
    """Effective settings (URLs shown without passwords)."""
    from schemas.errors import redact_url

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
