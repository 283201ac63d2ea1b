"""Room events across nodes: one Redis stream per room (``callscribe:room:{room}``, https://redis.io/docs/latest/
develop/data-types/streams/).

Each node appends what its own calls publish (``XADD … MAXLEN ~ Settings.room_stream_len``) and reads the
streams of the rooms it holds (``XREAD BLOCK``), skipping its own entries, so a viewer on node B sees a call on
node A live. A stream rather than pub/sub: a node that loses Redis for a while goes on reading from the last
entry id it saw, and a room created on a node starts reading from the stream's newest entry at the moment its
backlog is read from the shared database, so nothing falls between the two (duplicates are dropped by ``seq``,
see :mod:`server.rooms.cluster`).

A room's ``seq`` (the order of its finals and relabels, :mod:`server.rooms.durable`) comes from one Redis counter
per room (``INCR callscribe:room:{room}:seq``, raised to the database's highest ``seq`` when a node first opens
the room), so two nodes recording one room never number two events alike.

Writes go through a bounded in-memory queue drained by one task (events of a room keep their order; a slow or
absent Redis never blocks a call); reads back off (0.2 s doubling to 5 s) while Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
import redis.asyncio as aredis

from .registry import ClusterError

log = logging.getLogger(__name__)

STREAM_PREFIX = "callscribe:room:"
OUTBOX = 10_000
"""Entries waiting to be written to Redis; more are dropped (counted in :attr:`RoomBus.dropped`)."""
READ_BLOCK_MS = 250
"""A read waits at most this long, so rooms opened meanwhile are read from soon after."""
READ_COUNT = 500

# Raise the room's counter to at least ARGV[1] (the database's highest seq), then take the next number.
_NEXT_SEQ = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""

Deliver = Callable[[dict], None]
"""Receives each entry another node wrote: ``{"node", "kind", …}`` (runs on the event loop; must not block)."""


def stream_key(room: str) -> str:
    return STREAM_PREFIX + room


@dataclass
class _Follow:
    deliver: Deliver
    last_id: str


@dataclass
class RoomBus:
    """The room streams of node ``node`` on Redis ``url``.

    :meth:`position` and :meth:`next_seq` are blocking single round trips, made where the room already blocks on
    the database (a new room's backlog is read in a worker thread, :meth:`server.rooms.memory.MemoryRoomHub.open`;
    a final is stored where it is published); :meth:`follow` and :meth:`publish` never block; :meth:`run` is the
    node's reader and writer (an asyncio task from startup to shutdown).
    """

    url: str
    node: str
    maxlen: int = 10_000
    dropped: int = 0
    delivered: int = 0
    _follows: dict[str, _Follow] = field(default_factory=dict)
    _outbox: asyncio.Queue | None = None
    _sync: redis.Redis | None = None
    _seq_script: object = None

    def __post_init__(self) -> None:
        self._sync = redis.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._seq_script = self._sync.register_script(_NEXT_SEQ)

    # -- rooms ----------------------------------------------------------------------------------
    def position(self, room: str) -> str:
        """The id of the newest entry of ``room``'s stream now (blocking: one round trip). Take it *before*
        reading the room's backlog from the database and :meth:`follow` from it: nothing falls between the two.
        If Redis cannot be reached, ``"0-0"``: the room is followed from the start of its stream once it can
        (duplicates of the backlog are the caller's to drop)."""
        try:
            newest = self._sync.xrevrange(stream_key(room), count=1)
            return newest[0][0].decode() if newest else "0-0"
        except redis.RedisError as exc:
            log.error("cannot read the room's stream position", extra={"room": room, "error": str(exc)})
            return "0-0"

    def follow(self, room: str, deliver: Deliver, last_id: str) -> None:
        """Deliver other nodes' entries of ``room`` that come after entry ``last_id`` (from :meth:`position`).
        Never blocks; call it on the event loop (the reader task iterates the followed rooms there)."""
        self._follows[room] = _Follow(deliver, last_id)

    def close(self, room: str) -> None:
        self._follows.pop(room, None)

    def next_seq(self, room: str, floor: int) -> int:
        """The room's next ``seq``, above ``floor`` (the database's highest) and above any other node's.

        Raises:
            ClusterError: Redis cannot be reached (the caller falls back to its own counter).
        """
        try:
            return int(self._seq_script(keys=[stream_key(room) + ":seq"], args=[floor]))
        except redis.RedisError as exc:
            raise ClusterError(f"cannot number the room's event: {exc}") from None

    def publish(self, room: str, kind: str, payload: dict) -> None:
        """Queue an entry ``{"node", "kind", "t", …payload}`` for the room's stream (never blocks; ``t`` is the
        Unix time of publishing, for delay measurements)."""
        if self._outbox is None:
            self._outbox = asyncio.Queue(OUTBOX)
        try:
            self._outbox.put_nowait((room, {"node": self.node, "kind": kind, "t": time.time(), **payload}))
        except asyncio.QueueFull:
            self.dropped += 1

    # -- the node's task ----------------------------------------------------------------------
    async def run(self) -> None:
        """Write queued entries and read the followed rooms until cancelled."""
        if self._outbox is None:
            self._outbox = asyncio.Queue(OUTBOX)
        client = aredis.Redis.from_url(self.url, socket_timeout=5.0, socket_connect_timeout=2.0)
        reader = aredis.Redis.from_url(self.url, socket_timeout=5.0, socket_connect_timeout=2.0)
        try:
            await asyncio.gather(self._write(client), self._read(reader))
        finally:
            with contextlib.suppress(redis.RedisError, OSError):
                await client.aclose()
            with contextlib.suppress(redis.RedisError, OSError):
                await reader.aclose()

    async def _write(self, client: aredis.Redis) -> None:
        pause = 0.2
        while True:
            room, entry = await self._outbox.get()
            batch = [(room, entry)]
            while not self._outbox.empty() and len(batch) < 500:
                batch.append(self._outbox.get_nowait())
            while True:
                try:
                    async with client.pipeline(transaction=False) as pipe:
                        for r, e in batch:
                            pipe.xadd(stream_key(r), {"m": json.dumps(e, ensure_ascii=False)},
                                      maxlen=self.maxlen, approximate=True)
                        await pipe.execute()
                    pause = 0.2
                    break
                except (redis.RedisError, OSError) as exc:
                    log.error("cannot write room events to Redis; retrying", extra={"error": str(exc)})
                    await asyncio.sleep(pause)
                    pause = min(5.0, pause * 2)

    async def _read(self, client: aredis.Redis) -> None:
        pause = 0.2
        while True:
            if not self._follows:
                await asyncio.sleep(READ_BLOCK_MS / 1000)
                continue
            streams = {stream_key(room): f.last_id for room, f in self._follows.items()}
            try:
                answer = await client.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
                pause = 0.2
            except (redis.RedisError, OSError) as exc:
                log.error("cannot read room events from Redis; retrying", extra={"error": str(exc)})
                await asyncio.sleep(pause)
                pause = min(5.0, pause * 2)
                continue
            for key, entries in answer or []:
                room = key.decode()[len(STREAM_PREFIX):]
                follow = self._follows.get(room)
                if follow is None:
                    continue
                for entry_id, fields in entries:
                    follow.last_id = entry_id.decode()
                    try:
                        entry = json.loads(fields[b"m"])
                    except (KeyError, ValueError):
                        log.warning("unreadable room event in Redis", extra={"room": room})
                        continue
                    if entry.get("node") == self.node:
                        continue
                    self.delivered += 1
                    try:
                        follow.deliver(entry)
                    except Exception:
                        log.exception("cannot deliver a room event", extra={"room": room})

    def shutdown(self) -> None:
        if self._sync is not None:
            self._sync.close()
