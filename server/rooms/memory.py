"""The in-process room hub: rooms, their subscribers, backlogs and anonymous speakers in this process's memory
(the interface: :mod:`server.rooms.hub`). With a :class:`server.rooms.durable.SessionRecorder` per room, each
call is a durable session and every final and relabel is in the database before it is sent; a room created
after a restart starts with its backlog rebuilt from there."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import StoreError
from ..speaker.clusters import ANON_PREFIX, AnonymousSpeakers, SpeakerClusters
from ..stream.events import Event, Final, SentimentUpdate, SpeakerRelabeled
from .durable import SessionRecorder
from .hub import RoomState, Subscriber

log = logging.getLogger(__name__)

AWAITING_SENTIMENT = 256
"""Recent finals per room whose ``sentiment`` update may still come (to mark them in the backlog)."""


@dataclass
class MemoryRoom:
    """A room held in memory (keeps at most ``max_backlog`` finals and relabels); ``recorder`` (optional)
    writes its sessions to the database."""

    name: str
    speakers: SpeakerClusters | None = field(default_factory=AnonymousSpeakers)
    backlog: list[Final | SpeakerRelabeled] = field(default_factory=list)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    callers: dict[str, str | None] = field(default_factory=dict)
    max_backlog: int = 10_000
    recorder: SessionRecorder | None = None
    _awaiting: OrderedDict[tuple[str, int, int], Final] = field(default_factory=OrderedDict, init=False, repr=False)

    def publish(self, event: Event, peer_id: str, caller: str | None = None) -> None:
        """Send ``event`` (from call ``peer_id``) to every subscriber; finals with words and relabels are
        first written to the database (when the room records) and kept in the backlog, and a ``sentiment``
        update is first stored onto its final (in the database and in the backlog)."""
        kept = _kept(event)
        if self.recorder is not None:
            if kept and isinstance(event, Final):
                self.recorder.final(event, peer_id)
            elif kept:
                self.recorder.relabel(event, peer_id if peer_id in self.callers else None)
            elif isinstance(event, SentimentUpdate):
                self.recorder.sentiment(event, peer_id)
        self._keep(event, peer_id)
        message = {**event.model_dump(mode="json"), "peer_id": peer_id}
        if caller is not None:
            message["caller"] = caller
        self._send(message)
        self._relay(message, self.recorder.seq if kept and self.recorder is not None else None)

    def _keep(self, event: Event, peer_id: str) -> None:
        """Keep a final with text or a relabel in the backlog, or mark a ``sentiment`` update onto its final there;
        nothing is written anywhere (:meth:`publish` stores first; another node's events are stored already)."""
        if _kept(event):
            self.backlog.append(event)
            del self.backlog[: -self.max_backlog]
            if isinstance(event, Final):
                self._awaiting[(peer_id, event.utterance_id, event.turn)] = event
                while len(self._awaiting) > AWAITING_SENTIMENT:
                    self._awaiting.popitem(last=False)
        elif isinstance(event, SentimentUpdate):
            self._mark(event, peer_id)

    def _relay(self, message: dict, seq: int | None) -> None:
        """Hook: a message this room just sent to its subscribers (``seq``: its number in the database, for a
        stored final or relabel). Nothing to do in one process; :class:`server.rooms.cluster.ClusterRoom`
        passes it to the other nodes."""

    def _callers_changed(self) -> None:
        """Hook: a call joined, was renamed or left (the other nodes' rooms recount their callers)."""

    def _mark(self, update: SentimentUpdate, peer_id: str) -> None:
        final = self._awaiting.pop((peer_id, update.utterance_id, update.turn), None)
        if final is None:
            return
        for i in range(len(self.backlog) - 1, -1, -1):
            if self.backlog[i] is final:
                self.backlog[i] = final.model_copy(update={"sentiment": update.mark})
                return

    def _send(self, message: dict) -> None:
        for subscriber in list(self.subscribers.values()):
            subscriber(message)

    @property
    def state(self) -> RoomState:
        return RoomState(room=self.name, callers=len(self.callers), names=list(self.callers.values()))

    def subscribe(self, key: str, subscriber: Subscriber, replay: bool = True) -> None:
        if replay:
            for event in self.backlog:
                subscriber({**event.model_dump(mode="json"), "backlog": True})
            subscriber(self.state.model_dump())
        self.subscribers[key] = subscriber

    def unsubscribe(self, key: str) -> None:
        self.subscribers.pop(key, None)

    def join(self, peer_id: str, caller: str | None, *, language: str | None = None,
             audio_path: str | None = None) -> None:
        if self.recorder is not None:
            if peer_id in self.callers:
                self.recorder.renamed(peer_id, caller)
            else:
                self.recorder.started(peer_id, caller, language)
            if audio_path is not None:
                self.recorder.audio(peer_id, audio_path)
        self.callers[peer_id] = caller
        self._send(self.state.model_dump())
        self._callers_changed()

    def leave(self, peer_id: str, reason: str = "closed") -> None:
        if peer_id in self.callers:
            del self.callers[peer_id]
            if self.recorder is not None:
                self.recorder.ended(peer_id, reason)
            self._send(self.state.model_dump())
            self._callers_changed()


class MemoryRoomHub:
    """Registry of rooms by name (in memory); implements :class:`server.rooms.hub.RoomHub`.

    Args:
        speakers: makes a new room's anonymous-speaker registry from its name (default: library defaults; the
            composition root passes the configured one; returning None turns anonymous speakers off).
        recorder: makes the :class:`SessionRecorder` of a new room (by name), or None to keep nothing
            beyond memory. A room's backlog is rebuilt from its recorder; if the database cannot be read
            the room starts empty (logged) rather than refusing calls.
    """

    def __init__(self, speakers: Callable[[str], SpeakerClusters | None] = lambda room: AnonymousSpeakers(),
                 recorder: Callable[[str], SessionRecorder] | None = None) -> None:
        self._rooms: dict[str, MemoryRoom] = {}
        self._speakers = speakers
        self._recorder = recorder
        self._opening: dict[str, asyncio.Task] = {}

    def get(self, name: str | None) -> MemoryRoom:
        """The room ``name``, created on first use (its backlog rebuilt from the database when it records);
        a generated name when None. Creating one blocks (database; Redis in a cluster): on the event loop use
        :meth:`open`."""
        name = name or _new_name()
        if name not in self._rooms:
            self._register(name, self._create(name))
        return self._rooms[name]

    async def open(self, name: str | None) -> MemoryRoom:
        """:meth:`get` for the event loop: a new room is made in a worker thread (its backlog read from the
        database, in a cluster its stream position from Redis), so the loop's calls go on meanwhile; opens of one
        new room at the same time share that one preparation. Cancelling the caller does not cancel it."""
        name = name or _new_name()
        room = self._rooms.get(name)
        if room is not None:
            return room
        task = self._opening.get(name)
        if task is None:
            task = self._opening[name] = asyncio.get_running_loop().create_task(self._prepare(name))
        return await asyncio.shield(task)

    async def _prepare(self, name: str) -> MemoryRoom:
        try:
            room = await asyncio.to_thread(self._create, name)
            if name not in self._rooms:  # (a get() on the loop may have made it meanwhile: that one stays)
                self._register(name, room)
            return self._rooms[name]
        finally:
            self._opening.pop(name, None)

    def _new_room(self, name: str) -> MemoryRoom:
        """An empty room (subclasses make their own kind, and may note where to follow it elsewhere from)."""
        return MemoryRoom(name, self._speakers(name))

    def _register(self, name: str, room: MemoryRoom) -> None:
        """Make a room made by :meth:`_create` the room ``name`` (on the loop; subclasses start following it)."""
        self._rooms[name] = room

    def _create(self, name: str) -> MemoryRoom:
        """A new room with its backlog (blocking; runs in a worker thread from :meth:`open`)."""
        room = self._new_room(name)
        if self._recorder is None:
            return room
        try:
            room.recorder = self._recorder(name)
            room.backlog = room.recorder.backlog()
        except StoreError as exc:
            log.error("cannot rebuild the room's backlog", extra={"room": name, "error": str(exc)})
            return room
        if room.speakers is not None:
            room.speakers.first_number = 1 + max(_anon_numbers(room.backlog), default=0)
        return room

    def find(self, name: str) -> MemoryRoom | None:
        return self._rooms.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._rooms

    def __len__(self) -> int:
        return len(self._rooms)

    def held_rooms(self) -> list[str]:
        """Rooms with a caller on this node (for room affinity, :mod:`server.cluster.routing`)."""
        return [room.name for room in self.rooms() if room.callers]

    def rooms(self) -> list[MemoryRoom]:
        """Every room this process holds."""
        return list(self._rooms.values())


def _new_name() -> str:
    return f"room-{secrets.token_hex(3)}"


def _kept(event: Event) -> bool:
    """Finals with text and relabels are stored and replayed; everything else is only sent."""
    return (isinstance(event, Final) and bool(event.text.strip())) or isinstance(event, SpeakerRelabeled)


def _anon_numbers(events: list[Final | SpeakerRelabeled]):
    for event in events:
        ids = (event.speaker_id, event.from_id) if isinstance(event, SpeakerRelabeled) else (event.speaker_id,)
        for speaker_id in ids:
            if speaker_id and speaker_id.startswith(ANON_PREFIX) and speaker_id[len(ANON_PREFIX):].isdigit():
                yield int(speaker_id[len(ANON_PREFIX):])
