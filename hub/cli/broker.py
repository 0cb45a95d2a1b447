"""``hub broker start|stop|status``: the embedded Kafka-compatible broker."""

from __future__ import annotations

import typer

from hub.cli.output import console
from hub.context import hub_context
from hub.settings import HubSettings

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

broker_app = typer.Typer(help="The embedded Kafka-compatible broker.", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    """Mount ``hub broker``."""
    app.add_typer(broker_app, name="broker")
