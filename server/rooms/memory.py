"""The in-process room hub: rooms, their subscribers and backlogs in this process's memory
(the interface: :mod:`server.rooms.hub`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from ..stream.events import Event, Final
from .hub import Subscriber


@dataclass
class MemoryRoom:
    """A room held in memory (keeps at most ``max_backlog`` finals)."""

    name: str
    backlog: list[Final] = field(default_factory=list)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    max_backlog: int = 10_000

    def publish(self, event: Event, peer_id: str, caller: str | None = None) -> None:
        """Send ``event`` (from call ``peer_id``) to every subscriber; finals with words go to the backlog."""
        if isinstance(event, Final) and event.text.strip():
            self.backlog.append(event)
            del self.backlog[: -self.max_backlog]
        message = {**event.model_dump(mode="json"), "peer_id": peer_id}
        if caller is not None:
            message["caller"] = caller
        for subscriber in list(self.subscribers.values()):
            subscriber(message)

    def subscribe(self, key: str, subscriber: Subscriber, replay: bool = True) -> None:
        if replay:
            for final in self.backlog:
                subscriber({**final.model_dump(mode="json"), "backlog": True})
        self.subscribers[key] = subscriber

    def unsubscribe(self, key: str) -> None:
        self.subscribers.pop(key, None)


class MemoryRoomHub:
    """Registry of rooms by name (in memory); implements :class:`server.rooms.hub.RoomHub`."""

    def __init__(self) -> None:
        self._rooms: dict[str, MemoryRoom] = {}

    def get(self, name: str | None) -> MemoryRoom:
        """The room ``name``, created on first use; a generated name when None."""
        name = name or f"room-{secrets.token_hex(3)}"
        if name not in self._rooms:
            self._rooms[name] = MemoryRoom(name)
        return self._rooms[name]

    def __contains__(self, name: str) -> bool:
        return name in self._rooms

    def __len__(self) -> int:
        return len(self._rooms)
