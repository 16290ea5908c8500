"""hot counters: room on the pages of features and usage_samples (PostgreSQL)

Every report rewrites total and used of up to 10,000 features and upserts as many usage
samples, and every admission rewrites booked_total. None of those columns is indexed, so
PostgreSQL can update a row in place on its page (a HOT update) and touch no index, but
only when the page has room for the new version. A report rewrites every row of a page in
one statement, while the old versions still count, so a page needs room for as many rows
again: fillfactor 50. At the default (100) most updates of full pages went to other pages
and inserted into all four indexes of features (measured: an UPDATE of 1,000 features read
9,561 buffers and took 6.8 ms, against 3,038 and 2.4 ms at 50).
SQLite rewrites rows in place and has no such setting.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:20:00

"""

from collections.abc import Sequence

from alembic import context, op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("features", "usage_samples")
FILLFACTOR = 50


def _set(storage_parameter: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = context.config.attributes.get("schema")  # a tenant's schema (storage.migrate)
    for table in TABLES:
        name = f'"{schema}".{table}' if schema else table
        op.execute(f"ALTER TABLE {name} {storage_parameter}")


def upgrade() -> None:
    _set(f"SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    _set("RESET (fillfactor)")
