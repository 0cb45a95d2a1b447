"""Who takes part in sharing: departments, their systems, people and their roles.

Departments are registered by unified social credit code (checked against GB 32100);
each system of a department gets a credential (``hub_sys_<id>_<secret>``, 256 random
bits) that is shown once and stored only as a SHA-256 hash, compared in constant time
(:func:`authenticate_system`), rotatable and revocable. People act through the ``hub``
command with ``--as NAME`` (or ``HUB_USER``): an attribution the trusted operator of the
command gives, not an authentication (docs/adr/0010-identities-requests-and-grants.md).
Their roles are ``steward`` of a department or of the whole hub (``*``) and ``auditor``;
:func:`require_steward` is the one check every steward-only action goes through.

Registry changes need a hub-wide steward (a steward of the department for its systems),
except while no steward exists at all: that is the hub being set up. Every change and
every refusal is appended to the access log (:func:`catalog.audit.record_access`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import record_access
from catalog.metadata import Department, DepartmentKind, Person, PersonRole, Role, System, utcnow
from catalog.sharing.errors import RegistryError, SharingError
from quality import checks
from schemas.errors import AccessDeniedError

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from schemas.contract import Contract

CST = timezone(timedelta(hours=8), "CST")
"""China Standard Time: working days and deadlines are dates there (UTC+8, no daylight saving
since 1991), whatever the zone of the machine running the hub."""

HUB_WIDE = "*"
"""Scope of a steward role over every department."""

WHO = "who is acting? pass --as NAME or set HUB_USER"
CREDENTIAL_PREFIX = "hub_sys_"
CREDENTIAL_PATTERN = re.compile(r"^hub_sys_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_SYSTEM_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_PERSON = re.compile(r"^[^\s,]{1,64}$")
DUMMY_HASH = hashlib.sha256(b"no such credential").hexdigest()


# -- tables ---------------------------------------------------------------------------------


# -- what callers get -----------------------------------------------------------------------


@dataclass(frozen=True)
class SystemRef:
    """An authenticated (or registered) system."""

    id: str
    name: str
    department: str


# -- the access log -------------------------------------------------------------------------


@dataclass
class AccessFacts:
    """What an action is about, filled in as it becomes known, for its access-log entry."""

    action: str
    actor: str | None
    system: str | None = None
    department: str | None = None
    dataset: str | None = None
    columns: tuple[str, ...] = ()
    purpose: str | None = None
    reason: str | None = None
    outcome: str = "allowed"
    detail: dict[str, Any] = field(default_factory=dict)
    refused: bool = False
    """Set by an action that keeps a record of its refusal (a refused request): the entry and
    that record commit together, then :func:`acting` raises :class:`SharingError`."""
    logged: bool = False

    def log(self, target: Session | MetadataStore) -> None:
        """Append the entry, in ``target``'s transaction when it is a session."""
        record_access(
            target,
            action=self.action,
            outcome="denied" if self.outcome == "denied" else "allowed",
            actor=self.actor,
            system=self.system,
            department=self.department,
            dataset=self.dataset,
            columns=self.columns,
            purpose=self.purpose,
            reason=self.reason,
            detail=self.detail or None,
        )
        self.logged = True

    def refuse(self, reason: str) -> None:
        self.outcome, self.reason, self.refused = "denied", reason, True


@contextmanager
def acting(store: MetadataStore, action: str, actor: str | None) -> Iterator[tuple[AccessFacts, Session]]:
    """One action in one transaction, with its access-log entry.

    What the action did and its entry commit together, so neither exists without the
    other. A refusal (:class:`SharingError`, :class:`RegistryError`) rolls the action back
    and is then recorded on its own.
    """
    facts = AccessFacts(action=action, actor=clean_text(actor))
    try:
        with store.session() as session:
            yield facts, session
            facts.log(session)
        if facts.refused:
            raise SharingError(facts.reason or "refused")
    except (AccessDeniedError, RegistryError) as exc:
        if not facts.logged:
            facts.outcome, facts.reason = "denied", str(exc)
            facts.log(store)
        raise


# -- people and their roles -----------------------------------------------------------------


def china_day(moment: datetime | None) -> str:
    """A timestamp's date in China, as messages name it (deadlines are China dates too)."""
    return f"{moment.astimezone(CST):%Y-%m-%d}" if moment else "?"


