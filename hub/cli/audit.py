"""``hub audit ...``: verify the access log, report on it, export it, purge it past retention.

Reports and exports need a registered auditor (``--as NAME`` or ``HUB_USER``), and every
read of the log by an auditor is itself appended to the log. Failures are
:class:`schemas.errors.HubError` subclasses, printed by ``hub.cli.main`` as one line: a log that
does not verify exits 7 (naming the first bad entry), a refused read or purge exits 5.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.context import HubContext, hub_context
from hub.settings import get_settings

if TYPE_CHECKING:
    from catalog.audit import Filters, Report, Verification

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

audit_app = typer.Typer(
    help="The tamper-evident access log: verify, report, export, purge.", no_args_is_help=True
)
console = Console()

As = Annotated[
    str | None,
    typer.Option("--as", envvar="HUB_USER", show_envvar=True, help="Who is acting (a registered auditor)."),
]
System = Annotated[str | None, typer.Option("--system", help="Only this consumer system.")]
Dataset = Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")]
Since = Annotated[
    str | None, typer.Option("--since", help="From this UTC day or time (YYYY-MM-DD or ISO 8601), inclusive.")
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until", help="Up to this UTC day (inclusive) or time (exclusive), YYYY-MM-DD or ISO 8601."
    ),
]


class OutcomeChoice(StrEnum):
    allowed = "allowed"
    denied = "denied"


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


Outcome = Annotated[OutcomeChoice | None, typer.Option("--outcome", help="Only allowed or only denied.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``hub`` app."""
    app.add_typer(audit_app, name="audit")


# -- verify ------------------------------------------------------------------------------------


@audit_app.command("verify")
def verify(
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Check with these public keys only (`hub audit public-key --all` output), without the "
            "master key: hash chain and checkpoint signatures, not the MACs; nothing is recorded.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    actor: As = None,
) -> None:
    """Walk the chain and the signed checkpoints; name the first bad entry (exit 7) if any."""
    from catalog.audit import AccessLog, AuditIntegrityError, read_public_keys, record_access

    store = hub_context().store
    log = AccessLog(store)
    keys = None
    if public_key is not None:
        keys = read_public_keys(_read_text(public_key))
    result = log.verify(public_keys=keys)
    if public_key is None:
        record_access(
            store,
            action="audit.verify",
            outcome="allowed",
            actor=(actor or "").strip() or None,
            client=_client(),
            detail={"ok": result.ok, "entries": result.entries, "first_problem": _problem_seq(result)},
        )
    if as_json:
        console.print_json(json.dumps(_verification_dict(result)))
    else:
        _print_verification(result)
    if not result.ok:
        raise AuditIntegrityError(f"access log does not verify: {result.first_problem}")


def _problem_seq(result: Verification) -> int | None:
    problem = result.first_problem
    return problem.seq if problem is not None else None


def _verification_dict(result: Verification) -> dict[str, object]:
    return {
        "ok": result.ok,
        "entries": result.entries,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq,
        "checkpoints": result.checkpoints,
        "last_checkpoint_seq": result.last_checkpoint_seq,
        "macs_checked": result.macs_checked,
        "problems": [
            {"seq": p.seq, "checkpoint": p.checkpoint, "message": p.message} for p in result.problems
        ],
    }


def _print_verification(result: Verification) -> None:
    span = f"entries {result.first_seq}-{result.last_seq}" if result.entries else "no entries"
    checked = "hashes, MACs and signatures" if result.macs_checked else "hashes and signatures (no MAC key)"
    if result.ok:
        console.print(f"[green]access log verified[/]: {span} ({result.entries} entries), {checked}")
    else:
        console.print(f"[red]access log does NOT verify[/]: {len(result.problems)} problem(s)")
        for problem in result.problems:
            console.print(f"  - {problem}")
    if result.checkpoints:
        console.print(
            f"{result.checkpoints} signed checkpoint(s), the newest at entry {result.last_checkpoint_seq}"
        )
        if not result.macs_checked and result.last_seq and result.last_checkpoint_seq is not None:
            unsigned = result.last_seq - result.last_checkpoint_seq
            if unsigned > 0:
                console.print(
                    f"the {unsigned} entries after the newest checkpoint are checked by their hash chain "
                    "only: run verify with the keyring for their MACs"
                )


# -- report and export -------------------------------------------------------------------------


