"""Access control and hardening (issue 10) against a real running server: aiohttp on 127.0.0.1, real aiortc peers.

The speech runtime here has no Whisper and a stand-in speaker embedder (no model is loaded): access control,
offers, listen-only viewers, silent callers and enrollment bookkeeping need neither. ICE host candidates are
restricted to 127.0.0.1, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time

import aiohttp
import jwt
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from server.compose import create_app
from server.compute.jobs import EnrollJob
from server.compute.runtime import SpeechRuntime
from server.errors import CallscribeError, NameTaken
from server.settings import Settings
from server.store.profiles import ProfileStore
from server.stream import events
from server.stream.processor import StreamProcessor
from server.webrtc.ice import restrict_host_addresses
from signaling import auth
from signaling.apidoc import operation_of
from signaling.app import CALLS, PEERS
from signaling.client import CallError, CallSession

KEY = "test-operator-key-0123456789abcdef"
ROOM_A, ROOM_B = "alpha", "bravo"
BAD = ("garbage", "basic", "forged", "expired")
AUDIO_OFFER = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"  # enough for the policy; the SDP itself is refused later


class StandInEmbedder:
    """A deterministic unit vector per audio length: enrollment bookkeeping without a model."""

    min_samples = 16000

    def embed(self, audio: np.ndarray) -> np.ndarray:
        v = np.random.default_rng(audio.size).standard_normal(192).astype(np.float32)
        return v / np.linalg.norm(v)


def make_runtime(tmp_path, **overrides) -> SpeechRuntime:
    settings = Settings(database=tmp_path / "db.sqlite3", model_cache_dir=tmp_path / "models", **overrides)
    return SpeechRuntime(settings, store=ProfileStore(settings.database), embedder=StandInEmbedder(), asr=None)


@pytest.fixture(scope="module", autouse=True)
def loopback_ice():
    restrict_host_addresses(["127.0.0.1"])
    yield
    restrict_host_addresses(None)


@pytest.fixture
def runtime(tmp_path):
    rt = make_runtime(tmp_path)
    yield rt
    rt.close()


@contextlib.asynccontextmanager
async def serving(runtime: SpeechRuntime, prepare=None, **overrides):
    """A real server on 127.0.0.1 (``overrides`` go to its Settings); yields (app, base URL)."""
    settings = runtime.settings.model_copy(update=overrides)
    app = create_app(runtime, settings)
    if prepare is not None:
        prepare(app)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield app, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


def bearer(credential: str | None) -> dict:
    return {"Authorization": f"Bearer {credential}"} if credential else {}


def tokens(app) -> dict[str, str]:
    authn = app[auth.AUTH]
    forged = jwt.encode({"iss": "callscribe", "room": ROOM_A, "role": "speaker", "iat": int(time.time()),
                         "exp": int(time.time()) + 600, "jti": "x"}, "another-secret-entirely-32-bytes!", "HS256")
    return {
        "speaker_a": authn.mint(ROOM_A, "speaker").token,
        "viewer_a": authn.mint(ROOM_A, "viewer").token,
        "speaker_b": authn.mint(ROOM_B, "speaker").token,
        "viewer_b": authn.mint(ROOM_B, "viewer").token,
        "expired": authn.mint(ROOM_A, "speaker", 60, now=time.time() - 3600).token,
        "forged": forged,
    }


async def error_of(resp: aiohttp.ClientResponse) -> str:
    body = await resp.json(content_type=None)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]


# -- the embedded default: loopback, no key, no tokens ---------------------------------------------------------
@pytest.mark.asyncio
async def test_without_a_key_everything_works_as_before(runtime):
    async with serving(runtime) as (app, url), aiohttp.ClientSession() as http:
        async with CallSession(url, room="open", listen_only=True) as viewer:
            assert viewer.result.messages[0]["grants"] is None
            assert viewer.result.session_url.startswith(f"{url}/api/calls/")
            peer_id = viewer.result.peer_id
            async with http.delete(f"{url}/api/peers/{peer_id}") as r:  # old clients keep working
                assert r.status == 204
        assert app[PEERS] == {}
        async with http.get(f"{url}/api/ice-servers") as r:
            assert r.status == 200
        async with http.get(f"{url}/api/profiles") as r:
            assert r.status == 200
        async with http.post(f"{url}/api/tokens", json={"room": "x", "role": "viewer"}) as r:
            assert r.status == 409 and await error_of(r) == "auth_disabled"


# -- every route, every kind of credential ----------------------------------------------------------------------
def _undeclared(request):
    from aiohttp import web

    return web.json_response({"ok": True})


def _concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: ROOM_A if m.group(1) == "room" else "no-such-thing", template)


def _routes(app):
    """(method, template, path, operation, handler) of every protected route of the running app."""
    seen = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path") or info.get("prefix") or ""
        if route.method == "HEAD" or not template.startswith(("/api/", "/whip", "/metrics")):
            continue
        if (route.method, template) in seen:
            continue
        seen.add((route.method, template))
        yield route.method, template, _concrete(template), operation_of(route.handler), route.handler


@pytest.mark.asyncio
async def test_every_route_checks_credentials(runtime):
    """No, malformed, forged and expired credentials get 401 on every protected route; the key passes everywhere;
    room tokens pass or get 403 as the route's declared level says (room A vs room B, viewer vs speaker); a route
    that declares nothing is admin-only. Routes others add later are walked the same way."""

    def prepare(app):
        app.router.add_get("/api/zz-undeclared", _undeclared)

    async with serving(runtime, prepare, api_key=KEY) as (app, url), aiohttp.ClientSession() as http:
        t = tokens(app)
        credentials = {"none": {}, "garbage": bearer("not-a-token"), "basic": {"Authorization": "Basic Zm9vOmJhcg=="},
                       "forged": bearer(t["forged"]), "expired": bearer(t["expired"]), "admin": bearer(KEY),
                       **{k: bearer(t[k]) for k in ("speaker_a", "viewer_a", "speaker_b", "viewer_b")}}
        checked = []
        for method, template, path, op, handler in _routes(app):
            level = op.auth if op is not None else "admin"
            for who, headers in credentials.items():
                async with http.request(method, url + path, headers=headers) as r:
                    status = r.status
                    code = await error_of(r) if status >= 400 and r.content_type == "application/json" else None
                    challenge = r.headers.get("WWW-Authenticate", "")
                where = f"{method} {template} as {who}: {status} {code}"
                assert status < 500 or status == 503, where
                if level == "none":
                    assert status not in (401, 403), where
                elif getattr(handler, "__open_on_loopback__", False) and who not in BAD:
                    assert status == 200, where  # /metrics from loopback, no proxy in between
                elif who in ("none", *BAD):
                    assert (status, code) == (401, "unauthorized"), where
                    assert challenge.startswith("Bearer"), where
                elif who == "admin":
                    assert status not in (401, 403), where
                elif level == "admin":
                    assert (status, code) == (403, "forbidden"), where
                elif level == "token":
                    assert status not in (401, 403), where
                elif "{room}" in template:
                    allowed = who.endswith("_a") and (level == "room" or who.startswith("speaker"))
                    assert (status not in (401, 403)) if allowed else (status, code) == (403, "forbidden"), where
                elif level == "speaker" and who.startswith("viewer"):
                    assert (status, code) == (403, "forbidden"), where
                else:  # the room comes from the body or a stored object: the handler decides, never 401
                    assert status != 401, where
                checked.append((method, template, who))
        templates = {t for _, t, _ in checked}
        assert {"/api/offer", "/whip", "/whip/{key}", "/api/calls/{key}", "/api/peers/{peer_id}",
                "/api/ice-servers", "/api/tokens", "/metrics", "/api/zz-undeclared"} <= templates
        async with http.get(f"{url}/api/zz-undeclared", headers=bearer(KEY)) as r:
            assert r.status == 200
        async with http.get(f"{url}/api/zz-undeclared", headers=bearer(t["speaker_a"])) as r:
            assert r.status == 403
        # open whatever the credentials: health, readiness, pages
        for path in ("/healthz", "/readyz", "/", f"/room/{ROOM_A}"):
            async with http.get(url + path) as r:
                assert r.status in (200, 503), path  # readyz: 503 here, this runtime has no Whisper
        # a missing route is 404 for a caller with credentials, 401 for anyone else
        async with http.get(f"{url}/api/nothing-here") as r:
            assert r.status == 401
        async with http.get(f"{url}/api/nothing-here", headers=bearer(t["viewer_a"])) as r:
            assert r.status == 404 and await error_of(r) == "not_found"


@pytest.mark.asyncio
async def test_metrics_need_the_key_through_a_proxy(runtime):
    async with serving(runtime, api_key=KEY) as (_, url), aiohttp.ClientSession() as http:
        async with http.get(f"{url}/metrics") as r:
            assert r.status == 200 and "callscribe_peers" in await r.text()
        proxied = {"X-Forwarded-For": "198.51.100.7"}
        async with http.get(f"{url}/metrics", headers=proxied) as r:
            assert r.status == 401 and await error_of(r) == "unauthorized"
        async with http.get(f"{url}/metrics", headers={**proxied, **bearer(KEY)}) as r:
            assert r.status == 200


# -- offers: roles and rooms ------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_offer_policy(runtime):
    async with serving(runtime, api_key=KEY) as (app, url), aiohttp.ClientSession() as http:
        t = tokens(app)

        async def post(body, headers=None):
            async with http.post(f"{url}/api/offer", json=body, headers=headers or {}) as r:
                return r.status, await error_of(r) if r.status >= 400 else await r.json()

        audio = {"sdp": AUDIO_OFFER, "type": "offer"}
        assert await post(audio) == (401, "unauthorized")
        assert await post({**audio, "token": "nonsense"}) == (401, "unauthorized")
        assert await post({**audio, "token": t["expired"]}) == (401, "unauthorized")
        assert await post(audio, bearer(t["viewer_a"])) == (403, "forbidden")  # a viewer cannot send audio
        assert await post({**audio, "token": t["viewer_a"]}) == (403, "forbidden")
        assert await post({**audio, "room": ROOM_B}, bearer(t["speaker_a"])) == (403, "forbidden")
        assert await post({**audio, "room": ROOM_B, "token": t["speaker_a"]}) == (403, "forbidden")
        # allowed: past the policy, the dummy SDP itself is what gets refused
        assert await post({**audio, "token": t["speaker_a"]}) == (400, "bad_sdp")
        assert await post(audio, bearer(KEY)) == (400, "bad_sdp")
        assert await post({"type": "offer"}, bearer(t["speaker_a"])) == (400, "bad_request")
        assert app[PEERS] == {}

        # real viewers: a viewer token follows its room (the token fills the room in) and gets no grants
        async with CallSession(url, listen_only=True, token=t["viewer_a"]) as viewer:
            ready = viewer.result.messages[0]
            assert (ready["room"], ready["listen_only"], ready["grants"]) == (ROOM_A, True, [])
            refused = viewer.expect(lambda m: m["type"] == "error")
            viewer.send({"type": "name_speaker", "speaker_id": "anon:1", "name": "Eve"})
            assert (await asyncio.wait_for(refused, 10))["code"] == "forbidden"
        with pytest.raises(CallError, match="403 forbidden"):
            async with CallSession(url, listen_only=True, room=ROOM_B, token=t["viewer_a"]):
                pass
        with pytest.raises(CallError, match="403 forbidden"):  # audio with a viewer token, from the real client
            async with CallSession(url, token=t["viewer_a"]):
                pass
        with pytest.raises(CallError, match="401 unauthorized"):
            async with CallSession(url, listen_only=True, room=ROOM_A):
                pass
        # a speaker's connection may name speakers (the request gets past the grant: not_found, not forbidden)
        async with CallSession(url, transcribe=False, token=t["speaker_a"]) as caller:
            assert sorted(caller.result.messages[0]["grants"]) == ["enroll", "name_speaker"]
            answer = caller.expect(lambda m: m["type"] == "error")
            caller.send({"type": "name_speaker", "speaker_id": "anon:9", "name": "Eve"})
            assert (await asyncio.wait_for(answer, 10))["code"] == "not_found"


@pytest.mark.asyncio
async def test_whip_takes_the_token_as_bearer(runtime):
    from aiortc import RTCPeerConnection

    from server.webrtc.ice import rtc_configuration

    async with serving(runtime, api_key=KEY) as (app, url), aiohttp.ClientSession() as http:
        t = tokens(app)
        pc = RTCPeerConnection(rtc_configuration([]))
        pc.createDataChannel("events")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        try:
            sdp_type = {"Content-Type": "application/sdp"}
            async with http.post(f"{url}/whip?room={ROOM_A}", data=sdp, headers=sdp_type) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
            async with http.post(f"{url}/whip?room={ROOM_A}", data=sdp,
                                 headers={**sdp_type, **bearer(t["viewer_b"])}) as r:
                assert r.status == 403
            async with http.post(f"{url}/whip", data=sdp, headers={**sdp_type, **bearer(t["viewer_a"])}) as r:
                assert r.status == 201
                location = r.headers["Location"]
            key = location.removeprefix("/whip/")
            peer = app[CALLS][key]
            assert peer.room.name == ROOM_A and key != peer.id and len(key) >= 32
            async with http.delete(url + location) as r:
                assert r.status == 401
            async with http.delete(url + location, headers=bearer(t["speaker_b"])) as r:
                assert r.status == 403
            async with http.delete(f"{url}/whip/{peer.id}", headers=bearer(t["viewer_a"])) as r:
                assert r.status == 404  # the public peer id is not the session URL
            async with http.delete(url + location, headers=bearer(t["viewer_a"])) as r:
                assert r.status == 200
            async with http.delete(url + location, headers=bearer(t["viewer_a"])) as r:
                assert r.status == 404
            assert app[PEERS] == {}
        finally:
            await pc.close()


@pytest.mark.asyncio
async def test_only_the_caller_can_hang_up(runtime):
    """Finding (a): a viewer learns a caller's peer_id from the room; it must not be able to end the call."""
    async with serving(runtime, api_key=KEY) as (app, url), aiohttp.ClientSession() as http:
        t = tokens(app)
        async with CallSession(url, transcribe=False, token=t["speaker_a"]) as caller:
            peer_id, session_url = caller.result.peer_id, caller.result.session_url
            assert session_url and peer_id not in session_url
            for who in ("viewer_a", "speaker_a"):
                async with http.delete(f"{url}/api/peers/{peer_id}", headers=bearer(t[who])) as r:
                    assert r.status == 403 and await error_of(r) == "forbidden"
            async with http.delete(f"{url}/api/calls/{peer_id}", headers=bearer(t["viewer_a"])) as r:
                assert r.status == 404
            assert peer_id in app[PEERS]
            assert await caller.hangup() is True
            assert peer_id not in app[PEERS]
        async with CallSession(url, listen_only=True, token=t["viewer_a"]) as viewer:
            async with http.delete(f"{url}/api/peers/{viewer.result.peer_id}", headers=bearer(KEY)) as r:
                assert r.status == 204  # the operator still can
        assert app[PEERS] == {}


