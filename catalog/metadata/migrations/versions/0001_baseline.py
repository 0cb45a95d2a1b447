"""Baseline: batches, quarantined rows, violations and decryptions.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from catalog.metadata.base import UTCDateTime

revision: str = "0001_baseline"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_batches",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column("full_refresh", sa.Boolean(), nullable=False),
        sa.Column("watermark_from", sa.String(64), nullable=True),
        sa.Column("watermark_to", sa.String(64), nullable=True),
        sa.Column("connector_state", sa.Text(), nullable=True),
        sa.Column("k_anonymity", sa.Integer(), nullable=True),
        sa.Column("k_suppressed_rows", sa.BigInteger(), nullable=True),
        sa.Column("contract_version", sa.String(32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "extracted",
                "validated",
                "masked",
                "registered",
                "published",
                "failed",
                name="batchstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("rows_in", sa.BigInteger(), nullable=True),
        sa.Column("rows_valid", sa.BigInteger(), nullable=True),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=True),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("staging_path", sa.String(1024), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("messages_published", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_hub_batches_dataset_started", "hub_batches", ["dataset", "started_at"])
    op.create_table(
        "hub_quarantined_rows",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "batch_id", sa.String(128), sa.ForeignKey("hub_batches.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("row", sa.BigInteger(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("batch_id", "row", name="uq_hub_quarantined_rows_batch_row"),
    )
    op.create_table(
        "hub_violations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "batch_id", sa.String(128), sa.ForeignKey("hub_batches.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("row", sa.BigInteger(), nullable=False),
        sa.Column("field", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
    )
    op.create_index("ix_hub_violations_batch_row", "hub_violations", ["batch_id", "row"])
    op.create_table(
        "hub_decryptions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("steward", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("values", sa.BigInteger(), nullable=False),
        sa.Column("key_versions", sa.String(256), nullable=False),
        sa.Column("os_user", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_hub_decryptions_at", "hub_decryptions", ["at"])


def downgrade() -> None:
    op.drop_table("hub_decryptions")
    op.drop_table("hub_violations")
    op.drop_table("hub_quarantined_rows")
    op.drop_table("hub_batches")
