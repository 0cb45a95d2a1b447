"""Requests for shared datasets and the grants they give.

A department asks for a dataset for one of its systems (:func:`submit_request`); the
contract's share attribute decides what happens: 无条件共享 is granted at once, 有条件共享
waits for a steward of the owner department (:func:`approve_request`, :func:`deny_request`,
:func:`ask_material`), 不予共享 is refused with the contract's legal basis. Deadlines are
working days (:mod:`catalog.sharing.workdays`) counted from settings. A grant gives one system the
named published columns of one dataset, for one purpose, until it expires or is revoked;
:func:`active_grant`, :func:`require_grant` and :func:`grants_including` are what the
access paths and contract changes ask. Who acts (departments, systems, people, stewards)
is :mod:`catalog.sharing.identities`, re-exported here.

Every refusal, grant, approval, denial and revocation is appended to the access log
(:func:`catalog.audit.log.record_access`) after its transaction commits. Refusals are
:class:`SharingError` (an :class:`~schemas.errors.AccessDeniedError`, exit code 5) naming the
reason; refused requests are kept with status ``refused``.

Two stewards answering one request at once cannot both succeed: every decision is a
conditional ``UPDATE ... WHERE status = <expected>`` whose row count says who won, and a
request has at most one grant (unique constraint).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.metadata import (
    Department,
    DepartmentKind,
    Grant,
    Person,
    PersonRole,
    Request,
    RequestStatus,
    Role,
    System,
    utcnow,
)
from catalog.settings import current
from catalog.sharing.identities import (
    CST,
    WHO,
    AccessFacts,
    RegistryError,
    SharingError,
    SystemRef,
    acting,
    acting_member,
    acting_person,
    acting_steward,
    add_department,
    add_owner_departments,
    add_person,
    add_system,
    authenticate_system,
    check_department_code,
    china_day,
    china_time,
    clean_text,
    list_departments,
    list_people,
    list_systems,
    live_system_row,
    remove_person,
    require_steward,
    revoke_system,
    rotate_credential,
    set_roles,
)
from catalog.sharing.workdays import WorkCalendar

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from catalog.settings import SharingSettings


# -- tables ---------------------------------------------------------------------------------


# -- what callers get -----------------------------------------------------------------------


@dataclass(frozen=True)
class GrantRef:
    """A grant as other modules see it; ``columns`` are published column names."""

    id: int
    system: str
    department: str
    dataset: str
    level: str
    columns: tuple[str, ...]
    purpose: str
    expires_at: datetime
    request_id: int | None = None
    granted_at: datetime | None = None
    granted_by: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > (now or utcnow()) else "expired"


@dataclass(frozen=True)
class RequestRef:
    """A request and where it stands."""

    id: int
    dataset: str
    system: str
    department: str | None
    requested_by: str | None
    columns: tuple[str, ...]
    purpose: str
    days: int
    level: str | None
    status: RequestStatus
    created_at: datetime
    deadline: date | None
    asked_material: str | None
    asked_at: datetime | None
    asked_by: str | None
    answered_material: str | None
    answered_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    grant_id: int | None = None

    def overdue(self, today: date | None = None) -> bool:
        """Still waiting for a steward after its last working day."""
        return (
            self.status is RequestStatus.PENDING
            and self.deadline is not None
            and (today or today_cst()) > self.deadline
        )

    def answered_late(self) -> bool:
        """Decided by a steward after the deadline."""
        if self.decided_at is None or self.deadline is None or self.decided_by is None:
            return False
        return self.decided_at.astimezone(CST).date() > self.deadline


@dataclass(frozen=True)
class DatasetTerms:
    """What a dataset's contract says about sharing it."""

    dataset: str
    share_attribute: str
    level: str | None
    """``unconditional`` or ``conditional``; none for 不予共享."""
    condition: str | None
    legal_basis: str | None
    owner: str
    owner_name: str
    columns: tuple[str, ...]
    """Published columns a grant at ``level`` may include (those the level does not null)."""
    published: dict[str, str] = field(default_factory=dict)
    """Contract field name -> published column name, to point a request at the right name."""


