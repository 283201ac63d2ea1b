"""Durable sessions: every call, its finals and its room's speaker relabels, in the one database (migration 0002).

Schema (:mod:`.schema`)::

    sessions(id TEXT PK, room TEXT, caller TEXT NULL, language TEXT NULL, started_at REAL, ended_at REAL NULL,
             end_reason TEXT NULL, audio_path TEXT NULL)
    utterances(id INTEGER PK, session_id → sessions(id) ON DELETE CASCADE, room TEXT, seq INTEGER,
               start REAL, "end" REAL, speaker TEXT, speaker_id TEXT NULL, speaker_kind TEXT, score REAL NULL,
               text TEXT, language TEXT NULL, words TEXT NULL  -- JSON
               created_at REAL,
               utterance_id INTEGER NULL, turn INTEGER NULL,  -- 0003: the stream's numbering of the final
               sentiment_label TEXT NULL, sentiment_score REAL NULL)  -- 0003: its sentiment update
    relabels(id INTEGER PK, room TEXT, seq INTEGER, session_id → sessions(id) ON DELETE SET NULL,
             from_id TEXT, speaker TEXT, speaker_id TEXT NULL, speaker_kind TEXT, reason TEXT, created_at REAL)

Units: ``started_at``, ``ended_at`` and ``created_at`` are Unix seconds; an utterance's ``start`` / ``end`` are
seconds from the start of its call. ``seq`` is the room's own order number, assigned by the room and shared by its
utterances and relabels, so reading both by ``seq`` replays them exactly in publish order (:meth:`SessionStore.
room_log`); :meth:`SessionStore.last_seq` tells a restarted room where to continue.

Every method is one short transaction on its own pooled connection, so one :class:`SessionStore` is safe to share
across threads. :meth:`SessionStore.add_utterance` and :meth:`SessionStore.add_relabel` are a single ``INSERT``
each (they may run on an event loop). Errors: :class:`SessionNotFound` where a method names a session that does
not exist (see each method), :class:`StoreError` when the database is busy beyond its timeout, unreachable, or
refuses the write (a duplicate session id, an utterance for an unknown session).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from ..errors import SessionNotFound
from .database import Database
from .schema import relabels, sessions, utterances


@dataclass(frozen=True)
class UtteranceRecord:
    """One final of a session: ``start`` / ``end`` in seconds from the start of the call, ``created_at`` Unix
    seconds, ``words`` each ``{"start", "end", "word", "probability"}`` (times like ``start``) or ``None``.
    ``utterance_id`` / ``turn`` are the stream's numbering of the final (what a later update names; ``None`` for
    rows written before migration 0003); ``sentiment_label`` / ``sentiment_score`` its sentiment, once known."""

    session_id: str
    room: str
    seq: int
    start: float
    end: float
    speaker: str
    speaker_id: str | None
    speaker_kind: str
    score: float | None
    text: str
    language: str | None
    words: list[dict] | None
    created_at: float
    utterance_id: int | None = None
    turn: int | None = None
    sentiment_label: str | None = None
    sentiment_score: float | None = None


@dataclass(frozen=True)
class RelabelRecord:
    """A speaker of ``room`` relabelled from ``from_id`` to ``speaker`` / ``speaker_id`` / ``speaker_kind`` (a merge,
    a name given, a profile enrolled meanwhile: ``reason``); ``session_id`` is the call it happened in, if any, and
    becomes ``None`` when that session is deleted. ``created_at`` is Unix seconds."""

    room: str
    seq: int
    session_id: str | None
    from_id: str
    speaker: str
    speaker_id: str | None
    speaker_kind: str
    reason: str
    created_at: float


@dataclass(frozen=True)
class SessionRecord:
    """One call: times in Unix seconds (``ended_at`` ``None`` while it runs), ``utterances`` how many finals it
    has, ``audio_path`` its recording (``None`` when not recorded or removed by retention)."""

    id: str
    room: str
    caller: str | None
    language: str | None
    started_at: float
    ended_at: float | None
    end_reason: str | None
    audio_path: str | None
    utterances: int


@dataclass(frozen=True)
class PurgeResult:
    """What :meth:`SessionStore.purge` removed: ``sessions`` deleted, and the recordings (``audio_paths``) the caller
    must now delete from disk (of deleted sessions and of sessions whose audio expired)."""

    sessions: int
    audio_paths: list[str]


_UTTERANCE_COLUMNS = ("session_id", "room", "seq", "start", "end", "speaker", "speaker_id", "speaker_kind", "score",
                      "text", "language", "words", "created_at", "utterance_id", "turn", "sentiment_label",
                      "sentiment_score")
_RELABEL_COLUMNS = ("room", "seq", "session_id", "from_id", "speaker", "speaker_id", "speaker_kind", "reason",
                    "created_at")


class SessionStore:
    """Sessions, utterances and relabels in ``db`` (an open :class:`Database`, shared; never closed here)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- writes --------------------------------------------------------------------------------
    def start(self, session_id: str, room: str, caller: str | None = None, language: str | None = None,
              started_at: float | None = None) -> None:
        """Record a new session (``started_at``: Unix seconds, now by default).

        Raises:
            StoreError: the id exists already, or the database is busy or unwritable.
        """
        with self._db.write() as conn:
            conn.execute(insert(sessions).values(
                id=session_id, room=room, caller=caller, language=language,
                started_at=time.time() if started_at is None else float(started_at)))

    def update(self, session_id: str, *, caller: str | None) -> None:
        """Set the session's caller name (a caller renamed mid-call).

        Raises:
            SessionNotFound: no such session.  StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            if conn.execute(update(sessions).where(sessions.c.id == session_id).values(caller=caller)).rowcount == 0:
                raise SessionNotFound(f"no session {session_id!r}")

    def end(self, session_id: str, reason: str, ended_at: float | None = None) -> None:
        """Mark the session ended (``ended_at``: Unix seconds, now by default). Idempotent: the first end wins,
        later calls change nothing.

        Raises:
            SessionNotFound: no such session.  StoreError: busy or unwritable database.
        """
        when = time.time() if ended_at is None else float(ended_at)
        with self._db.write() as conn:
            ended = conn.execute(update(sessions).where(sessions.c.id == session_id, sessions.c.ended_at.is_(None))
                                 .values(ended_at=when, end_reason=reason)).rowcount
            if ended == 0 and conn.execute(select(sessions.c.id).where(sessions.c.id == session_id)).first() is None:
                raise SessionNotFound(f"no session {session_id!r}")

    def add_utterance(self, rec: UtteranceRecord) -> None:
        """Append one final (a single ``INSERT``).

        Raises:
            StoreError: the session does not exist (foreign key), or the database is busy or unwritable.
        """
        values = {c: getattr(rec, c) for c in _UTTERANCE_COLUMNS}
        for c in ("start", "end", "created_at"):
            values[c] = float(values[c])  # also numpy scalars, which the drivers do not bind
        for c in ("score", "sentiment_score"):
            values[c] = None if values[c] is None else float(values[c])
        values["words"] = None if rec.words is None else json.dumps(rec.words, ensure_ascii=False, default=_plain)
        with self._db.write() as conn:
            conn.execute(insert(utterances).values(values))

    def set_sentiment(self, session_id: str, utterance_id: int, turn: int, label: str, score: float) -> bool:
        """Store the sentiment of the session's final ``utterance_id`` / ``turn`` (a single ``UPDATE``; the last
        row of that numbering wins, should a stream ever reuse it).

        Returns:
            whether such a final was found (False: none, e.g. it had no text and was not stored).
        Raises:
            StoreError: busy or unwritable database.
        """
        last = (select(func.max(utterances.c.id))
                .where(utterances.c.session_id == session_id, utterances.c.utterance_id == int(utterance_id),
                       utterances.c.turn == int(turn)).scalar_subquery())
        with self._db.write() as conn:
            return conn.execute(update(utterances).where(utterances.c.id == last)
                                .values(sentiment_label=label, sentiment_score=float(score))).rowcount > 0

    def add_relabel(self, rec: RelabelRecord) -> None:
        """Append one relabel of the room's speakers (a single ``INSERT``).

        Raises:
            StoreError: ``session_id`` names no session (foreign key), or the database is busy or unwritable.
        """
        with self._db.write() as conn:
            conn.execute(insert(relabels).values({**{c: getattr(rec, c) for c in _RELABEL_COLUMNS},
                                                  "created_at": float(rec.created_at)}))

    def set_audio(self, session_id: str, path: str | None) -> None:
        """Set (or, with ``None``, clear) the session's recording path.

        Raises:
            SessionNotFound: no such session.  StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            if conn.execute(update(sessions).where(sessions.c.id == session_id)
                            .values(audio_path=path)).rowcount == 0:
                raise SessionNotFound(f"no session {session_id!r}")

    def delete(self, session_id: str) -> str | None:
        """Delete the session and its utterances (its relabels stay with the room, ``session_id`` cleared).

        Returns:
            the recording's path, for the caller to delete from disk, or ``None``.
        Raises:
            SessionNotFound: no such session.  StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            row = conn.execute(delete(sessions).where(sessions.c.id == session_id)
                               .returning(sessions.c.audio_path)).first()
        if row is None:
            raise SessionNotFound(f"no session {session_id!r}")
        return row.audio_path

    def purge(self, *, sessions_before: float | None = None, audio_before: float | None = None) -> PurgeResult:
        """Retention, in one transaction. Only ended sessions are touched (a call running longer than the retention
        keeps its transcript and the recording being written).

        Args:
            sessions_before: Unix seconds: delete the ended sessions that started before it, with their utterances,
                and the room relabels created before it that belong to no session any more.
            audio_before: Unix seconds: clear ``audio_path`` of the ended sessions that started before it.
        Returns:
            how many sessions were deleted, and every recording path the caller must delete from disk.
        Raises:
            StoreError: busy or unwritable database.
        """
        paths: list[str] = []
        deleted = 0
        with self._db.write() as conn:
            if sessions_before is not None:
                gone = conn.execute(delete(sessions).where(sessions.c.started_at < sessions_before,
                                                           sessions.c.ended_at.is_not(None))
                                    .returning(sessions.c.audio_path)).all()
                deleted = len(gone)
                paths += [r.audio_path for r in gone if r.audio_path is not None]
                conn.execute(delete(relabels).where(relabels.c.created_at < sessions_before,
                                                    relabels.c.session_id.is_(None)))
            if audio_before is not None:
                expired = (sessions.c.started_at < audio_before, sessions.c.ended_at.is_not(None),
                           sessions.c.audio_path.is_not(None))
                rows = conn.execute(select(sessions.c.id, sessions.c.audio_path).where(*expired)
                                    .with_for_update()).all()
                if rows:
                    conn.execute(update(sessions).where(sessions.c.id.in_([r.id for r in rows]))
                                 .values(audio_path=None))
                paths += [r.audio_path for r in rows]
        return PurgeResult(deleted, list(dict.fromkeys(paths)))

    def end_open(self, reason: str = "server restart") -> int:
        """At startup: end every session that was never ended (the server stopped mid-call), at its last
        utterance's ``created_at`` (or its ``started_at`` when it has none), with ``reason``.

        Returns:
            how many sessions were ended.
        Raises:
            StoreError: busy or unwritable database.
        """
        last = (select(func.max(utterances.c.created_at)).where(utterances.c.session_id == sessions.c.id)
                .scalar_subquery())
        with self._db.write() as conn:
            return conn.execute(update(sessions).where(sessions.c.ended_at.is_(None))
                                .values(ended_at=func.coalesce(last, sessions.c.started_at),
                                        end_reason=reason)).rowcount

    # -- reads ---------------------------------------------------------------------------------
    def list(self, room: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[SessionRecord], int]:
        """Sessions newest first (by ``started_at``), optionally of one room.

        Returns:
            ``(page, total)``: at most ``limit`` sessions after skipping ``offset``, and how many there are in all.
        Raises:
            StoreError: the database cannot be read.
        """
        where = () if room is None else (sessions.c.room == room,)
        with self._db.read() as conn:
            total = conn.execute(select(func.count()).select_from(sessions).where(*where)).scalar_one()
            rows = conn.execute(_session_query().where(*where)
                                .order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
                                .limit(max(0, limit)).offset(max(0, offset))).all()
        return [_session(r) for r in rows], total

    def get(self, session_id: str) -> SessionRecord:
        """The session ``session_id``.

        Raises:
            SessionNotFound: no such session.  StoreError: the database cannot be read.
        """
        with self._db.read() as conn:
            row = conn.execute(_session_query().where(sessions.c.id == session_id)).first()
        if row is None:
            raise SessionNotFound(f"no session {session_id!r}")
        return _session(row)

    def utterances(self, session_id: str) -> list[UtteranceRecord]:
        """The session's finals by ``seq`` (``[]`` for a session without any, or an unknown id: :meth:`get` tells).

        Raises:
            StoreError: the database cannot be read.
        """
        with self._db.read() as conn:
            rows = conn.execute(select(utterances).where(utterances.c.session_id == session_id)
                                .order_by(utterances.c.seq, utterances.c.id)).all()
        return [_utterance(r) for r in rows]

    def relabels(self, room: str) -> list[RelabelRecord]:
        """The room's relabels by ``seq``.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._db.read() as conn:
            rows = conn.execute(select(relabels).where(relabels.c.room == room)
                                .order_by(relabels.c.seq, relabels.c.id)).all()
        return [_relabel(r) for r in rows]

    def room_log(self, room: str, limit: int) -> list[UtteranceRecord | RelabelRecord]:
        """The room's last ``limit`` utterances (of all its sessions) and the relabels after the first of them, in
        ``seq`` order: what a restarted room replays as its backlog. ``[]`` when ``limit`` is 0 or the room has no
        utterances.

        Raises:
            StoreError: the database cannot be read.
        """
        if limit <= 0:
            return []
        with self._db.read() as conn:
            rows = conn.execute(select(utterances).where(utterances.c.room == room)
                                .order_by(utterances.c.seq.desc(), utterances.c.id.desc()).limit(limit)).all()
            if not rows:
                return []
            first = rows[-1].seq
            later = conn.execute(select(relabels).where(relabels.c.room == room, relabels.c.seq > first)
                                 .order_by(relabels.c.seq, relabels.c.id)).all()
        log: list[UtteranceRecord | RelabelRecord] = [_utterance(r) for r in reversed(rows)]
        log += [_relabel(r) for r in later]
        log.sort(key=lambda r: r.seq)  # stable: an utterance before a relabel of the same seq (never assigned)
        return log

    def last_seq(self, room: str) -> int:
        """The highest ``seq`` of the room's utterances and relabels; 0 for a new room.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._db.read() as conn:
            return max(_max_seq(conn, utterances, room), _max_seq(conn, relabels, room))


def _plain(value: Any) -> Any:
    """JSON for numpy scalars in ``words`` (``float32`` probabilities)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _max_seq(conn: Connection, table, room: str) -> int:
    return conn.execute(select(func.max(table.c.seq)).where(table.c.room == room)).scalar() or 0


def _session_query():
    count = select(func.count()).where(utterances.c.session_id == sessions.c.id).scalar_subquery()
    return select(sessions, count.label("n_utterances"))


def _session(row: Any) -> SessionRecord:
    return SessionRecord(row.id, row.room, row.caller, row.language, row.started_at, row.ended_at, row.end_reason,
                         row.audio_path, row.n_utterances)


def _utterance(row: Any) -> UtteranceRecord:
    return UtteranceRecord(row.session_id, row.room, row.seq, row.start, row.end, row.speaker, row.speaker_id,
                           row.speaker_kind, row.score, row.text, row.language,
                           None if row.words is None else json.loads(row.words), row.created_at,
                           row.utterance_id, row.turn, row.sentiment_label, row.sentiment_score)


def _relabel(row: Any) -> RelabelRecord:
    return RelabelRecord(row.room, row.seq, row.session_id, row.from_id, row.speaker, row.speaker_id,
                         row.speaker_kind, row.reason, row.created_at)