# -- tokens -----------------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_minting_tokens(runtime):
    async with serving(runtime, api_key=KEY, token_ttl_s=600) as (app, url), aiohttp.ClientSession() as http:
        t = tokens(app)

        async def mint(body, credential):
            async with http.post(f"{url}/api/tokens", json=body, headers=bearer(credential)) as r:
                return r.status, await error_of(r) if r.status >= 400 else await r.json()

        status, made = await mint({"room": ROOM_B, "role": "speaker"}, KEY)
        assert status == 200 and made["room"] == ROOM_B and made["role"] == "speaker"
        assert made["url"] == f"/?room={ROOM_B}&token={made['token']}"
        assert 590 <= made["expires_at"] - time.time() <= 601
        principal = app[auth.AUTH].verify(made["token"])
        assert (principal.kind, principal.room, principal.role) == ("room", ROOM_B, "speaker")
        # a speaker copies an invite link for its own room; it never outlives the speaker's token
        short = app[auth.AUTH].mint(ROOM_A, "speaker", 120).token
        status, invite = await mint({"room": ROOM_A, "role": "viewer", "ttl_s": 86400}, short)
        assert status == 200 and invite["url"] == f"/room/{ROOM_A}?token={invite['token']}"
        assert invite["expires_at"] <= app[auth.AUTH].verify(short).expires_at
        assert await mint({"room": ROOM_B, "role": "viewer"}, t["speaker_a"]) == (403, "forbidden")
        assert await mint({"room": ROOM_A, "role": "viewer"}, t["viewer_a"]) == (403, "forbidden")
        assert await mint({"room": ROOM_A, "role": "viewer"}, None) == (401, "unauthorized")
        for bad in ({"room": "no spaces", "role": "viewer"}, {"room": ROOM_A, "role": "owner"},
                    {"room": ROOM_A, "role": "viewer", "ttl_s": 5}, {"room": ROOM_A}, {"room": ROOM_A,
                    "role": "viewer", "admin": True}):
            assert await mint(bad, KEY) == (400, "bad_request"), bad
        # the minted viewer token works for what it says, and only that
        async with CallSession(url, listen_only=True, token=invite["token"]) as viewer:
            assert viewer.result.messages[0]["room"] == ROOM_A


