"""Property-based fuzzing of the data-channel protocol (Hypothesis), and the message that used to end a call.

Whatever a client sends — any text (lone surrogates included), any bytes, any JSON, messages that are almost
valid — :meth:`signaling.datachannel.DataChannelSession.message` answers with a structured reply or error, or
hands a valid action to the call's processor; it never raises, and everything it sends can be encoded as
strict UTF-8 JSON (what aiortc's ``send`` does with it).
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server.compose import create_app
from server.compute.runtime import SpeechRuntime
from server.settings import Settings
from server.store.profiles import ProfileStore
from server.stream.events import EVENT_ADAPTER
from server.webrtc.ice import restrict_host_addresses
from signaling import protocol
from signaling.app import PEERS
from signaling.client import CallSession
from signaling.datachannel import DataChannelSession
from signaling.limits import RateLimits

MAX_BYTES = 2048
SURROGATE_PING = '{"type":"ping","id":"\\ud800"}'  # the message of finding (d): it used to end the call
CLIENT_TYPES = ["session", "enroll_start", "enroll_stop", "transcribe_start", "transcribe_stop", "name_speaker",
                "ping"]
SERVER_REPLIES = {"pong", "error", "speaker_named", "ready"}


# -- a peer that records what the session does with it ---------------------------------------------------------
class Room:
    name = "fuzz"

    def join(self, peer_id, caller) -> None:
        pass


class Processor:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.language = None
        self.paused = False

    def enroll_start(self, name, add=True):
        self.calls.append(("enroll_start", name, add))

    def enroll_stop(self):
        self.calls.append(("enroll_stop",))

    def resume(self):
        self.calls.append(("resume",))

    def pause(self):
        self.calls.append(("pause",))


class Peer:
    id = "fuzz-peer"
    listen_only = False

    def __init__(self, grants, with_processor: bool) -> None:
        self.grants = grants
        self.room = Room()
        self.caller = None
        self.processor = Processor() if with_processor else None
        self.sent: list[dict] = []

    def send(self, message: dict) -> None:
        # what CallPeer.send and aiortc do with it: JSON without NaN, then strict UTF-8
        json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self.sent.append(message)


# -- what clients may send ---------------------------------------------------------------------------------------
any_char = st.characters(exclude_categories=())  # every code point, lone surrogates included
any_text = st.text(any_char, max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)
field_values = json_values | st.sampled_from(["en", "ko", "Alice", "anon:1", "", "x" * 70, True, False, None])
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(CLIENT_TYPES) | any_text | json_values},
    optional=dict.fromkeys(("name", "language", "add", "speaker_id", "save", "extend", "room", "id", "extra"),
                           field_values),
)


def encoded(value, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)  # ensure_ascii=True writes lone surrogates as \ud800


raw_messages = st.one_of(
    any_text,
    st.binary(max_size=64),
    st.builds(encoded, json_values, st.booleans()),
    st.builds(encoded, messages, st.booleans()),
    st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(1, 1500)),
    st.builds(lambda digits: '{"type":"ping","id":' + "9" * digits + "}", st.integers(1, 2000)),
    st.sampled_from(["NaN", '{"type":"ping","id":Infinity}', '{"type":"ping","id":1e400}', SURROGATE_PING]),
)

LOOP = asyncio.new_event_loop()


def deliver(raw, grants, with_processor: bool) -> tuple[Peer, DataChannelSession]:
    session = DataChannelSession(MAX_BYTES, limits=RateLimits(Settings(enroll_rate="1000/second")))
    peer = Peer(grants, with_processor)

    async def run():
        session.message(peer, raw)  # must not raise
        if session._tasks:
            await asyncio.gather(*session._tasks)

    LOOP.run_until_complete(run())
    return peer, session


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_messages, grants=st.sampled_from([None, frozenset(), frozenset({"enroll", "name_speaker"})]),
       with_processor=st.booleans())
@example(raw=SURROGATE_PING, grants=None, with_processor=True)
@example(raw=b"\xff\xfe", grants=None, with_processor=True)
@example(raw='{"type":"ping","id":"\\udfff\\ud800"}', grants=None, with_processor=False)
def test_any_message_gets_a_structured_answer_and_never_raises(raw, grants, with_processor):
    peer, _ = deliver(raw, grants, with_processor)
    acted = peer.processor.calls if peer.processor is not None else []
    for reply in peer.sent:
        assert reply["type"] in SERVER_REPLIES, reply
        if reply["type"] == "error":
            assert reply["code"] != "internal_error", reply  # handled on purpose, not by the safety net
            assert isinstance(reply["message"], str) and reply["message"]
            EVENT_ADAPTER.validate_python(reply)
    try:
        msg = protocol.parse_client_message(raw, MAX_BYTES)
    except protocol.ProtocolError as exc:
        assert [(r["type"], r["code"]) for r in peer.sent] == [("error", exc.code)]  # exactly one error
        assert not acted
        return
    if isinstance(msg, protocol.Ping):
        assert peer.sent == [{"type": "pong", "id": msg.id}]
    elif isinstance(msg, protocol.NameSpeaker):
        assert len(peer.sent) == 1 and peer.sent[0]["type"] == "error"  # forbidden, or naming unavailable here
    elif peer.processor is None:
        assert [r["code"] for r in peer.sent] == ["listen_only"]
    elif isinstance(msg, protocol.EnrollStart) and grants is not None and "enroll" not in grants:
        assert [r["code"] for r in peer.sent] == ["forbidden"] and not acted
    elif isinstance(msg, protocol.Session):
        assert not peer.sent and peer.processor.language == msg.language
    else:
        assert not peer.sent and len(acted) == 1, (msg, acted)
        if isinstance(msg, protocol.EnrollStart):
            assert acted == [("enroll_start", msg.name, msg.add)]


@given(text=st.text(any_char, min_size=1, max_size=20))
@settings(max_examples=200, deadline=None)
def test_strings_with_lone_surrogates_are_refused_anywhere(text):
    """A lone surrogate in any string, key or value, at any depth: refused; all other text is accepted."""
    has_surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    for message in ({"type": "ping", "id": text}, {"type": "ping", "id": [{"k": [text]}]},
                    {"type": "enroll_start", "name": "A" + text[:60]}, {"type": "ping", "id": {text: 1}}):
        raw = json.dumps(message)  # ASCII JSON: surrogates as \uXXXX escapes, as a browser or a fuzzer sends them
        try:
            protocol.parse_client_message(raw, 4096)
            assert not has_surrogate, raw
        except protocol.ProtocolError as exc:
            assert has_surrogate or message["type"] == "enroll_start", raw
            if has_surrogate:
                assert exc.code == "invalid_message" and "surrogate" in str(exc)


# -- one real call: the surrogate ping no longer kills it ---------------------------------------------------------
class StandInEmbedder:
    min_samples = 16000

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return np.ones(192, np.float32) / np.sqrt(192)


@pytest.mark.asyncio
async def test_a_real_call_survives_the_surrogate_ping(tmp_path):
    restrict_host_addresses(["127.0.0.1"])
    settings_ = Settings(database=tmp_path / "db.sqlite3", model_cache_dir=tmp_path / "models")
    runtime = SpeechRuntime(settings_, store=ProfileStore(settings_.database), embedder=StandInEmbedder(), asr=None)
    app = create_app(runtime, settings_)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        url = f"http://127.0.0.1:{server.port}"
        async with CallSession(url, transcribe=False) as call:  # a caller with a microphone (silence)
            refused = call.expect(lambda m: m["type"] == "error")
            call.send(SURROGATE_PING)
            error = await asyncio.wait_for(refused, 10)
            assert error["code"] == "invalid_message" and "surrogate" in error["message"]
            refused = call.expect(lambda m: m["type"] == "error")
            call.channel.send(b"\xff\xfe\x00binary")
            assert (await asyncio.wait_for(refused, 10))["code"] == "bad_json"
            pong = call.expect(lambda m: m["type"] == "pong")
            call.send({"type": "ping", "id": "still here ✓"})
            assert (await asyncio.wait_for(pong, 10))["id"] == "still here ✓"
            assert call.result.peer_id in app[PEERS]  # the call is alive on the server too
            assert app[PEERS][call.result.peer_id].channel.readyState == "open"
    finally:
        await server.close()
        runtime.close()
        restrict_host_addresses(None)
