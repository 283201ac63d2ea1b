"""Alembic migration environment of the callscribe database (run by :class:`server.store.database.Database`)."""
