"""Several nodes on loopback ports, one real Redis and one real PostgreSQL (Debian's packages, started by the
fixtures): the node registry and its expiry, calls routed by load (a full node answers ``307`` and the call lands
and transcribes on another), a room followed over server-sent events on a third node (live, then as backlog from
the shared database), and the routing rule itself.

The nodes run in this process (one event loop, three aiohttp servers with their own runtimes and settings): what
crosses between them is only Redis, PostgreSQL and HTTP, as between machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from postgres_server import create_database, free_port
from serve_process import start_serve

from server.cluster.registry import NodeInfo, NodeRegistry, connect
from server.cluster.routing import choose

# --- the routing rule (no servers) ----------------------------------------------------------------------------


def node(id, callers=0, max_peers=4, rooms=(), busy=False, cpu=0.0, role="node"):
    return NodeInfo(id=id, url=f"http://{id}", callers=callers, max_peers=max_peers, rooms=list(rooms), busy=busy,
                    cpu=cpu, role=role)


def test_routing_prefers_the_room_then_the_least_loaded_node_then_this_one():
    a, b, c = node("a", 1), node("b", 0), node("c", 2)
    assert choose([a, b, c], a).id == "b"  # least loaded
    assert choose([a, b, c], node("a", 0)).id == "a"  # a tie: this node, no bouncing
    assert choose([a, b, c], a, room="standup").id == "b"  # nobody holds the room: by load
    c_room = node("c", 2, rooms=["standup"])
    assert choose([a, b, c_room], a, room="standup").id == "c"  # room affinity beats load
    c_full = node("c", 4, rooms=["standup"])
    assert choose([a, b, c_full], a, room="standup").id == "b"  # the room's node is full: spill by load
    assert choose([node("b", 0, busy=True)], node("a", 3)).id == "a"  # a node whose decode queue is full is out
    assert choose([node("w", 0, role="worker")], node("a", 4)) is None  # workers take no calls; nobody has room
    assert choose([node("b", 1, cpu=0.9), node("c", 1, cpu=0.1)], node("a", 4)).id == "c"  # CPU breaks ties


def test_a_node_that_missed_heartbeats_gets_no_offers_before_its_entry_expires():
    from server.cluster.node import STALE_BEATS, ClusterNode

    cluster = ClusterNode(registry=None, node_id="a", url="http://a", heartbeat_s=0.5)
    cluster.connected = True
    fresh, silent = node("b"), node("c", rooms=["standup"])
    silent.updated_at = time.time() - (STALE_BEATS + 0.5) * 0.5  # killed: its entry lives until the TTL
    cluster.nodes = [node("a", 1), fresh, silent]
    assert cluster.route(node("a", 1), "standup").id == "b"  # not c, although c holds the room
    silent.updated_at = time.time() - (STALE_BEATS - 1) * 0.5  # only a beat late: still routed to
    assert cluster.route(node("a", 1), "standup").id == "c"


# --- the registry on a real Redis -------------------------------------------------------------------------------


def test_a_node_that_stops_heartbeating_leaves_the_registry_within_its_ttl(redis_server):
    redis_server.flush()
    registry = NodeRegistry(connect(redis_server.url), ttl_s=1.0)
    registry.heartbeat(node("a"))
    registry.heartbeat(node("b", callers=2))
    assert [(n.id, n.callers) for n in registry.nodes()] == [("a", 0), ("b", 2)]
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:  # a keeps beating, b has stopped (as after kill -9)
        registry.heartbeat(node("a"))
        time.sleep(0.2)
    assert registry.alive() == {"a"}
    registry.leave("a")  # a clean shutdown leaves at once
    assert registry.nodes() == []


# --- three nodes ---------------------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def serve_node(runtime, settings):
    from server.compose import create_app

    server = TestServer(create_app(runtime, settings), host="127.0.0.1", port=settings.port)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        await server.close()


class SseViewer:
    """A read-only room viewer over ``GET /api/rooms/{room}/events`` that collects every message."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.messages: list[dict] = []
        self.task = asyncio.get_running_loop().create_task(self._run(http, url))
        self.status: int | None = None

    async def _run(self, http, url) -> None:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=60)) as resp:
            self.status = resp.status
            async for line in resp.content:
                if line.startswith(b"data:"):
                    self.messages.append(json.loads(line[5:]))

    async def until(self, predicate, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.messages):
            assert not self.task.done(), f"the event stream ended: {self.task}"
            assert time.monotonic() < deadline, f"not seen within {timeout_s} s: {self.messages[-5:]}"
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await self.task


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(redis_server, postgres_url, model_cache, speech, tmp_path_factory):
    """Nodes a and b (real models, one call slot each) and c (no Whisper: it serves viewers), on one Redis and one
    PostgreSQL database; yields their URLs once every node is in the registry, the registry, and the environment
    of a ``callscribe serve`` process that joins the same cluster."""
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings
    from server.webrtc.ice import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    redis_server.flush()
    database = create_database(postgres_url, "cluster")
    runtimes, urls = [], {}
    async with contextlib.AsyncExitStack() as stack:
        for name, asr in (("a", True), ("b", True), ("c", False)):
            port = free_port()
            settings = Settings(database=database, redis_url=redis_server.url, node_id=name, port=port,
                                public_url=f"http://127.0.0.1:{port}", max_peers=1, model_cache_dir=model_cache,
                                jobs_dir=tmp_path_factory.mktemp(f"jobs-{name}"), job_workers=0,
                                ice_host_addresses=["127.0.0.1"], heartbeat_s=0.5, node_ttl_s=2.0, sentiment=False)
            runtime = await asyncio.to_thread(SpeechRuntime.from_settings, settings, load_asr=asr)
            runtimes.append(runtime)
            urls[name] = await stack.enter_async_context(serve_node(runtime, settings))
        registry = NodeRegistry(connect(redis_server.url), ttl_s=2.0)
        deadline = time.monotonic() + 15
        while not {"a", "b", "c"} <= registry.alive():  # (and each node's job threads, "a/jobs", …)
            assert time.monotonic() < deadline, f"nodes in the registry: {registry.alive()}"
            await asyncio.sleep(0.1)
        env = {**os.environ, "CALLSCRIBE_MODEL_CACHE_DIR": str(model_cache), "CALLSCRIBE_DATABASE": database,
               "CALLSCRIBE_REDIS_URL": redis_server.url, "CALLSCRIBE_HEARTBEAT_S": "0.5",
               "CALLSCRIBE_NODE_TTL_S": "2.0", "CALLSCRIBE_JOB_WORKERS": "0", "CALLSCRIBE_SENTIMENT": "false",
               "CALLSCRIBE_JOBS_DIR": str(tmp_path_factory.mktemp("jobs-x")),
               "CALLSCRIBE_RECORDINGS_DIR": str(tmp_path_factory.mktemp("recordings-x"))}
        yield urls, registry, env
    for runtime in runtimes:
        runtime.close()
    restrict_host_addresses(None)


