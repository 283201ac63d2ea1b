"""The WebRTC server on loopback with the real Python client (aiortc both sides, real models).

ICE host candidates are restricted to 127.0.0.1 (``Settings.ice_host_addresses``), so nothing leaves
the machine. Real recordings come from ../shared/data/speech.
"""

from __future__ import annotations

import asyncio
import gc
import json

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription

from server.audio.ingest import load_audio
from server.compose import create_app
from server.webrtc.ice import restrict_host_addresses, rtc_configuration
from signaling.client import CallError, CallSession, FileAudioTrack, call_file

from conftest import wer

pytestmark = [pytest.mark.speech, pytest.mark.asyncio(loop_scope="module")]
SPEED = 4.0


@pytest.fixture(scope="module")
def runtime(runtime_factory, speech):
    restrict_host_addresses(["127.0.0.1"])
    yield runtime_factory()
    restrict_host_addresses(None)


@pytest.fixture(scope="module")
def voices(speech, manifest):
    d = speech / "harvard_2spk"
    texts = {m["path"]: m["text"] for m in manifest}
    enroll = {n: np.concatenate([load_audio(d / f"{s}_snt{i}.wav") for i in (1, 2, 3)])
              for n, s in (("Alice", "spk1"), ("Bob", "spk2"))}
    gap = np.zeros(int(0.7 * 16000), np.float32)
    parts, turns = [], []
    for i in (4, 5, 6):
        for n, s in (("Alice", "spk1"), ("Bob", "spk2")):
            parts += [load_audio(d / f"{s}_snt{i}.wav"), gap]
            turns.append((n, texts[f"harvard_2spk/{s}_snt{i}.wav"]))
    return enroll, np.concatenate(parts), turns


async def start(runtime, **overrides):
    settings = runtime.settings.model_copy(update=overrides)
    server = TestServer(create_app(runtime, settings), host="127.0.0.1", port=0)
    await server.start_server()
    return server, f"http://127.0.0.1:{server.port}"


async def test_seed_flow_enroll_two_speakers_then_transcribe(runtime, voices):
    enroll, conversation, turns = voices
    server, url = await start(runtime)
    try:
        result = await call_file(url, conversation, enroll=list(enroll.items()), speed=SPEED)
    finally:
        await server.close()
    types = [m["type"] for m in result.messages]
    assert types[0] == "ready"
    assert types.count("enrollment_completed") == 2
    finals = [f for f in result.finals if f["text"]]
    print("\n" + "\n".join(f"{f['speaker']:7} {f['score']} {f['text']}" for f in finals))
    assert [f["speaker"] for f in finals] == [n for n, _ in turns]
    assert wer([t for _, t in turns], [f["text"] for f in finals]) <= 0.10
    assert all(f["peer_id"] == result.peer_id and f["speaker_id"] for f in finals)
    assert not result.errors


async def test_whip_publisher_with_data_channel(runtime, voices):
    _, conversation, _ = voices
    server, url = await start(runtime)
    pc = RTCPeerConnection(rtc_configuration([]))
    track = FileAudioTrack(speed=SPEED)
    pc.addTrack(track)
    channel = pc.createDataChannel("events")
    got: list[dict] = []
    channel.on("message", lambda raw: got.append(json.loads(raw)))
    try:
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/whip?language=en", data=pc.localDescription.sdp,
                                 headers={"Content-Type": "application/sdp"}) as resp:
                assert resp.status == 201
                assert resp.content_type == "application/sdp"
                location = resp.headers["Location"]
                answer = await resp.text()
            assert location.startswith("/whip/")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await track.play(conversation[: 6 * 16000])
            for _ in range(200):
                if any(m["type"] == "final" for m in got):
                    break
                await asyncio.sleep(0.05)
            async with http.delete(url + location) as resp:
                assert resp.status == 200
            async with http.delete(url + location) as resp:
                assert resp.status == 404
    finally:
        await pc.close()
        await server.close()
    assert got[0]["type"] == "ready" and got[0]["transcribing"] is True
    finals = [m for m in got if m["type"] == "final" and m["text"]]
    assert finals and "stripe" in finals[0]["text"].lower()
    assert finals[0]["language"] == "en"


