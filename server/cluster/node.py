"""This node in the cluster: its heartbeat, the registry as last read, and the room bus's task.

:meth:`ClusterNode.run` writes this node's :class:`NodeInfo` every ``Settings.heartbeat_s`` and reads the other
nodes back in the same beat, so routing a call (:meth:`ClusterNode.route`) needs no Redis round trip; what it
routes on is at most one heartbeat old. A node whose last heartbeat is older than :data:`STALE_BEATS` beats is
not routed to even while its registry entry lives (``node_ttl_s``): a killed node stops getting offers after
about three heartbeats, not after the TTL plus one (this compares wall clocks of machines: keep them in NTP sync,
and give every node the same ``heartbeat_s``). When Redis cannot be reached the node goes on serving what it holds,
routes nothing elsewhere, and logs once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from .bus import RoomBus
from .registry import ClusterError, NodeInfo, NodeRegistry
from .routing import choose

log = logging.getLogger(__name__)

STALE_BEATS = 3
"""Heartbeats a node may miss before offers stop being routed to it."""


class ClusterNode:
    """Node ``node_id`` at ``url`` in ``registry`` (and its rooms on ``bus``, if any).

    Args:
        heartbeat_s: seconds between heartbeats.
        on_nodes: called with the ids of the live nodes after every read of the registry (e.g. to forget the
            callers of nodes that left, :meth:`server.rooms.cluster.ClusterRoomHub.prune`).
    """

    def __init__(self, registry: NodeRegistry, node_id: str, url: str, *, heartbeat_s: float = 1.0,
                 bus: RoomBus | None = None, on_nodes: Callable[[set[str]], None] | None = None) -> None:
        self.registry = registry
        self.id = node_id
        self.url = url
        self.heartbeat_s = heartbeat_s
        self.bus = bus
        self.on_nodes = on_nodes
        self.nodes: list[NodeInfo] = []
        self.connected = False

    def route(self, here: NodeInfo, room: str | None) -> NodeInfo | None:
        """The node that should take a new call for ``room`` given this node's state ``here``
        (:func:`server.cluster.routing.choose` over the registry as last read, less the nodes that missed
        :data:`STALE_BEATS` heartbeats); None when none has a free slot."""
        if not self.connected:
            return choose([], here, room)
        cutoff = time.time() - STALE_BEATS * self.heartbeat_s
        return choose([n for n in self.nodes if n.updated_at >= cutoff], here, room)

    async def beat(self, here: NodeInfo) -> None:
        """One heartbeat: write ``here``, read every node.

        Raises:
            ClusterError: Redis cannot be reached.
        """
        await asyncio.to_thread(self.registry.heartbeat, here)
        self.nodes = await asyncio.to_thread(self.registry.nodes)
        if self.on_nodes is not None:
            self.on_nodes({n.id for n in self.nodes})

    async def run(self, load: Callable[[], NodeInfo]) -> None:
        """Heartbeat ``load()`` (this node's current state) and run the room bus until cancelled; on
        cancellation leave the registry at once."""
        bus_task = asyncio.get_running_loop().create_task(self.bus.run()) if self.bus is not None else None
        try:
            while True:
                try:
                    await self.beat(load())
                    if not self.connected:
                        log.info("in the cluster", extra={"node": self.id, "nodes": len(self.nodes)})
                    self.connected = True
                except ClusterError as exc:
                    if self.connected or not self.nodes:
                        log.error("cluster registry unreachable; serving what this node holds",
                                  extra={"node": self.id, "error": str(exc)})
                    self.connected = False
                    self.nodes = []
                await asyncio.sleep(self.heartbeat_s)
        finally:
            if bus_task is not None:
                bus_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bus_task
                self.bus.shutdown()
            await asyncio.to_thread(self.registry.leave, self.id)
