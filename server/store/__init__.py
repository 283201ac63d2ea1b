"""Durable state: one database (a SQLite file, or PostgreSQL) with versioned schema migrations (:mod:`.database`,
Alembic) that the voice profiles and their history (:mod:`.profiles`) and the durable sessions (:mod:`.sessions`)
share."""
