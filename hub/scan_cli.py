"""``hub scan``: run the leak scan over the hub's consumer-facing outputs.

Registered in :mod:`hub.cli` as ``app.command("scan")(scan)``. Exits 1 when anything is
found, so it can gate a release or a CI job; findings never show the leaked values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()

MESSAGE_LIMIT = 1_000_000
"""Messages read per topic at most: a whole demo topic, while bounding a runaway read."""


def scan(
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Only these datasets (default: all registered).")
    ] = None,
    topics: Annotated[bool, typer.Option("--topics", help="Also scan the datasets' Kafka topics.")] = False,
    path: Annotated[list[Path] | None, typer.Option("--path", help="Exported files to scan.")] = None,
    tables: Annotated[bool, typer.Option(help="Scan the shared tables.")] = True,
) -> None:
    """Find raw identity numbers, individual-business credit codes, mobiles and unmasked names."""
    from catalog.tables import SharedTables
    from hub.settings import get_settings
    from masking.scan import Finding, name_columns, scan_file, scan_messages, scan_table
    from schemas import load_contract

    settings = get_settings()
    findings: list[Finding] = []
    shared = None
    if tables or topics or dataset:
        assert settings.catalog.iceberg_url is not None and settings.catalog.warehouse is not None
        shared = SharedTables(
            settings.catalog.iceberg_url, settings.catalog.warehouse, namespace=settings.catalog.namespace
        )
    names = list(dataset) if dataset else (shared.datasets() if shared is not None else [])
    if tables and names and shared is not None:
        from catalog.query import QueryEngine

        engine = QueryEngine(shared)
        for name in names:
            result = engine.run(f'SELECT * FROM "{name}"', datasets=[name])
            findings += scan_table(result, source=f"table {name}", names=name_columns(load_contract(name)))
    if topics:
        from catalog.publish import read_messages, topic_name

        for name in names:
            topic = topic_name(settings.kafka.topic_prefix, name)
            messages = read_messages(settings.kafka.bootstrap_servers, topic, MESSAGE_LIMIT, timeout_s=10)
            findings += scan_messages(
                messages, source=f"topic {topic}", names=name_columns(load_contract(name))
            )
    for file in path or []:
        if not file.is_file():
            raise typer.BadParameter(f"{file} is not a file", param_hint="--path")
        file_names: tuple[str, ...] = ()
        for name in dataset or []:
            file_names += name_columns(load_contract(name))
        findings += scan_file(file, names=file_names)
    for finding in findings:
        console.print(f"[red]leak[/] {finding}")
    if findings:
        raise typer.Exit(1)
    console.print("no leaks found")
