"""Voice profiles: ``profiles`` and their ``enrollments``, exactly the schema callscribe wrote before Alembic
(``PRAGMA user_version = 1``); such databases are stamped at this revision, not recreated.

On SQLite the DDL is that schema to the letter (``name TEXT NOT NULL UNIQUE COLLATE NOCASE``, ``REAL`` times).
PostgreSQL has no ``NOCASE`` collation and its ``REAL`` is 4 bytes (about 2 minutes of resolution on a Unix time),
so there ``name`` is plain ``TEXT`` made unique case-insensitively by the index ``profiles_name_fold`` on
``lower(name COLLATE "C")`` (ASCII-only folding, exactly SQLite's ``NOCASE``), and times are ``DOUBLE PRECISION``.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


SECONDS = sa.REAL().with_variant(sa.Double(), "postgresql")  # REAL on SQLite (8 bytes), DOUBLE PRECISION elsewhere


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer, primary_key=True, nullable=True),  # as before: INTEGER PRIMARY KEY, no NOT NULL
        sa.Column("name", sa.Text(collation="NOCASE") if sqlite else sa.Text, nullable=False, unique=sqlite),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("created_at", SECONDS, nullable=False),
        sa.Column("updated_at", SECONDS, nullable=False),
    )
    if not sqlite:
        op.create_index("profiles_name_fold", "profiles", [sa.text('lower(name COLLATE "C")')], unique=True)
    op.create_table(
        "enrollments",
        sa.Column("id", sa.Integer, primary_key=True, nullable=True),  # as before: INTEGER PRIMARY KEY, no NOT NULL
        sa.Column("profile_id", sa.Integer, sa.ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),  # float32[192], little-endian, L2-normalised
        sa.Column("speech_s", SECONDS, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", SECONDS, nullable=False),
    )
    op.create_index("enrollments_profile", "enrollments", ["profile_id"])


def downgrade() -> None:
    op.drop_index("enrollments_profile", table_name="enrollments")
    if op.get_context().dialect.name != "sqlite":
        op.drop_index("profiles_name_fold", table_name="profiles")
    op.drop_table("enrollments")
    op.drop_table("profiles")
