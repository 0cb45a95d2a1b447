"""``hub departments|systems|people ...`` and the sharing workflow: ``hub request``,
``hub requests``, ``hub approve|deny|ask``, ``hub grants``, ``hub revoke``.

Commands that need a person take ``--as NAME`` (default: the ``HUB_USER`` variable); it
names who acts, for the record and the role checks. Refusals are
:class:`catalog.sharing.identities.SharingError` (exit code 5), printed by ``hub.cli.main`` as one
line naming the reason.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.context import hub_context
from hub.settings import get_settings

if TYPE_CHECKING:
    from catalog.sharing import GrantRef, RequestRef

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

console = Console()
err = Console(stderr=True)

departments_app = typer.Typer(help="Departments taking part in sharing.", no_args_is_help=True)
systems_app = typer.Typer(help="Departments' systems and their credentials.", no_args_is_help=True)
people_app = typer.Typer(help="People who act in the hub, and their roles.", no_args_is_help=True)
requests_app = typer.Typer(help="Requests for shared datasets (newest first).")

As = Annotated[
    str | None,
    typer.Option("--as", envvar="HUB_USER", show_envvar=True, help="Who is acting (a registered person)."),
]
Reason = Annotated[str, typer.Option(help="Why (recorded, and told to those affected).")]
CALENDAR_WARNING_DAYS = 45
"""How long before the calendar's last day ``hub requests`` starts saying to add next year:
the State Council publishes the next year's holidays in November."""


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``hub`` app."""
    app.add_typer(departments_app, name="departments")
    app.add_typer(systems_app, name="systems")
    app.add_typer(people_app, name="people")
    app.add_typer(requests_app, name="requests")
    app.command("request")(request)
    app.command("approve")(approve)
    app.command("deny")(deny)
    app.command("ask")(ask)
    app.command("grants")(grants)
    app.command("revoke")(revoke)


def _when(moment: datetime | None) -> str:
    from catalog.sharing import CST

    return f"{moment.astimezone(CST):%Y-%m-%d %H:%M}" if moment else ""


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.replace("，", ",").split(",")]


# -- registry -------------------------------------------------------------------------------


@departments_app.command("add")
def departments_add(
    code: Annotated[str, typer.Argument(help="Unified social credit code (18 characters, GB 32100).")],
    name: Annotated[str, typer.Option(help="Department name, e.g. 人力资源和社会保障厅.")],
    kind: Annotated[
        str | None, typer.Option(help="agency, institution, enterprise or other (default: from the code).")
    ] = None,
    actor: As = None,
) -> None:
    """Register a department (a hub-wide steward's task)."""
    from catalog.metadata import DepartmentKind
    from catalog.sharing import RegistryError, add_department

    if kind is not None and kind not in {k.value for k in DepartmentKind}:
        raise RegistryError(f"kind {kind!r} is not one of {', '.join(k.value for k in DepartmentKind)}")
    department = add_department(hub_context().store, code, name, kind, actor=actor)
    console.print(f"department {department.code} {department.name} registered ({department.kind.value})")


@departments_app.command("add-owners")
def departments_add_owners(actor: As = None) -> None:
    """Register the owner department named in every contract (schemas/*.yaml); safe to repeat."""
    from catalog.sharing import add_owner_departments, known_datasets
    from schemas.contract import load_contract

    contracts = [load_contract(name) for name in known_datasets()]
    table = Table("code", "name", "datasets", "")
    for code, name, datasets, added in add_owner_departments(hub_context().store, contracts, actor=actor):
        table.add_row(code, name, ", ".join(datasets), "added" if added else "already registered")
    console.print(table)


@departments_app.command("list")
def departments_list() -> None:
    """Registered departments with their systems and the datasets they own."""
    from catalog.sharing import dataset_terms, known_datasets, list_departments, list_systems

    store = hub_context().store
    owned: dict[str, list[str]] = {}
    for dataset in known_datasets():
        owned.setdefault(dataset_terms(dataset).owner, []).append(dataset)
    systems: dict[str, list[str]] = {}
    for system in list_systems(store):
        if system.revoked_at is None:
            systems.setdefault(system.department, []).append(system.id)
    table = Table("code", "name", "kind", "systems", "owns datasets")
    for d in list_departments(store):
        table.add_row(
            d.code, d.name, d.kind.value, ", ".join(systems.get(d.code, [])), ", ".join(owned.get(d.code, []))
        )
    console.print(table)


@systems_app.command("add")
def systems_add(
    system_id: Annotated[str, typer.Argument(metavar="ID", help="Short id, e.g. shebao-core.")],
    department: Annotated[str, typer.Option(help="Code of the department it belongs to.")],
    name: Annotated[str, typer.Option(help="System name, e.g. 社会保险核心业务系统.")],
    actor: As = None,
) -> None:
    """Register a system and show its credential, once: only a hash of it is kept."""
    from catalog.sharing import add_system

    system, credential = add_system(hub_context().store, system_id, name, department, actor=actor)
    console.print(f"system {system.id} ({system.name}) registered for department {system.department}")
    _show_credential(credential)


def _show_credential(credential: str) -> None:
    err.print(
        "credential (shown this once; the hub keeps only its hash, so store it in the system's "
        "secret store now):"
    )
    sys.stdout.write(f"{credential}\n")
    sys.stdout.flush()


@systems_app.command("rotate-credential")
def systems_rotate(
    system_id: Annotated[str, typer.Argument(metavar="ID")],
    actor: As = None,
) -> None:
    """Issue a new credential; the old one stops working at once."""
    from catalog.sharing import rotate_credential

    credential = rotate_credential(hub_context().store, system_id, actor=actor)
    console.print(f"system {system_id}: new credential issued, the previous one no longer works")
    _show_credential(credential)


@systems_app.command("revoke")
def systems_revoke(
    system_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Reason,
    actor: As = None,
) -> None:
    """Revoke a system: its credential stops working and its grants give nothing."""
    from catalog.sharing import revoke_system

    revoke_system(hub_context().store, system_id, reason, actor=actor)
    console.print(f"system {system_id} revoked")


@systems_app.command("list")
def systems_list(
    department: Annotated[str | None, typer.Option(help="Only this department's systems.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include revoked systems.")] = False,
) -> None:
    """Systems with their department and credential id (never the credential)."""
    from catalog.sharing import list_systems

    table = Table("system", "name", "department", "credential", "issued", "state")
    for s in list_systems(hub_context().store, department):
        if s.revoked_at is not None and not show_all:
            continue
        state = f"revoked {_when(s.revoked_at)}: {s.revoke_reason}" if s.revoked_at else "active"
        table.add_row(
            s.id, s.name, s.department, f"hub_sys_{s.credential_id}_…", _when(s.credential_issued_at), state
        )
    console.print(table)


Roles = Annotated[
    list[str] | None, typer.Option("--role", help="steward or auditor; repeat for both.", show_default=False)
]
HubWide = Annotated[bool, typer.Option("--hub-wide", help="Steward of every department, not only their own.")]


def _roles(roles: list[str] | None) -> list[str]:
    from catalog.metadata import Role
    from catalog.sharing import RegistryError

    values = roles or []
    unknown = [r for r in values if r not in {role.value for role in Role}]
    if unknown:
        raise RegistryError(f"unknown role(s) {', '.join(unknown)}; roles: steward, auditor")
    return values


@people_app.command("add")
def people_add(
    name: Annotated[str, typer.Argument(help="The name they act under, e.g. li.steward.")],
    department: Annotated[str | None, typer.Option(help="Code of their department.")] = None,
    role: Roles = None,
    hub_wide: HubWide = False,
    actor: As = None,
) -> None:
    """Register a person (a hub-wide steward's task; the first steward needs no --as)."""
    from catalog.sharing import add_person, list_people

    store = hub_context().store
    add_person(store, name, department=department, roles=_roles(role), hub_wide=hub_wide, actor=actor)
    labels = next(labels for person, labels in list_people(store) if person.name == name)
    console.print(f"{name} registered: {', '.join(labels) or 'no roles'}")


@people_app.command("set-roles")
def people_set_roles(
    name: Annotated[str, typer.Argument()],
    role: Roles = None,
    hub_wide: HubWide = False,
    actor: As = None,
) -> None:
    """Replace a person's roles (none given: no roles)."""
    from catalog.sharing import set_roles

    labels = set_roles(hub_context().store, name, _roles(role), hub_wide=hub_wide, actor=actor)
    console.print(f"{name}: {', '.join(labels) or 'no roles'}")


@people_app.command("remove")
def people_remove(name: Annotated[str, typer.Argument()], actor: As = None) -> None:
    """Remove a person; what they did stays attributed to them."""
    from catalog.sharing import remove_person

    remove_person(hub_context().store, name, actor=actor)
    console.print(f"{name} removed")


@people_app.command("list")
def people_list(
    show_all: Annotated[bool, typer.Option("--all", help="Include removed people.")] = False,
) -> None:
    """People, their department and roles."""
    from catalog.sharing import list_people

    table = Table("name", "department", "roles", "state")
    for person, labels in list_people(hub_context().store, include_removed=show_all):
        state = f"removed {_when(person.removed_at)}" if person.removed_at else "active"
        table.add_row(person.name, person.department or "", "; ".join(labels), state)
    console.print(table)


# -- requests -------------------------------------------------------------------------------


def request(
    dataset: Annotated[str, typer.Argument(help="Dataset asked for, e.g. population.")],
    system: Annotated[str, typer.Option(help="The requesting department's system that will receive it.")],
    purpose: Annotated[str, typer.Option(help="What the data will be used for (binding on every use).")],
    columns: Annotated[
        str | None,
        typer.Option(help="Published columns, comma-separated (default: every column shared at the level)."),
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="How long the grant should last (default: settings.sharing).")
    ] = None,
    actor: As = None,
) -> None:
    """Ask for a dataset for one of your department's systems."""
    from catalog.sharing import submit_request

    ref, grant = submit_request(
        hub_context().store,
        dataset,
        system=system,
        purpose=purpose,
        columns=_split(columns),
        days=days,
        actor=actor,
    )
    if grant is not None:
        console.print(
            f"request {ref.id}: {dataset} is shared unconditionally (无条件共享); grant {grant.id} for "
            f"{system} until {_when(grant.expires_at)}: {', '.join(grant.columns)}"
        )
    else:
        console.print(
            f"request {ref.id}: waiting for a steward of the owner department; answer due by "
            f"{ref.deadline} (China time)"
        )


