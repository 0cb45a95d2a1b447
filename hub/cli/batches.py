"""``hub batches list|show`` (and the quarantine and release commands of :mod:`hub.cli.corrections`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from hub.cli.output import console
from hub.context import HubContext, hub_context
from hub.settings import HubSettings

batches_app = typer.Typer(help="Batch records: what came in, what was registered.", no_args_is_help=True)


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
    print_batch(hub_context().settings, batch_id)


def print_batch(settings: HubSettings, batch_id: str) -> None:

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


def register(app: typer.Typer) -> None:
    """Mount ``hub batches``."""
    app.add_typer(batches_app, name="batches")
