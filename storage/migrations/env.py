"""Alembic environment: migrate the URL handed over by storage.migrate."""

from alembic import context
from sqlalchemy import create_engine, pool

from storage.schema import metadata

url = context.config.attributes["url"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
