"""Schema migrations with Alembic, driven from code (no alembic.ini to find)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage import engine as engines

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(url: str, schema: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = engines.normalize_url(url)
    config.attributes["schema"] = schema
    return config


def upgrade(url: str, schema: str | None = None) -> None:
    """Bring the database at ``url`` (a PostgreSQL ``schema`` of it) to the newest schema."""
    command.upgrade(_config(url, schema), "head")


def is_current(url: str) -> bool:
    """Whether the database at ``url`` has the newest schema."""
    head = ScriptDirectory.from_config(_config(url)).get_current_head()
    engine = engines.create(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head
    finally:
        engine.dispose()
