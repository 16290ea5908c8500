"""Alembic environment: migrate the URL (and PostgreSQL schema) handed over by
storage.migrate. A tenant's schema is created on first use; concurrent first uses by
several processes are serialized by an advisory lock."""

from alembic import context
from sqlalchemy import create_engine, pool, text

from storage.schema import metadata

url = context.config.attributes["url"]
schema = context.config.attributes.get("schema")
engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
with engine.connect() as connection:
    if schema is not None:
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection = connection.execution_options(schema_translate_map={None: schema})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        version_table_schema=schema,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
