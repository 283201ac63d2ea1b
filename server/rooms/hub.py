"""The room hub interface: what peers and routes need of rooms, whatever keeps them.

Every call belongs to a room; its events fan out to every subscriber of the room. A room keeps its finals and
the relabels that corrected them (the backlog, "what was said so far") so that a subscriber who joins late
first receives them, and so that nothing already transcribed is lost when a caller disconnects. A room also
owns its anonymous speakers (:class:`server.speaker.clusters.SpeakerClusters`), shared by all its calls, so
one voice keeps one label across the room's callers, and it tells subscribers who is calling
(:class:`RoomState`). :class:`server.rooms.memory.MemoryRoomHub` is the in-process implementation; a
networked one (several nodes) implements the same two protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from ..speaker.clusters import SpeakerClusters
from ..stream.events import Event, Final, SpeakerRelabeled

Subscriber = Callable[[dict], None]
"""Receives each event as a JSON-ready dict; must not block (it runs on the event loop)."""


class RoomState(BaseModel):
    """Who is calling: sent to every subscriber when a call joins or leaves, and to each new subscriber.
    ``callers`` counts calls with a microphone (room viewers are not counted); ``names`` their caller names."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["room"] = "room"
    room: str
    callers: int
    names: list[str | None]


class Room(Protocol):
    name: str
    speakers: SpeakerClusters | None

    @property
    def backlog(self) -> Sequence[Final | SpeakerRelabeled]:
        """The room's finals with text and the relabels among them, oldest first."""

    def publish(self, event: Event, peer_id: str, caller: str | None = None) -> None:
        """Send ``event`` (from call ``peer_id``, whose caller is named ``caller``) to every subscriber."""

    def subscribe(self, key: str, subscriber: Subscriber, replay: bool = True) -> None:
        """Add a subscriber; with ``replay`` it first receives the backlog (each message marked ``backlog``)
        and the room's :class:`RoomState`."""

    def unsubscribe(self, key: str) -> None: ...

    def join(self, peer_id: str, caller: str | None, *, language: str | None = None,
             audio_path: str | None = None) -> None:
        """A call with a microphone joined (or renamed its caller): subscribers get the new :class:`RoomState`;
        a recording room starts its session (``language`` the caller's, ``audio_path`` its recording, if any)."""

    def leave(self, peer_id: str, reason: str = "closed") -> None:
        """That call ended (``reason``): subscribers get the new :class:`RoomState`; its session ends."""


class RoomHub(Protocol):
    def get(self, name: str | None) -> Room:
        """The room ``name``, created on first use; a generated name when None (creating one may block)."""

    async def open(self, name: str | None) -> Room:
        """:meth:`get` without blocking the event loop while a new room is made."""

    def find(self, name: str) -> Room | None:
        """The room ``name`` if it exists (never creates one)."""

    def held_rooms(self) -> list[str]:
        """Names of the rooms with a caller on this node (for room affinity across nodes)."""

    def __contains__(self, name: str) -> bool: ...

    def __len__(self) -> int: ...
