"""``hub scan``: run the leak scan over the hub's consumer-facing outputs.

The scan itself is :func:`hub.leak_scan.scan_outputs`. Exits 1 when anything is
found, so it can gate a release or a CI job; findings never show the leaked values.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from hub.leak_scan import scan_outputs

if TYPE_CHECKING:
    pass

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

console = Console()


def scan(
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Only these datasets (default: all registered).")
    ] = None,
    topics: Annotated[
        bool, typer.Option("--topics", help="Also scan the Kafka topic of every grant delivered to.")
    ] = False,
    path: Annotated[list[Path] | None, typer.Option("--path", help="Exported files to scan.")] = None,
    tables: Annotated[bool, typer.Option(help="Scan the shared tables.")] = True,
) -> None:
    """Find raw identity numbers, individual-business credit codes, mobiles and unmasked names."""
    from hub.settings import get_settings

    for file in path or []:
        if not file.is_file():
            raise typer.BadParameter(f"{file} is not a file", param_hint="--path")
    findings = scan_outputs(get_settings(), datasets=dataset, tables=tables, topics=topics, paths=path or [])
    for finding in findings:
        console.print(f"[red]leak[/] {finding}")
    if findings:
        raise typer.Exit(1)
    console.print("no leaks found")


def register(app: typer.Typer) -> None:
    """Mount ``hub scan``."""
    app.command("scan")(scan)
