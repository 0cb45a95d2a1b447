"""The shared catalogue: entries and their versions.

Revision ID: 0002_catalogue
Revises: 0001_baseline
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from catalog.metadata.base import UTCDateTime

revision: str = "0002_catalogue"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_catalogue_entries",
        sa.Column("dataset", sa.String(64), primary_key=True),
        sa.Column(
            "status",
            sa.Enum("draft", "published", name="entrystatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("contract_version", sa.String(32), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("published_by", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "hub_catalogue_versions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset",
            sa.String(64),
            sa.ForeignKey("hub_catalogue_entries.dataset", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("contract_version", sa.String(32), nullable=False),
        sa.Column("contract_digest", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("edited", sa.Text(), nullable=False),
        sa.Column("contract", sa.Text(), nullable=False),
        sa.UniqueConstraint("dataset", "version", name="uq_hub_catalogue_versions_dataset_version"),
    )


def downgrade() -> None:
    op.drop_table("hub_catalogue_versions")
    op.drop_table("hub_catalogue_entries")