def test_token_claims_and_verification(tmp_path):
    authn = auth.Authenticator(Settings(api_key=KEY, database=tmp_path / "x"))
    minted = authn.mint(ROOM_A, "viewer", 300)
    claims = jwt.decode(minted.token, options={"verify_signature": False})
    assert set(claims) == {"iss", "room", "role", "iat", "exp", "jti"}
    assert claims["exp"] - claims["iat"] == 300
    assert authn.verify(KEY) == auth.ADMIN
    other = auth.Authenticator(Settings(api_key=KEY + "-rotated", database=tmp_path / "x"))
    with pytest.raises(auth.ApiError, match="neither the API key"):
        other.verify(minted.token)  # a new key revokes every token signed under the old one
    secret = auth.Authenticator(Settings(api_key=KEY, token_secret="s" * 32, database=tmp_path / "x"))
    with pytest.raises(auth.ApiError):
        secret.verify(minted.token)
    with pytest.raises(auth.ApiError):
        authn.verify(jwt.encode(claims, None, algorithm="none"))  # alg "none" is never accepted
    unsigned = minted.token.rsplit(".", 1)[0] + "."
    with pytest.raises(auth.ApiError):
        authn.verify(unsigned)
    with pytest.raises(auth.ApiError, match="expired"):
        authn.verify(authn.mint(ROOM_A, "viewer", 60, now=time.time() - 120).token)
    with pytest.raises(auth.ApiError) as bad:
        authn.mint("not a room", "viewer")
    assert bad.value.code == "bad_request"
    assert auth.Authenticator(Settings(database=tmp_path / "x")).enabled is False


