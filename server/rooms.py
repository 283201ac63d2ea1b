"""Rooms: who listens to what. Every call belongs to a room; its events fan out to every subscriber.

A room keeps its finals (the backlog, "what was said so far") so that a subscriber who joins late first
receives them, and so that nothing already transcribed is lost when a caller disconnects.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from .events import Event, Final

Subscriber = Callable[[dict], None]
"""Receives each event as a JSON-ready dict; must not block (it runs on the event loop)."""


@dataclass
class Room:
    name: str
    backlog: list[Final] = field(default_factory=list)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    max_backlog: int = 10_000

    def publish(self, event: Event, peer_id: str, speaker_name: str | None = None) -> None:
        """Send ``event`` (from call ``peer_id``) to every subscriber; finals with words go to the backlog."""
        if isinstance(event, Final) and event.text.strip():
            self.backlog.append(event)
            del self.backlog[: -self.max_backlog]
        message = {**event.model_dump(mode="json"), "peer_id": peer_id}
        if speaker_name is not None:
            message["caller"] = speaker_name
        for subscriber in list(self.subscribers.values()):
            subscriber(message)

    def subscribe(self, key: str, subscriber: Subscriber, replay: bool = True) -> None:
        if replay:
            for final in self.backlog:
                subscriber({**final.model_dump(mode="json"), "backlog": True})
        self.subscribers[key] = subscriber

    def unsubscribe(self, key: str) -> None:
        self.subscribers.pop(key, None)


class Rooms:
    """Registry of rooms by name (in memory)."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def get(self, name: str | None) -> Room:
        """The room ``name``, created on first use; a generated name when None."""
        name = name or f"room-{secrets.token_hex(3)}"
        if name not in self._rooms:
            self._rooms[name] = Room(name)
        return self._rooms[name]

    def __contains__(self, name: str) -> bool:
        return name in self._rooms

    def __len__(self) -> int:
        return len(self._rooms)
