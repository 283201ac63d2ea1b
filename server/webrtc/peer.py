"""One call: an aiortc ``RTCPeerConnection``, its audio track and data channel, its speech processor.

Lifetime: created for an SDP offer, answered, then fed by the remote audio track (drained continuously, so
aiortc's receive queue never grows). Events go to the caller's data channel and to the call's room.
It closes on ``close()`` (HTTP DELETE, shutdown), on ICE/DTLS failure, when the data channel or track ends,
or after ``idle_timeout_s`` with neither speech nor messages (a paused call whose microphone still sends audio
is not idle). Closing finalises the utterance in progress
and delivers it to whoever still listens (the room), then drops every reference: aiortc keeps peer
connections alive while anything points at them (aiortc issues #904 and #925).

The peer is transport only: what a data-channel message means is decided by the :class:`ChannelHandler` it is
given (:class:`signaling.datachannel.DataChannelSession` speaks protocol 2), so this layer knows no wire
format beyond "JSON text".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Protocol

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from ..audio.ingest import TrackIngest
from ..audio.recording import SUFFIX, AudioRecorder
from ..compute.runtime import SpeechRuntime
from ..errors import AudioDecodeError
from ..metrics import Metrics
from ..rooms.hub import Room
from ..settings import Settings
from ..stream import events
from ..stream.processor import StreamObserver, StreamProcessor
from .ice import IceServers, rtc_configuration

log = logging.getLogger(__name__)

_ROOM_EVENTS = (events.SpeechStarted, events.Partial, events.Final, events.SpeakerRelabeled, events.SentimentUpdate)
"""What the whole room sees; enrollment results, errors and acknowledgements go to the caller alone."""


class ChannelHandler(Protocol):
    """Gives meaning to a peer's data channel (the wire protocol lives above this layer)."""

    def opened(self, peer: CallPeer) -> None:
        """The data channel is open: greet the client."""

    def message(self, peer: CallPeer, raw: str | bytes) -> None:
        """One message arrived from the client."""


class CallPeer:
    """A caller's WebRTC session.

    Args:
        runtime: shared models and pool.
        room: the room the call belongs to.
        on_closed: called once when the call has been torn down.
        handler: what the data channel's messages mean.
        ice: the ICE servers (TURN credentials are minted for ``server-<peer id>``).
        settings: limits of this call (idle timeout); default: the runtime's.
        language: ISO 639-1 code of the caller's speech, or None to detect.
        caller: the caller's display name (shown to the room), or None.
        transcribe: start transcribing at once (else only after a ``resume()``).
        listen_only: a room viewer (data channel only, no microphone): it first receives the room's backlog,
            then its live events; it has no speech processor and no idle timeout. Calls with a microphone
            join the room's caller list (:meth:`Room.join`) and share its anonymous speakers.
        observer: passed to the call's :class:`StreamProcessor`.
        grants: what the caller's credentials allow on the data channel (e.g. ``{"enroll", "name_speaker"}``);
            None = everything (no access control). The wire protocol above this layer checks them.
    """

    def __init__(self, runtime: SpeechRuntime, room: Room, on_closed: Callable[[CallPeer], None], *,
                 handler: ChannelHandler, ice: IceServers, metrics: Metrics | None = None,
                 settings: Settings | None = None, language: str | None = None, caller: str | None = None,
                 transcribe: bool = True, listen_only: bool = False,
                 observer: StreamObserver | None = None, grants: frozenset[str] | None = None) -> None:
        settings = settings or runtime.settings
        self.id = secrets.token_urlsafe(9)
        self.room = room
        self.caller = caller
        self.settings = settings
        self.metrics = metrics
        self.handler = handler
        self.grants = grants
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self.pc: RTCPeerConnection | None = RTCPeerConnection(rtc_configuration(ice.for_user(f"server-{self.id}")))
        self.channel = None
        self.ingest = TrackIngest()
        self.listen_only = listen_only
        self.processor: StreamProcessor | None = None
        if not listen_only:
            self.processor = StreamProcessor(
                runtime, self._from_worker, language=language, stream_id=self.id, observer=observer,
                on_latency=metrics.decode_latency.observe if metrics else None, speakers=room.speakers,
            )
            if not transcribe:
                self.processor.pause()  # its "transcription: false" event goes nowhere: no channel yet
        self._tasks: set[asyncio.Task] = set()
        self.closed = asyncio.Event()
        self._closing = False
        self.connected = False
        self.last_activity = self._loop.time()
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.recorder: AudioRecorder | None = None
        if not listen_only:
            if settings.record_audio:
                self.recorder = self._start_recording(settings)
            room.subscribe(self.id, self.send, replay=False)
            room.join(self.id, caller, language=language,
                      audio_path=str(self.recorder.path) if self.recorder else None)

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
        self._spawn(self._watch_connect())
        return self.pc.localDescription

    def _start_recording(self, settings: Settings) -> AudioRecorder | None:
        path = settings.recordings_dir / f"{self.id}{SUFFIX[settings.recording_format]}"
        try:
            return AudioRecorder(path, settings.recording_format)
        except AudioDecodeError as exc:  # the call goes on without a recording
            log.error("cannot record the call", extra={"peer": self.id, "error": str(exc)})
            return None

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
                if self.processor.paused:  # a deliberate pause with the microphone on is not an idle call
                    self.last_activity = self._loop.time()
                elif self.recorder is not None:
                    self.recorder.write(samples)
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
            self._opened()
        else:
            channel.on("open", self._opened)

    def _opened(self) -> None:
        self.handler.opened(self)

    def _on_message(self, raw) -> None:
        self.last_activity = self._loop.time()
        self.handler.message(self, raw)

    def follow_room(self) -> None:
        """Subscribe this (listen-only) connection to its room: the backlog first, then live events."""
        self.room.subscribe(self.id, self.send, replay=True)

    def send(self, message: dict) -> None:
        """Send one JSON-ready message on the data channel (dropped while it is not open)."""
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            text = json.dumps(message, ensure_ascii=False)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate (e.g. echoed from a client's id): send it \u-escaped
                text = json.dumps(message, ensure_ascii=True)
            channel.send(text)

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
            self.room.publish(event, self.id, self.caller)
        else:
            self.send(event.model_dump(mode="json"))

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
                self.send(events.Error(code="idle_timeout", message=f"no speech or message for {timeout:g} s")
                           .model_dump(mode="json"))
                self._spawn(self.close("idle"))
                return

    async def _watch_connect(self) -> None:
        """Offers whose ICE/DTLS never completes must not hold a caller slot (or a viewer entry) for long."""
        await asyncio.sleep(self.settings.connect_timeout_s)
        if not self._closing and not self.connected:
            self._spawn(self.close("never connected"))

    async def _on_connection_state(self) -> None:
        if self.pc is not None and self.pc.connectionState == "connected":
            self.connected = True
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
        self.room.leave(self.id, reason)
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                self.recorder.close()
        pc, self.pc = self.pc, None
        if pc is not None:
            pc.remove_all_listeners()
            with contextlib.suppress(Exception):
                await pc.close()
        self.channel = None
        self.closed.set()
        self._on_closed(self)