def china_time(moment: datetime | None) -> str:
    return f"{moment.astimezone(CST):%Y-%m-%d %H:%M}" if moment else "?"


def clean_text(text: str | None) -> str | None:
    return (text or "").strip() or None


def _describe(session: Session, code: str) -> str:
    if code == HUB_WIDE:
        return "the whole hub"
    department = session.get(Department, code)
    return f"{department.name} ({code})" if department else code


def acting_person(session: Session, name: str | None) -> Person:
    name = clean_text(name)
    if name is None:
        raise SharingError(WHO)
    person = session.get(Person, name)
    if person is None:
        raise SharingError(
            f"no person {name!r} is registered (a hub-wide steward adds people: hub people add)"
        )
    if person.removed_at is not None:
        raise SharingError(f"person {name!r} was removed on {china_day(person.removed_at)}")
    return person


def _scopes(session: Session, name: str, role: Role) -> set[str]:
    query = select(PersonRole.scope).where(PersonRole.person == name, PersonRole.role == role)
    return set(session.scalars(query))


def acting_steward(
    session: Session, name: str | None, departments: Iterable[str] = (), *, hub_only: bool = False
) -> Person:
    """The acting person if they are a steward of one of ``departments`` (any department
    when none is named), or of the whole hub."""
    person = acting_person(session, name)
    scopes = _scopes(session, person.name, Role.STEWARD)
    if not scopes:
        raise SharingError(f"{person.name} is not a data steward")
    if HUB_WIDE in scopes:
        return person
    held = ", ".join(_describe(session, s) for s in sorted(scopes))
    if hub_only:
        raise SharingError(f"{person.name} is a steward of {held}, not a hub-wide steward")
    wanted = sorted(set(departments))
    if not wanted or scopes & set(wanted):
        return person
    of = " or ".join(_describe(session, d) for d in wanted)
    raise SharingError(f"{person.name} is a steward of {held}, not of {of}")


def _any_steward(session: Session) -> bool:
    query = (
        select(PersonRole.id)
        .join(Person, Person.name == PersonRole.person)
        .where(PersonRole.role == Role.STEWARD, Person.removed_at.is_(None))
        .limit(1)
    )
    return session.scalars(query).first() is not None


def _registrar(session: Session, actor: str | None, department: str | None = None) -> str | None:
    """Who may change the registry: a hub-wide steward (or one of ``department``); before the
    first steward exists, whoever runs the hub (it is being set up)."""
    if not _any_steward(session):
        return clean_text(actor)
    departments = [department] if department else []
    return acting_steward(session, actor, departments, hub_only=department is None).name


def require_steward(
    store: MetadataStore,
    name: str | None,
    department_code: str | None = None,
    *,
    action: str | None = None,
    dataset: str | None = None,
) -> str:
    """The name of the acting steward, or :class:`SharingError` saying why not.

    With ``department_code``, the person must steward that department or the whole hub;
    without it, any department will do. Refusals name the reason: nobody acting, an
    unknown or removed person, not a steward, a steward of another department. With
    ``action``, a refusal is also recorded in the access log under that action (callers
    that record their own refusals leave it out).
    """
    try:
        with store.session() as session:
            departments = [department_code] if department_code else []
            return acting_steward(session, name, departments).name
    except SharingError as exc:
        if action is not None:
            facts = AccessFacts(
                action=action, actor=clean_text(name), department=department_code, dataset=dataset
            )
            facts.outcome, facts.reason = "denied", str(exc)
            facts.log(store)
        raise


# -- registry -------------------------------------------------------------------------------


def check_department_code(code: str) -> str:
    """The code, upper-cased, if it is a valid unified social credit code (GB 32100)."""
    import pyarrow as pa

    value = (code or "").strip().upper()
    if not value:
        raise RegistryError("a department code is required (its unified social credit code)")
    array = pa.array([value])
    for rule, check in (
        ("18 code characters", checks.gb32100_format),
        ("check character", checks.gb32100_check),
        ("organisation code check", checks.gb32100_org_code),
        ("division code", checks.gb32100_division),
    ):
        if not check(array)[0].as_py():
            raise RegistryError(
                f"department code {value!r} is not a valid unified social credit code (GB 32100): "
                f"its {rule} is wrong"
            )
    return value