@pytest.fixture(scope="module")
def clip(speech):
    from server.audio.ingest import load_audio

    d = speech / "harvard_2spk"
    return np.concatenate([load_audio(d / "spk1_snt1.wav"), np.zeros(16000, np.float32),
                           load_audio(d / "spk1_snt2.wav")])


@pytest.mark.speech
@pytest.mark.asyncio(loop_scope="module")
async def test_a_full_node_redirects_and_a_viewer_on_a_third_node_sees_the_call(cluster, clip):
    from signaling.client import CallSession

    urls, registry, _ = cluster
    async with aiohttp.ClientSession() as http:
        viewer = SseViewer(http, f"{urls['c']}/api/rooms/standup/events")
        try:
            await viewer.until(lambda ms: any(m.get("type") == "room" for m in ms), 10)
            assert viewer.status == 200
            async with CallSession(urls["a"], speed=2.0, room="standup", name="Ann", transcribe=False) as first:
                assert first.result.answered_by == urls["a"]  # a has its one slot free: it takes the call
                await _until(lambda: "standup" in _node(registry, "a").rooms, 5, registry.nodes)  # a's next heartbeat
                async with CallSession(urls["a"], speed=2.0, room="retro", name="Bo", transcribe=False) as second:
                    assert second.result.answered_by == urls["b"]  # a is full: 307 to b
                    assert second.result.session_url.startswith(urls["b"] + "/api/calls/")
                    finals = await first.transcribe(clip)
                    spilled = await second.transcribe(clip[: 16000 * 3])
            texts = [f["text"] for f in finals if f["text"].strip()]
            assert texts, finals
            assert [f["text"] for f in spilled if f["text"].strip()], spilled  # b transcribed the spilled call
            # the viewer on c got a's finals live, once each, with the caller's name
            await viewer.until(lambda ms: [m["text"] for m in _live_finals(ms)] == texts, 15)
            assert all(m["caller"] == "Ann" and m["peer_id"] == first.result.peer_id for m in _live_finals(
                viewer.messages))
            assert any(m.get("type") == "room" and m.get("names") == ["Ann"] for m in viewer.messages)
        finally:
            await viewer.close()
        late = SseViewer(http, f"{urls['b']}/api/rooms/standup/events")  # a late viewer on another node
        try:
            await late.until(lambda ms: any(m.get("type") == "room" for m in ms), 10)
            backlog = [m["text"] for m in late.messages if m.get("type") == "final" and m.get("backlog")]
            assert backlog == texts  # from the shared PostgreSQL database
        finally:
            await late.close()


