"""SQLAlchemy Core tables the code queries. DDL lives in the migrations (:mod:`.migrations`); keep these in step.

Units: times are Unix seconds (``REAL`` on SQLite, ``DOUBLE PRECISION`` on PostgreSQL) except an utterance's
``start`` / ``end``, seconds from the start of its call; ``speech_s`` is seconds of speech; ``embedding`` is
``float32[192]``, little-endian, L2-normalised (768 bytes); ``utterances.words`` is JSON text.

Profile names compare case-insensitively through :class:`folded` (ASCII-only ``lower()``, which is what SQLite's
``NOCASE`` collation does and what PostgreSQL's unique index ``profiles_name_fold`` is built on).
"""

from __future__ import annotations

from sqlalchemy import REAL, Boolean, Column, Double, ForeignKey, Index, Integer, LargeBinary, MetaData, Table, Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

metadata = MetaData()

SECONDS = REAL().with_variant(Double(), "postgresql")  # PostgreSQL's REAL is 4 bytes: too coarse for Unix times


class folded(FunctionElement):  # lower-case: used like a SQL function, folded(profiles.c.name) == folded(name)
    """``lower()`` of ASCII letters only, the same on every dialect (a text expression)."""

    type = Text()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _folded(element, compiler, **kw) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"  # SQLite's lower() folds ASCII only (as NOCASE)


@compiles(folded, "postgresql")
def _folded_pg(element, compiler, **kw) -> str:
    return f'lower(({compiler.process(element.clauses, **kw)}) COLLATE "C")'  # the C locale folds ASCII only


profiles = Table(
    "profiles", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text(collation="NOCASE").with_variant(Text(), "postgresql"), nullable=False, unique=True),
    Column("model", Text, nullable=False),
    Column("created_at", SECONDS, nullable=False),
    Column("updated_at", SECONDS, nullable=False),
)

enrollments = Table(
    "enrollments", metadata,
    Column("id", Integer, primary_key=True),
    Column("profile_id", Integer, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Column("speech_s", SECONDS, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", SECONDS, nullable=False),
    Index("enrollments_profile", "profile_id"),
)

# -- 0002: durable sessions ---------------------------------------------------------------------------------------
sessions = Table(
    "sessions", metadata,
    Column("id", Text, primary_key=True),
    Column("room", Text, nullable=False),
    Column("caller", Text, nullable=True),
    Column("language", Text, nullable=True),
    Column("started_at", SECONDS, nullable=False),
    Column("ended_at", SECONDS, nullable=True),
    Column("end_reason", Text, nullable=True),
    Column("audio_path", Text, nullable=True),
    Index("sessions_room_started", "room", "started_at"),
    Index("sessions_started", "started_at"),
)

utterances = Table(
    "utterances", metadata,
    Column("id", Integer, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("room", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("start", SECONDS, nullable=False),
    Column("end", SECONDS, nullable=False),
    Column("speaker", Text, nullable=False),
    Column("speaker_id", Text, nullable=True),
    Column("speaker_kind", Text, nullable=False),
    Column("score", SECONDS, nullable=True),
    Column("text", Text, nullable=False),
    Column("language", Text, nullable=True),
    Column("words", Text, nullable=True),
    Column("created_at", SECONDS, nullable=False),
    Column("utterance_id", Integer, nullable=True),  # 0003
    Column("turn", Integer, nullable=True),  # 0003
    Column("sentiment_label", Text, nullable=True),  # 0003
    Column("sentiment_score", SECONDS, nullable=True),  # 0003
    Index("utterances_session_seq", "session_id", "seq"),
    Index("utterances_room_seq", "room", "seq"),
)

relabels = Table(
    "relabels", metadata,
    Column("id", Integer, primary_key=True),
    Column("room", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True),
    Column("from_id", Text, nullable=False),
    Column("speaker", Text, nullable=False),
    Column("speaker_id", Text, nullable=True),
    Column("speaker_kind", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", SECONDS, nullable=False),
    Index("relabels_room_seq", "room", "seq"),
    Index("relabels_session", "session_id"),
)

profile_events = Table(
    "profile_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("profile_id", Integer, nullable=True),  # no foreign key: the history outlives the profile
    Column("name", Text, nullable=False),
    Column("action", Text, nullable=False),  # created | extended | renamed | deleted
    Column("speech_s", SECONDS, nullable=True),
    Column("detail", Text, nullable=True),  # JSON
    Column("created_at", SECONDS, nullable=False),
    Index("profile_events_profile", "profile_id"),
)

# -- 0003: recording-analysis jobs ----------------------------------------------------------------------------------
jobs = Table(
    "jobs", metadata,
    Column("id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("progress", SECONDS, nullable=False),
    Column("message", Text, nullable=True),
    Column("filename", Text, nullable=False),
    Column("source_path", Text, nullable=False),
    Column("owned", Boolean, nullable=False),
    Column("options", Text, nullable=False),
    Column("created_at", SECONDS, nullable=False),
    Column("started_at", SECONDS, nullable=True),
    Column("finished_at", SECONDS, nullable=True),
    Column("duration_s", SECONDS, nullable=True),
    Column("runs", Integer, nullable=False),
    Column("worker", Text, nullable=True),
    Column("error_code", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("result", Text, nullable=True),
    Column("callback_url", Text, nullable=True),
    Column("callback_attempts", Integer, nullable=False),
    Column("callback_delivered_at", SECONDS, nullable=True),
    Column("callback_error", Text, nullable=True),
    Index("jobs_created", "created_at"),
    Index("jobs_status", "status"),
)

job_voices = Table(
    "job_voices", metadata,
    Column("job_id", Text, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("speaker_id", Text, primary_key=True),
    Column("embedding", LargeBinary, nullable=False),
    Column("speech_s", SECONDS, nullable=False),
)