@audit_app.command("report")
def report(
    system: System = None,
    dataset: Dataset = None,
    since: Since = None,
    until: Until = None,
    outcome: Outcome = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with charts here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    actor: As = None,
) -> None:
    """Accesses by consumer system, dataset, day and outcome; denied attempts; unusual volumes."""
    from catalog.audit import AccessLog, record_access, require_auditor

    if html is not None:
        _writable(html, "--html")
    store = hub_context().store
    client = _client()
    auditor = require_auditor(store, actor, action="audit.report", client=client)
    filters = _filters(system, dataset, since, until, outcome)
    log = AccessLog(store)
    result = log.report(filters)
    verification = log.verify() if html is not None else None
    if html is not None:
        from hub.cli.audit_html import render

        result.verification = verification
        _write_text(html, render(result, auditor=auditor))
    record_access(
        store,
        action="audit.report",
        outcome="allowed",
        actor=auditor,
        system=system,
        dataset=dataset,
        client=client,
        rows=result.calls,
        detail={"filters": filters.describe(), "html": str(html) if html else None},
    )
    if as_json:
        console.print_json(json.dumps(result.as_dict(), default=str))
        return
    _print_report(result)
    if html is not None:
        console.print(f"HTML report written to [bold]{html}[/]")


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or parquet.")] = ExportFormat.csv,
    system: System = None,
    dataset: Dataset = None,
    since: Since = None,
    until: Until = None,
    outcome: Outcome = None,
    actor: As = None,
) -> None:
    """Write the entries, with their hashes and MACs, to CSV or Parquet."""
    from catalog.audit import AccessLog, record_access, require_auditor

    _writable(out, "--out")
    store = hub_context().store
    client = _client()
    auditor = require_auditor(store, actor, action="audit.export", client=client)
    filters = _filters(system, dataset, since, until, outcome)
    count = AccessLog(store).export(out, fmt=fmt.value, filters=filters)
    record_access(
        store,
        action="audit.export",
        outcome="allowed",
        actor=auditor,
        system=system,
        dataset=dataset,
        client=client,
        rows=count,
        detail={"filters": filters.describe(), "format": fmt.value, "out": str(out)},
    )
    console.print(f"{count} entries written to [bold]{out}[/] ({fmt.value})")


@audit_app.command("replay")
def replay(
    entry: Annotated[int, typer.Argument(help="Sequence number of a logged query.")],
    actor: As = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows printed at most.")] = 50,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write every row to this Parquet file.")
    ] = None,
) -> None:
    """Re-run a logged query against the snapshots it read, with the columns it was granted."""
    import pyarrow.parquet as pq

    from catalog.access import Gateway, replay_query
    from catalog.audit import record_access, require_auditor
    from catalog.tables import QueryEngine

    store = hub_context().store
    client = _client()
    auditor = require_auditor(store, actor, action="audit.replay", client=client)
    done = replay_query(store, Gateway(QueryEngine(HubContext(get_settings()).tables)), entry)
    table = done.result.table
    record_access(
        store,
        action="audit.replay",
        outcome="allowed",
        actor=auditor,
        system=done.entry["system"],
        dataset=done.entry["dataset"],
        rows=table.num_rows,
        client=client,
        detail={"entry": entry, "snapshots": done.result.snapshots},
    )
    logged = done.entry
    console.print(
        f"entry {entry}: {logged['at']:%Y-%m-%d %H:%M:%S} UTC, system {logged['system']}, "
        f"purpose {logged['purpose']!r}"
    )
    shown = Table(*table.column_names, caption=f"{table.num_rows} row(s)")
    for values in table.slice(0, limit).to_pylist():
        shown.add_row(*("" if v is None else str(v) for v in values.values()))
    console.print(shown)
    snapshots = ", ".join(f"{d} snapshot {s}" for d, s in done.result.snapshots.items())
    verdict = "the same row count as logged" if done.same_row_count else "[red]NOT the row count logged[/]"
    console.print(f"replayed against {snapshots}: {table.num_rows} rows, {verdict} ({done.logged_rows})")
    if out is not None:
        pq.write_table(table, out)
        console.print(f"rows written to [bold]{out}[/]")
    if not done.same_row_count:
        raise typer.Exit(1)


def _print_report(result: Report) -> None:
    shown = ", ".join(f"{k} {v}" for k, v in result.filters.describe().items()) or "all entries"
    console.print(
        f"[bold]access log report[/] ({shown}): {result.calls} entries, {result.rows} rows, "
        f"[red]{result.denied} denied[/]"
    )
    for title, column, tallies in (
        ("by consumer system", "system", result.by_system),
        ("by dataset", "dataset", result.by_dataset),
        ("by action", "action", result.by_action),
        ("by day", "day (UTC)", result.by_day),
    ):
        table = Table(column, "entries", "rows", "denied", title=title, title_justify="left")
        for t in tallies:
            table.add_row(t.name, str(t.calls), str(t.rows), f"[red]{t.denied}[/]" if t.denied else "0")
        console.print(table)
    if result.denied_entries:
        table = Table(
            "seq", "time (UTC)", "system", "actor", "action", "dataset", "reason",
            title=f"denied attempts ({result.denied}, newest first)", title_justify="left",
        )  # fmt: skip
        for e in result.denied_entries:
            table.add_row(
                str(e["seq"]),
                f"{e['at']:%Y-%m-%d %H:%M:%S}",
                e["system"] or "",
                e["actor"] or "",
                e["action"],
                e["dataset"] or "",
                e["reason"] or "",
            )
        console.print(table)
    rule = f"above {result.unusual_factor:g}x the system's median day, {result.unusual_min_days}+ active days"
    if result.unusual:
        table = Table(
            "system",
            "day",
            "measure",
            "value",
            "median",
            title=f"unusual volumes ({rule})",
            title_justify="left",
        )
        for u in result.unusual:
            table.add_row(u.system, u.day, u.metric, f"[red]{u.value}[/]", f"{u.median:g}")
        console.print(table)
    else:
        console.print(f"no unusual volumes ({rule})")


