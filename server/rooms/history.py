"""Reading durable sessions back: a session's finals as they stand after every relabel of its room
(the same :func:`server.stream.events.relabeled` that pages and file mode apply); deletion with the recording."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.sessions import SessionRecord, SessionStore
from ..stream.events import Final, relabeled
from .durable import as_events, remove_audio


@dataclass(frozen=True)
class Transcript:
    """One session: its record and its finals (relabels applied; times in seconds on the call's clock)."""

    session: SessionRecord
    finals: list[Final]


class SessionHistory:
    """Past sessions in ``store`` (blocking database reads: call off the event loop)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def page(self, room: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[Transcript], int]:
        """Sessions newest first, each with its transcript, and the total count.

        Raises:
            StoreError: the database cannot be read.
        """
        sessions, total = self.store.list(room=room, limit=limit, offset=offset)
        return [self._transcript(s) for s in sessions], total

    def transcript(self, session_id: str) -> Transcript:
        """Raises: SessionNotFound, StoreError."""
        return self._transcript(self.store.get(session_id))

    def _transcript(self, session: SessionRecord) -> Transcript:
        utterances = self.store.utterances(session.id)
        if not utterances:
            return Transcript(session, [])
        first = utterances[0].seq
        relabels = [r for r in self.store.relabels(session.room) if r.seq > first]
        records = sorted([*utterances, *relabels], key=lambda r: r.seq)
        return Transcript(session, relabeled(as_events(records)))

    def delete(self, session_id: str) -> None:
        """Delete the session, its utterances and its recording.

        Raises:
            SessionNotFound, StoreError.
        """
        remove_audio(self.store.delete(session_id))
