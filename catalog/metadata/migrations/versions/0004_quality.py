"""Quality gate: held batches and their release, Data Docs, correction requests.

Revision ID: 0004_quality
Revises: 0003_sharing
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from catalog.metadata.base import UTCDateTime

revision: str = "0004_quality"
down_revision: str | Sequence[str] | None = "0003_sharing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_BATCH_COLUMNS = (
    ("department_code", sa.String(32)),
    ("warnings", sa.Text()),
    ("data_docs", sa.String(1024)),
    ("held_at", UTCDateTime()),
    ("released_at", UTCDateTime()),
    ("released_by", sa.String(128)),
    ("release_reason", sa.Text()),
)
"""New nullable columns of ``hub_batches``. The status column is a plain string (no native
enum, no check constraint), so the new ``held`` status needs no DDL."""


def _schema() -> str | None:
    """The schema the hub's tables live in: ``ALTER TABLE`` does not go through the
    engine's schema translation as ``CREATE TABLE`` does, so it is named explicitly."""
    schema: str | None = context.config.attributes.get("schema")
    return schema


def upgrade() -> None:
    with op.batch_alter_table("hub_batches", schema=_schema()) as batch:
        for name, kind in _BATCH_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_table(
        "hub_corrections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column(
            "origin",
            sa.Enum("quarantine", "consumer", name="correctionorigin", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("open", "resolved", "corrected", name="correctionstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("batch_id", sa.String(128), nullable=True),
        sa.Column("row", sa.BigInteger(), nullable=True),
        sa.Column("key_token", sa.String(256), nullable=True),
        sa.Column("fields", sa.String(1024), nullable=False),
        sa.Column("rules", sa.String(1024), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("filed_by", sa.String(128), nullable=False),
        sa.Column("field_digest", sa.String(64), nullable=True),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(128), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.UniqueConstraint("batch_id", "row", name="uq_hub_corrections_batch_row"),
    )
    op.create_index("ix_hub_corrections_dataset_key", "hub_corrections", ["dataset", "key_token"])
    op.create_index("ix_hub_corrections_status_due", "hub_corrections", ["status", "due_on"])
    op.create_index("ix_hub_corrections_department_status", "hub_corrections", ["department_code", "status"])
    op.create_table(
        "hub_correction_messages",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "correction_id",
            BigId,
            sa.ForeignKey(
                "hub_corrections.id", ondelete="CASCADE", name="fk_hub_correction_messages_correction"
            ),
            nullable=False,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_hub_correction_messages_correction", "hub_correction_messages", ["correction_id", "at"]
    )


def downgrade() -> None:
    op.drop_table("hub_correction_messages")
    op.drop_table("hub_corrections")
    with op.batch_alter_table("hub_batches", schema=_schema()) as batch:
        for name, _ in reversed(_BATCH_COLUMNS):
            batch.drop_column(name)
