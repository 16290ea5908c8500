"""usage: checkouts, usage history samples and blocks, refused demand

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _feature_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["feature_id"],
        ["features.id"],
        name=op.f(f"fk_{table}_feature_id_features"),
        ondelete="CASCADE",
    )


def _key(*names: str) -> list[sa.Column[int]]:
    types = {"step": sa.Integer(), "t": sa.BigInteger()}
    columns = [sa.Column(name, types[name], nullable=False) for name in names]
    return [sa.Column("feature_id", sa.Integer(), nullable=False), *columns]


def upgrade() -> None:
    op.create_table(
        "feature_checkouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("lead_host", sa.String(length=255), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_feature_checkouts_quantity_positive")),
        _feature_fk("feature_checkouts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_checkouts")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_feature_checkouts_feature_id"), "feature_checkouts", ["feature_id"], unique=False
    )
    op.create_table(
        "usage_samples",
        *_key("step", "t"),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("peak_used", sa.Integer(), nullable=False),
        _feature_fk("usage_samples"),
        sa.PrimaryKeyConstraint("feature_id", "step", "t", name=op.f("pk_usage_samples")),
    )
    op.create_table(
        "usage_blocks",
        *_key("step", "t"),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _feature_fk("usage_blocks"),
        sa.PrimaryKeyConstraint("feature_id", "step", "t", name=op.f("pk_usage_blocks")),
    )
    op.create_table(
        "usage_refusals",
        *_key("t"),
        sa.Column("refused_calls", sa.BigInteger(), nullable=False),
        sa.Column("refused_licenses", sa.BigInteger(), nullable=False),
        _feature_fk("usage_refusals"),
        sa.PrimaryKeyConstraint("feature_id", "t", name=op.f("pk_usage_refusals")),
    )
    op.create_index("ix_usage_refusals_t", "usage_refusals", ["t"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_usage_refusals_t", table_name="usage_refusals")
    op.drop_table("usage_refusals")
    op.drop_table("usage_blocks")
    op.drop_table("usage_samples")
    op.drop_index(op.f("ix_feature_checkouts_feature_id"), table_name="feature_checkouts")
    op.drop_table("feature_checkouts")
