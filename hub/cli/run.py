"""``hub simulate``, ``hub sources``, ``hub run`` and ``hub publish``: a source's batches through the pipeline."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from hub.cli.batches import print_batch
from hub.cli.output import console, progress_bar
from hub.context import HubContext, hub_context

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

commands = typer.Typer()


# -- sources ------------------------------------------------------------------------------


@commands.command()
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
    with progress_bar() as bar:
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


@commands.command("sources")
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


@commands.command("run")
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
    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=None)
            bar.update(tasks[step], completed=done)

        result = pipeline.run(source, settings=settings, full=full, publish_rows=publish, progress=progress)
    print_batch(settings, result.batch_id)


@commands.command("publish")
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
    with progress_bar() as bar:
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


def register(app: typer.Typer) -> None:
    """Mount the pipeline's commands at the top level."""
    app.registered_commands.extend(commands.registered_commands)
