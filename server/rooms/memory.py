"""The in-process room hub: rooms, their subscribers, backlogs and anonymous speakers in this process's memory
(the interface: :mod:`server.rooms.hub`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ..speaker.clusters import AnonymousSpeakers
from ..stream.events import Event, Final, SpeakerRelabeled
from .hub import RoomState, Subscriber


@dataclass
class MemoryRoom:
    """A room held in memory (keeps at most ``max_backlog`` finals and relabels)."""

    name: str
    speakers: AnonymousSpeakers | None = field(default_factory=AnonymousSpeakers)
    backlog: list[Final | SpeakerRelabeled] = field(default_factory=list)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    callers: dict[str, str | None] = field(default_factory=dict)
    max_backlog: int = 10_000

    def publish(self, event: Event, peer_id: str, caller: str | None = None) -> None:
        """Send ``event`` (from call ``peer_id``) to every subscriber; finals with words and relabels go to the
        backlog."""
        if (isinstance(event, Final) and event.text.strip()) or isinstance(event, SpeakerRelabeled):
            self.backlog.append(event)
            del self.backlog[: -self.max_backlog]
        message = {**event.model_dump(mode="json"), "peer_id": peer_id}
        if caller is not None:
            message["caller"] = caller
        self._send(message)

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

    def join(self, peer_id: str, caller: str | None) -> None:
        self.callers[peer_id] = caller
        self._send(self.state.model_dump())

    def leave(self, peer_id: str) -> None:
        if peer_id in self.callers:
            del self.callers[peer_id]
            self._send(self.state.model_dump())


class MemoryRoomHub:
    """Registry of rooms by name (in memory); implements :class:`server.rooms.hub.RoomHub`.

    Args:
        speakers: makes each new room's anonymous-speaker registry (default: library defaults; the
            composition root passes the configured one; returning None turns anonymous speakers off).
    """

    def __init__(self, speakers: Callable[[], AnonymousSpeakers | None] = AnonymousSpeakers) -> None:
        self._rooms: dict[str, MemoryRoom] = {}
        self._speakers = speakers

    def get(self, name: str | None) -> MemoryRoom:
        """The room ``name``, created on first use; a generated name when None."""
        name = name or f"room-{secrets.token_hex(3)}"
        if name not in self._rooms:
            self._rooms[name] = MemoryRoom(name, self._speakers())
        return self._rooms[name]

    def find(self, name: str) -> MemoryRoom | None:
        return self._rooms.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._rooms

    def __len__(self) -> int:
        return len(self._rooms)
