"""Where commands write: the console for results, stderr for errors, and a progress bar."""

from __future__ import annotations

from rich.console import Console

console = Console()
err = Console(stderr=True)


def progress_bar():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
