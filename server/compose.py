"""The composition root: the one place that wires the layers together.

The CLI (:mod:`server.cli`) and the tests build the server through these functions; below this module no
package reaches sideways (``server`` never imports :mod:`turn`, and ``turn`` never imports ``server``; the
import-linter contracts in ``pyproject.toml`` hold every other package to its layer).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from aiohttp import web

from turn import credentials

from .cluster.bus import RoomBus
from .cluster.node import ClusterNode
from .cluster.registry import NodeRegistry, connect, node_id, public_url
from .cluster.speakers import SharedSpeakers
from .compute.runtime import SpeechRuntime
from .compute.workpool import JobObserver
from .errors import CallscribeError, StoreError
from .jobs.service import JobService
from .rooms.cluster import ClusterRoomHub
from .rooms.durable import SessionRecorder, purge_expired
from .rooms.hub import RoomHub
from .rooms.memory import MemoryRoomHub
from .settings import Settings
from .speaker.clusters import AnonymousSpeakers
from .store.jobs import JobStore
from .store.sessions import SessionStore
from .stream.processor import StreamObserver
from .webrtc.ice import IceServers


def build_runtime(settings: Settings, *, load_asr: bool = True, observer: JobObserver | None = None) -> SpeechRuntime:
    """The speech runtime with the real models and the SQLite profile store.

    Raises:
        ModelError, StoreError: a model or the database cannot be loaded.
    """
    return SpeechRuntime.from_settings(settings, load_asr=load_asr, observer=observer)


def ice_servers(settings: Settings) -> IceServers:
    """The configured ICE servers, plus coturn credentials minted per user when TURN URLs are set.

    Raises:
        CallscribeError: TURN URLs are configured without a secret.
    """
    turn = None
    if settings.turn_urls:
        if not settings.turn_secret:
            raise CallscribeError("CALLSCRIBE_TURN_URLS is set but CALLSCRIBE_TURN_SECRET is not")
        turn = functools.partial(_mint, settings.turn_urls, settings.turn_secret, settings.turn_ttl_s)
    return IceServers(settings.ice_servers, turn)


def _mint(urls: list[str], secret: str, ttl_s: float, user: str) -> list[dict]:
    return credentials.ice_servers(urls, secret, user, ttl_s)


log = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 3600.0


def create_app(runtime: SpeechRuntime, settings: Settings | None = None, *, ice: IceServers | None = None,
               rooms: RoomHub | None = None, observer: StreamObserver | None = None,
               sessions: SessionStore | None = None, jobs: JobService | None = None) -> web.Application:
    """The signaling app over ``runtime`` with its collaborators: ``ice`` (default: :func:`ice_servers` of
    ``settings``, itself defaulting to the runtime's), the session store (default: one on the runtime's
    database, ``Settings.database``, sharing its connections), the in-process room hub recording into it
    (:func:`room_hub`) unless another is given, and an optional stream observer. At startup, sessions a crash
    left open are ended and the retention settings are applied (then hourly). ``jobs`` (default: a
    :class:`JobService` on the same database, its huey queue in ``Settings.jobs_dir``) runs recording analyses on
    ``Settings.job_workers`` threads from startup to shutdown. With ``Settings.redis_url`` the node joins the
    cluster there (:func:`cluster_node`): rooms across nodes, calls routed by load.
    """
    from signaling.app import build_app

    settings = settings or runtime.settings
    sessions = sessions or SessionStore(runtime.store.database)  # one database, one connection pool
    cluster = None
    if settings.redis_url and rooms is None:
        cluster, rooms = cluster_node(settings, sessions)
    if jobs is None and cluster is not None:  # the shared queue; this node's job threads heartbeat as a worker
        jobs = JobService(runtime, JobStore(runtime.store.database), registry=cluster.registry,
                          worker=f"{cluster.id}/jobs")
    elif jobs is None:
        jobs = JobService(runtime, JobStore(runtime.store.database))
    if rooms is None:  # (a hub with no rooms yet is falsy: it has a length)
        rooms = room_hub(settings, sessions)
    app = build_app(runtime, settings, ice=ice or ice_servers(settings), rooms=rooms, observer=observer,
                    sessions=sessions, jobs=jobs, cluster=cluster)
    app.cleanup_ctx.append(functools.partial(_housekeeping, sessions, settings, end_open=cluster is None))
    app.cleanup_ctx.append(functools.partial(_job_workers, jobs))
    return app


async def _job_workers(jobs: JobService, app: web.Application):
    """aiohttp cleanup context: recover interrupted jobs and start the job workers, load the sentiment models in
    the background (the first final of a call would otherwise wait seconds for them); stop on shutdown."""
    try:  # in a cluster the job threads heartbeat under their own id, so other nodes' sweeps see them alive
        await asyncio.to_thread(functools.partial(jobs.start, heartbeat=jobs.registry is not None))
    except StoreError as exc:
        log.error("cannot start the analysis jobs", extra={"error": str(exc)})
    sentiment = getattr(jobs.runtime, "sentiment", None)
    warming = asyncio.get_running_loop().run_in_executor(None, _warm, sentiment) if sentiment else None
    yield
    if warming is not None:
        await warming
    await asyncio.to_thread(jobs.stop)


def _warm(sentiment) -> None:
    try:
        sentiment.warm()
    except CallscribeError as exc:  # finals then go without sentiment; say why once
        log.error("the sentiment models cannot be loaded", extra={"error": str(exc)})


def room_hub(settings: Settings, sessions: SessionStore | None = None) -> MemoryRoomHub:
    """The in-process room hub; each room clusters anonymous speakers with the configured thresholds (or not
    at all when ``Settings.anonymous_speakers`` is off) and, given ``sessions``, records its calls there."""
    recorder = None
    if sessions is not None:
        recorder = functools.partial(_recorder, sessions, settings.backlog_finals)
    return MemoryRoomHub(lambda room: AnonymousSpeakers.from_settings(settings) if settings.anonymous_speakers
                         else None, recorder)


def _recorder(sessions: SessionStore, backlog_finals: int, room: str, numbering=None) -> SessionRecorder:
    return SessionRecorder(sessions, room, backlog_finals, numbering=numbering)


def cluster_node(settings: Settings, sessions: SessionStore) -> tuple[ClusterNode, ClusterRoomHub]:
    """This node of the cluster on ``Settings.redis_url``: its registry entry and heartbeat, and the room hub
    whose rooms follow their Redis streams, number their events and share their anonymous speakers in Redis
    (docs/cluster.md).

    Raises:
        ClusterError: the URL is not a Redis URL (an unreachable Redis is not an error: the node retries).
    """
    bus = RoomBus(settings.redis_url, node_id(settings), maxlen=settings.room_stream_len)
    recorder = functools.partial(_recorder, sessions, settings.backlog_finals, numbering=bus.next_seq)
    client = connect(settings.redis_url)
    hub = ClusterRoomHub(bus, lambda room: SharedSpeakers(client, room, AnonymousSpeakers.from_settings(settings))
                         if settings.anonymous_speakers else None, recorder)
    registry = NodeRegistry(client, settings.node_ttl_s)
    node = ClusterNode(registry, node_id(settings), public_url(settings), heartbeat_s=settings.heartbeat_s, bus=bus,
                       on_nodes=hub.prune)
    return node, hub


async def _housekeeping(sessions: SessionStore, settings: Settings, app: web.Application, *, end_open: bool = True):
    """aiohttp cleanup context: end sessions left open by a crash (not in a cluster: the open sessions there may be
    other nodes' live calls), apply retention now and hourly."""
    try:
        ended = await asyncio.to_thread(sessions.end_open, "server restart") if end_open else 0
        if ended:
            log.warning("sessions left open by an earlier run were ended", extra={"sessions": ended})
    except StoreError as exc:
        log.error("cannot end sessions left open", extra={"error": str(exc)})
    task = asyncio.get_running_loop().create_task(_retention(sessions, settings))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _retention(sessions: SessionStore, settings: Settings) -> None:
    if not (settings.transcript_retention_days or settings.audio_retention_days):
        return
    while True:
        try:
            purged = await asyncio.to_thread(purge_expired, sessions, settings)
            if purged.sessions or purged.audio_files:
                log.info("retention", extra={"sessions": purged.sessions, "audio_files": purged.audio_files})
        except StoreError as exc:
            log.error("retention failed", extra={"error": str(exc)})
        await asyncio.sleep(RETENTION_INTERVAL_S)
