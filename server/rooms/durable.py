"""Durable sessions: every call of a room is a session in the database, and every final with text and every
relabel is written there *before* the room sends it (:meth:`server.rooms.memory.MemoryRoom.publish`), so a
``kill -9`` loses at most the utterance still being decoded.

:class:`SessionRecorder` is what a room calls; it turns the stream's events into the store's records
(:mod:`server.store.sessions`) and back, so a room's backlog can be rebuilt from the database after a restart
(:meth:`SessionRecorder.backlog`). Each room numbers its finals and relabels with one sequence (``seq``) so the
two interleave exactly as they were published: a relabel applies to the finals before it
(:func:`server.stream.events.relabeled`). A final's ``sentiment`` update, which comes after it, is stored onto
the final's row (:meth:`SessionRecorder.sentiment`), so rebuilt finals carry it.

Retention (:func:`purge_expired`) deletes sessions older than ``Settings.transcript_retention_days`` and the
recorded audio of sessions older than ``Settings.audio_retention_days``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import CallscribeError, SessionNotFound, StoreError
from ..settings import Settings
from ..store.sessions import RelabelRecord, SessionStore, UtteranceRecord
from ..stream.events import Final, SentimentMark, SentimentUpdate, SpeakerRelabeled

log = logging.getLogger(__name__)

DAY_S = 86_400.0


def utterance_record(event: Final, session_id: str, room: str, seq: int) -> UtteranceRecord:
    """The stored form of a final (times stay on the call's clock, seconds)."""
    words = [w.model_dump(mode="json") for w in event.words] if event.words else None
    mark = event.sentiment
    return UtteranceRecord(session_id=session_id, room=room, seq=seq, start=event.start, end=event.end,
                           speaker=event.speaker, speaker_id=event.speaker_id, speaker_kind=event.speaker_kind,
                           score=event.score, text=event.text, language=event.language, words=words,
                           created_at=event.server_time, utterance_id=event.utterance_id, turn=event.turn,
                           sentiment_label=mark.label if mark else None, sentiment_score=mark.score if mark else None)


def relabel_record(event: SpeakerRelabeled, session_id: str | None, room: str, seq: int) -> RelabelRecord:
    return RelabelRecord(room=room, seq=seq, session_id=session_id, from_id=event.from_id, speaker=event.speaker,
                         speaker_id=event.speaker_id, speaker_kind=event.speaker_kind, reason=event.reason,
                         created_at=event.server_time)


def final_of(rec: UtteranceRecord, utterance_id: int) -> Final:
    """A stored utterance as the ``final`` event it was sent as (``utterance_id`` renumbered, ``speaker_reason``
    ``stored``: the reason is not kept), with its ``sentiment`` when one was stored."""
    mark = None
    if rec.sentiment_label is not None and rec.sentiment_score is not None:
        mark = SentimentMark(label=rec.sentiment_label, score=min(1.0, max(0.0, rec.sentiment_score)))
    return Final(utterance_id=utterance_id, start=rec.start, end=rec.end, speaker=rec.speaker,
                 speaker_id=rec.speaker_id, speaker_kind=rec.speaker_kind, score=rec.score, speaker_reason="stored",
                 text=rec.text, language=rec.language, words=rec.words, server_time=rec.created_at, sentiment=mark)


def relabel_of(rec: RelabelRecord) -> SpeakerRelabeled:
    return SpeakerRelabeled(from_id=rec.from_id, speaker=rec.speaker, speaker_id=rec.speaker_id or "",
                            speaker_kind=rec.speaker_kind, reason=rec.reason, server_time=rec.created_at)


def as_events(records: list[UtteranceRecord | RelabelRecord]) -> list[Final | SpeakerRelabeled]:
    """Stored records (in ``seq`` order) as the events a room sent."""
    out: list[Final | SpeakerRelabeled] = []
    for i, rec in enumerate(records):
        out.append(final_of(rec, i) if isinstance(rec, UtteranceRecord) else relabel_of(rec))
    return out


@dataclass
class SessionRecorder:
    """Writes one room's sessions to ``store``. Blocking but short (one INSERT per call); it runs on the event
    loop so that a final is in the database before anyone receives it.

    Args:
        store: the session store.
        room: the room's name.
        backlog_finals: how many finals :meth:`backlog` rebuilds.
    """

    store: SessionStore
    room: str
    backlog_finals: int = 1000
    numbering: Callable[[str, int], int] | None = None
    """Where ``seq`` comes from when several nodes record one room: ``(room, highest seq known here) → next seq``
    (:meth:`server.cluster.bus.RoomBus.next_seq`); None = this recorder counts on its own."""
    seq: int = 0
    failures: int = 0
    backlog_seqs: frozenset[int] = frozenset()
    """The ``seq`` of every record the last :meth:`backlog` returned (to drop them when they arrive again)."""

    def __post_init__(self) -> None:
        self.seq = self.store.last_seq(self.room)

    def backlog(self) -> list[Final | SpeakerRelabeled]:
        """The room's last ``backlog_finals`` finals and the relabels among and after them, oldest first.

        Raises:
            StoreError: the database cannot be read.
        """
        records = self.store.room_log(self.room, self.backlog_finals) if self.backlog_finals else []
        self.backlog_seqs = frozenset(r.seq for r in records)
        return as_events(records)

    def _next_seq(self) -> int:
        if self.numbering is not None:
            try:
                self.seq = self.numbering(self.room, self.seq)
                return self.seq
            except CallscribeError as exc:
                log.error("shared numbering failed; numbering here", extra={"room": self.room, "error": str(exc)})
        self.seq += 1
        return self.seq

    def started(self, session_id: str, caller: str | None, language: str | None) -> None:
        self._guard(self.store.start, session_id, self.room, caller, language)

    def renamed(self, session_id: str, caller: str | None) -> None:
        self._guard(self.store.update, session_id, caller=caller)

    def audio(self, session_id: str, path: str) -> None:
        self._guard(self.store.set_audio, session_id, path)

    def ended(self, session_id: str, reason: str) -> None:
        self._guard(self.store.end, session_id, reason)

    def final(self, event: Final, session_id: str) -> None:
        self._guard(self.store.add_utterance, utterance_record(event, session_id, self.room, self._next_seq()))

    def sentiment(self, event: SentimentUpdate, session_id: str) -> None:
        """Store a final's sentiment onto its row (a final without text was never stored: nothing to do)."""
        self._guard(self.store.set_sentiment, session_id, event.utterance_id, event.turn, event.label, event.score)

    def relabel(self, event: SpeakerRelabeled, session_id: str | None) -> None:
        self._guard(self.store.add_relabel, relabel_record(event, session_id, self.room, self._next_seq()))

    def _guard(self, write, *args, **kwargs) -> None:
        """A failed write is logged and counted, never raised into the call: the live transcript goes on."""
        try:
            write(*args, **kwargs)
        except (StoreError, SessionNotFound) as exc:  # e.g. the session was deleted while the call went on
            self.failures += 1
            log.error("session write failed", extra={"room": self.room, "error": str(exc)})


@dataclass(frozen=True)
class Purged:
    sessions: int
    audio_files: int


def purge_expired(store: SessionStore, settings: Settings, now: float | None = None) -> Purged:
    """Apply the retention settings: delete sessions (and their audio) older than
    ``transcript_retention_days`` and the audio of sessions older than ``audio_retention_days``.

    Raises:
        StoreError: the database cannot be written.
    """
    now = time.time() if now is None else now
    days = settings.transcript_retention_days, settings.audio_retention_days
    result = store.purge(sessions_before=now - days[0] * DAY_S if days[0] else None,
                         audio_before=now - days[1] * DAY_S if days[1] else None)
    for path in result.audio_paths:
        remove_audio(path)
    return Purged(result.sessions, len(result.audio_paths))


def remove_audio(path: str | None) -> None:
    """Delete a session's recording (missing files are fine)."""
    if path:
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()
