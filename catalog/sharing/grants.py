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
(:func:`catalog.audit.record_access`) after its transaction commits. Refusals are
:class:`SharingError` (an :class:`~schemas.errors.AccessDeniedError`, exit code 5) naming the
reason; refused requests are kept with status ``refused``.

Two stewards answering one request at once cannot both succeed: every decision is a
conditional ``UPDATE ... WHERE status = <expected>`` whose row count says who won, and a
request has at most one grant (unique constraint).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

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
from catalog.sharing.identities import (
    CST,
    WHO,
    AccessFacts,
    RegistryError,
    SharingError,
    SystemRef,
    acting,
    acting_steward,
    add_department,
    add_owner_departments,
    add_person,
    add_system,
    authenticate_system,
    check_department_code,
    china_day,
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
from catalog.sharing.terms import (
    DatasetTerms,
    dataset_terms,
    known_datasets,
    today_cst,
)

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore


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


# -- datasets -------------------------------------------------------------------------------


# -- requests -------------------------------------------------------------------------------


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
    "authenticate_system",
    "check_department_code",
    "dataset_terms",
    "grants_including",
    "known_datasets",
    "list_departments",
    "list_grants",
    "list_people",
    "list_systems",
    "remove_person",
    "require_grant",
    "require_steward",
    "revoke_grant",
    "revoke_system",
    "rotate_credential",
    "set_roles",
    "today_cst",
]
