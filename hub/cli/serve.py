"""``hub serve``: the consumers' HTTP API (query, verify, catalogue) under uvicorn.

Start-up opens the metadata store, checks the keyring and loads the verification indexes
before listening, so a missing keyring or an unreachable database is one error line with
its exit code, as every ``hub`` command reports it. The API itself: docs/api.md.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

from hub.settings import get_settings

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add this module's command to the ``hub`` app."""
    app.command("serve")(serve)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: api.host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: api.port, 8000).")] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Print one line per HTTP request.")
    ] = True,
) -> None:
    """Serve the consumer API: POST /v1/query, POST /v1/verify, GET /v1/catalog (OpenAPI at /openapi.json)."""
    import uvicorn

    from catalog.access import create_app

    settings = get_settings()
    settings.ensure_home()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app(settings)
    where = f"http://{host or settings.api.host}:{port or settings.api.port}"
    console.print(
        f"serving the consumer API at [bold]{where}[/] (OpenAPI {where}/openapi.json, docs {where}/docs)"
    )
    uvicorn.run(
        app,
        host=host or settings.api.host,
        port=port or settings.api.port,
        proxy_headers=settings.api.proxy_headers,
        forwarded_allow_ips=settings.api.forwarded_allow_ips,
        access_log=access_log,
        log_level="info",
        server_header=False,
    )