def add_department(
    store: MetadataStore,
    code: str,
    name: str,
    kind: DepartmentKind | str | None = None,
    *,
    actor: str | None,
) -> Department:
    """Register a department; its kind defaults to what positions 1-2 of the code say."""
    with acting(store, "department.add", actor) as (facts, session):
        facts.department = code
        code = facts.department = check_department_code(code)
        facts.actor = _registrar(session, actor)
        return _new_department(session, code, name, kind, facts.actor)


def _new_department(
    session: Session, code: str, name: str, kind: DepartmentKind | str | None, actor: str | None
) -> Department:
    title = clean_text(name)
    if title is None:
        raise RegistryError(f"department {code}: a name is required")
    existing = session.get(Department, code)
    if existing is not None:
        raise RegistryError(f"department {code} is already registered as {existing.name}")
    department = Department(
        code=code,
        name=title,
        kind=DepartmentKind(kind) if kind else DepartmentKind.from_code(code),
        created_by=actor,
    )
    session.add(department)
    session.flush()
    return department


def add_owner_departments(
    store: MetadataStore, contracts: Iterable[Contract], *, actor: str | None
) -> list[tuple[str, str, list[str], bool]]:
    """Register the owner department of every contract not registered yet.

    Returns ``(code, name, datasets, added)`` per department; one already registered keeps
    its name. Safe to run again.
    """
    owners: dict[str, tuple[str, list[str]]] = {}
    result: list[tuple[str, str, list[str], bool]] = []
    with acting(store, "department.add", actor) as (facts, session):
        for contract in contracts:
            try:
                code = check_department_code(contract.owner_department.code)
            except RegistryError as exc:
                raise RegistryError(f"contract {contract.name}: owner department: {exc}") from None
            owners.setdefault(code, (contract.owner_department.name, []))[1].append(contract.name)
        facts.actor = _registrar(session, actor)
        for code, (name, datasets) in sorted(owners.items()):
            existing = session.get(Department, code)
            if existing is None:
                _new_department(session, code, name, None, facts.actor)
            result.append((code, existing.name if existing else name, datasets, existing is None))
        facts.detail = {"added": [code for code, _, _, added in result if added]}
    return result


def list_departments(store: MetadataStore) -> list[Department]:
    with store.session() as session:
        return list(session.scalars(select(Department).order_by(Department.code)))


def _department(session: Session, code: str | None) -> Department:
    value = (code or "").strip().upper()
    department = session.get(Department, value) if value else None
    if department is None:
        known = ", ".join(f"{d.code} {d.name}" for d in session.scalars(select(Department))) or "none"
        raise SharingError(f"no department {code!r} is registered (known: {known})")
    return department


def _new_credential() -> tuple[str, str, str]:
    """``(credential, id, sha256 hex)``: 256 random bits behind a readable prefix and an id."""
    credential_id = secrets.token_hex(6)
    credential = f"{CREDENTIAL_PREFIX}{credential_id}_{secrets.token_urlsafe(32)}"
    return credential, credential_id, hash_credential(credential)


def hash_credential(credential: str) -> str:
    # A plain SHA-256 suffices: the secret has 256 random bits, nothing to brute-force.
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


def add_system(
    store: MetadataStore, system_id: str, name: str, department: str, *, actor: str | None
) -> tuple[SystemRef, str]:
    """Register a department's system; returns it and its credential (shown once, never stored)."""
    with acting(store, "system.add", actor) as (facts, session):
        facts.system = system_id
        if not _SYSTEM_ID.match(system_id or ""):
            raise RegistryError(
                f"system id {system_id!r} must be 2-63 lower-case letters, digits or '-' (e.g. shebao-core)"
            )
        title = clean_text(name)
        if title is None:
            raise RegistryError(f"system {system_id}: a name is required")
        owner = _department(session, department)
        facts.department = owner.code
        facts.actor = _registrar(session, actor, owner.code)
        existing = session.get(System, system_id)
        if existing is not None:
            raise RegistryError(f"system {system_id} is already registered (of {existing.department})")
        credential, credential_id, digest = _new_credential()
        session.add(
            System(
                id=system_id,
                name=title,
                department=owner.code,
                credential_id=credential_id,
                credential_hash=digest,
                created_by=facts.actor,
            )
        )
        facts.detail = {"credential_id": credential_id}
        return SystemRef(system_id, title, owner.code), credential


