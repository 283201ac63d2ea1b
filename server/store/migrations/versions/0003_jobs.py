"""Recording-analysis jobs and live sentiment.

- ``jobs``: one row per analysis job (:mod:`server.store.jobs`): its state (``status``, ``stage``, ``progress``
  0–100, ``message``), the input (``filename``, ``source_path``, ``owned``: the upload is the job's and is deleted
  with it), ``options`` (JSON), times, ``runs`` (how often a worker started it), the error, the ``result`` (JSON)
  and the callback's delivery state.
- ``job_voices``: the centroid embedding (``float32[192]``, 768 bytes, L2-normalised) and speech seconds of each
  speaker of a finished job, so an anonymous speaker can be saved as a voice profile afterwards.
- ``utterances`` gains ``utterance_id`` / ``turn`` (the stream's numbering, to find the row a later update is
  about) and ``sentiment_label`` / ``sentiment_score`` (the update that follows a final).

Times are Unix seconds (``REAL`` on SQLite, ``DOUBLE PRECISION`` on PostgreSQL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SECONDS = sa.REAL().with_variant(sa.Double(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),  # queued | running | done | failed | cancelled
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("progress", SECONDS, nullable=False, server_default="0"),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("source_path", sa.Text, nullable=False),
        sa.Column("owned", sa.Boolean, nullable=False),
        sa.Column("options", sa.Text, nullable=False),  # JSON
        sa.Column("created_at", SECONDS, nullable=False),
        sa.Column("started_at", SECONDS, nullable=True),
        sa.Column("finished_at", SECONDS, nullable=True),
        sa.Column("duration_s", SECONDS, nullable=True),
        sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("worker", sa.Text, nullable=True),
        sa.Column("error_code", sa.Text, nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),  # JSON
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("callback_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("callback_delivered_at", SECONDS, nullable=True),
        sa.Column("callback_error", sa.Text, nullable=True),
    )
    op.create_index("jobs_created", "jobs", ["created_at"])
    op.create_index("jobs_status", "jobs", ["status"])

    op.create_table(
        "job_voices",
        sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("speaker_id", sa.Text, primary_key=True),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("speech_s", SECONDS, nullable=False),
    )

    with op.batch_alter_table("utterances") as batch:
        batch.add_column(sa.Column("utterance_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("turn", sa.Integer, nullable=True))
        batch.add_column(sa.Column("sentiment_label", sa.Text, nullable=True))
        batch.add_column(sa.Column("sentiment_score", SECONDS, nullable=True))
    op.create_index("utterances_session_utterance", "utterances", ["session_id", "utterance_id", "turn"])


def downgrade() -> None:
    op.drop_index("utterances_session_utterance", "utterances")
    with op.batch_alter_table("utterances") as batch:
        for column in ("sentiment_score", "sentiment_label", "turn", "utterance_id"):
            batch.drop_column(column)
    op.drop_table("job_voices")
    op.drop_table("jobs")
