"""Tables of the sharing workflow: departments, their systems, people and roles, requests and grants."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.metadata.base import Base, BigId, UTCDateTime, enum_type, utcnow


class DepartmentKind(StrEnum):
    """What kind of body a department is, as GB 32100 positions 1-2 tell."""

    AGENCY = "agency"  # 机关 (11)
    INSTITUTION = "institution"  # 事业单位 (12)
    ENTERPRISE = "enterprise"  # 企业 (91), e.g. a public utility that shares data
    OTHER = "other"

    @classmethod
    def from_code(cls, code: str) -> DepartmentKind:
        return {"11": cls.AGENCY, "12": cls.INSTITUTION, "91": cls.ENTERPRISE}.get(code[:2], cls.OTHER)


class Role(StrEnum):
    STEWARD = "steward"
    AUDITOR = "auditor"


class Department(Base):
    """A department (or other body) taking part in sharing, by unified social credit code."""

    __tablename__ = "hub_departments"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[DepartmentKind] = mapped_column(enum_type(DepartmentKind, 16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64), default=None)


class System(Base):
    """A department's information system that receives shared data, with its credential."""

    __tablename__ = "hub_systems"
    __table_args__ = (
        UniqueConstraint("credential_id", name="uq_hub_systems_credential_id"),
        Index("ix_hub_systems_department", "department"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    department: Mapped[str] = mapped_column(
        String(18), ForeignKey("hub_departments.code", name="fk_hub_systems_department")
    )
    credential_id: Mapped[str] = mapped_column(String(12))
    """The non-secret part of the credential (``hub_sys_<id>_...``): finds the row to compare."""
    credential_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the whole credential (hex); the credential itself is never stored."""
    credential_issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(64), default=None)
    revoke_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Person(Base):
    """Someone who acts in the hub (``--as NAME``); removal keeps the row for attribution."""

    __tablename__ = "hub_people"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str | None] = mapped_column(
        String(18), ForeignKey("hub_departments.code", name="fk_hub_people_department"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64), default=None)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    removed_by: Mapped[str | None] = mapped_column(String(64), default=None)


class PersonRole(Base):
    """A role a person holds: ``steward`` of a department (or ``*``, the whole hub), ``auditor``."""

    __tablename__ = "hub_person_roles"
    __table_args__ = (UniqueConstraint("person", "role", "scope", name="uq_hub_person_roles"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(
        String(64), ForeignKey("hub_people.name", name="fk_hub_person_roles_person")
    )
    role: Mapped[Role] = mapped_column(enum_type(Role, 16))
    scope: Mapped[str] = mapped_column(String(18))
    """A department code, or ``*`` for the whole hub."""


class RequestStatus(StrEnum):
    """Where a request stands; only ``pending`` and ``material_requested`` can still change."""

    PENDING = "pending"
    MATERIAL_REQUESTED = "material_requested"
    APPROVED = "approved"
    DENIED = "denied"
    REFUSED = "refused"


class Request(Base):
    """A department's request for a dataset for one of its systems, and its answer.

    Refused requests are kept too (status ``refused`` with the reason), so ``system`` and
    ``dataset`` are plain names: a request may name ones that do not exist.
    """

    __tablename__ = "hub_requests"
    __table_args__ = (
        Index("ix_hub_requests_status_deadline", "status", "deadline"),
        Index("ix_hub_requests_system_dataset", "system", "dataset"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(64))
    system: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(18), default=None)
    requested_by: Mapped[str | None] = mapped_column(String(64), default=None)
    columns: Mapped[str] = mapped_column(Text, default="[]")
    """Published column names asked for, as a JSON list."""
    purpose: Mapped[str] = mapped_column(Text, default="")
    days: Mapped[int] = mapped_column(Integer)
    """How long the grant should last, in calendar days."""
    level: Mapped[str | None] = mapped_column(String(16), default=None)
    status: Mapped[RequestStatus] = mapped_column(enum_type(RequestStatus, 20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """When the answer clock last (re)started: at the request, and again at the material."""
    deadline: Mapped[date | None] = mapped_column(Date, default=None)
    """Last working day to answer (China time); none while waiting for material."""
    asked_material: Mapped[str | None] = mapped_column(Text, default=None)
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    asked_by: Mapped[str | None] = mapped_column(String(64), default=None)
    answered_material: Mapped[str | None] = mapped_column(Text, default=None)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    answered_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    """The steward who approved or denied; none for an automatic grant or refusal."""
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    """Why a request was denied or refused."""


class Grant(Base):
    """What an approved request gives a system: columns of one dataset, for a purpose, until expiry."""

    __tablename__ = "hub_grants"
    __table_args__ = (
        UniqueConstraint("request_id", name="uq_hub_grants_request"),
        Index("ix_hub_grants_system_dataset", "system", "dataset"),
        Index("ix_hub_grants_dataset", "dataset"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("hub_requests.id", name="fk_hub_grants_request")
    )
    system: Mapped[str] = mapped_column(String(64), ForeignKey("hub_systems.id", name="fk_hub_grants_system"))
    department: Mapped[str] = mapped_column(
        String(18), ForeignKey("hub_departments.code", name="fk_hub_grants_department")
    )
    dataset: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    columns: Mapped[str] = mapped_column(Text)
    """Granted published column names, as a JSON list."""
    purpose: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    granted_by: Mapped[str | None] = mapped_column(String(64), default=None)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(64), default=None)
    revoke_reason: Mapped[str | None] = mapped_column(Text, default=None)
