"""The node registry: every node (and every ``callscribe worker``) writes its load to Redis with an expiry and
renews it every ``Settings.heartbeat_s``; a node that stops heartbeating (crash, ``kill -9``, lost network)
drops out of :meth:`NodeRegistry.nodes` when its key expires, ``Settings.node_ttl_s`` later, with nothing to
clean up (Redis key expiry, https://redis.io/docs/latest/commands/expire/).

Keys: ``callscribe:node:{node id}`` → the JSON of :class:`NodeInfo`, set with ``PX`` (milliseconds to live).
Listing uses ``SCAN`` + ``MGET`` (a handful of nodes; no index to keep consistent).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import CallscribeError
from ..settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "callscribe:node:"


class ClusterError(CallscribeError):
    """Redis cannot be reached or answered an error."""


class NodeInfo(BaseModel):
    """What a node tells the others about itself, renewed every heartbeat.

    ``callers``/``max_peers``: calls with a microphone and the limit; ``queue``: decodes waiting for a worker;
    ``busy``: the decode queue is full (admission refuses calls); ``cpu``: 1-minute load average per core
    (``os.getloadavg()[0] / os.cpu_count()``); ``rooms``: rooms with a caller on this node (for room affinity);
    ``jobs``: analysis jobs running here; ``updated_at``: Unix time of the heartbeat."""

    model_config = ConfigDict(extra="ignore")
    id: str
    url: str | None = None
    role: Literal["node", "worker"] = "node"
    callers: int = 0
    max_peers: int = 0
    viewers: int = 0
    queue: int = 0
    busy: bool = False
    cpu: float = 0.0
    rooms: list[str] = Field(default_factory=list)
    jobs: int = 0
    pid: int = Field(default_factory=os.getpid)
    host: str = Field(default_factory=socket.gethostname)
    updated_at: float = Field(default_factory=time.time)

    @property
    def has_room(self) -> bool:
        """Can take one more call: a node, under ``max_peers``, decode queue not full."""
        return self.role == "node" and self.callers < self.max_peers and not self.busy

    @property
    def load(self) -> float:
        """Share of the call slots in use (0–1)."""
        return self.callers / self.max_peers if self.max_peers else 1.0


def node_id(settings: Settings) -> str:
    """``Settings.node_id``, else ``hostname:port``."""
    return settings.node_id or f"{socket.gethostname()}:{settings.port}"


def public_url(settings: Settings) -> str:
    """``Settings.public_url`` (no trailing slash), else ``http(s)://host:port`` of the bind address."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme = "https" if settings.cert else "http"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{scheme}://{host}:{settings.port}"


def connect(url: str, *, timeout_s: float = 2.0) -> redis.Redis:
    """A Redis client (connection pool, thread-safe) for ``url``; connects lazily.

    Raises:
        ClusterError: the URL is not a Redis URL.
    """
    try:
        return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                    health_check_interval=30)
    except ValueError as exc:
        raise ClusterError(f"not a Redis URL: {url!r}: {exc}") from None


class NodeRegistry:
    """The registry on ``client`` (blocking calls, each one or two Redis round trips: call them off the event
    loop).

    Args:
        client: from :func:`connect`.
        ttl_s: a heartbeat's lifetime (``Settings.node_ttl_s``).
    """

    def __init__(self, client: redis.Redis, ttl_s: float) -> None:
        self.client = client
        self.ttl_ms = max(1, round(ttl_s * 1000))

    def heartbeat(self, info: NodeInfo) -> None:
        """Write ``info`` with a fresh expiry.

        Raises:
            ClusterError: Redis cannot be reached.
        """
        try:
            self.client.set(KEY_PREFIX + info.id, info.model_dump_json(), px=self.ttl_ms)
        except redis.RedisError as exc:
            raise ClusterError(f"heartbeat failed: {exc}") from None

    def leave(self, node: str) -> None:
        """Remove ``node`` at once (a clean shutdown); errors are logged, not raised."""
        try:
            self.client.delete(KEY_PREFIX + node)
        except redis.RedisError as exc:
            log.warning("cannot leave the registry", extra={"node": node, "error": str(exc)})

    def nodes(self) -> list[NodeInfo]:
        """The live nodes and workers (heartbeat younger than ``ttl_s``), ordered by id.

        Raises:
            ClusterError: Redis cannot be reached.
        """
        try:
            keys = sorted(self.client.scan_iter(match=KEY_PREFIX + "*", count=1000))
            values = self.client.mget(keys) if keys else []
        except redis.RedisError as exc:
            raise ClusterError(f"cannot read the node registry: {exc}") from None
        out = []
        for value in values:
            if value is None:  # expired between SCAN and MGET
                continue
            try:
                out.append(NodeInfo.model_validate_json(value))
            except ValidationError as exc:
                log.warning("unreadable node entry", extra={"error": str(exc)})
        return out

    def alive(self) -> set[str]:
        """Ids of the live nodes and workers.  Raises: ClusterError."""
        return {n.id for n in self.nodes()}


def cpu_load() -> float:
    """1-minute load average per core (0 where the OS has none)."""
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)
    except OSError:
        return 0.0
