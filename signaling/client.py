"""The Python WebRTC client: ``callscribe call`` — a file sent as a microphone, events printed as they come.

It makes a real ``RTCPeerConnection`` (aiortc, the same ICE settings as the server), sends the audio as an
Opus track paced in real time (or ``speed`` times faster), opens the ``events`` data channel and speaks the
protocol of :mod:`signaling.protocol`: optional enrollments first (``enroll_start`` → audio → ``enroll_stop``),
then ``transcribe_start`` → audio → ``transcribe_stop``. It doubles as the test client and as an example of a
data-channel subscriber. With a ``token`` (a room token or the operator key) every request carries
``Authorization: Bearer``; hanging up ``DELETE``s the answer's ``session_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from server import SAMPLE_RATE
from server.errors import CallscribeError
from server.webrtc.ice import rtc_configuration

FRAME_SAMPLES = SAMPLE_RATE // 50  # 20 ms, as browsers send


class CallError(CallscribeError):
    """The call could not be made or the server reported an error."""

    code = "call_failed"


class FileAudioTrack(MediaStreamTrack):
    """An audio track that plays queued ``float32[n]`` 16 kHz buffers and silence in between.

    Frames are 20 ms of s16 mono at 16 kHz (aiortc's Opus encoder resamples to 48 kHz), paced to the wall
    clock divided by ``speed``.
    """

    kind = "audio"

    def __init__(self, speed: float = 1.0) -> None:
        super().__init__()
        self.speed = speed
        self._queue: deque[tuple[np.ndarray, asyncio.Future]] = deque()
        self._offset = 0
        self._pts = 0
        self._t0: float | None = None

    def play(self, audio: np.ndarray) -> asyncio.Future:
        """Queue audio; the future resolves when its last frame has been handed to the encoder."""
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((audio.astype(np.float32, copy=False), fut))
        return fut

    async def recv(self) -> av.AudioFrame:
        if self._t0 is None:
            self._t0 = time.monotonic()
        wait = self._t0 + self._pts / SAMPLE_RATE / self.speed - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = np.zeros(FRAME_SAMPLES, np.float32)
        filled = 0
        while filled < FRAME_SAMPLES and self._queue:
            audio, fut = self._queue[0]
            take = min(FRAME_SAMPLES - filled, audio.size - self._offset)
            chunk[filled : filled + take] = audio[self._offset : self._offset + take]
            filled += take
            self._offset += take
            if self._offset >= audio.size:
                self._queue.popleft()
                self._offset = 0
                if not fut.done():
                    fut.set_result(None)
        pcm = (np.clip(chunk, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        return frame


@dataclass
class CallResult:
    """What a call produced: every message received (dicts, in order) and the finals among them."""

    messages: list[dict] = field(default_factory=list)
    peer_id: str | None = None
    room: str | None = None
    session_url: str | None = None
    answered_by: str | None = None
    """Origin of the server that answered the offer (another node than the one asked, after a redirect)."""

    @property
    def finals(self) -> list[dict]:
        return [m for m in self.messages if m.get("type") == "final"]

    @property
    def errors(self) -> list[dict]:
        return [m for m in self.messages if m.get("type") in ("error", "enrollment_failed")]


class CallSession:
    """One call to a callscribe server; use as ``async with CallSession(...) as call``.

    With ``listen_only`` it sends no audio: a room viewer that receives the room's backlog (finals with
    ``"backlog": true``) and then its live ``speech_started`` / ``partial`` / ``final`` events.
    ``ice_servers`` None (default) fetches them from the server's ``/api/ice-servers`` (TURN with fresh
    credentials), as the page does; ``relay_only`` forces media through the TURN relay.

    ``http``: an open :class:`aiohttp.ClientSession` for the signaling requests of :meth:`connect` (the
    ``/api/ice-servers`` GET and the offer POST), e.g. one with ``trace_configs`` to time them (the
    benchmarks do) or a shared connection pool; the session only borrows it and never closes it. None
    (default): a fresh one per :meth:`connect`, closed when the answer is in.

    ``token``: a room token (``callscribe token``, ``POST /api/tokens``) or the operator API key, sent as
    ``Authorization: Bearer`` with every request; None for a server without access control.
    """

    def __init__(self, server_url: str, *, ice_servers: Sequence[dict] | None = None, speed: float = 1.0,
                 language: str | None = None, room: str | None = None, name: str | None = None,
                 transcribe: bool = True, on_message: Callable[[dict], None] | None = None,
                 listen_only: bool = False, relay_only: bool = False,
                 http: aiohttp.ClientSession | None = None, token: str | None = None) -> None:
        self.url = server_url.rstrip("/")
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.options = {"language": language, "room": room, "name": name, "transcribe": transcribe}
        self.ice_servers = None if ice_servers is None else list(ice_servers)
        self.relay_only = relay_only
        self.pc: RTCPeerConnection | None = None
        self.track = FileAudioTrack(speed)
        self.listen_only = listen_only
        self.result = CallResult()
        self.on_message = on_message
        self._waiters: list[tuple[Callable[[dict], bool], asyncio.Future]] = []
        self.channel = None
        self.transcribing = False

    async def __aenter__(self) -> CallSession:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self, timeout: float = 30.0) -> None:
        """Offer, answer, and wait for the server's ``ready``.

        Raises:
            CallError: HTTP error (the server's JSON error is quoted, e.g. ``server_busy``) or no ``ready``.
        """
        try:
            async with contextlib.AsyncExitStack() as stack:
                http = self.http
                if http is None:
                    http = await stack.enter_async_context(aiohttp.ClientSession())
                if self.ice_servers is None:
                    async with http.get(f"{self.url}/api/ice-servers", headers=self.headers) as resp:
                        body = await resp.json(content_type=None)
                        if resp.status != 200:
                            raise _refused("ICE servers", resp.status, body)
                        self.ice_servers = body["iceServers"]
                await self._offer(http)
        except aiohttp.ClientError as exc:
            raise CallError(f"cannot reach {self.url}: {exc}") from None
        try:
            await asyncio.wait_for(self._ready, timeout)
        except TimeoutError:
            raise CallError(f"no 'ready' from the server within {timeout:g} s (ICE/DTLS failed?)") from None

    async def _offer(self, http: aiohttp.ClientSession) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(self.ice_servers, relay_only=self.relay_only))
        if not self.listen_only:
            self.pc.addTrack(self.track)
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("message", self._on_message)
        self._ready = self.expect(lambda m: m.get("type") == "ready")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        if self.relay_only and " typ relay" not in self.pc.localDescription.sdp:
            raise CallError(f"no TURN relay candidate: {await turn_diagnosis(self.ice_servers)}")
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer", **self.options}
        # a node of a cluster may redirect the offer to another (307: aiohttp repeats the POST with its body there)
        async with http.post(f"{self.url}/api/offer", json=body, headers=self.headers, max_redirects=3) as resp:
            answer = await resp.json(content_type=None)
            if resp.status != 200:
                raise _refused("offer", resp.status, answer)
            self.result.answered_by = str(resp.url.origin())
        self.result.peer_id, self.result.room = answer["peer_id"], answer["room"]
        if answer.get("session_url"):
            self.result.session_url = urljoin(str(resp.url), answer["session_url"])
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    def _on_message(self, raw) -> None:
        message = json.loads(raw)
        self.result.messages.append(message)
        if message.get("type") == "ready":
            self.transcribing = message["transcribing"]
        elif message.get("type") == "transcription":
            self.transcribing = message["active"]
        if self.on_message is not None:
            self.on_message(message)
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate(message):
                fut.set_result(message)
                self._waiters.remove((predicate, fut))

    def expect(self, predicate: Callable[[dict], bool]) -> asyncio.Future:
        """A future for the next message matching ``predicate`` (register before causing it)."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        return fut

    def send(self, message: dict | str) -> None:
        self.channel.send(message if isinstance(message, str) else json.dumps(message))

    async def enroll(self, name: str, audio: np.ndarray, timeout: float = 60.0, *, add: bool = False) -> dict:
        """Enroll ``name`` from ``float32[n]`` 16 kHz speech (``add``: extend the profile if it exists); returns
        ``enrollment_completed``.

        Raises:
            CallError: ``enrollment_failed``, or ``enroll_start`` refused (``name_taken``, ``forbidden``,
                ``rate_limited``, ``enrollment_in_progress``).
        """
        started = self.expect(lambda m: m.get("type") == "enrollment_started"
                              or (m.get("type") == "error" and m.get("code") in _ENROLL_REFUSALS))
        done = self.expect(lambda m: m.get("type") in ("enrollment_completed", "enrollment_failed")
                           and m.get("name", "").lower() == name.lower())
        self.send({"type": "enroll_start", "name": name, "add": add})
        first = await asyncio.wait_for(started, timeout)
        if first["type"] == "error":
            done.cancel()
            self._waiters = [(p, f) for p, f in self._waiters if f is not done]
            raise CallError(f"enrollment of {name!r} refused ({first['code']}): {first['message']}")
        await self.track.play(np.concatenate([audio, np.zeros(SAMPLE_RATE // 2, np.float32)]))
        self.send({"type": "enroll_stop"})
        result = await asyncio.wait_for(done, timeout)
        if result["type"] == "enrollment_failed":
            raise CallError(f"enrollment of {name!r} failed: {result['reason']}")
        return result

    async def transcribe(self, audio: np.ndarray, timeout: float = 120.0) -> list[dict]:
        """Send ``audio`` with transcription on; returns the finals that came for it."""
        before = len(self.result.finals)
        if not self.transcribing:
            started = self.expect(lambda m: m.get("type") == "transcription" and m["active"])
            self.send({"type": "transcribe_start"})
            await asyncio.wait_for(started, timeout)
        stopped = self.expect(lambda m: m.get("type") == "transcription" and not m["active"])
        await self.track.play(np.concatenate([audio, np.zeros(SAMPLE_RATE, np.float32)]))
        self.send({"type": "transcribe_stop"})
        await asyncio.wait_for(stopped, timeout)
        return self.result.finals[before:]

    async def hangup(self, timeout: float = 30.0) -> bool:
        """End the call on the server (``DELETE`` its ``session_url``; the server finalises the utterance in
        progress and delivers it before the call closes). False when there was no call or the server did not
        confirm (already ended, unreachable, or a server older than protocol 4)."""
        url, self.result.session_url = self.result.session_url, None
        if url is None:
            return False
        try:
            async with contextlib.AsyncExitStack() as stack:
                http = self.http
                if http is None:
                    http = await stack.enter_async_context(aiohttp.ClientSession())
                async with http.delete(url, headers=self.headers,
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    return resp.status in (200, 204)
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def close(self) -> None:
        """Hang up (:meth:`hangup`), then close the peer connection."""
        if self.pc is not None:
            await self.hangup()
            await self.pc.close()


_ENROLL_REFUSALS = ("name_taken", "forbidden", "rate_limited", "enrollment_in_progress", "listen_only")


def _refused(what: str, status: int, body: object) -> CallError:
    """``CallError("offer refused (403 forbidden): …")`` from the server's JSON error shape."""
    err = body.get("error", {}) if isinstance(body, dict) else {}
    err = err if isinstance(err, dict) else {}
    return CallError(f"{what} refused ({status} {err.get('code', '')}): {err.get('message', '')}")


async def call_file(server_url: str, audio: np.ndarray, *, enroll: Sequence[tuple[str, np.ndarray]] = (),
                    ice_servers: Sequence[dict] | None = None, speed: float = 1.0, language: str | None = None,
                    room: str | None = None, on_message: Callable[[dict], None] | None = None,
                    relay_only: bool = False, token: str | None = None, add: bool = False) -> CallResult:
    """Enroll the given voices over the data channel (``add``: extend profiles that exist), then transcribe
    ``audio``; the seed's whole flow."""
    async with CallSession(server_url, ice_servers=ice_servers, speed=speed, language=language, room=room,
                           transcribe=False, on_message=on_message, relay_only=relay_only, token=token) as call:
        for name, voice in enroll:
            await call.enroll(name, voice, add=add)
        await call.transcribe(audio)
        return call.result


async def listen(server_url: str, room: str, *, seconds: float | None = None,
                 ice_servers: Sequence[dict] | None = None,
                 on_message: Callable[[dict], None] | None = None, token: str | None = None) -> CallResult:
    """Follow a room (data channel only) for ``seconds`` (None: until cancelled); ``token``: a viewer or speaker
    token for the room (or the API key)."""
    async with CallSession(server_url, ice_servers=ice_servers, room=room, listen_only=True,
                           on_message=on_message, token=token) as viewer:
        if seconds is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(seconds)
        return viewer.result


async def turn_diagnosis(ice_servers: Sequence[dict], timeout: float = 5.0) -> str:
    """Why no relay candidate came: try a TURN allocation with aioice's client and report the answer."""
    from urllib.parse import urlparse

    from aioice.stun import TransactionFailed
    from aioice.turn import create_turn_endpoint

    turn = [(s, u) for s in ice_servers for u in ([s["urls"]] if isinstance(s["urls"], str) else s["urls"])
            if u.startswith("turn:")]
    if not turn:
        return "no TURN server is configured (the server's /api/ice-servers lists none)"
    server, url = turn[0]
    parsed = urlparse(url.replace("turn:", "turn://", 1))
    transport = "tcp" if "transport=tcp" in (parsed.query or "") else "udp"
    try:
        transport_obj, _ = await asyncio.wait_for(create_turn_endpoint(
            asyncio.DatagramProtocol, (parsed.hostname, parsed.port or 3478), server.get("username"),
            server.get("credential"), transport=transport), timeout)
        transport_obj.close()
        return f"the relay {url} accepts the credentials, but ICE gathered no relay candidate"
    except TransactionFailed as exc:
        code, reason = exc.response.attributes.get("ERROR-CODE", (0, ""))
        if code == 401:
            return f"the relay {url} refused the credentials (401 {reason}): wrong secret or expired"
        return f"the relay {url} refused the allocation ({code} {reason})"
    except (OSError, TimeoutError) as exc:
        return f"the relay {url} did not answer ({exc or type(exc).__name__})"