# -- rate and size limits -----------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_offers_are_rate_limited_per_client_address(runtime):
    async with serving(runtime, offer_rate="2/minute") as (_, url), aiohttp.ClientSession() as http:
        offer = {"sdp": "v=0\r\n", "type": "offer"}  # counted, then refused as SDP: no peer is made

        async def post(address=None):
            headers = {"X-Forwarded-For": f"203.0.113.9, {address}"} if address else {}
            async with http.post(f"{url}/api/offer", json=offer, headers=headers) as r:
                return r.status, await error_of(r), r.headers.get("Retry-After")

        assert [(await post("198.51.100.1"))[0] for _ in range(2)] == [400, 400]
        status, code, retry = await post("198.51.100.1")
        assert (status, code) == (429, "rate_limited") and 1 <= int(retry) <= 60
        assert (await post("198.51.100.2"))[0] == 400  # another client (the address the proxy appended)
        assert [(await post())[0] for _ in range(4)] == [400] * 4  # direct loopback connections are not limited
        async with http.post(f"{url}/whip", data="v=0\r\n", headers={"Content-Type": "application/sdp",
                                                                     "X-Forwarded-For": "198.51.100.1"}) as r:
            assert r.status == 429 and r.headers["Retry-After"]  # WHIP shares the offer budget


