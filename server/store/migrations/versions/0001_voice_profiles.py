"""Voice profiles: ``profiles`` and their ``enrollments``, exactly the schema callscribe wrote before Alembic
(``PRAGMA user_version = 1``); such databases are stamped at this revision, not recreated.

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


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer, primary_key=True, nullable=True),  # as before: INTEGER PRIMARY KEY, no NOT NULL
        sa.Column("name", sa.Text(collation="NOCASE"), nullable=False, unique=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("created_at", sa.REAL, nullable=False),
        sa.Column("updated_at", sa.REAL, nullable=False),
    )
    op.create_table(
        "enrollments",
        sa.Column("id", sa.Integer, primary_key=True, nullable=True),  # as before: INTEGER PRIMARY KEY, no NOT NULL
        sa.Column("profile_id", sa.Integer, sa.ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),  # float32[192], little-endian, L2-normalised
        sa.Column("speech_s", sa.REAL, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.REAL, nullable=False),
    )
    op.create_index("enrollments_profile", "enrollments", ["profile_id"])


def downgrade() -> None:
    op.drop_index("enrollments_profile", table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_table("profiles")
