"""``hub deliveries list|schema``: the delivery outbox and what a grant's subscriber receives.

Sending is ``hub publish`` (:mod:`hub.cli`); these commands only read. Expected failures
raise :class:`schemas.errors.HubError` subclasses, which ``hub.cli.main`` prints as one line.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hub.context import HubContext, hub_context

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

deliveries_app = typer.Typer(
    help="Deliveries to the grants' Kafka topics (the outbox) and their message schemas.",
    no_args_is_help=True,
)
console = Console()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``hub`` app."""
    app.add_typer(deliveries_app, name="deliveries")


def _when(moment: datetime | None) -> str:
    from catalog.sharing import CST

    return f"{moment.astimezone(CST):%Y-%m-%d %H:%M:%S}" if moment else ""


@deliveries_app.command("list")
def deliveries_list(
    grant: Annotated[int | None, typer.Option(help="Only this grant's deliveries.")] = None,
    batch: Annotated[str | None, typer.Option(help="Only this batch's deliveries.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, sent or cancelled.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only deliveries of this dataset.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """Deliveries, newest first: grant, batch, snapshot, status, messages, why one waits or was cancelled."""
    from catalog.deliveries import list_deliveries
    from catalog.metadata import DeliveryStatus

    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise typer.BadParameter(f"{status!r} is not one of pending, sent, cancelled", param_hint="--status")
    found = list_deliveries(
        hub_context().store, grant_id=grant, batch_id=batch, status=status, dataset=dataset, limit=limit
    )
    table = Table("delivery", "grant", "kind", "batch", "snapshot", "status", "messages", "at", "note")
    for d in found:
        note = d.reason if d.reason else (d.error or "")
        if d.requested_by:
            note = f"asked by {d.requested_by}" + (f"; {note}" if note else "")
        table.add_row(
            str(d.id),
            str(d.grant_id),
            d.kind.value,
            d.batch_id,
            str(d.snapshot_id),
            d.status.value,
            f"{d.messages:,}" if d.messages is not None else "",
            _when(d.sent_at or d.cancelled_at or d.created_at),
            Text(note),
        )
    console.print(table)


@deliveries_app.command("schema")
def deliveries_schema(
    grant: Annotated[int, typer.Argument(metavar="GRANT", help="Grant number (see `hub grants`).")],
    as_json: Annotated[bool, typer.Option("--json", help="The whole description as JSON.")] = False,
) -> None:
    """What a grant's subscriber receives: topic, key, headers and the JSON Schema of a value."""
    from catalog.deliveries import subscription

    settings = hub_context().settings
    described = subscription(HubContext(settings).store, grant, topic_prefix=settings.kafka.topic_prefix)
    if as_json:
        json.dump(described, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    console.print(
        Text(
            f"grant {described['grant']} ({described['state']}): {described['system']} of "
            f"{described['department']}, {described['dataset']} at the {described['level']} level"
        )
    )
    console.print(Text(f"topic    {described['topic']}"))
    console.print(Text(f"key      {described['key']}"))
    console.print(Text(f"headers  {', '.join(described['headers'])}"))
    console.print("value (JSON Schema):")
    console.print_json(json.dumps(described["value_schema"], ensure_ascii=False))