# -- retention ---------------------------------------------------------------------------------


@audit_app.command("purge")
def purge(
    before: Annotated[
        str, typer.Option("--before", help="Remove entries older than this UTC day (YYYY-MM-DD).")
    ],
    actor: As = None,
) -> None:
    """Remove entries older than a date past retention; a signed checkpoint keeps the chain verifiable."""
    from catalog.audit import AccessLog, require_auditor

    store = hub_context().store
    client = _client()
    day = _date(before, "--before")
    auditor = require_auditor(store, actor, action="audit.purge", client=client)
    result = AccessLog(store).purge(day, actor=auditor, client=client)
    if result.purged:
        console.print(
            f"{result.purged} entries before {day.isoformat()} purged; the log now starts at entry "
            f"{result.first_seq}, anchored by signed checkpoint {result.checkpoint}; recorded as entry {result.seq}"
        )
    else:
        console.print(f"no entries before {day.isoformat()} to purge; recorded as entry {result.seq}")


# -- checkpoints and keys ----------------------------------------------------------------------


@audit_app.command("checkpoints")
def checkpoints(
    write: Annotated[
        bool, typer.Option("--write", help="Write a signed checkpoint of the log as it is now.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the signed documents and signatures, for auditors to keep.")
    ] = False,
    actor: As = None,
) -> None:
    """The signed checkpoints of the log (and, with --write, a new one)."""
    from catalog.audit import AccessLog

    log = AccessLog(hub_context().store)
    if write:
        made = log.checkpoint(actor=(actor or "").strip() or None, client=_client())
        if not as_json:
            console.print(f"checkpoint {made.number} written at entry {made.seq}")
    found = log.checkpoints()
    if as_json:
        console.print_json(
            json.dumps(
                [{"document": c.document, "signature": c.signature} for c in found], ensure_ascii=False
            )
        )
        return
    if not found:
        every = get_settings().audit.checkpoint_every
        console.print(f"no checkpoints yet: one is written every {every} entries, or with --write")
        return
    table = Table("number", "time (UTC)", "reason", "entry", "first kept", "entries", "key", "head hash")
    for c in found:
        table.add_row(
            str(c.number),
            f"{c.at:%Y-%m-%d %H:%M:%S}",
            c.reason,
            str(c.seq),
            str(c.first_seq),
            str(c.entries),
            f"v{c.key_version}",
            c.head_hash[:16],
        )
    console.print(table)


@audit_app.command("public-key")
def public_key(
    every: Annotated[
        bool, typer.Option("--all", help="Every version (to check checkpoints signed before a rotation).")
    ] = False,
) -> None:
    """Print the checkpoint verification key (PEM): auditors check checkpoints with it, no secret needed."""
    from catalog.audit import load_keys, public_key_pem

    keys = load_keys()
    versions = keys.public_keys()
    chosen = versions if every else {keys.signing_version: versions[keys.signing_version]}
    for version, key in chosen.items():
        typer.echo(f"# gov-data-hub access-log checkpoint key, audit-sign version {version}")
        typer.echo(public_key_pem(key), nl=False)


# -- helpers -----------------------------------------------------------------------------------


def _client() -> str:
    """Where a command came from, for the log: ``cli:<os user>@<host>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"cli:{user}@{socket.gethostname()}"


def _moment(text: str, option: str, *, end: bool) -> datetime:
    """A UTC moment from a day (its start, or with ``end`` the next day's start) or ISO time."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def _filters(
    system: str | None,
    dataset: str | None,
    since: str | None,
    until: str | None,
    outcome: OutcomeChoice | None,
) -> Filters:
    from catalog.audit import Filters

    return Filters(
        system=system,
        dataset=dataset,
        since=_moment(since, "--since", end=False) if since else None,
        until=_moment(until, "--until", end=True) if until else None,
        outcome=outcome.value if outcome else None,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None


def _writable(path: Path, option: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise typer.BadParameter(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise typer.BadParameter(f"{option} {path}: folder {folder} is not writable")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
