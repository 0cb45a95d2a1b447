"""``hub query``: a consumer system's query through the gateway, on record."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.output import console, err
from hub.context import HubContext, hub_context
from hub.render import arrow_table

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

commands = typer.Typer()


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


@commands.command()
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


def register(app: typer.Typer) -> None:
    """Mount ``hub query``."""
    app.registered_commands.extend(commands.registered_commands)
