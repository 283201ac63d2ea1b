"""Durable state: one SQLite database with versioned schema migrations (:mod:`.database`, Alembic) that the
voice profiles (:mod:`.profiles`) and later tables share."""
