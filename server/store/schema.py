"""SQLAlchemy Core tables the code queries. DDL lives in the migrations (:mod:`.migrations`); keep these in step.

Units: times are Unix seconds (``REAL``); ``speech_s`` is seconds of speech; ``embedding`` is ``float32[192]``,
little-endian, L2-normalised (768 bytes).
"""

from __future__ import annotations

from sqlalchemy import REAL, Column, ForeignKey, Index, Integer, LargeBinary, MetaData, Table, Text

metadata = MetaData()

profiles = Table(
    "profiles", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text(collation="NOCASE"), nullable=False, unique=True),
    Column("model", Text, nullable=False),
    Column("created_at", REAL, nullable=False),
    Column("updated_at", REAL, nullable=False),
)

enrollments = Table(
    "enrollments", metadata,
    Column("id", Integer, primary_key=True),
    Column("profile_id", Integer, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Column("speech_s", REAL, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", REAL, nullable=False),
    Index("enrollments_profile", "profile_id"),
)