@pytest.mark.parametrize("body,ctype,status,code", [
    (json.dumps({"sdp": "garbage", "type": "offer"}), "application/json", 400, "bad_sdp"),
    (json.dumps({"sdp": "v=0\r\nthis is not an sdp\r\n", "type": "offer"}), "application/json", 400, "bad_sdp"),
    (json.dumps({"sdp": "v=0\r\n", "type": "answer"}), "application/json", 400, "not_an_offer"),
    (json.dumps({"type": "offer"}), "application/json", 400, "bad_request"),
    (json.dumps({"sdp": "v=0", "type": "offer", "room": "no spaces allowed"}), "application/json", 400,
     "bad_request"),
    ("{not json", "application/json", 400, "bad_request"),
    ("v=0\r\n", "text/plain", 415, "unsupported_media_type"),
])
async def test_bad_offers_get_json_errors(runtime, body, ctype, status, code):
    server, url = await start(runtime)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/offer", data=body, headers={"Content-Type": ctype}) as resp:
                assert resp.status == status
                assert (await resp.json())["error"]["code"] == code
            async with http.post(f"{url}/whip", data="v=0\r\n", headers={"Content-Type": "application/json"}) as r:
                assert r.status == 415
            async with http.post(f"{url}/whip", data="nonsense", headers={"Content-Type": "application/sdp"}) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == "bad_sdp"
            async with http.get(f"{url}/readyz") as r:
                assert (await r.json())["peers"] == 0  # nothing left behind by refused offers
    finally:
        await server.close()


async def test_bad_data_channel_messages_are_errors_and_the_session_goes_on(runtime, voices):
    _, conversation, _ = voices
    server, url = await start(runtime, max_message_bytes=1024)
    try:
        async with CallSession(url, speed=SPEED, transcribe=False) as call:
            bad = ["not json", json.dumps({"type": "dance"}), json.dumps({"type": "enroll_start"}),
                   json.dumps({"type": "ping", "id": "x" * 2000}), json.dumps([1, 2]),
                   json.dumps({"type": "session", "language": "Klingon"})]
            for raw in bad:
                call.send(raw)
            pong = call.expect(lambda m: m["type"] == "pong")
            call.send({"type": "ping", "id": 7})
            assert (await asyncio.wait_for(pong, 10))["id"] == 7
            finals = await call.transcribe(conversation[: 7 * 16000])
        codes = [m["code"] for m in call.result.messages if m["type"] == "error"]
        assert codes == ["bad_json", "unknown_type", "invalid_message", "message_too_large", "invalid_message",
                         "invalid_message"]
        assert [f["text"] for f in finals if f["text"]][:2] == ["A thin stripe runs down the middle.",
                                                                "Men the coat before you go out."]
    finally:
        await server.close()


async def test_more_callers_than_allowed_get_server_busy(runtime):
    server, url = await start(runtime, max_peers=1)
    try:
        async with CallSession(url, speed=SPEED):
            with pytest.raises(CallError, match="503 server_busy"):
                async with CallSession(url, speed=SPEED):
                    pass
            caller_offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"  # a caller (viewers are not limited)
            async with aiohttp.ClientSession() as http, http.post(f"{url}/whip", data=caller_offer,
                                                                   headers={"Content-Type": "application/sdp"}) as r:
                assert r.status == 503 and r.headers["Retry-After"]
                assert (await r.json())["error"]["code"] == "server_busy"
        await asyncio.sleep(0.5)
        async with CallSession(url, speed=SPEED):  # a slot is free again
            pass
    finally:
        await server.close()


async def test_caller_vanishing_mid_utterance(runtime, voices):
    """A's last utterance is still finalised and reaches the room; B's own call is not disturbed."""
    enroll, conversation, _ = voices
    server, url = await start(runtime)
    try:
        async with CallSession(url, speed=SPEED, room="shared", name="B") as b:
            a = CallSession(url, speed=SPEED, room="shared", name="A")
            await a.connect()
            # Alice's turn, then Bob's, cut off in the middle of his sentence. Waiting for the track to have
            # handed the last sample to the encoder (not a wall-clock sleep) puts the cut at 4.6 s of audio however
            # busy the shared event loop is (a sleep cut it at 0.4-1.4 s under load, seen in CI).
            await asyncio.wait_for(a.track.play(conversation[: int(4.6 * 16000)]), 60)
            await a.pc.close()  # vanish: no transcribe_stop, no DELETE
            b_finals = await b.transcribe(enroll["Bob"])  # harvard spk2 snt1-3
            await asyncio.sleep(1.0)
        from_a = [m for m in b.result.finals if m["peer_id"] == a.result.peer_id]
        assert [m["end_reason"] for m in from_a][-1] == "stream_end"
        assert "stripe" in from_a[0]["text"].lower()
        assert len(from_a) == 2 and from_a[1]["text"]
        own = [f for f in b_finals if f["peer_id"] == b.result.peer_id]
        assert own and "one war is enough" in own[0]["text"].lower()
    finally:
        await server.close()


