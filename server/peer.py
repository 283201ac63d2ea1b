"""One call: an aiortc ``RTCPeerConnection``, its audio track and data channel, its speech processor.

Lifetime: created for an SDP offer, answered, then fed by the remote audio track (drained continuously, so
aiortc's receive queue never grows). Events go to the caller's data channel and to the call's room.
It closes on ``close()`` (HTTP DELETE, shutdown), on ICE/DTLS failure, when the data channel or track ends,
or after ``idle_timeout_s`` with neither speech nor messages. Closing finalises the utterance in progress
and delivers it to whoever still listens (the room), then drops every reference: aiortc keeps peer
connections alive while anything points at them (aiortc issues #904 and #925).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from . import events, protocol
from .ice import ice_servers_for, rtc_configuration
from .ingest import TrackIngest
from .metrics import Metrics
from .processor import StreamProcessor
from .rooms import Room
from .runtime import SpeechRuntime
from .settings import Settings

log = logging.getLogger(__name__)

_ROOM_EVENTS = (events.SpeechStarted, events.Partial, events.Final)
"""What the whole room sees; enrollment results, errors and acknowledgements go to the caller alone."""


class CallPeer:
    """A caller's WebRTC session.

    Args:
        runtime: shared models and pool.
        options: the session options of the offer.
        room: the room the call belongs to.
        on_closed: called once when the call has been torn down.
        settings: limits of this call (idle timeout, ICE, message size); default: the runtime's.
        listen_only: a room viewer (data channel only, no microphone): it first receives the room's backlog,
            then its live events; it has no speech processor and no idle timeout.
    """

    def __init__(self, runtime: SpeechRuntime, options: protocol.SessionOptions, room: Room,
                 on_closed: Callable[[CallPeer], None], metrics: Metrics | None = None,
                 settings: Settings | None = None, listen_only: bool = False) -> None:
        settings = settings or runtime.settings
        self.id = secrets.token_urlsafe(9)
        self.options = options
        self.room = room
        self.settings = settings
        self.metrics = metrics
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self.pc: RTCPeerConnection | None = RTCPeerConnection(
            rtc_configuration(ice_servers_for(settings, user=f"server-{self.id}")))
        self.channel = None
        self.ingest = TrackIngest()
        self.listen_only = listen_only
        self.processor: StreamProcessor | None = None
        if not listen_only:
            self.processor = StreamProcessor(
                runtime, self._from_worker, language=options.language,
                on_latency=metrics.decode_latency.observe if metrics else None,
            )
            if not options.transcribe:
                self.processor.pause()  # its "transcription: false" event goes nowhere: no channel yet
        self._tasks: set[asyncio.Task] = set()
        self.closed = asyncio.Event()
        self._closing = False
        self.last_activity = self._loop.time()
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)
        if not listen_only:
            room.subscribe(self.id, self._send, replay=False)

    # -- signaling -----------------------------------------------------------------------------
    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Apply the offer and return the answer (all ICE candidates gathered: aiortc does not trickle).

        Raises:
            ValueError: the SDP is malformed or offers nothing we can receive.
        """
        assert self.pc is not None
        await self.pc.setRemoteDescription(offer)
        if not any(t.kind == "audio" for t in self.pc.getTransceivers()) and not self._has_datachannel(offer):
            raise ValueError("the offer has neither an audio track nor a data channel")
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        if not self.listen_only:
            self._spawn(self._watch_idle())
        return self.pc.localDescription

    @staticmethod
    def _has_datachannel(offer: RTCSessionDescription) -> bool:
        return "m=application" in offer.sdp

    # -- media ---------------------------------------------------------------------------------
    def _on_track(self, track) -> None:
        if track.kind != "audio":
            return
        self._spawn(self._consume(track))

    async def _consume(self, track) -> None:
        late_before = 0
        gap_before = 0.0
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                break
            samples = self.ingest.push(frame)
            if self.processor is None:
                break
            if samples.size:
                self.processor.push(samples)
            if self.metrics is not None and (self.ingest.late_frames != late_before or self.ingest.gap_s != gap_before):
                self.metrics.late_frames.inc(self.ingest.late_frames - late_before)
                self.metrics.gap_seconds.inc(self.ingest.gap_s - gap_before)
                late_before, gap_before = self.ingest.late_frames, self.ingest.gap_s
        if not self._closing:
            self._spawn(self.close("track ended"))

    # -- data channel --------------------------------------------------------------------------
    def _on_datachannel(self, channel) -> None:
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._spawn(self.close("data channel closed")) if not self._closing else None)
        if channel.readyState == "open":
            self._send_ready()
        else:
            channel.on("open", self._send_ready)

    def _send_ready(self) -> None:
        transcribing = self.processor is not None and not self.processor.paused
        self._send(protocol.Ready(peer_id=self.id, room=self.room.name, transcribing=transcribing,
                                  listen_only=self.listen_only).model_dump())
        if self.listen_only:
            self.room.subscribe(self.id, self._send, replay=True)

    def _on_message(self, raw) -> None:
        self.last_activity = self._loop.time()
        try:
            msg = protocol.parse_client_message(raw, self.settings.max_message_bytes)
        except protocol.ProtocolError as exc:
            if self.metrics is not None:
                self.metrics.protocol_errors.labels(exc.code).inc()
            self._send(events.Error(code=exc.code, message=str(exc)).model_dump(mode="json"))
            return
        proc = self.processor
        if isinstance(msg, protocol.Ping):
            self._send(protocol.Pong(id=msg.id).model_dump())
        elif proc is None:
            self._send(events.Error(code="listen_only", message=f"{msg.type} needs a microphone; this is a "
                                    "listen-only connection").model_dump(mode="json"))
        elif isinstance(msg, protocol.Session):
            proc.language = msg.language
            if msg.name is not None:
                self.options = self.options.model_copy(update={"name": msg.name})
        elif isinstance(msg, protocol.EnrollStart):
            proc.enroll_start(msg.name)
        elif isinstance(msg, protocol.EnrollStop):
            proc.enroll_stop()
        elif isinstance(msg, protocol.TranscribeStart):
            proc.resume()
        elif isinstance(msg, protocol.TranscribeStop):
            proc.pause()

    def _send(self, message: dict) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(message, ensure_ascii=False))

    # -- events from the processor (worker threads) ----------------------------------------------
    def _from_worker(self, event: events.Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._publish, event)
        except RuntimeError:  # the loop is gone (process shutting down)
            pass

    def _publish(self, event: events.Event) -> None:
        if isinstance(event, events.SpeechStarted):
            self.last_activity = self._loop.time()
        if self.metrics is not None:
            if isinstance(event, events.Final):
                self.metrics.utterances.inc()
            elif isinstance(event, events.Partial):
                self.metrics.partials.inc()
        if isinstance(event, _ROOM_EVENTS):
            self.room.publish(event, self.id, self.options.name)
        else:
            self._send(event.model_dump(mode="json"))

    # -- lifetime ------------------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_idle(self) -> None:
        timeout = self.settings.idle_timeout_s
        while not self._closing:
            await asyncio.sleep(min(1.0, timeout / 4))
            if self._loop.time() - self.last_activity > timeout:
                self._send(events.Error(code="idle_timeout", message=f"no speech or message for {timeout:g} s")
                           .model_dump(mode="json"))
                self._spawn(self.close("idle"))
                return

    async def _on_connection_state(self) -> None:
        if self.pc is not None and self.pc.connectionState in ("failed", "closed"):
            await self.close(f"connection {self.pc.connectionState}")

    async def close(self, reason: str = "closed") -> None:
        """Finalise the utterance in progress, deliver it, release everything. Idempotent."""
        if self._closing:
            await self.closed.wait()
            return
        self._closing = True
        log.info("closing call", extra={"peer": self.id, "reason": reason})
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        proc, self.processor = self.processor, None
        if proc is not None:
            # close() waits for the pool; its events come back through call_soon_threadsafe
            await asyncio.to_thread(proc.close, 60.0)
            await asyncio.sleep(0)
        self.room.unsubscribe(self.id)
        pc, self.pc = self.pc, None
        if pc is not None:
            pc.remove_all_listeners()
            with contextlib.suppress(Exception):
                await pc.close()
        self.channel = None
        self.closed.set()
        self._on_closed(self)
