"""Sharing: departments, systems, people and roles; requests and grants.

Revision ID: 0003_sharing
Revises: 0002_catalogue
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from catalog.metadata.base import UTCDateTime

revision: str = "0003_sharing"
down_revision: str | Sequence[str] | None = "0002_catalogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum(name: str, length: int, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def upgrade() -> None:
    op.create_table(
        "hub_departments",
        sa.Column("code", sa.String(18), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column(
            "kind",
            _enum("departmentkind", 16, "agency", "institution", "enterprise", "other"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
    )
    op.create_table(
        "hub_systems",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column(
            "department",
            sa.String(18),
            sa.ForeignKey("hub_departments.code", name="fk_hub_systems_department"),
            nullable=False,
        ),
        sa.Column("credential_id", sa.String(12), nullable=False),
        sa.Column("credential_hash", sa.String(64), nullable=False),
        sa.Column("credential_issued_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("credential_id", name="uq_hub_systems_credential_id"),
    )
    op.create_index("ix_hub_systems_department", "hub_systems", ["department"])
    op.create_table(
        "hub_people",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column(
            "department",
            sa.String(18),
            sa.ForeignKey("hub_departments.code", name="fk_hub_people_department"),
            nullable=True,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("removed_by", sa.String(64), nullable=True),
    )
    op.create_table(
        "hub_person_roles",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "person",
            sa.String(64),
            sa.ForeignKey("hub_people.name", name="fk_hub_person_roles_person"),
            nullable=False,
        ),
        sa.Column("role", _enum("role", 16, "steward", "auditor"), nullable=False),
        sa.Column("scope", sa.String(18), nullable=False),
        sa.UniqueConstraint("person", "role", "scope", name="uq_hub_person_roles"),
    )
    op.create_table(
        "hub_requests",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("department", sa.String(18), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=True),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(16), nullable=True),
        sa.Column(
            "status",
            _enum("requeststatus", 20, "pending", "material_requested", "approved", "denied", "refused"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("clock_started_at", UTCDateTime(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("asked_material", sa.Text(), nullable=True),
        sa.Column("asked_at", UTCDateTime(), nullable=True),
        sa.Column("asked_by", sa.String(64), nullable=True),
        sa.Column("answered_material", sa.Text(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("answered_by", sa.String(64), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_hub_requests_status_deadline", "hub_requests", ["status", "deadline"])
    op.create_index("ix_hub_requests_system_dataset", "hub_requests", ["system", "dataset"])
    op.create_table(
        "hub_grants",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            BigId,
            sa.ForeignKey("hub_requests.id", name="fk_hub_grants_request"),
            nullable=False,
        ),
        sa.Column(
            "system",
            sa.String(64),
            sa.ForeignKey("hub_systems.id", name="fk_hub_grants_system"),
            nullable=False,
        ),
        sa.Column(
            "department",
            sa.String(18),
            sa.ForeignKey("hub_departments.code", name="fk_hub_grants_department"),
            nullable=False,
        ),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("request_id", name="uq_hub_grants_request"),
    )
    op.create_index("ix_hub_grants_system_dataset", "hub_grants", ["system", "dataset"])
    op.create_index("ix_hub_grants_dataset", "hub_grants", ["dataset"])


def downgrade() -> None:
    op.drop_index("ix_hub_grants_dataset", table_name="hub_grants")
    op.drop_index("ix_hub_grants_system_dataset", table_name="hub_grants")
    op.drop_table("hub_grants")
    op.drop_index("ix_hub_requests_system_dataset", table_name="hub_requests")
    op.drop_index("ix_hub_requests_status_deadline", table_name="hub_requests")
    op.drop_table("hub_requests")
    op.drop_table("hub_person_roles")
    op.drop_table("hub_people")
    op.drop_index("ix_hub_systems_department", table_name="hub_systems")
    op.drop_table("hub_systems")
    op.drop_table("hub_departments")
