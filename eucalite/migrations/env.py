"""Alembic environment: runs eucalite's migrations against the URL in the Alembic config."""
from alembic import context
from sqlalchemy import engine_from_config, pool

from eucalite import models  # noqa: F401 - registers every table on the metadata
from eucalite.db import compared, db

config = context.config
target_metadata = db.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        # Batch mode lets ALTER TABLE work on SQLite (it copies the table).
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, include_object=compared)
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