@pytest.mark.asyncio
async def test_enrollments_over_the_data_channel_are_rate_limited(runtime):
    async with serving(runtime, enroll_rate="1/minute") as (_, url), \
            aiohttp.ClientSession(headers={"X-Forwarded-For": "198.51.100.20"}) as proxied:
        async with CallSession(url, transcribe=False, http=proxied) as call:
            with pytest.raises(CallError, match="too little speech"):
                await call.enroll("Ann", np.zeros(16000, np.float32))
            with pytest.raises(CallError, match=r"refused \(rate_limited\)"):
                await call.enroll("Ann", np.zeros(16000, np.float32))
            pong = call.expect(lambda m: m["type"] == "pong")
            call.send({"type": "ping", "id": 1})
            assert (await asyncio.wait_for(pong, 10))["id"] == 1  # the call goes on


@pytest.mark.asyncio
async def test_bodies_over_the_limit_are_413(runtime):
    async with serving(runtime, api_key=KEY) as (_, url), aiohttp.ClientSession() as http:
        big = json.dumps({"sdp": "v=0\r\n" + "a" * 70_000, "type": "offer"})
        async with http.post(f"{url}/api/offer", data=big, headers={"Content-Type": "application/json",
                                                                    **bearer(KEY)}) as r:
            assert r.status == 413 and await error_of(r) == "too_large"

        async def chunked():
            for _ in range(20):
                yield b"x" * 8192

        async with http.post(f"{url}/api/tokens", data=chunked(), headers={"Content-Type": "application/json",
                                                                           **bearer(KEY)}) as r:
            assert r.status == 413 and await error_of(r) == "too_large"