async def test_a_stopping_server_says_so_then_still_delivers_the_utterance_in_progress(runtime, voices):
    """Shutdown (SIGTERM → aiohttp's on_shutdown): every connection first gets ``server_shutdown`` (the call page
    then calls its room again when the channel closes), and the utterance in progress is still finalised and
    delivered on it."""
    _, conversation, _ = voices
    server, url = await start(runtime)
    stopped = False
    try:
        a = CallSession(url, speed=SPEED, room="stopping", name="A")
        await a.connect()
        try:
            await asyncio.wait_for(a.track.play(conversation[: int(4.6 * 16000)]), 60)  # cut mid-sentence
            await server.close()
            stopped = True
            for _ in range(50):  # bounded: the last messages cross loopback after close() returns
                codes = [m.get("code") for m in a.result.messages if m["type"] == "error"]
                if "server_shutdown" in codes and a.result.finals and a.result.finals[-1]["end_reason"] == \
                        "stream_end":
                    break
                await asyncio.sleep(0.1)
        finally:
            await a.pc.close()
    finally:
        if not stopped:
            await server.close()
    kinds = [(m["type"], m.get("code") or m.get("end_reason")) for m in a.result.messages]
    assert ("error", "server_shutdown") in kinds, kinds
    after = kinds[kinds.index(("error", "server_shutdown")):]
    assert ("final", "stream_end") in after, kinds  # the cut-off utterance, finalised after the notice
    assert a.result.finals[-1]["text"].strip()


async def test_offers_that_never_connect_release_their_slots(runtime):
    """30 offers whose ICE never completes (the client never applies the answer) must not hold the caller
    slots or the viewer list: after ``connect_timeout_s`` they are gone and a real call gets in."""
    from signaling.app import PEERS

    server, url = await start(runtime, max_peers=2, connect_timeout_s=2.0, offer_rate="1000/minute")
    pcs = []
    try:
        async with aiohttp.ClientSession() as http:
            for i in range(30):
                pc = RTCPeerConnection(rtc_configuration([]))
                pcs.append(pc)
                if i % 2:
                    pc.addTrack(FileAudioTrack())  # a caller
                pc.createDataChannel("events")
                await pc.setLocalDescription(await pc.createOffer())
                async with http.post(f"{url}/api/offer", json={"sdp": pc.localDescription.sdp,
                                                                "type": "offer"}) as resp:
                    assert resp.status in (200, 503)
            assert server.app[PEERS]  # the answered ones are waiting for ICE
            for _ in range(100):
                if not server.app[PEERS]:
                    break
                await asyncio.sleep(0.1)
            assert server.app[PEERS] == {}
        async with CallSession(url, speed=SPEED) as call:  # a slot is free again
            assert call.result.peer_id
    finally:
        for pc in pcs:
            await pc.close()
        await server.close()


async def test_idle_calls_time_out(runtime):
    server, url = await start(runtime, idle_timeout_s=1.0)
    try:
        async with CallSession(url, speed=1.0) as call:
            err = call.expect(lambda m: m["type"] == "error")
            assert (await asyncio.wait_for(err, 10))["code"] == "idle_timeout"
            for _ in range(50):
                if server.app[__import__("signaling.app", fromlist=["PEERS"]).PEERS] == {}:
                    break
                await asyncio.sleep(0.1)
            assert server.app[__import__("signaling.app", fromlist=["PEERS"]).PEERS] == {}
    finally:
        await server.close()


async def test_a_paused_call_with_its_microphone_on_is_not_idle(runtime):
    server, url = await start(runtime, idle_timeout_s=1.0)
    try:
        async with CallSession(url, speed=1.0, transcribe=False) as call:  # paused; the track keeps sending
            await asyncio.sleep(3.0)
            assert not [m for m in call.result.messages if m["type"] == "error"]
            err = call.expect(lambda m: m["type"] == "error")
            call.send({"type": "transcribe_start"})  # transcribing silence: idle again
            assert (await asyncio.wait_for(err, 10))["code"] == "idle_timeout"
    finally:
        await server.close()