def _system(session: Session, system_id: str | None) -> System:
    system = session.get(System, system_id) if system_id else None
    if system is None:
        known = ", ".join(session.scalars(select(System.id).order_by(System.id))) or "none"
        raise SharingError(f"no system {system_id!r} is registered (known: {known})")
    return system


def live_system_row(session: Session, system_id: str | None) -> System:
    system = _system(session, system_id)
    if system.revoked_at is not None:
        raise SharingError(
            f"system {system.id} was revoked on {china_day(system.revoked_at)}: {system.revoke_reason}"
        )
    return system


def live_system(store: MetadataStore, system_id: str) -> SystemRef:
    """A registered, unrevoked system by id (for the operator's CLI, which is trusted to name
    the system it acts for); :class:`SharingError` otherwise."""
    with store.session() as session:
        system = live_system_row(session, system_id)
        return SystemRef(system.id, system.name, system.department)


def rotate_credential(store: MetadataStore, system_id: str, *, actor: str | None) -> str:
    """Issue a new credential for a system; the old one stops working at once."""
    with acting(store, "system.rotate_credential", actor) as (facts, session):
        facts.system = system_id
        system = live_system_row(session, system_id)
        facts.department = system.department
        facts.actor = _registrar(session, actor, system.department)
        credential, system.credential_id, system.credential_hash = _new_credential()
        system.credential_issued_at = utcnow()
        facts.detail = {"credential_id": system.credential_id}
        return credential


def revoke_system(store: MetadataStore, system_id: str, reason: str, *, actor: str | None) -> None:
    """Revoke a system: its credential stops working and its grants give nothing."""
    with acting(store, "system.revoke", actor) as (facts, session):
        facts.system, facts.reason = system_id, clean_text(reason)
        system = live_system_row(session, system_id)
        facts.department = system.department
        facts.actor = _registrar(session, actor, system.department)
        if facts.reason is None:
            raise SharingError(f"revoking system {system_id} needs a reason")
        system.revoked_at, system.revoked_by, system.revoke_reason = utcnow(), facts.actor, facts.reason


def list_systems(store: MetadataStore, department: str | None = None) -> list[System]:
    query = select(System).order_by(System.department, System.id)
    if department:
        query = query.where(System.department == department.strip().upper())
    with store.session() as session:
        return list(session.scalars(query))


def authenticate_system(store: MetadataStore, credential: str) -> SystemRef:
    """The system a credential belongs to, or :class:`SharingError` (never echoing the credential).

    The stored hash is compared in constant time; an unknown credential id is compared
    against a dummy hash, so timing tells nothing either way. Failures are recorded;
    successes are not (the access they lead to is).
    """
    facts = AccessFacts(action="system.authenticate", actor=None)
    try:
        match = CREDENTIAL_PATTERN.match(credential or "")
        if match is None:
            raise SharingError(f"not a hub system credential (expected {CREDENTIAL_PREFIX}<id>_<secret>)")
        with store.session() as session:
            system = session.scalars(select(System).where(System.credential_id == match.group(1))).first()
            stored = system.credential_hash if system is not None else DUMMY_HASH
            valid = hmac.compare_digest(stored, hash_credential(credential))
            if system is None or not valid:
                raise SharingError(
                    f"system credential {match.group(1)} is not valid (unknown, rotated or mistyped)"
                )
            facts.system, facts.department = system.id, system.department
            system = live_system_row(session, system.id)
            return SystemRef(system.id, system.name, system.department)
    except SharingError as exc:
        facts.outcome, facts.reason = "denied", str(exc)
        facts.log(store)
        raise


def add_person(
    store: MetadataStore,
    name: str,
    *,
    department: str | None = None,
    roles: Iterable[Role | str] = (),
    hub_wide: bool = False,
    actor: str | None,
) -> Person:
    """Register a person with roles: ``steward`` of their department (or of the whole hub with
    ``hub_wide``), ``auditor``."""
    with acting(store, "person.add", actor) as (facts, session):
        facts.actor = _registrar(session, actor)
        facts.detail = {"person": name}
        if not _PERSON.match(name or ""):
            raise RegistryError(f"person name {name!r} must be 1-64 characters without spaces or commas")
        if session.get(Person, name) is not None:
            raise RegistryError(f"person {name} is already registered")
        code = _department(session, department).code if department else None
        facts.department = code
        person = Person(name=name, department=code, created_by=facts.actor)
        session.add(person)
        session.flush()
        _set_roles(session, person, roles, hub_wide)
        facts.detail["roles"] = _role_labels(session, name)
        return person


