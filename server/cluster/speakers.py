"""A room's anonymous speakers shared by every node that serves it: one state in Redis, changed by optimistic
transactions (``WATCH``/``MULTI``/``EXEC``, https://redis.io/docs/latest/develop/interact/transactions/).

When a room's calls sit on two nodes (the room's node was full and a call spilled, or a caller re-dialled after
its node died), each node's streams must cluster voices against the *same* speakers, or one voice becomes
"Speaker 1" on node A and "Speaker 2" on node B, and two people both "Speaker 1". So the room's
:class:`~server.speaker.clusters.AnonymousSpeakers` state (:meth:`~server.speaker.clusters.AnonymousSpeakers.state`:
centroid sums, speech seconds, labels, merges, profile links, numbering; a few KB per speaker) lives under
``callscribe:room:{room}:speakers``. Every operation (``assign`` of an utterance, ``find``, naming, …) reads it
under ``WATCH``, applies the operation to this node's copy, and writes the result back in ``MULTI``/``EXEC`` only
when it changed; if another node wrote in between, ``EXEC`` fails and the operation is redone on the newer state
(after a jittered back-off, at most :data:`MAX_TRIES` times). Each decision is therefore made on everything every
node heard, and the relabels it causes (merges, enrolled matches) are published once, by the node that caused
them, through the room stream (:mod:`server.cluster.bus`).

Costs: three round trips per operation (``WATCH``, ``GET``, then ``UNWATCH`` or one pipelined ``MULTI``/``SET``/
``EXEC``): 3 Redis commands per read, 5 per change (Redis ``INFO commandstats``), about 2.2 KB of state per
speaker. An operation runs where the room's events are produced (a decode thread, or naming's thread), as the
room's database writes do. The key expires :data:`STATE_TTL_S` after the room's last change. If Redis cannot be
reached the node goes on with its own copy (logged; retried after :data:`OFFLINE_RETRY_S`). When Redis is back,
the next change writes that copy back if no other node changed the room's state meanwhile; if one did, the shared
state wins, and what this node clustered alone keeps its labels in the transcript but not its centroids.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import redis

from ..speaker.clusters import AnonymousSpeakers, Assignment, Relabel, SpeakerSummary
from ..speaker.identity import SpeakerIdentity
from ..speaker.profile import VoiceProfile
from .bus import stream_key

log = logging.getLogger(__name__)

MAX_TRIES = 32
"""Optimistic transactions tried before an operation falls back to this node's copy (another node won each time);
between tries a jittered back-off of up to 1, 2, 4, … 32 ms (at most ~0.9 s in all)."""
STATE_TTL_S = 24 * 3600
"""The shared state expires this long after the room's last change (a room idle for a day starts afresh, its
numbering continuing after the stored transcript's, as on one machine after a restart)."""
OFFLINE_RETRY_S = 5.0
"""After Redis failed, this node uses its own copy for this long before trying Redis again."""

T = TypeVar("T")


def state_key(room: str) -> str:
    return stream_key(room) + ":speakers"


class SharedSpeakers:
    """The anonymous speakers of room ``room``, shared through Redis ``client`` by every node of the cluster;
    implements :class:`~server.speaker.clusters.SpeakerClusters` (same methods, arguments and errors as
    :class:`~server.speaker.clusters.AnonymousSpeakers`). ``local`` holds this node's thresholds and its copy of
    the state. Thread-safe; every method blocks for its Redis round trips (socket timeout of ``client``)."""

    def __init__(self, client: redis.Redis, room: str, local: AnonymousSpeakers) -> None:
        self.client = client
        self.room = room
        self.local = local
        self.key = state_key(room)
        self.conflicts = 0  # transactions redone because another node changed the state first
        self._seen: bytes | None = None  # the state this node's copy was last read from or written as
        self._offline_until = 0.0
        self._lock = threading.Lock()

    @property
    def first_number(self) -> int:
        return self.local.first_number

    @first_number.setter
    def first_number(self, value: int) -> None:
        """Used only while the room has no shared state yet (the numbers its stored transcript used)."""
        self.local.first_number = value

    # -- SpeakerClusters ----------------------------------------------------------------------------------
    def assign(self, embedding: np.ndarray, duration_s: float,
               profiles: Sequence[VoiceProfile] = ()) -> Assignment:
        return self._apply(lambda sp: sp.assign(embedding, duration_s, profiles))

    def find(self, speaker_id: str) -> SpeakerSummary:
        return self._apply(lambda sp: sp.find(speaker_id))

    def voiceprint(self, speaker_id: str) -> tuple[np.ndarray, float]:
        return self._apply(lambda sp: sp.voiceprint(speaker_id))

    def name(self, speaker_id: str, label: str) -> Relabel:
        return self._apply(lambda sp: sp.name(speaker_id, label))

    def link(self, speaker_id: str, profile: SpeakerIdentity) -> Relabel:
        return self._apply(lambda sp: sp.link(speaker_id, profile))

    def labels_in_use(self) -> set[str]:
        return self._apply(lambda sp: sp.labels_in_use())

    def summaries(self) -> list[SpeakerSummary]:
        return self._apply(lambda sp: sp.summaries())

    def __len__(self) -> int:
        return self._apply(len)

    # -- one operation on the shared state ----------------------------------------------------------------
    def _apply(self, operation: Callable[[AnonymousSpeakers], T]) -> T:
        with self._lock:
            if time.monotonic() < self._offline_until:
                return operation(self.local)
            try:
                for attempt in range(MAX_TRIES):
                    done, result = self._try(operation)
                    if done:
                        return result
                    self.conflicts += 1
                    time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 5)))  # back off, jittered
                log.warning("speaker state contended; deciding on this node's copy", extra={"room": self.room})
            except redis.RedisError as exc:
                log.error("cannot reach the room's shared speakers; clustering on this node's copy",
                          extra={"room": self.room, "error": str(exc)})
                self._offline_until = time.monotonic() + OFFLINE_RETRY_S
            return operation(self.local)

    def _try(self, operation: Callable[[AnonymousSpeakers], T]) -> tuple[bool, T | None]:
        """One optimistic transaction: (True, result) when it held, (False, None) when another node wrote first.
        Errors of ``operation`` (KeyError, ValueError) and of Redis propagate; this node's copy is then as before
        the operation, so nothing counts twice."""
        with self.client.pipeline() as pipe:
            pipe.watch(self.key)
            stored = pipe.get(self.key)
            if stored is not None and stored != self._seen:
                self._read(stored)
            before = self._dump()
            try:
                result = operation(self.local)
                after = self._dump()
                if after == stored:
                    return True, result
                pipe.multi()
                pipe.set(self.key, after, ex=STATE_TTL_S)
                pipe.execute()
            except redis.WatchError:
                self._undo(before)
                return False, None
            except BaseException:
                self._undo(before)
                raise
            self._seen = after
            return True, result

    def _dump(self) -> bytes:
        return json.dumps(self.local.state(), separators=(",", ":")).encode()

    def _undo(self, before: bytes) -> None:
        self.local.restore(json.loads(before))
        self._seen = None  # read the shared state again next time

    def _read(self, stored: bytes) -> None:
        try:
            self.local.restore(json.loads(stored))
            self._seen = stored
        except ValueError as exc:  # written by an incompatible version: ours replaces it on the next change
            log.error("unreadable shared speaker state; keeping this node's", extra={"room": self.room,
                                                                                  "error": str(exc)})