async def test_health_ready_metrics_ice(runtime, voices):
    server, url = await start(runtime, ice_servers=[{"urls": "stun:127.0.0.1:3478"}])
    _, conversation, _ = voices
    try:
        await call_file(url, conversation[: 4 * 16000], speed=SPEED)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{url}/readyz") as r:
                assert (await r.json())["ready"] is True
            async with http.get(f"{url}/api/ice-servers") as r:
                assert (await r.json()) == {"iceServers": [{"urls": "stun:127.0.0.1:3478"}]}
            async with http.get(f"{url}/metrics") as r:
                text = await r.text()
        assert "callscribe_peers_accepted_total 1.0" in text
        assert "callscribe_utterances_total 2.0" in text
        assert "callscribe_decode_latency_seconds_count 2.0" in text
        assert "callscribe_queue_depth 0.0" in text
    finally:
        await server.close()


async def test_fifty_calls_leave_nothing_behind(runtime, voices):
    _, conversation, _ = voices
    server, url = await start(runtime)
    clip = conversation[: int(3.2 * 16000)]

    def live():
        gc.collect()
        # type(), not isinstance(): isinstance() on a dead weakref.proxy in the heap raises ReferenceError
        peers = sum(issubclass(type(o), RTCPeerConnection) for o in gc.get_objects())
        return peers, len(asyncio.all_tasks())

    try:
        await call_file(url, clip, speed=8.0)  # warm-up: lazily created module state is not a leak
        await asyncio.sleep(0.5)
        before = live()
        for _ in range(25):  # 50 calls, two at a time (the two decode workers), ending while the other runs
            results = await asyncio.gather(call_file(url, clip, speed=8.0), call_file(url, clip, speed=8.0))
            assert all([f for f in r.finals if f["text"]] for r in results)
        for _ in range(40):
            await asyncio.sleep(0.25)
            after = live()
            if after <= before:
                break
    finally:
        await server.close()
    assert after[0] <= before[0], (before, after)
    assert after[1] <= before[1], (before, after)


async def test_room_viewer_gets_backlog_then_live_events(runtime, voices):
    enroll, conversation, _ = voices
    server, url = await start(runtime)
    try:
        first = await call_file(url, conversation[: int(6.2 * 16000)], speed=SPEED, room="standup")
        said = [f["text"] for f in first.finals if f["text"]]
        assert len(said) == 2
        async with CallSession(url, room="standup", listen_only=True) as viewer:
            assert viewer.result.messages[0]["listen_only"] is True
            for _ in range(50):  # the backlog follows "ready"
                backlog = [m for m in viewer.result.messages if m.get("backlog")]
                if len(backlog) >= len(said):
                    break
                await asyncio.sleep(0.1)
            assert [m["text"] for m in backlog] == said
            await call_file(url, enroll["Bob"], speed=SPEED, room="standup")
            await asyncio.sleep(0.5)
            live = [m for m in viewer.result.messages if m["type"] == "final" and not m.get("backlog")]
            assert live and "one war is enough" in " ".join(m["text"] for m in live).lower()
            err = viewer.expect(lambda m: m["type"] == "error")
            viewer.send({"type": "enroll_start", "name": "X"})
            assert (await asyncio.wait_for(err, 5))["code"] == "listen_only"
        other = [m for m in first.messages if m["type"] == "final"]
        assert all(m["peer_id"] == first.peer_id for m in other)
    finally:
        await server.close()


async def test_room_events_over_sse_and_the_viewer_cap(runtime):
    """``GET /api/rooms/{room}/events`` on one node: the room state first; past ``max_sse_viewers`` a viewer is
    refused with 503 server_busy and Retry-After, and the one following is unharmed."""
    server, url = await start(runtime, max_sse_viewers=1)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/rooms/sse-room/events") as first:
                assert first.status == 200 and first.content_type == "text/event-stream"
                line = b""
                for _ in range(20):  # bounded: up to the first data line
                    line = await asyncio.wait_for(first.content.readline(), 10)
                    if line.startswith(b"data:"):
                        break
                assert json.loads(line[5:]) == {"type": "room", "room": "sse-room", "callers": 0, "names": []}
                async with http.get(f"{url}/api/rooms/other-room/events") as second:
                    assert second.status == 503 and second.headers["Retry-After"] == "5"
                    assert (await second.json())["error"]["code"] == "server_busy"
                assert not first.content.at_eof()
    finally:
        await server.close()


