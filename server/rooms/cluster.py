"""Rooms across nodes: the in-process rooms of :mod:`server.rooms.memory`, joined through the Redis room streams
of :class:`server.cluster.bus.RoomBus`.

Every node holds its own :class:`ClusterRoom` for a room it serves (callers or viewers). What a node's calls
publish is stored in the shared database and sent to the node's subscribers as on one machine, then appended to
the room's stream; the other nodes that hold the room deliver it to their subscribers and keep it in their
backlog (they do not store it again). A room opened on a node takes its stream's position *before* it reads its
backlog from the database (both in a worker thread, :meth:`MemoryRoomHub.open`) and, once the backlog is there,
follows the stream from that position on the event loop; entries whose ``seq`` the backlog already holds are
dropped, so a late viewer on any node gets each final once. Callers are counted over all nodes: each node sends
its own callers when they change, and a node that leaves the registry (:meth:`ClusterRoomHub.prune`) takes its
callers with it.

A room's anonymous speakers are one state in Redis (:class:`server.cluster.speakers.SharedSpeakers`), so a voice
keeps its label on whichever node its call sits, and the speakers' numbers never collide; routing still keeps a
room's calls on one node while it has room (:mod:`server.cluster.routing`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..cluster.bus import RoomBus
from ..stream.events import EVENT_ADAPTER
from .hub import RoomState
from .memory import MemoryRoom, MemoryRoomHub

log = logging.getLogger(__name__)

_ENVELOPE = ("peer_id", "caller", "backlog")


@dataclass
class ClusterRoom(MemoryRoom):
    """A room on one node of a cluster; ``bus`` carries its events to and from the other nodes."""

    bus: RoomBus | None = None
    remote: dict[str, dict[str, str | None]] = field(default_factory=dict)
    """node id → that node's callers of this room (peer id → caller name)."""
    stream_from: str = "0-0"
    """The room stream's newest entry id when this room was made (followed from there once registered)."""

    @property
    def state(self) -> RoomState:
        names = list(self.callers.values())
        for callers in self.remote.values():
            names += list(callers.values())
        return RoomState(room=self.name, callers=len(names), names=names)

    def _relay(self, message: dict, seq: int | None) -> None:
        if self.bus is not None:
            self.bus.publish(self.name, "event", {"message": message, "seq": seq})

    def _callers_changed(self) -> None:
        if self.bus is not None:
            self.bus.publish(self.name, "callers", {"callers": dict(self.callers)})

    def deliver(self, entry: dict) -> None:
        """An entry another node wrote to this room's stream (:meth:`server.cluster.bus.RoomBus.publish`)."""
        kind, node = entry.get("kind"), entry.get("node")
        if kind == "callers" and isinstance(entry.get("callers"), dict):
            if entry["callers"]:
                self.remote[node] = entry["callers"]
            else:
                self.remote.pop(node, None)
            self._send(self.state.model_dump())
            return
        message = entry.get("message")
        if kind != "event" or not isinstance(message, dict):
            return
        seq = entry.get("seq")
        if seq is not None and self.recorder is not None and seq in self.recorder.backlog_seqs:
            return  # read from the database with the backlog already
        try:
            event = EVENT_ADAPTER.validate_python({k: v for k, v in message.items() if k not in _ENVELOPE})
        except ValidationError as exc:
            log.warning("unreadable room event from another node", extra={"room": self.name, "error": str(exc)})
            return
        self._keep(event, str(message.get("peer_id")))
        self._send(message)

    def forget_nodes(self, alive: set[str]) -> bool:
        """Drop the callers of nodes not in ``alive``; True (and the new state sent) when some were dropped."""
        gone = [node for node in self.remote if node not in alive]
        for node in gone:
            del self.remote[node]
        if gone:
            self._send(self.state.model_dump())
        return bool(gone)


class ClusterRoomHub(MemoryRoomHub):
    """A :class:`MemoryRoomHub` whose rooms follow their Redis streams (``bus``); the room's ``seq`` numbers come
    from Redis too. Arguments as :class:`MemoryRoomHub` (``speakers`` makes the room's shared speakers), plus
    ``bus``."""

    def __init__(self, bus: RoomBus, speakers, recorder=None) -> None:
        super().__init__(speakers, recorder)
        self.bus = bus

    def _new_room(self, name: str) -> ClusterRoom:
        room = ClusterRoom(name, self._speakers(name), bus=self.bus)
        room.stream_from = self.bus.position(name)  # before the backlog is read: nothing falls between the two
        return room

    def _register(self, name: str, room: MemoryRoom) -> None:
        if isinstance(room, ClusterRoom):  # on the event loop, once its backlog is there
            self.bus.follow(name, room.deliver, room.stream_from)
        super()._register(name, room)

    def prune(self, alive: set[str]) -> None:
        """Forget the callers of nodes that left the registry."""
        for room in self.rooms():
            if isinstance(room, ClusterRoom):
                room.forget_nodes(alive)
