"""Requests for shared datasets: submitted by a department for one of its systems, granted at
once, answered by a steward of the owner department within working days, or refused with
the contract's legal basis; every step on record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.metadata import (
    Grant,
    Person,
    Request,
    RequestStatus,
    utcnow,
)
from catalog.settings import current
from catalog.sharing.grants import GrantRef, grant_ref
from catalog.sharing.identities import (
    CST,
    AccessFacts,
    SharingError,
    acting,
    acting_member,
    acting_person,
    acting_steward,
    china_day,
    china_time,
    clean_text,
    live_system_row,
)
from catalog.sharing.terms import (
    DatasetTerms,
    column_problems,
    dataset_terms,
    today_cst,
)
from catalog.sharing.workdays import WorkCalendar

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from catalog.settings import SharingSettings


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
            problems += column_problems(terms, asked)
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