@pytest.mark.speech
@pytest.mark.asyncio(loop_scope="module")
async def test_a_room_on_two_nodes_clusters_its_anonymous_voices_once(cluster, speech):
    """A room's first call holds node a's only slot, so its second call spills to node b: the voice already heard
    on a keeps a's label on b, a new voice on b gets the next number (not a second "Speaker 1"), and a name given
    through node c (where a viewer follows the room) labels that voice's next final on b."""
    from server.audio.ingest import load_audio
    from signaling.client import CallSession

    urls, registry, _ = cluster
    d = speech / "harvard_2spk"
    gap = np.zeros(16000, np.float32)

    def say(*names):
        return np.concatenate([part for n in names for part in (load_audio(d / f"{n}.wav"), gap)])

    async with aiohttp.ClientSession() as http:
        viewer = SseViewer(http, f"{urls['c']}/api/rooms/spill/events")
        try:
            await viewer.until(lambda ms: any(m.get("type") == "room" for m in ms), 10)
            async with CallSession(urls["a"], speed=2.0, room="spill", name="Ann", transcribe=False) as first:
                assert first.result.answered_by == urls["a"]
                await _until(lambda: "spill" in _node(registry, "a").rooms, 5, registry.nodes)
                await first.transcribe(say("spk1_snt1", "spk1_snt2"))
                on_a = _as_shown(first.result.messages)
                assert on_a and {who for who, _ in on_a} == {("anon:1", "Speaker 1")}, on_a
                async with CallSession(urls["a"], speed=2.0, room="spill", name="Bo", transcribe=False) as second:
                    assert second.result.answered_by == urls["b"]  # a is full: the room spills to b
                    await second.transcribe(say("spk1_snt3", "spk2_snt1", "spk2_snt2"))
                    on_b = _as_shown(second.result.messages)
                    assert on_b[0][0] == ("anon:1", "Speaker 1"), on_b  # a's voice, recognised on b
                    # b's new voice: the room's next number (a short first stretch may be shown "unknown" until
                    # the next one founds the speaker: a relabel then moves it)
                    assert {who for who, _ in on_b[1:]} == {("anon:2", "Speaker 2")}, on_b
                    async with http.post(f"{urls['c']}/api/rooms/spill/speakers/anon:2/name",
                                         json={"name": "Dee"}) as r:
                        assert r.status == 200, await r.text()
                    seen = len(second.result.finals)
                    await second.transcribe(say("spk2_snt3"))
                    renamed = _spoken(second.result.finals[seen:])
                    assert renamed and {(f["speaker_id"], f["speaker"]) for f in renamed} == {("anon:2", "Dee")}
                    on_b = _as_shown(second.result.messages)
            # the viewer on c shows every final as the callers' pages do (a's and b's labels, b's relabels, the
            # name given through c), and got the naming once
            await viewer.until(lambda ms: len(_live_finals(ms)) >= len(on_a) + len(on_b) and any(
                m.get("type") == "speaker_relabeled" and m["reason"] == "named" for m in ms), 15)
            assert sorted(_as_shown(viewer.messages), key=lambda x: x[1]) == sorted(on_a + on_b, key=lambda x: x[1])
            named = [m for m in viewer.messages if m.get("type") == "speaker_relabeled" and m["reason"] == "named"]
            assert [(m["from_id"], m["speaker"]) for m in named] == [("anon:2", "Dee")]
        finally:
            await viewer.close()


def _spoken(finals):
    return [f for f in finals if f["text"].strip()]