def today_cst(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(CST).date()


# -- datasets -------------------------------------------------------------------------------

_LEVELS = {"无条件共享": "unconditional", "有条件共享": "conditional", "不予共享": None}


def known_datasets() -> list[str]:
    from schemas.contract import CONTRACT_DIR

    return sorted(p.stem for p in CONTRACT_DIR.glob("*.yaml"))


def dataset_terms(dataset: str) -> DatasetTerms:
    """What the dataset's contract says about sharing it, or a refusal naming the known ones."""
    from schemas.contract import MaskRule, load_contract

    if dataset not in known_datasets():
        raise SharingError(f"no dataset {dataset!r} (known: {', '.join(known_datasets()) or 'none'})")
    contract = load_contract(dataset)
    level = _LEVELS[contract.share_attribute]
    columns = tuple(
        f.published_name for f in contract.fields if level and f.mask.at(level).rule is not MaskRule.NULL
    )
    return DatasetTerms(
        dataset=dataset,
        share_attribute=contract.share_attribute,
        level=level,
        condition=contract.share_condition,
        legal_basis=contract.legal_basis,
        owner=contract.owner_department.code,
        owner_name=contract.owner_department.name,
        columns=columns,
        published={f.name: f.published_name for f in contract.fields if f.name != f.published_name},
    )


def _column_problems(terms: DatasetTerms, asked: Sequence[str]) -> list[str]:
    unknown = [c for c in asked if c not in terms.columns]
    if not unknown:
        return []
    hints = [f"{c!r} is published as {terms.published[c]!r}" for c in unknown if c in terms.published]
    hint = f" ({'; '.join(hints)})" if hints else ""
    return [
        f"dataset {terms.dataset} has no column {', '.join(repr(c) for c in unknown)} shared at the "
        f"{terms.level} level{hint}; allowed: {', '.join(terms.columns)}"
    ]


# -- requests -------------------------------------------------------------------------------


def _ref(request: Request, grant_id: int | None = None) -> RequestRef:
    return RequestRef(
        id=request.id,
        dataset=request.dataset,
        system=request.system,
        department=request.department,
        requested_by=request.requested_by,
        columns=tuple(json.loads(request.columns or "[]")),
        purpose=request.purpose,
        days=request.days,
        level=request.level,
        status=RequestStatus(request.status),
        created_at=request.created_at,
        deadline=request.deadline,
        asked_material=request.asked_material,
        asked_at=request.asked_at,
        asked_by=request.asked_by,
        answered_material=request.answered_material,
        answered_at=request.answered_at,
        decided_at=request.decided_at,
        decided_by=request.decided_by,
        reason=request.reason,
        grant_id=grant_id,
    )


def grant_ref(grant: Grant) -> GrantRef:
    return GrantRef(
        id=grant.id,
        system=grant.system,
        department=grant.department,
        dataset=grant.dataset,
        level=grant.level,
        columns=tuple(json.loads(grant.columns)),
        purpose=grant.purpose,
        expires_at=grant.expires_at,
        request_id=grant.request_id,
        granted_at=grant.granted_at,
        granted_by=grant.granted_by,
        revoked_at=grant.revoked_at,
        revoked_by=grant.revoked_by,
        revoke_reason=grant.revoke_reason,
    )


def _sharing_settings(settings: SharingSettings | None) -> SharingSettings:
    return settings if settings is not None else current().sharing


def submit_request(
    store: MetadataStore,
    dataset: str,
    *,
    system: str,
    purpose: str,
    columns: Sequence[str] | None = None,
    days: int | None = None,
    actor: str | None,
    settings: SharingSettings | None = None,
    calendar: WorkCalendar | None = None,
    now: datetime | None = None,
) -> tuple[RequestRef, GrantRef | None]:
    """A department asks for ``dataset`` for one of its systems.

    ``columns`` are published names (all the level shares when None). An unconditional
    dataset is granted at once; a conditional one waits for a steward of its owner until a
    deadline in working days; anything wrong (every problem found is named) and a dataset
    not shared refuse the request, which is kept with status ``refused``.
    """
    sharing = _sharing_settings(settings)
    now = now or utcnow()
    with acting(store, "request", actor) as (facts, session):
        facts.system, facts.dataset, facts.purpose = system, dataset, clean_text(purpose)
        problems: list[str] = []
        department: str | None = None
        try:
            person: Person | None = acting_person(session, actor)
        except SharingError as exc:
            person = None
            problems.append(str(exc))
        try:
            department = live_system_row(session, system).department
            if person is not None:
                acting_member(session, person.name, department)
        except SharingError as exc:
            problems.append(str(exc))
        try:
            terms: DatasetTerms | None = dataset_terms(dataset)
        except SharingError as exc:
            terms = None
            problems.append(str(exc))
        asked = _unique(columns) if columns is not None else list(terms.columns if terms else [])
        facts.department, facts.columns = department, tuple(asked)
        if terms is not None and terms.level is None:
            problems.append(f"dataset {dataset} is not shared (不予共享); legal basis: {terms.legal_basis}")
        elif terms is not None:
            if columns is not None and not asked:
                problems.append("no columns named (leave out --columns for every shared column)")
            problems += _column_problems(terms, asked)
        if facts.purpose is None:
            problems.append("the purpose is empty: state what the data will be used for")
        length = sharing.default_grant_days if days is None else days
        if length < 1:
            problems.append(f"a grant must last at least one day, not {length}")
        level = terms.level if terms else None
        deadline: date | None = None
        if not problems and level is not None:
            limit = sharing.unconditional_days if level == "unconditional" else sharing.conditional_days
            deadline = (calendar or WorkCalendar.load(sharing.calendar_file)).add_working_days(
                today_cst(now), limit
            )
        request = Request(
            dataset=dataset,
            system=system,
            department=department,
            requested_by=facts.actor,
            columns=json.dumps(asked, ensure_ascii=False),
            purpose=facts.purpose or "",
            days=length,
            level=level,
            status=RequestStatus.REFUSED if problems else RequestStatus.PENDING,
            created_at=now,
            clock_started_at=now,
            deadline=deadline,
            decided_at=now if problems else None,
            reason="; ".join(problems) or None,
        )
        session.add(request)
        session.flush()
        facts.detail["request"] = request.id
        grant: GrantRef | None = None
        if problems:
            facts.refuse(f"request {request.id} refused: {'; '.join(problems)}")
        elif level == "unconditional":
            request.status, request.decided_at = RequestStatus.APPROVED, now
            grant = _grant(session, request, asked, length, None, now)
            facts.action, facts.detail["grant"] = "grant", grant.id
        facts.detail["status"] = RequestStatus(request.status).value
        ref = _ref(request, grant.id if grant else None)
    return ref, grant


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value.strip():
            seen.setdefault(value.strip(), None)
    return list(seen)


def _grant(
    session: Session, request: Request, columns: Sequence[str], days: int, by: str | None, now: datetime
) -> GrantRef:
    """Create the request's grant; it supersedes the system's earlier grant for the dataset."""
    assert request.department is not None and request.level is not None
    grant = Grant(
        request_id=request.id,
        system=request.system,
        department=request.department,
        dataset=request.dataset,
        level=request.level,
        columns=json.dumps(list(columns), ensure_ascii=False),
        purpose=request.purpose,
        granted_at=now,
        granted_by=by,
        expires_at=now + timedelta(days=days),
    )
    session.add(grant)
    session.flush()
    session.execute(
        update(Grant)
        .where(
            Grant.system == grant.system,
            Grant.dataset == grant.dataset,
            Grant.id != grant.id,
            Grant.revoked_at.is_(None),
            Grant.expires_at > now,
        )
        .values(revoked_at=now, revoked_by=by, revoke_reason=f"superseded by grant {grant.id}")
    )
    return grant_ref(grant)


def _request(session: Session, request_id: int) -> Request:
    request = session.get(Request, request_id)
    if request is None:
        raise SharingError(f"no request {request_id} is recorded")
    return request


def _fill(facts: AccessFacts, request: Request) -> None:
    facts.system, facts.department, facts.dataset = request.system, request.department, request.dataset
    facts.columns, facts.purpose = tuple(json.loads(request.columns or "[]")), request.purpose
    facts.detail["request"] = request.id


def _not_open(request: Request, expected: RequestStatus) -> SharingError:
    status = RequestStatus(request.status)
    if status is RequestStatus.MATERIAL_REQUESTED:
        state = f"is waiting for material asked on {china_day(request.asked_at)} by {request.asked_by}"
    elif status is RequestStatus.PENDING:
        state = "is pending"
    else:
        by = f" by {request.decided_by}" if request.decided_by else ""
        when = f" on {china_time(request.decided_at)}" if request.decided_at else ""
        state = f"was already {status.value}{by}{when}"
    return SharingError(f"request {request.id} {state}, not {expected.value}")


def _transition(session: Session, request: Request, expected: RequestStatus, **values: Any) -> None:
    """Move ``request`` on only if it is still ``expected`` (what a concurrent steward may have
    changed since it was read); the row count says whether this caller won."""
    result = session.execute(
        update(Request)
        .where(Request.id == request.id, Request.status == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(request)
        raise _not_open(request, expected)
    session.refresh(request)


def _owner(request: Request) -> str:
    return dataset_terms(request.dataset).owner


def approve_request(
    store: MetadataStore,
    request_id: int,
    *,
    actor: str | None,
    columns: Sequence[str] | None = None,
    days: int | None = None,
    now: datetime | None = None,
) -> GrantRef:
    """A steward of the owner department approves a pending request, possibly for fewer
    columns or a shorter time than asked; the grant starts now."""
    now = now or utcnow()
    with acting(store, "approve", actor) as (facts, session):
        request = _request(session, request_id)
        _fill(facts, request)
        steward = acting_steward(session, actor, [_owner(request)]).name
        facts.actor = steward
        if request.status is not RequestStatus.PENDING:
            raise _not_open(request, RequestStatus.PENDING)
        live_system_row(session, request.system)
        asked = list(json.loads(request.columns))
        granted = _unique(columns) if columns is not None else asked
        extra = [c for c in granted if c not in asked]
        if extra or not granted:
            raise SharingError(
                f"request {request.id}: approve a subset of the columns asked for "
                f"({', '.join(asked)}); {', '.join(extra) or 'none'} given"
            )
        length = request.days if days is None else days
        if not 1 <= length <= request.days:
            raise SharingError(
                f"request {request.id} asked for {request.days} days; approve 1 to {request.days}, not {length}"
            )
        _transition(
            session,
            request,
            RequestStatus.PENDING,
            status=RequestStatus.APPROVED,
            decided_at=now,
            decided_by=steward,
        )
        grant = _grant(session, request, granted, length, steward, now)
        facts.columns = grant.columns
        facts.detail["grant"] = grant.id
        return grant


def deny_request(
    store: MetadataStore, request_id: int, *, actor: str | None, reason: str, now: datetime | None = None
) -> RequestRef:
    """A steward of the owner department denies a pending request, giving the reason."""
    with acting(store, "deny", actor) as (facts, session):
        request = _request(session, request_id)
        _fill(facts, request)
        facts.actor = acting_steward(session, actor, [_owner(request)]).name
        if clean_text(reason) is None:
            raise SharingError(f"denying request {request.id} needs a reason (the requester is told it)")
        if request.status is not RequestStatus.PENDING:
            raise _not_open(request, RequestStatus.PENDING)
        _transition(
            session,
            request,
            RequestStatus.PENDING,
            status=RequestStatus.DENIED,
            decided_at=now or utcnow(),
            decided_by=facts.actor,
            reason=clean_text(reason),
        )
        ref = _ref(request)
        facts.outcome, facts.reason = "denied", ref.reason
        return ref


def ask_material(
    store: MetadataStore,
    request_id: int,
    *,
    actor: str | None,
    material: Sequence[str],
    now: datetime | None = None,
) -> RequestRef:
    """A steward asks for more material, all of it in this one step; the clock stops until
    the requester answers. A request gets one ask: the rules want everything asked at once."""
    items = _unique(material)
    with acting(store, "ask", actor) as (facts, session):
        request = _request(session, request_id)
        _fill(facts, request)
        facts.actor = acting_steward(session, actor, [_owner(request)]).name
        if not items:
            raise SharingError(f"request {request.id}: name the material needed (all of it, in one ask)")
        if request.asked_at is not None:
            raise SharingError(
                f"request {request.id}: material was already asked for on {china_day(request.asked_at)} "
                f"by {request.asked_by}; everything must be asked at once, so approve or deny it"
            )
        if request.status is not RequestStatus.PENDING:
            raise _not_open(request, RequestStatus.PENDING)
        _transition(
            session,
            request,
            RequestStatus.PENDING,
            status=RequestStatus.MATERIAL_REQUESTED,
            asked_material="\n".join(items),
            asked_at=now or utcnow(),
            asked_by=facts.actor,
            deadline=None,
        )
        ref = _ref(request)
        facts.detail["material"] = items
        return ref


def answer_material(
    store: MetadataStore,
    request_id: int,
    *,
    actor: str | None,
    material: Sequence[str],
    settings: SharingSettings | None = None,
    calendar: WorkCalendar | None = None,
    now: datetime | None = None,
) -> RequestRef:
    """The requesting department hands in the material asked for; the clock restarts in full."""
    sharing = _sharing_settings(settings)
    now = now or utcnow()
    items = _unique(material)
    with acting(store, "answer", actor) as (facts, session):
        request = _request(session, request_id)
        _fill(facts, request)
        facts.actor = acting_member(session, actor, request.department).name
        if not items:
            raise SharingError(f"request {request.id}: the material is empty")
        if request.status is not RequestStatus.MATERIAL_REQUESTED:
            raise _not_open(request, RequestStatus.MATERIAL_REQUESTED)
        deadline = (calendar or WorkCalendar.load(sharing.calendar_file)).add_working_days(
            today_cst(now), sharing.conditional_days
        )
        _transition(
            session,
            request,
            RequestStatus.MATERIAL_REQUESTED,
            status=RequestStatus.PENDING,
            answered_material="\n".join(items),
            answered_at=now,
            answered_by=facts.actor,
            clock_started_at=now,
            deadline=deadline,
        )
        ref = _ref(request)
        return ref


def get_request(store: MetadataStore, request_id: int) -> RequestRef:
    with store.session() as session:
        request = _request(session, request_id)
        grant = session.scalars(select(Grant.id).where(Grant.request_id == request.id)).first()
        return _ref(request, grant)


def list_requests(
    store: MetadataStore,
    *,
    status: Iterable[RequestStatus | str] = (),
    overdue: bool = False,
    system: str | None = None,
    dataset: str | None = None,
    today: date | None = None,
    limit: int | None = None,
) -> list[RequestRef]:
    """Requests, newest first; ``overdue`` keeps the pending ones past their deadline."""
    query = select(Request, Grant.id).outerjoin(Grant, Grant.request_id == Request.id)
    wanted = [RequestStatus(s) for s in status]
    if overdue:
        wanted = [RequestStatus.PENDING]
        query = query.where(Request.deadline < (today or today_cst()))
    if wanted:
        query = query.where(Request.status.in_(wanted))
    if system:
        query = query.where(Request.system == system)
    if dataset:
        query = query.where(Request.dataset == dataset)
    query = query.order_by(Request.created_at.desc(), Request.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.session() as session:
        return [_ref(request, grant_id) for request, grant_id in session.execute(query)]


# -- grants ---------------------------------------------------------------------------------


def _active(query: Any, now: datetime) -> Any:
    return query.join(System, System.id == Grant.system).where(
        Grant.revoked_at.is_(None), Grant.expires_at > now, System.revoked_at.is_(None)
    )


def active_grant(
    store: MetadataStore, system: str, dataset: str, *, now: datetime | None = None
) -> GrantRef | None:
    """The system's grant for the dataset, if one is neither expired nor revoked (and the
    system itself is not revoked); else None."""
    query = _active(select(Grant), now or utcnow()).where(Grant.system == system, Grant.dataset == dataset)
    with store.session() as session:
        grant = session.scalars(query.order_by(Grant.granted_at.desc(), Grant.id.desc())).first()
        return grant_ref(grant) if grant is not None else None


def grants_including(
    store: MetadataStore, dataset: str, fields: Iterable[str], *, now: datetime | None = None
) -> list[GrantRef]:
    """Active grants of ``dataset`` whose columns include any of ``fields`` (published names)."""
    wanted = set(fields)
    query = _active(select(Grant), now or utcnow()).where(Grant.dataset == dataset).order_by(Grant.id)
    with store.session() as session:
        grants = [grant_ref(g) for g in session.scalars(query)]
    return [g for g in grants if wanted & set(g.columns)]


def require_grant(
    store: MetadataStore,
    system: str,
    dataset: str,
    columns: Sequence[str] = (),
    *,
    action: str = "query",
    now: datetime | None = None,
) -> GrantRef:
    """The active grant covering ``columns``, or :class:`SharingError` naming why there is none
    (no grant, expired, revoked, columns not granted, system revoked); refusals are recorded.

    Allowed accesses are recorded by the caller, which knows the rows and snapshot returned.
    """
    now = now or utcnow()
    facts = AccessFacts(action=action, actor=None, system=system, dataset=dataset, columns=tuple(columns))
    try:
        with store.session() as session:
            found = live_system_row(session, system)
            facts.department = found.department
            query = select(Grant).where(Grant.system == system, Grant.dataset == dataset)
            latest = session.scalars(query.order_by(Grant.granted_at.desc(), Grant.id.desc())).first()
            if latest is None:
                raise SharingError(f"system {system} has no grant for dataset {dataset} (hub request)")
            grant = grant_ref(latest)
        if grant.revoked_at is not None:
            raise SharingError(
                f"grant {grant.id} of system {system} for {dataset} was revoked on "
                f"{china_day(grant.revoked_at)}: {grant.revoke_reason}"
            )
        if grant.expires_at <= now:
            raise SharingError(
                f"grant {grant.id} of system {system} for {dataset} expired on {china_day(grant.expires_at)}"
            )
        missing = [c for c in columns if c not in grant.columns]
        if missing:
            raise SharingError(
                f"grant {grant.id} of system {system} for {dataset} does not include "
                f"{', '.join(missing)} (granted: {', '.join(grant.columns)})"
            )
    except SharingError as exc:
        facts.outcome, facts.reason = "denied", str(exc)
        facts.log(store)
        raise
    return grant


def revoke_grant(
    store: MetadataStore, grant_id: int, *, actor: str | None, reason: str, now: datetime | None = None
) -> GrantRef:
    """A steward of the owner or of the receiving department ends a grant, giving the reason."""
    now = now or utcnow()
    with acting(store, "revoke", actor) as (facts, session):
        grant = session.get(Grant, grant_id)
        if grant is None:
            raise SharingError(f"no grant {grant_id} is recorded")
        facts.system, facts.department, facts.dataset = grant.system, grant.department, grant.dataset
        facts.columns, facts.purpose = tuple(json.loads(grant.columns)), grant.purpose
        facts.detail["grant"] = grant.id
        facts.actor = acting_steward(
            session, actor, [dataset_terms(grant.dataset).owner, grant.department]
        ).name
        facts.reason = clean_text(reason)
        if facts.reason is None:
            raise SharingError(f"revoking grant {grant.id} needs a reason")
        if grant.revoked_at is not None:
            raise SharingError(
                f"grant {grant.id} was already revoked on {china_day(grant.revoked_at)} by "
                f"{grant.revoked_by or 'the hub'}: {grant.revoke_reason}"
            )
        if grant.expires_at <= now:
            raise SharingError(f"grant {grant.id} expired on {china_day(grant.expires_at)}; it gives nothing")
        result = session.execute(
            update(Grant)
            .where(Grant.id == grant.id, Grant.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=facts.actor, revoke_reason=facts.reason)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise SharingError(f"grant {grant.id} was revoked meanwhile")
        session.refresh(grant)
        return grant_ref(grant)


def list_grants(
    store: MetadataStore,
    *,
    system: str | None = None,
    dataset: str | None = None,
    include_inactive: bool = False,
    now: datetime | None = None,
) -> list[GrantRef]:
    """Grants, newest first; active ones only unless ``include_inactive``."""
    query = select(Grant)
    if not include_inactive:
        query = _active(query, now or utcnow())
    if system:
        query = query.where(Grant.system == system)
    if dataset:
        query = query.where(Grant.dataset == dataset)
    with store.session() as session:
        return [
            grant_ref(g) for g in session.scalars(query.order_by(Grant.granted_at.desc(), Grant.id.desc()))
        ]


__all__ = [
    "CST",
    "WHO",
    "DatasetTerms",
    "Department",
    "DepartmentKind",
    "Grant",
    "GrantRef",
    "Person",
    "PersonRole",
    "RegistryError",
    "Request",
    "RequestRef",
    "RequestStatus",
    "Role",
    "SharingError",
    "System",
    "SystemRef",
    "active_grant",
    "add_department",
    "add_owner_departments",
    "add_person",
    "add_system",
    "answer_material",
    "approve_request",
    "ask_material",
    "authenticate_system",
    "check_department_code",
    "dataset_terms",
    "deny_request",
    "get_request",
    "grants_including",
    "known_datasets",
    "list_departments",
    "list_grants",
    "list_people",
    "list_requests",
    "list_systems",
    "remove_person",
    "require_grant",
    "require_steward",
    "revoke_grant",
    "revoke_system",
    "rotate_credential",
    "set_roles",
    "submit_request",
    "today_cst",
]
