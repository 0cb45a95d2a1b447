"""``hub corrections ...`` (校核纠错) and the stewards' batch commands ``hub batches release``
and ``hub batches quarantine``.

Raw quarantined values are shown only to a steward of the batch's source department
(``--as NAME``), and each such reading is recorded in the access log; anyone else sees the
row through the contract's masking rules, or is refused when naming someone who is not a
steward of that department.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.context import HubContext, hub_context
from hub.settings import HubSettings

if TYPE_CHECKING:
    from catalog.metadata import Correction, MetadataStore

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

corrections_app = typer.Typer(
    help="Correction requests (校核纠错): wrong data back to the department that owns it.",
    no_args_is_help=True,
)
console = Console()

As = Annotated[
    str | None,
    typer.Option("--as", envvar="HUB_USER", help="Who is acting (a registered person); default $HUB_USER."),
]


class Status(StrEnum):
    open = "open"
    resolved = "resolved"
    corrected = "corrected"


def _today() -> date:
    from catalog.sharing import today_cst

    return today_cst()


# -- hub corrections ------------------------------------------------------------------------


@corrections_app.command("list")
def corrections_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only requests in this state.")] = None,
    department: Annotated[str | None, typer.Option(help="Only this source department (code).")] = None,
    overdue: Annotated[bool, typer.Option(help="Only open requests past their deadline.")] = False,
    limit: Annotated[int, typer.Option(help="How many, earliest deadline first.")] = 50,
) -> None:
    """Correction requests with their deadlines, earliest first."""
    from catalog.corrections import Corrections

    store = hub_context().store
    today = _today()
    requests = Corrections(store).find(
        dataset=dataset,
        status=status.value if status else None,
        department_code=department,
        overdue_on=today if overdue else None,
        limit=limit,
    )
    table = Table("id", "dataset", "department", "status", "due", "key", "fields", "rules", "filed by")
    for r in requests:
        late = r.status.value == "open" and r.due_on < today
        table.add_row(
            str(r.id),
            r.dataset,
            r.department or r.department_code,
            r.status.value,
            f"[red]{r.due_on} overdue[/]" if late else str(r.due_on),
            _short(r.key_token) if r.key_token else f"batch row {r.row}",
            r.fields,
            r.rules or "",
            r.filed_by,
        )
    console.print(table)
    counts = Corrections(store).counts(dataset=dataset, today=today)
    console.print(", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "no requests")


def _short(token: str, width: int = 24) -> str:
    return token if len(token) <= width else token[: width - 1] + "…"


@corrections_app.command("show")
def corrections_show(
    correction_id: Annotated[int, typer.Argument(help="Request id.")],
    actor: As = None,
) -> None:
    """One request, its thread, and the quarantined row behind it (raw for the source's stewards)."""
    from catalog.corrections import Corrections

    settings = hub_context().settings
    store = HubContext(settings).store
    corrections = Corrections(store)
    request = corrections.get(correction_id)
    quarantined = request.batch_id is not None and request.row is not None
    steward = _raw_reader(store, request.batch_id, actor) if quarantined and request.batch_id else None
    today = _today()
    record = Table(title=f"correction request {request.id}", show_header=False)
    late = request.status.value == "open" and request.due_on < today
    for label, value in (
        ("dataset", request.dataset),
        ("source department", f"{request.department or ''} ({request.department_code})"),
        ("opened by", f"{request.origin.value}: {request.filed_by}"),
        ("status", request.status.value),
        ("opened", f"{request.opened_at:%Y-%m-%d %H:%M} UTC"),
        ("due", f"{request.due_on}{' (overdue)' if late else ''}"),
        ("record key", request.key_token or "(none usable: found by batch and row)"),
        ("batch / row", f"{request.batch_id} / {request.row}" if request.batch_id else None),
        ("fields", request.fields),
        ("rules", request.rules),
        ("reason", request.reason),
        (
            "closed",
            f"{request.closed_at:%Y-%m-%d %H:%M} UTC by {request.closed_by}" if request.closed_at else None,
        ),
        ("resolution", request.resolution),
    ):
        if value is not None:
            record.add_row(label, str(value))
    console.print(record)
    thread = corrections.thread(correction_id)
    if thread:
        messages = Table("time (UTC)", "author", "message", title="thread")
        for m in thread:
            messages.add_row(f"{m.at:%Y-%m-%d %H:%M}", m.author, m.message)
        console.print(messages)
    if quarantined and request.batch_id is not None and request.row is not None:
        _print_quarantine(settings, store, request.batch_id, [request.row], steward, correction=request)


# -- raw quarantine, for stewards ------------------------------------------------------------


def _department(store: MetadataStore, batch_id: str) -> str:
    from schemas.contract import load_contract

    batch = store.get_batch(batch_id)
    return batch.department_code or load_contract(batch.dataset).owner_department.code


def _raw_reader(store: MetadataStore, batch_id: str, actor: str | None) -> str | None:
    """None when nobody is named (masked view); else the steward of the batch's source
    department, or a refusal (recorded in the access log)."""
    from catalog.sharing import require_steward

    if actor is None:
        return None
    dataset = store.get_batch(batch_id).dataset
    department = _department(store, batch_id)
    return require_steward(store, actor, department, action="quarantine.read", dataset=dataset)


def _print_quarantine(
    settings: HubSettings,
    store: MetadataStore,
    batch_id: str,
    rows: list[int] | None,
    steward: str | None,
    *,
    correction: Correction | None = None,
    limit: int | None = None,
    rule: str | None = None,
) -> None:
    """Quarantined rows of a batch: raw for ``steward`` (checked by :func:`_raw_reader`; the
    reading is recorded in the access log), else through the contract's masking rules."""
    from catalog.audit import record_access
    from catalog.corrections import masked_record
    from schemas.contract import load_contract

    batch = store.get_batch(batch_id)
    raw = steward is not None
    entries = store.quarantined_records(batch_id, rows=rows, rule=rule, limit=limit)
    if not entries:
        console.print(f"batch {batch_id}: no quarantined row" + (f" breaking {rule}" if rule else ""))
        return
    contract = load_contract(batch.dataset)
    keyring = None if raw else HubContext(settings).keyring()
    for entry in entries:
        values = (
            {k: "" if v is None else str(v) for k, v in entry.record.items() if not k.startswith("_")}
            if raw
            else masked_record(contract, entry.record, keyring)
        )
        shown = Table(
            "field", "value", title=f"batch {batch_id} row {entry.row} ({'raw' if raw else 'masked'})"
        )
        for name, value in values.items():
            shown.add_row(name, value)
        console.print(shown)
        broken = Table("rule", "field", "message", title="rules broken")
        for v in entry.violations:
            broken.add_row(v.rule, v.field, f"{v.message_zh} / {v.message_en}")
        console.print(broken)
    if raw:
        record_access(
            store,
            action="quarantine.read",
            outcome="allowed",
            actor=steward,
            department=_department(store, batch_id),
            dataset=batch.dataset,
            rows=len(entries),
            detail={"batch": batch_id, **({"correction": correction.id} if correction else {})},
        )
    else:
        console.print("values masked; a steward of the source department sees them raw with --as NAME")


def batches_quarantine(
    batch_id: Annotated[str, typer.Argument(help="Batch id.")],
    actor: As = None,
    rule: Annotated[str | None, typer.Option(help="Only rows breaking this rule.")] = None,
    limit: Annotated[int, typer.Option(help="Rows shown at most.")] = 20,
) -> None:
    """A batch's quarantined rows with the rules they broke (raw only for the source's stewards)."""
    settings = hub_context().settings
    store = HubContext(settings).store
    steward = _raw_reader(store, batch_id, actor)
    _print_quarantine(settings, store, batch_id, None, steward, limit=limit, rule=rule)


# -- filing, replying, resolving -------------------------------------------------------------


@corrections_app.command("file")
def corrections_file(
    dataset: Annotated[str, typer.Argument(help="Dataset of the record, e.g. population.")],
    token: Annotated[str, typer.Option(help="The record's published key (e.g. its person_token).")],
    field: Annotated[str, typer.Option(help="The field that is wrong (published or contract name).")],
    reason: Annotated[str, typer.Option(help="What is wrong, for the source department.")],
    system: Annotated[str, typer.Option(help="The consumer system filing it (needs a grant of the field).")],
) -> None:
    """File a correction request against a shared record, for a consumer system."""
    from catalog.corrections import file_request

    settings = hub_context().settings
    request, warning = file_request(
        HubContext(settings).store,
        HubContext(settings).tables,
        dataset=dataset,
        token=token,
        field=field,
        reason=reason,
        system=system,
        days=settings.quality.correction_days,
        calendar_file=settings.sharing.calendar_file,
        today=_today(),
    )
    console.print(
        f"correction request {request.id} filed with {request.department} ({request.department_code}); "
        f"due {request.due_on}"
    )
    if warning:
        console.print(f"[yellow]warning:[/] {warning}")


def _may_answer(store: MetadataStore, actor: str | None, request: Correction, action: str) -> str:
    """A steward of the source department, or for a consumer's request also one of the
    filing system's department: the two sides of the thread."""
    from catalog.metadata import System
    from catalog.sharing import SharingError, require_steward

    sides = [request.department_code]
    if request.origin.value == "consumer":
        with store.session() as session:
            system = session.get(System, request.filed_by)
            if system is not None and system.department not in sides:
                sides.append(system.department)
    for department in sides[:-1]:
        try:
            return require_steward(store, actor, department)
        except SharingError:
            continue
    return require_steward(store, actor, sides[-1], action=action, dataset=request.dataset)


@corrections_app.command("reply")
def corrections_reply(
    correction_id: Annotated[int, typer.Argument(help="Request id.")],
    message: Annotated[str, typer.Option(help="The message for the thread.")],
    actor: As = None,
) -> None:
    """Add a message to a request's thread (a steward of either side)."""
    from catalog.corrections import Corrections

    corrections = Corrections(hub_context().store)
    request = corrections.get(correction_id)
    author = _may_answer(corrections.store, actor, request, "correction.reply")
    corrections.reply(correction_id, author=author, message=message)
    console.print(f"message added to correction request {correction_id} by {author}")


@corrections_app.command("resolve")
def corrections_resolve(
    correction_id: Annotated[int, typer.Argument(help="Request id.")],
    note: Annotated[str, typer.Option(help="How it was resolved (fixed at the source, data was right...).")],
    actor: As = None,
) -> None:
    """Close a request by hand (a steward of the source department)."""
    from catalog.corrections import Corrections
    from catalog.sharing import require_steward

    corrections = Corrections(hub_context().store)
    request = corrections.get(correction_id)
    steward = require_steward(
        corrections.store,
        actor,
        request.department_code,
        action="correction.resolve",
        dataset=request.dataset,
    )
    done = corrections.resolve(correction_id, steward=steward, note=note)
    console.print(f"correction request {done.id} resolved by {steward}")


@corrections_app.command("export")
def corrections_export(
    out: Annotated[Path, typer.Option(help="CSV file to write (UTF-8 with BOM, opens in Excel).")],
    department: Annotated[str | None, typer.Option(help="Only this source department (code).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only requests in this state.")] = None,
) -> None:
    """Export requests as CSV for a department (Chinese headers, no raw values)."""
    from catalog.corrections import Corrections

    written = Corrections(hub_context().store).export_csv(
        out,
        today=_today(),
        department_code=department,
        dataset=dataset,
        status=status.value if status else None,
    )
    console.print(f"{written} correction requests written to {out}")


# -- hub batches release ---------------------------------------------------------------------


def batches_release(
    batch_id: Annotated[str, typer.Argument(help="A batch the quality gate held.")],
    reason: Annotated[str, typer.Option(help="Why it may go on despite its invalid share (recorded).")],
    actor: As = None,
    publish: Annotated[bool, typer.Option(help="Publish registered rows to Kafka.")] = True,
) -> None:
    """Release a held batch (a steward of its source department): mask, register, publish."""
    from hub import pipeline

    settings = hub_context().settings
    result = pipeline.release(batch_id, steward=actor, reason=reason, settings=settings, publish_rows=publish)
    batch = HubContext(settings).store.get_batch(batch_id)
    console.print(
        f"batch {batch_id} released by {batch.released_by} ({batch.release_reason}); "
        f"registered as snapshot {result.snapshot_id}, {batch.rows_valid} rows"
        + (f", {result.messages} messages published" if result.messages is not None else "")
    )


def _sub_app(app: typer.Typer, name: str) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == name and group.typer_instance is not None:
            return group.typer_instance
    raise LookupError(f"the hub app has no {name!r} command group")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``hub`` app: ``corrections`` and two under ``batches``."""
    app.add_typer(corrections_app, name="corrections")
    batches = _sub_app(app, "batches")
    batches.command("release")(batches_release)
    batches.command("quarantine")(batches_quarantine)
