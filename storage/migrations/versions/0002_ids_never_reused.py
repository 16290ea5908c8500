"""ids are never reused: AUTOINCREMENT on every SQLite table with an id

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 07:00:00.000000

SQLite without ``AUTOINCREMENT`` gives a new row the id of a deleted top row, so a client
still holding that id would read or delete another object. SQLite cannot add the keyword
to an existing table: each table is rebuilt (Alembic's batch mode copies the rows with
their ids, and the copy starts the table's ``sqlite_sequence`` at its highest id). Ids
deleted above that highest id before this migration cannot be known and may come back once.
PostgreSQL's serial columns draw from sequences that never go back: nothing to do there.
The migration runs with foreign keys off (env.py's plain connection), so rebuilding a
parent table does not cascade into its children.
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("configurations", "license_servers", "products", "features", "jobs", "bookings")


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.execute(text("PRAGMA foreign_keys")).scalar():
        raise RuntimeError("rebuilding SQLite tables needs foreign keys off (they would cascade)")
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    broken = bind.execute(text("PRAGMA foreign_key_check")).fetchall()
    if broken:
        raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
