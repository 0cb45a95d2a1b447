"""``hub demo`` and ``hub settings``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hub.cli.output import console, progress_bar
from hub.context import hub_context
from hub.settings import get_settings

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

commands = typer.Typer()


# -- demo ---------------------------------------------------------------------------------


@commands.command()
def demo(
    rows: Annotated[int, typer.Option(min=100, help="Simulated population records.")] = 100_000,
) -> None:
    """Whole path on embedded defaults: source -> Airflow DAG -> Iceberg -> DuckDB -> Kafka."""
    from hub.demo import run_demo

    run_demo(hub_context().settings, rows=rows, console=console, progress=progress_bar)


@commands.command("settings")
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


def register(app: typer.Typer) -> None:
    """Mount ``hub demo`` and ``hub settings``."""
    app.registered_commands.extend(commands.registered_commands)
