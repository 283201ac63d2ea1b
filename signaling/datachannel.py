"""The server side of the data-channel protocol (:mod:`signaling.protocol`) for one call.

:class:`DataChannelSession` is the :class:`server.webrtc.peer.ChannelHandler` of every peer: it greets with
``ready``, validates each client message and turns it into an action on the call's speech processor; a bad
message gets an ``error`` event and the call goes on.
"""

from __future__ import annotations

import asyncio

from server.errors import CallscribeError, NotInRoom
from server.metrics import Metrics
from server.rooms.naming import SpeakerNaming
from server.stream import events
from server.webrtc.peer import CallPeer

from . import protocol
from .speakers_api import name_speaker


class DataChannelSession:
    """Protocol handling shared by all peers of an app (it keeps no per-call state).

    Args:
        max_message_bytes: larger messages are refused with ``message_too_large``.
        metrics: counts protocol errors by code.
        naming: names anonymous speakers (``name_speaker``); None refuses it.
    """

    def __init__(self, max_message_bytes: int, metrics: Metrics | None = None,
                 naming: SpeakerNaming | None = None) -> None:
        self.max_message_bytes = max_message_bytes
        self.metrics = metrics
        self.naming = naming
        self._tasks: set[asyncio.Task] = set()

    def opened(self, peer: CallPeer) -> None:
        transcribing = peer.processor is not None and not peer.processor.paused
        peer.send(protocol.Ready(peer_id=peer.id, room=peer.room.name, transcribing=transcribing,
                                 listen_only=peer.listen_only).model_dump())
        if peer.listen_only:
            peer.follow_room()

    def message(self, peer: CallPeer, raw: str | bytes) -> None:
        try:
            msg = protocol.parse_client_message(raw, self.max_message_bytes)
        except protocol.ProtocolError as exc:
            if self.metrics is not None:
                self.metrics.protocol_errors.labels(exc.code).inc()
            peer.send(events.Error(code=exc.code, message=str(exc)).model_dump(mode="json"))
            return
        proc = peer.processor
        if isinstance(msg, protocol.Ping):
            peer.send(protocol.Pong(id=msg.id).model_dump())
        elif isinstance(msg, protocol.NameSpeaker):
            task = asyncio.get_running_loop().create_task(self._name_speaker(peer, msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif proc is None:
            peer.send(events.Error(code="listen_only", message=f"{msg.type} needs a microphone; this is a "
                                   "listen-only connection").model_dump(mode="json"))
        elif isinstance(msg, protocol.Session):
            proc.language = msg.language
            if msg.name is not None:
                peer.caller = msg.name
                peer.room.join(peer.id, peer.caller)
        elif isinstance(msg, protocol.EnrollStart):
            proc.enroll_start(msg.name)
        elif isinstance(msg, protocol.EnrollStop):
            proc.enroll_stop()
        elif isinstance(msg, protocol.TranscribeStart):
            proc.resume()
        elif isinstance(msg, protocol.TranscribeStop):
            proc.pause()

    async def _name_speaker(self, peer: CallPeer, msg: protocol.NameSpeaker) -> None:
        room = peer.room.name
        try:
            if msg.room is not None and msg.room != room:
                raise NotInRoom(f"this connection is in room {room!r}, not {msg.room!r}")
            if self.naming is None:
                raise CallscribeError("naming speakers is not available on this server")
            ack = await name_speaker(self.naming, room, msg.speaker_id, msg.name, save=msg.save, extend=msg.extend)
        except CallscribeError as exc:
            peer.send(events.Error(code=exc.code, message=str(exc)).model_dump(mode="json"))
            return
        peer.send(ack.model_dump())
