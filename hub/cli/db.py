"""``hub db current|upgrade``: the metadata database and its migrations."""

from __future__ import annotations

import typer

from hub.cli.output import console
from hub.context import hub_context

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

db_app = typer.Typer(help="The hub metadata database and its migrations.", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    """Mount ``hub db``."""
    app.add_typer(db_app, name="db")