async def test_profiles_rest_api(runtime, voices, tmp_path):
    from conftest import write_wav

    enroll, _, _ = voices
    server, url = await start(runtime)
    carol = write_wav(tmp_path / "carol.wav", enroll["Alice"])
    short = write_wav(tmp_path / "short.wav", enroll["Alice"][: 2 * 16000])
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/profiles") as r:  # start from no profiles (earlier tests enroll)
                for p in (await r.json())["profiles"]:
                    async with http.delete(f"{url}/api/profiles/{p['name']}") as d:
                        assert d.status == 204

            def form(name, path, filename="voice.wav"):
                data = aiohttp.FormData()
                data.add_field("name", name)
                data.add_field("audio", path.read_bytes(), filename=filename)
                return data

            async with http.post(f"{url}/api/profiles", data=form("Carol", carol)) as r:
                assert r.status == 201, await r.text()
                body = await r.json()
                assert body["profile"]["name"] == "Carol" and body["speech_s"] >= 3
            async with http.post(f"{url}/api/profiles", data=form("Dave", short)) as r:
                assert r.status == 400 and "too little speech" in (await r.json())["error"]["message"]
            bogus = tmp_path / "bogus.wav"
            bogus.write_bytes(b"not audio at all" * 64)
            async with http.post(f"{url}/api/profiles", data=form("Dave", bogus)) as r:
                err = (await r.json())["error"]
                assert r.status == 400 and err["code"] == "bad_audio" and str(tmp_path) not in err["message"]
            async with http.post(f"{url}/api/profiles", data=form("unknown", carol)) as r:
                assert r.status == 400 and "reserved" in (await r.json())["error"]["message"]
            async with http.get(f"{url}/api/profiles") as r:
                names = [p["name"] for p in (await r.json())["profiles"]]
                assert "Carol" in names and "Dave" not in names
            async with http.patch(f"{url}/api/profiles/Carol", json={"name": "Caroline"}) as r:
                assert r.status == 200 and (await r.json())["profile"]["name"] == "Caroline"
            async with http.patch(f"{url}/api/profiles/Nobody", json={"name": "X"}) as r:
                assert r.status == 404
            # the renamed profile names the speaker in the next call at once (the cache was invalidated)
            result = await call_file(url, enroll["Alice"], speed=SPEED)
            assert {f["speaker"] for f in result.finals if f["text"]} == {"Caroline"}
            async with http.delete(f"{url}/api/profiles/Caroline") as r:
                assert r.status == 204
            async with http.delete(f"{url}/api/profiles/Caroline") as r:
                assert r.status == 404
            result = await call_file(url, enroll["Alice"], speed=SPEED)
            spoken = [f for f in result.finals if f["text"]]  # no profile left: one anonymous voice
            assert {(f["speaker_kind"], f["speaker"]) for f in spoken} == {("anonymous", "Speaker 1")}
    finally:
        await server.close()


