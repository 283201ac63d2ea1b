"""Alembic environment: runs on the connection :class:`server.store.database.Database` passes in
``config.attributes["connection"]`` (Alembic cookbook, "Sharing a Connection with a Series of Migration Commands
and Environments"), inside that connection's transaction. No logging setup here: callscribe stays quiet.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from server.store.schema import metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")  # SQLite has no ALTER for most changes
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")  # only for hand-run tooling; callscribe passes a connection
    if not url:
        raise RuntimeError("run the migrations through server.store.database.Database, or set sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
