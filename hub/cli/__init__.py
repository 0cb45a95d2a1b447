"""The ``hub`` command: the everyday operations of the exchange hub.

One module per command group; each has a ``register(app)`` that mounts its commands, and
:data:`GROUPS` mounts them all, in this order (``batches`` before ``corrections``, which adds
two commands to it). Every command works over one :class:`hub.context.HubContext`.

Every expected failure is a :class:`schemas.errors.HubError`; :func:`main` prints its message
(one clear line, never a traceback) and exits with the error's code.
"""

from __future__ import annotations

import typer

from hub.cli import (
    audit,
    batches,
    broker,
    catalog,
    corrections,
    db,
    deliveries,
    demo,
    keys,
    quality,
    query,
    run,
    scan,
    serve,
    sharing,
)
from hub.cli.output import err
from schemas.errors import HubError

app = typer.Typer(
    help="Inter-department government data-sharing exchange hub (政务数据共享交换平台).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

GROUPS = (
    keys,
    broker,
    batches,
    db,
    run,
    query,
    scan,
    catalog,
    sharing,
    quality,
    corrections,
    audit,
    serve,
    deliveries,
    demo,
)
"""Command modules, mounted in this order (the order ``hub --help`` lists them)."""

for _group in GROUPS:
    _group.register(app)


def main() -> None:
    """Entry point: expected failures become one message and an exit code."""
    try:
        app()
    except HubError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None


__all__ = ["GROUPS", "app", "main"]
