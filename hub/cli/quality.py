"""``hub quality ...``: the quality scorecard and each batch's Data Docs.

Expected failures raise :class:`schemas.errors.HubError` subclasses, which ``hub.cli.main``
prints as one line with the error's exit code.
"""

from __future__ import annotations

import sys
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hub.context import HubContext, hub_context
from hub.settings import HubSettings

if TYPE_CHECKING:
    from catalog.entries import Scorecard

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

quality_app = typer.Typer(help="Data quality: scorecards and Data Docs.", no_args_is_help=True)

console = Console()
err = Console(stderr=True)

_STATUS = {"ok": "[green]ok[/]", "late": "[bold red]late[/]", "never": "[dim]never[/]"}


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


def _sources(settings: HubSettings) -> dict[str, Any]:
    """The source files, for batches recorded before their department code was; none if unreadable."""
    from connectors.config import load_sources
    from schemas.errors import HubError

    try:
        return dict(load_sources(settings.connectors.sources_dir, check_contract=False))
    except HubError:
        return {}


@quality_app.command("report")
def report(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset, e.g. population.")] = None,
    department: Annotated[
        str | None, typer.Option("--department", help="Only this department (code or name).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only batches started on or after this date.")] = None,
    last: Annotated[int, typer.Option(min=0, help="Batches (and days) in each trend.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scorecard as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML here instead of beside the Data Docs.")
    ] = None,
) -> None:
    """Quality scorecard: completeness, validity, uniqueness, timeliness; by dataset and department."""
    from catalog.entries import parse_since, render_html, scorecard, to_json_text
    from quality.datadocs import SCORECARD_FILE, datadocs_root

    settings = hub_context().settings
    root = datadocs_root(settings.home)
    card = scorecard(
        HubContext(settings).store,
        datadocs=root,
        dataset=dataset,
        department=department,
        since=parse_since(since),
        last=last,
        sources=_sources(settings),
    )
    if as_json:
        sys.stdout.write(to_json_text(card) + "\n")
        if html is not None:
            render_html(card, html)
        return
    _print(card)
    page = render_html(card, html or root / SCORECARD_FILE)
    console.print(f"scorecard with trend charts: [bold]{page}[/]", soft_wrap=True)


def _print(card: Scorecard) -> None:
    datasets = Table(title="数据质量评分卡 / quality by dataset")
    for column in ("dataset", "department", "batches", "rows", "completeness", "validity", "uniqueness"):
        datasets.add_column(column, justify="left" if column in ("dataset", "department") else "right")
    datasets.add_column("timeliness")
    for d in card.datasets:
        t = d.timeliness
        age = f" {t.age.total_seconds() / 3600:.0f}h/{t.allowed.total_seconds() / 3600:.0f}h" if t.age else ""
        datasets.add_row(
            d.dataset,
            d.department,
            str(d.score.batches),
            f"{d.score.rows_in:,}",
            _pct(d.score.completeness),
            _pct(d.score.validity),
            _pct(d.score.uniqueness),
            f"{_STATUS[t.status]} {t.cycle}{age}",
        )
    console.print(datasets)
    departments = Table(title="按部门 / quality by department")
    for column in ("department", "code", "datasets", "batches", "rows", "completeness", "validity"):
        departments.add_column(column, justify="right" if column in ("batches", "rows") else "left")
    departments.add_column("uniqueness", justify="right")
    departments.add_column("timeliness")
    for dep in card.departments:
        departments.add_row(
            dep.department,
            dep.department_code,
            ", ".join(dep.datasets),
            str(dep.score.batches),
            f"{dep.score.rows_in:,}",
            _pct(dep.score.completeness),
            _pct(dep.score.validity),
            _pct(dep.score.uniqueness),
            _STATUS[dep.timeliness],
        )
    console.print(departments)
    for d in card.datasets:
        if not d.trend:
            continue
        trend = Table(title=f"{d.dataset}: last {len(d.trend)} batch(es)")
        for column in ("batch", "started", "status", "rows", "completeness", "validity", "uniqueness"):
            trend.add_column(column, justify="left" if column in ("batch", "started", "status") else "right")
        for b in reversed(d.trend):
            trend.add_row(
                b.batch_id,
                f"{b.started_at:%Y-%m-%d %H:%M}",
                b.status,
                f"{b.rows_in:,}",
                _pct(b.completeness) + ("*" if b.basis != "all fields" else ""),
                _pct(b.validity),
                _pct(b.uniqueness),
            )
        console.print(trend)
    for note in card.notes:
        console.print(f"[dim]* {note}[/]")


@quality_app.command("docs")
def docs(
    batch_id: Annotated[str, typer.Argument(help="Batch id (see `hub batches list`).")],
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in a web browser.")] = False,
) -> None:
    """Where a batch's Great Expectations Data Docs are (the page its validation rendered)."""
    from quality.datadocs import datadocs_root, read_profile
    from quality.errors import DataDocsError

    settings = hub_context().settings
    batch = HubContext(settings).store.get_batch(batch_id)
    root = datadocs_root(settings.home)
    recorded = getattr(batch, "data_docs", None)
    profile = read_profile(root, batch.dataset, batch.id)
    candidates = [Path(recorded)] if recorded else []
    if profile and profile.get("data_docs"):
        candidates.append(root / str(profile["data_docs"]))
    page = next((p for p in candidates if p.is_file()), None)
    if page is None:
        where = f" (recorded at {recorded}, which is gone)" if recorded else ""
        raise DataDocsError(
            f"batch {batch_id} ({batch.dataset}) has no Data Docs{where}: they are built when the "
            f"batch is validated, under {root / batch.dataset}"
        )
    sys.stdout.write(f"{page}\n")
    if open_page and not webbrowser.open(page.resolve().as_uri()):
        err.print("no web browser could be started; open the path above")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``hub`` app."""
    app.add_typer(quality_app, name="quality")