# -- serve: refuse an open server on a reachable address ----------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10", "example.org"])
def test_serving_a_reachable_address_needs_a_key(host):
    with pytest.raises(CallscribeError, match=r"refusing to serve .* without access control"):
        auth.check_exposure(Settings(host=host))
    warning = auth.check_exposure(Settings(host=host, insecure_no_auth=True))
    assert warning and "NO ACCESS CONTROL" in warning
    assert auth.check_exposure(Settings(host=host, api_key=KEY)) is None
    with pytest.raises(CallscribeError, match="too short"):
        auth.check_exposure(Settings(host=host, api_key="short"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_key(host):
    assert auth.check_exposure(Settings(host=host)) is None


# -- enrollments: add or refuse, and the cap (findings b and c) -------------------------------------------------
def _voice(seed: int) -> np.ndarray:
    return StandInEmbedder().embed(np.zeros(seed, np.float32))


@pytest.mark.asyncio
async def test_enrolling_an_existing_name_needs_add(runtime):
    runtime.store.enroll("Alice", _voice(20000), 5.0, "test")
    async with serving(runtime, api_key=KEY) as (app, url):
        t = tokens(app)
        async with CallSession(url, transcribe=False, token=t["speaker_a"]) as call:
            with pytest.raises(CallError, match=r"refused \(name_taken\)"):
                await call.enroll(" alice ", np.zeros(16000, np.float32))
            started = call.expect(lambda m: m["type"] in ("enrollment_started", "error"))
            call.send({"type": "enroll_start", "name": "Alice", "add": True})
            assert (await asyncio.wait_for(started, 10))["type"] == "enrollment_started"
            call.send({"type": "enroll_stop"})
    assert runtime.store.get("Alice").enrollments == 1


def test_the_store_refuses_a_taken_name_without_add(runtime):
    audio = np.zeros(32000, np.float32)
    runtime.enroll(EnrollJob(name="Bob", audio=audio, speech_s=4.0, source="a"))
    with pytest.raises(NameTaken):
        runtime.enroll(EnrollJob(name="BOB", audio=audio, speech_s=4.0, source="b", add=False))
    runtime.invalidate_profiles()
    assert runtime.store.get("Bob").enrollments == 1  # nothing stored
    done = runtime.enroll(EnrollJob(name="bob", audio=audio, speech_s=4.0, source="c", add=True))
    assert done.profile.enrollments == 2


class AllSpeech:
    """A VAD that calls every frame speech (so enrollment length is exact)."""

    frame_samples = 480

    def speech_prob(self, frame: np.ndarray) -> float:
        return 1.0

    def reset(self) -> None:
        pass


def test_enrollment_speech_is_capped(tmp_path):
    rt = make_runtime(tmp_path, max_enroll_s=5.0)
    got: list = []
    try:
        proc = StreamProcessor(rt, got.append, classifier=AllSpeech(), partials=False, block=True)
        proc.enroll_start("Carol", add=False)
        noise = np.random.default_rng(0).uniform(-0.1, 0.1, 16000).astype(np.float32)
        for _ in range(40):  # 40 s of "speech" into a 5 s enrollment
            proc.push(noise)
        proc.wait(10)
        done = [e for e in got if isinstance(e, events.EnrollmentCompleted)]
        assert len(done) == 1 and done[0].speech_s == pytest.approx(5.0, abs=0.05)
        assert not [e for e in got if isinstance(e, events.SpeechStarted | events.Final | events.Error)]
        proc.enroll_stop()  # after the cap: nothing more, no error
        proc.close(10)
        assert [type(e).__name__ for e in got] == ["EnrollmentStarted", "EnrollmentCompleted"]
        assert rt.store.get("Carol").speech_s == pytest.approx(5.0, abs=0.05)
    finally:
        rt.close()
