"""The room hub interface: what peers and routes need of rooms, whatever keeps them.

Every call belongs to a room; its events fan out to every subscriber of the room. A room keeps its finals
(the backlog, "what was said so far") so that a subscriber who joins late first receives them, and so that
nothing already transcribed is lost when a caller disconnects. :class:`server.rooms.memory.MemoryRoomHub` is
the in-process implementation; a networked one (several nodes) implements the same two protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ..stream.events import Event, Final

Subscriber = Callable[[dict], None]
"""Receives each event as a JSON-ready dict; must not block (it runs on the event loop)."""


class Room(Protocol):
    name: str

    @property
    def backlog(self) -> Sequence[Final]:
        """The room's finals with text, oldest first."""

    def publish(self, event: Event, peer_id: str, caller: str | None = None) -> None:
        """Send ``event`` (from call ``peer_id``, whose caller is named ``caller``) to every subscriber."""

    def subscribe(self, key: str, subscriber: Subscriber, replay: bool = True) -> None:
        """Add a subscriber; with ``replay`` it first receives the backlog (each message marked ``backlog``)."""

    def unsubscribe(self, key: str) -> None: ...


class RoomHub(Protocol):
    def get(self, name: str | None) -> Room:
        """The room ``name``, created on first use; a generated name when None."""

    def __contains__(self, name: str) -> bool: ...

    def __len__(self) -> int: ...