def set_roles(
    store: MetadataStore,
    name: str,
    roles: Iterable[Role | str],
    *,
    hub_wide: bool = False,
    actor: str | None,
) -> list[str]:
    """Replace a person's roles; returns them as labels (``steward of ...``, ``auditor``)."""
    with acting(store, "person.roles", actor) as (facts, session):
        facts.actor = _registrar(session, actor)
        facts.detail = {"person": name}
        person = acting_person(session, name)
        facts.department = person.department
        _set_roles(session, person, roles, hub_wide)
        labels = _role_labels(session, person.name)
        facts.detail["roles"] = labels
        return labels


def _set_roles(session: Session, person: Person, roles: Iterable[Role | str], hub_wide: bool) -> None:
    wanted = {Role(r) for r in roles}
    if hub_wide and Role.STEWARD not in wanted:
        raise RegistryError(f"person {person.name}: --hub-wide applies to the steward role; add it")
    rows: list[tuple[Role, str]] = []
    if Role.STEWARD in wanted:
        if not hub_wide and person.department is None:
            raise RegistryError(
                f"person {person.name}: a steward needs a department, or --hub-wide to steward every department"
            )
        rows.append((Role.STEWARD, HUB_WIDE if hub_wide else str(person.department)))
    if Role.AUDITOR in wanted:
        rows.append((Role.AUDITOR, HUB_WIDE))
    existing = list(session.scalars(select(PersonRole).where(PersonRole.person == person.name)))
    was_hub_wide = any(r.role is Role.STEWARD and r.scope == HUB_WIDE for r in existing)
    if was_hub_wide and (Role.STEWARD, HUB_WIDE) not in rows:
        _keep_a_hub_steward(session, person.name)
    for role in existing:
        session.delete(role)
    session.flush()
    session.add_all(PersonRole(person=person.name, role=role, scope=scope) for role, scope in rows)
    session.flush()


def _keep_a_hub_steward(session: Session, leaving: str) -> None:
    others = (
        select(PersonRole.id)
        .join(Person, Person.name == PersonRole.person)
        .where(
            PersonRole.role == Role.STEWARD,
            PersonRole.scope == HUB_WIDE,
            Person.removed_at.is_(None),
            Person.name != leaving,
        )
        .limit(1)
    )
    if session.scalars(others).first() is None:
        raise RegistryError(f"{leaving} is the last hub-wide steward: register another one first")


def _role_labels(session: Session, name: str) -> list[str]:
    roles = session.scalars(
        select(PersonRole).where(PersonRole.person == name).order_by(PersonRole.role.desc(), PersonRole.scope)
    )
    return [
        f"steward of {_describe(session, r.scope)}" if r.role is Role.STEWARD else r.role.value for r in roles
    ]


def remove_person(store: MetadataStore, name: str, *, actor: str | None) -> None:
    """Remove a person: they can no longer act; what they did stays attributed to them."""
    with acting(store, "person.remove", actor) as (facts, session):
        facts.actor = _registrar(session, actor)
        facts.detail = {"person": name}
        person = acting_person(session, name)
        facts.department = person.department
        if HUB_WIDE in _scopes(session, person.name, Role.STEWARD):
            _keep_a_hub_steward(session, person.name)
        person.removed_at, person.removed_by = utcnow(), facts.actor


def list_people(store: MetadataStore, *, include_removed: bool = False) -> list[tuple[Person, list[str]]]:
    """People with their role labels, by name."""
    query = select(Person).order_by(Person.name)
    if not include_removed:
        query = query.where(Person.removed_at.is_(None))
    with store.session() as session:
        return [(p, _role_labels(session, p.name)) for p in session.scalars(query)]


def acting_member(session: Session, name: str | None, department: str | None) -> Person:
    """The acting person if they belong to ``department`` or steward the whole hub."""
    person = acting_person(session, name)
    if department is not None and person.department == department:
        return person
    if HUB_WIDE in _scopes(session, person.name, Role.STEWARD):
        return person
    of = _describe(session, person.department) if person.department else "no department"
    raise SharingError(
        f"{person.name} (of {of}) cannot act for "
        f"{_describe(session, department) if department else 'an unknown department'}"
    )
