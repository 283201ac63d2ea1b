"""Which node takes a call: room affinity first, then the least loaded node, this one on a tie.

A room's calls stay on one node while it has room, so the room's shared anonymous speakers have one writer
(the way LiveKit places a room on one node, https://docs.livekit.io/home/self-hosting/distributed/); a call
spills to another node only when that node is full. Otherwise the node with the smallest share of its call
slots in use wins (CPU load breaks ties between other nodes; this node wins any tie, so an even cluster does not
bounce offers around). Only nodes with a free slot and a decode queue that is not full are candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

from .registry import NodeInfo


def choose(nodes: Sequence[NodeInfo], here: NodeInfo, room: str | None = None) -> NodeInfo | None:
    """The node that should take a new call for ``room`` (None: any), among ``nodes`` (the registry's, which
    may or may not include ``here``; ``here`` is this node's current state and replaces its registry entry).
    Returns None when no node has a free slot."""
    candidates = [n for n in nodes if n.id != here.id and n.has_room]
    if here.has_room:
        candidates.append(here)
    if not candidates:
        return None
    if room is not None:
        holding = [n for n in candidates if room in n.rooms]
        if holding:
            candidates = holding
    return min(candidates, key=lambda n: (n.load, n.id != here.id, n.queue, n.cpu, n.id))