async def _until(condition, timeout_s=10.0):
    for _ in range(int(timeout_s / 0.1)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def _clear_profiles(http, url):
    async with http.get(f"{url}/api/profiles") as r:
        for p in (await r.json())["profiles"]:
            async with http.delete(f"{url}/api/profiles/{p['name']}") as d:
                assert d.status == 204


async def test_name_an_anonymous_speaker_then_the_next_call_knows_the_voice(runtime, voices):
    enroll, _, _ = voices
    server, url = await start(runtime)
    try:
        async with aiohttp.ClientSession() as http:
            await _clear_profiles(http, url)
            async with http.post(f"{url}/api/rooms/nowhere/speakers/anon:1/name", json={"name": "X"}) as r:
                assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
            async with CallSession(url, room="team", listen_only=True) as viewer:
                await _until(lambda: any(m["type"] == "room" for m in viewer.result.messages))
                assert [m["callers"] for m in viewer.result.messages if m["type"] == "room"] == [0]
                calling = viewer.expect(lambda m: m["type"] == "room" and m["callers"] == 1)
                async with CallSession(url, room="team", speed=SPEED, name="Ann", transcribe=False) as call:
                    await asyncio.wait_for(calling, 10)
                    finals = [f for f in await call.transcribe(enroll["Alice"]) if f["text"]]
                    assert {f["speaker_id"] for f in finals} == {"anon:1"}, finals
                    assert {f["speaker"] for f in finals} == {"Speaker 1"}
                    async with http.get(f"{url}/api/rooms/team/speakers") as r:
                        listed = (await r.json())["speakers"]
                    assert [(s["speaker_id"], s["speaker_kind"]) for s in listed] == [("anon:1", "anonymous")]
                    assert listed[0]["speech_s"] >= 3

                    async def ask(message):
                        reply = call.expect(lambda m: m["type"] in ("error", "speaker_named"))
                        call.send({"type": "name_speaker", **message})
                        return await asyncio.wait_for(reply, 10)

                    # bad requests: nothing is relabelled
                    assert (await ask({"speaker_id": "anon:7", "name": "Zed"}))["code"] == "not_found"
                    assert (await ask({"speaker_id": "anon:1", "name": "Zed", "room": "other"}))["code"] == \
                        "not_in_room"
                    assert (await ask({"speaker_id": "anon:1", "name": "unknown"}))["code"] == "invalid_name"
                    async with http.post(f"{url}/api/profiles", data=_form("Bob", enroll["Bob"])) as r:
                        assert r.status == 201
                    taken = await ask({"speaker_id": "anon:1", "name": "bob", "save": True})
                    assert taken["code"] == "name_taken"
                    assert not [m for m in viewer.result.messages if m["type"] == "speaker_relabeled"]

                    relabel = viewer.expect(lambda m: m["type"] == "speaker_relabeled")
                    ack = await ask({"speaker_id": "anon:1", "name": "Carla", "save": True})
                    assert ack["type"] == "speaker_named" and ack["name"] == "Carla" and ack["profile_id"]
                    moved = await asyncio.wait_for(relabel, 10)
                    assert (moved["from_id"], moved["speaker_id"], moved["speaker"], moved["reason"]) == (
                        "anon:1", f"profile:{ack['profile_id']}", "Carla", "named")
                    assert any(m["type"] == "speaker_relabeled" for m in call.result.messages)
                    again = await ask({"speaker_id": "anon:1", "name": "Carla2"})
                    assert again["code"] == "not_anonymous"
                    # registered before hanging up: the hang-up (DELETE session_url) returns after the room knows
                    ended = viewer.expect(lambda m: m["type"] == "room" and m["callers"] == 0)
                await asyncio.wait_for(ended, 10)
            # a late viewer gets the finals and the relabel that corrected them
            async with CallSession(url, room="team", listen_only=True) as late:
                await _until(lambda: any(m["type"] == "room" for m in late.result.messages))
                kinds = [m["type"] for m in late.result.messages if m.get("backlog")]
                assert kinds[-1] == "speaker_relabeled" and "final" in kinds
            # the next call, in another room, knows the voice by its new name
            result = await call_file(url, enroll["Alice"], speed=SPEED)
            assert {f["speaker"] for f in result.finals if f["text"]} == {"Carla"}
            async with http.get(f"{url}/api/profiles") as r:
                assert sorted(p["name"] for p in (await r.json())["profiles"]) == ["Bob", "Carla"]
    finally:
        await server.close()


def _form(name, audio):
    import tempfile
    from pathlib import Path

    from conftest import write_wav

    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "voice.wav", audio).read_bytes()
    data = aiohttp.FormData()
    data.add_field("name", name)
    data.add_field("audio", wav, filename="voice.wav")
    return data


async def test_name_over_rest_and_enrolling_a_known_voice_twice_warns(runtime, voices):
    enroll, _, _ = voices
    server, url = await start(runtime)
    try:
        async with aiohttp.ClientSession() as http:
            await _clear_profiles(http, url)
            result = await call_file(url, enroll["Bob"], speed=SPEED, room="rest")
            assert {f["speaker_id"] for f in result.finals if f["text"]} == {"anon:1"}
            name = f"{url}/api/rooms/rest/speakers/anon:1/name"
            async with http.post(name, json={"name": ""}) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_name"
            async with http.post(name, json={"nom": "x"}) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
            async with http.post(name, json={"name": "Robert"}) as r:  # a label only: no profile
                assert r.status == 200 and await r.json() == {"speaker_id": "anon:1", "name": "Robert",
                                                              "profile_id": None}
            async with http.get(f"{url}/api/profiles") as r:
                assert (await r.json())["profiles"] == []
            async with http.get(f"{url}/api/rooms/rest/speakers") as r:
                assert [s["speaker"] for s in (await r.json())["speakers"]] == ["Robert"]
            # enrolling the same voice under two names: the second enrollment says whom it sounds like
            async with CallSession(url, speed=SPEED, transcribe=False) as call:
                first = await call.enroll("Bob", enroll["Bob"])
                second = await call.enroll("Bobby", enroll["Bob"])
            assert first["similar_to"] is None
            assert second["similar_to"] == "Bob" and second["similarity"] >= runtime.settings.speaker_threshold
    finally:
        await server.close()
