"""The delivery outbox: deliveries owed to (and made to) grants' topics, and senders' leases.

Revision ID: 0006_outbox
Revises: 0005_audit
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from catalog.metadata.base import UTCDateTime

revision: str = "0006_outbox"
down_revision: str | Sequence[str] | None = "0005_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum(name: str, length: int, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def upgrade() -> None:
    op.create_table(
        "hub_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "grant_id",
            sa.BigInteger(),
            sa.ForeignKey("hub_grants.id", name="fk_hub_deliveries_grant"),
            nullable=False,
        ),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("kind", _enum("deliverykind", 16, "initial", "batch", "replay"), nullable=False),
        sa.Column(
            "batch_id",
            sa.String(128),
            sa.ForeignKey("hub_batches.id", name="fk_hub_deliveries_batch"),
            nullable=False,
        ),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("once", sa.String(160), nullable=True),
        sa.Column("status", _enum("deliverystatus", 16, "pending", "sent", "cancelled"), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("from_snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("source_table", sa.String(128), nullable=True),
        sa.Column("source_snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("messages", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("access_seq", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("grant_id", "once", name="uq_hub_deliveries_grant_once"),
    )
    op.create_index("ix_hub_deliveries_grant_status", "hub_deliveries", ["grant_id", "status", "sequence"])
    op.create_index("ix_hub_deliveries_batch", "hub_deliveries", ["batch_id"])
    op.create_index("ix_hub_deliveries_dataset_snapshot", "hub_deliveries", ["dataset", "snapshot_id"])
    op.create_table(
        "hub_delivery_leases",
        sa.Column("grant_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hub_delivery_leases")
    op.drop_index("ix_hub_deliveries_dataset_snapshot", table_name="hub_deliveries")
    op.drop_index("ix_hub_deliveries_batch", table_name="hub_deliveries")
    op.drop_index("ix_hub_deliveries_grant_status", table_name="hub_deliveries")
    op.drop_table("hub_deliveries")