def _as_shown(messages):
    """``[((speaker_id, speaker), text)]`` of the live finals in ``messages`` with the relabels among them
    applied, as a page shows them."""
    shown = []
    for m in messages:
        if m.get("type") == "final" and m["text"].strip() and not m.get("backlog"):
            shown.append([(m["speaker_id"], m["speaker"]), m["text"]])
        elif m.get("type") == "speaker_relabeled":
            for row in shown:
                if row[0][0] == m["from_id"]:
                    row[0] = (m["speaker_id"], m["speaker"])
    return [tuple(row) for row in shown]


def _serve_node(env: dict, node_id: str) -> tuple[subprocess.Popen, str]:
    """``callscribe serve`` joining the cluster as a real process; returns it and its URL once it is ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    return start_serve(env, port, "--node-id", node_id, "--public-url", url), url


@pytest.mark.speech
@pytest.mark.asyncio(loop_scope="module")
async def test_a_node_killed_mid_call_keeps_its_delivered_finals_and_new_calls_go_elsewhere(cluster, clip):
    """``kill -9`` of the node holding a call: what it delivered is in PostgreSQL (a late viewer's backlog on
    another node), it leaves the registry within its TTL and the room's caller count, and the room's next call
    lands on a live node and reaches the same viewers."""
    from signaling.client import CallSession

    urls, registry, env = cluster
    proc, x_url = await asyncio.to_thread(_serve_node, env, "x")
    try:
        await _until(lambda: "x" in registry.alive(), 10, registry.nodes)
        async with aiohttp.ClientSession() as http:
            viewer = SseViewer(http, f"{urls['c']}/api/rooms/crash/events")
            try:
                await viewer.until(lambda ms: any(m.get("type") == "room" for m in ms), 10)
                call = CallSession(x_url, speed=1.0, room="crash", name="Kim")
                await call.connect()
                try:
                    assert call.result.answered_by == x_url  # an idle cluster: the node asked takes the call
                    await viewer.until(lambda ms: any(m.get("type") == "room" and m["callers"] == 1
                                                      and m["names"] == ["Kim"] for m in ms), 10)
                    call.track.play(np.concatenate([clip, clip]))
                    await _until(lambda: len(_texts(call.result.finals)) >= 2, 60, lambda: call.result.messages)
                    proc.send_signal(signal.SIGKILL)  # mid-conversation: no shutdown handler runs
                    delivered = _texts(call.result.finals)
                    await asyncio.to_thread(proc.wait, 10)
                finally:
                    await call.pc.close()  # the node is gone: nothing to hang up
                await viewer.until(lambda ms: [m["text"] for m in _live_finals(ms)][: len(delivered)] == delivered,
                                   10)
                # x stops heartbeating: it leaves the registry, and its caller leaves the room's state
                seen = len(viewer.messages)
                await _until(lambda: "x" not in registry.alive(), 6, registry.nodes)
                await viewer.until(lambda ms: any(m.get("type") == "room" and m["callers"] == 0 for m in ms[seen:]),
                                   10)
                # the room's next call, offered to x's neighbour, lands on a live node and reaches the viewer
                async with CallSession(urls["b"], speed=2.0, room="crash", name="Lee") as again:
                    assert again.result.answered_by in (urls["a"], urls["b"])
                    finals = _texts(await again.transcribe(clip[: 16000 * 3]))
                assert finals
                await viewer.until(lambda ms: any(m.get("caller") == "Lee" for m in _live_finals(ms)), 15)
            finally:
                await viewer.close()
            late = SseViewer(http, f"{urls['a']}/api/rooms/crash/events")
            try:
                await late.until(lambda ms: any(m.get("type") == "room" for m in ms), 10)
                backlog = [m["text"] for m in late.messages if m.get("type") == "final" and m.get("backlog")
                           and m["text"].strip()]
                assert backlog[: len(delivered)] == delivered  # from the shared PostgreSQL database
                assert backlog[len(delivered):][-len(finals):] == finals
            finally:
                await late.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _texts(finals):
    return [f["text"] for f in finals if f["text"].strip()]


def _live_finals(messages):
    return [m for m in messages if m.get("type") == "final" and not m.get("backlog") and m["text"].strip()]


def _node(registry, node_id):
    return next((n for n in registry.nodes() if n.id == node_id), node(node_id))


async def _until(predicate, timeout_s, why=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, why()
        await asyncio.sleep(0.1)
