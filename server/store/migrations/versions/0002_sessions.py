"""Durable sessions: ``sessions`` (one per call), their ``utterances`` (finals), the ``relabels`` of each room's
speakers, and ``profile_events`` (the history of every voice profile, kept after the profile is deleted).

``seq`` is a room-local order number that the room assigns, shared by the room's utterances and relabels, so the two
interleave exactly in publish order. Times are Unix seconds, except ``utterances.start`` / ``"end"`` (seconds from
the start of the call); ``REAL`` on SQLite, ``DOUBLE PRECISION`` on PostgreSQL. ``utterances.words`` and
``profile_events.detail`` are JSON text.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SECONDS = sa.REAL().with_variant(sa.Double(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("caller", sa.Text, nullable=True),
        sa.Column("language", sa.Text, nullable=True),
        sa.Column("started_at", SECONDS, nullable=False),
        sa.Column("ended_at", SECONDS, nullable=True),
        sa.Column("end_reason", sa.Text, nullable=True),
        sa.Column("audio_path", sa.Text, nullable=True),
    )
    op.create_index("sessions_room_started", "sessions", ["room", "started_at"])
    op.create_index("sessions_started", "sessions", ["started_at"])

    op.create_table(
        "utterances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("start", SECONDS, nullable=False),
        sa.Column("end", SECONDS, nullable=False),
        sa.Column("speaker", sa.Text, nullable=False),
        sa.Column("speaker_id", sa.Text, nullable=True),
        sa.Column("speaker_kind", sa.Text, nullable=False),
        sa.Column("score", SECONDS, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=True),
        sa.Column("words", sa.Text, nullable=True),  # JSON: [{"start", "end", "word", "probability"}, …]
        sa.Column("created_at", SECONDS, nullable=False),
    )
    op.create_index("utterances_session_seq", "utterances", ["session_id", "seq"])
    op.create_index("utterances_room_seq", "utterances", ["room", "seq"])

    op.create_table(
        "relabels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True),
        sa.Column("from_id", sa.Text, nullable=False),
        sa.Column("speaker", sa.Text, nullable=False),
        sa.Column("speaker_id", sa.Text, nullable=True),
        sa.Column("speaker_kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", SECONDS, nullable=False),
    )
    op.create_index("relabels_room_seq", "relabels", ["room", "seq"])
    op.create_index("relabels_session", "relabels", ["session_id"])  # ON DELETE SET NULL looks rows up by it

    op.create_table(
        "profile_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("profile_id", sa.Integer, nullable=True),  # no foreign key: the history outlives the profile
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),  # created | extended | renamed | deleted
        sa.Column("speech_s", SECONDS, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),  # JSON
        sa.Column("created_at", SECONDS, nullable=False),
    )
    op.create_index("profile_events_profile", "profile_events", ["profile_id"])


def downgrade() -> None:
    op.drop_table("profile_events")
    op.drop_table("relabels")
    op.drop_table("utterances")
    op.drop_table("sessions")