@requests_app.callback(invoke_without_command=True)
def requests_list(
    ctx: typer.Context,
    overdue: Annotated[bool, typer.Option(help="Only pending requests past their deadline.")] = False,
    status: Annotated[
        list[str] | None,
        typer.Option(help="pending, material_requested, approved, denied or refused; repeatable."),
    ] = None,
    system: Annotated[str | None, typer.Option(help="Only this system's requests.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only requests for this dataset.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
) -> None:
    """Requests with their deadline; pending ones past it are flagged OVERDUE."""
    if ctx.invoked_subcommand is not None:
        return
    from catalog.metadata import RequestStatus
    from catalog.sharing import RegistryError, list_requests, today_cst

    known = {s.value for s in RequestStatus}
    unknown = [s for s in status or [] if s not in known]
    if unknown:
        raise RegistryError(f"unknown status {', '.join(unknown)}; statuses: {', '.join(sorted(known))}")
    today = today_cst()
    refs = list_requests(
        hub_context().store,
        status=status or (),
        overdue=overdue,
        system=system,
        dataset=dataset,
        today=today,
        limit=limit,
    )
    table = Table(
        "request",
        "dataset",
        "system",
        "by",
        "status",
        "deadline",
        "",
        "grant",
        "created",
        caption=f"today {today}",
    )
    for r in refs:
        table.add_row(
            str(r.id),
            r.dataset,
            r.system,
            r.requested_by or "",
            r.status.value,
            _deadline(r),
            _flag(r, today),
            str(r.grant_id or ""),
            _when(r.created_at),
        )
    console.print(table)
    _calendar_warning(today)


def _deadline(r: RequestRef) -> str:
    from catalog.metadata import RequestStatus

    if r.status is RequestStatus.MATERIAL_REQUESTED:
        return "paused (material asked)"
    return str(r.deadline or "")


def _flag(r: RequestRef, today: date) -> str:
    if r.overdue(today):
        return "[bold red]OVERDUE[/]"
    return "late" if r.answered_late() else ""


def _calendar_warning(today: date) -> None:
    from catalog.sharing import WorkCalendar

    calendar = WorkCalendar.load(get_settings().sharing.calendar_file)
    end = date(calendar.last_year, 12, 31)
    if (end - today).days <= CALENDAR_WARNING_DAYS:
        err.print(
            f"warning: the working-day calendar {calendar.source} ends on {end}; add {calendar.last_year + 1} "
            "from the State Council's holiday notice before deadlines reach it"
        )


@requests_app.command("show")
def requests_show(request_id: Annotated[int, typer.Argument(metavar="REQUEST")]) -> None:
    """One request with its material thread and answer."""
    from catalog.sharing import get_request, today_cst

    r = get_request(hub_context().store, request_id)
    table = Table(title=f"request {r.id}", show_header=False)
    for label, value in (
        ("dataset", r.dataset),
        ("system", r.system),
        ("department", r.department),
        ("requested by", r.requested_by),
        ("columns", ", ".join(r.columns)),
        ("purpose", r.purpose),
        ("grant duration (days)", r.days),
        ("share level", r.level),
        ("status", r.status.value),
        ("created", _when(r.created_at)),
        ("deadline", f"{_deadline(r)} {_flag(r, today_cst())}".strip()),
        (
            "material asked",
            f"{_when(r.asked_at)} by {r.asked_by}: {r.asked_material}" if r.asked_at else None,
        ),
        ("material given", f"{_when(r.answered_at)}: {r.answered_material}" if r.answered_at else None),
        ("decided", f"{_when(r.decided_at)} by {r.decided_by or 'the hub'}" if r.decided_at else None),
        ("reason", r.reason),
        ("grant", r.grant_id),
    ):
        table.add_row(label, "" if value is None else str(value))
    console.print(table)


@requests_app.command("answer")
def requests_answer(
    request_id: Annotated[int, typer.Argument(metavar="REQUEST")],
    material: Annotated[list[str], typer.Option(help="Material handed in; repeat for several items.")],
    actor: As = None,
) -> None:
    """Hand in the material a steward asked for; the answer clock restarts."""
    from catalog.sharing import answer_material

    ref = answer_material(hub_context().store, request_id, actor=actor, material=material)
    console.print(f"request {ref.id}: material handed in; answer due by {ref.deadline} (China time)")


def approve(
    request_id: Annotated[int, typer.Argument(metavar="REQUEST")],
    columns: Annotated[
        str | None, typer.Option(help="Grant only these of the columns asked for, comma-separated.")
    ] = None,
    days: Annotated[int | None, typer.Option(help="Grant for fewer days than asked.")] = None,
    actor: As = None,
) -> None:
    """Approve a pending request (a steward of the dataset's owner department)."""
    from catalog.sharing import approve_request

    grant = approve_request(hub_context().store, request_id, actor=actor, columns=_split(columns), days=days)
    console.print(
        f"request {request_id} approved: grant {grant.id} gives {grant.system} {grant.dataset} "
        f"({', '.join(grant.columns)}) until {_when(grant.expires_at)}"
    )


def deny(
    request_id: Annotated[int, typer.Argument(metavar="REQUEST")],
    reason: Reason,
    actor: As = None,
) -> None:
    """Deny a pending request, with the reason the requester is told."""
    from catalog.sharing import deny_request

    deny_request(hub_context().store, request_id, actor=actor, reason=reason)
    console.print(f"request {request_id} denied")


def ask(
    request_id: Annotated[int, typer.Argument(metavar="REQUEST")],
    material: Annotated[
        list[str], typer.Option(help="Material needed; repeat for each item: everything in this one ask.")
    ],
    actor: As = None,
) -> None:
    """Ask the requester for more material, all at once; the clock stops until it comes."""
    from catalog.sharing import ask_material

    ref = ask_material(hub_context().store, request_id, actor=actor, material=material)
    console.print(
        f"request {ref.id}: asked {ref.requested_by or 'the requester'} for {len(material)} item(s)"
    )


# -- grants ---------------------------------------------------------------------------------


def grants(
    system: Annotated[str | None, typer.Option(help="Only this system's grants.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only grants of this dataset.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include expired and revoked grants.")] = False,
) -> None:
    """Grants: system, dataset, level, columns, purpose, expiry, the request they came from."""
    from catalog.sharing import list_grants

    table = Table("grant", "system", "dataset", "level", "columns", "purpose", "expires", "request", "state")
    for g in list_grants(hub_context().store, system=system, dataset=dataset, include_inactive=show_all):
        table.add_row(
            str(g.id),
            g.system,
            g.dataset,
            g.level,
            ", ".join(g.columns),
            g.purpose,
            _when(g.expires_at),
            str(g.request_id or ""),
            _state(g),
        )
    console.print(table)


def _state(g: GrantRef) -> str:
    state = g.state()
    if state == "revoked":
        return f"revoked {_when(g.revoked_at)}: {g.revoke_reason}"
    return state


def revoke(
    grant_id: Annotated[int, typer.Argument(metavar="GRANT")],
    reason: Reason,
    actor: As = None,
) -> None:
    """Revoke a grant (a steward of the owner or of the receiving department)."""
    from catalog.sharing import revoke_grant

    grant = revoke_grant(hub_context().store, grant_id, actor=actor, reason=reason)
    console.print(f"grant {grant.id} of {grant.system} for {grant.dataset} revoked")
