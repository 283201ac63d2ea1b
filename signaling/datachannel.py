"""The server side of the data-channel protocol (:mod:`signaling.protocol`) for one call.

:class:`DataChannelSession` is the :class:`server.webrtc.peer.ChannelHandler` of every peer: it greets with
``ready``, validates each client message and turns it into an action on the call's speech processor; a bad
message gets an ``error`` event and the call goes on. What a connection may do is its peer's ``grants`` (from the
offer's credentials, :func:`signaling.auth.grants`; None = everything): ``enroll_start`` needs ``enroll``,
``name_speaker`` needs ``name_speaker``, else ``error forbidden``. Enrollments count against the caller's
address (:mod:`signaling.limits`): over the limit, ``error rate_limited``.
"""

from __future__ import annotations

import asyncio
import logging

from server.errors import CallscribeError, NotInRoom
from server.metrics import Metrics
from server.rooms.naming import SpeakerNaming
from server.stream import events
from server.webrtc.peer import CallPeer

from . import protocol
from .limits import RateLimits
from .speakers_api import name_speaker

log = logging.getLogger(__name__)


class DataChannelSession:
    """Protocol handling shared by all peers of an app (it keeps no per-call state).

    Args:
        max_message_bytes: larger messages are refused with ``message_too_large``.
        metrics: counts protocol errors by code.
        naming: names anonymous speakers (``name_speaker``); None refuses it.
        limits: rate limits for ``enroll_start`` (per the address registered with :meth:`register`); None: none.
    """

    def __init__(self, max_message_bytes: int, metrics: Metrics | None = None,
                 naming: SpeakerNaming | None = None, limits: RateLimits | None = None) -> None:
        self.max_message_bytes = max_message_bytes
        self.metrics = metrics
        self.naming = naming
        self.limits = limits
        self._addresses: dict[str, str] = {}
        self._tasks: set[asyncio.Task] = set()

    def register(self, peer_id: str, address: str | None) -> None:
        """The client address a call's enrollments count against (None: not limited)."""
        if address is not None:
            self._addresses[peer_id] = address

    def forget(self, peer_id: str) -> None:
        self._addresses.pop(peer_id, None)

    def opened(self, peer: CallPeer) -> None:
        transcribing = peer.processor is not None and not peer.processor.paused
        grants = None if peer.grants is None else sorted(peer.grants)
        peer.send(protocol.Ready(peer_id=peer.id, room=peer.room.name, transcribing=transcribing,
                                 listen_only=peer.listen_only, grants=grants).model_dump())
        if peer.listen_only:
            peer.follow_room()

    def message(self, peer: CallPeer, raw: str | bytes) -> None:
        """Handle one client message: act on it, answer it, or send an ``error`` event. Never raises (a message
        cannot end the call): an unexpected failure is logged and answered with ``error internal_error``."""
        try:
            self._message(peer, raw)
        except Exception:  # whatever a client sends, its call goes on
            log.exception("data-channel message failed", extra={"peer": peer.id})
            self._error(peer, "internal_error", "the server could not handle this message")

    def _error(self, peer: CallPeer, code: str, message: str) -> None:
        if self.metrics is not None:
            self.metrics.protocol_errors.labels(code).inc()
        peer.send(events.Error(code=code, message=message).model_dump(mode="json"))

    def _allowed(self, peer: CallPeer, grant: str, what: str) -> bool:
        if peer.grants is None or grant in peer.grants:
            return True
        self._error(peer, "forbidden", f"this connection's token does not allow {what} (it needs a speaker token "
                    f"for room {peer.room.name!r})")
        return False

    def _message(self, peer: CallPeer, raw: str | bytes) -> None:
        try:
            msg = protocol.parse_client_message(raw, self.max_message_bytes)
        except protocol.ProtocolError as exc:
            self._error(peer, exc.code, str(exc))
            return
        proc = peer.processor
        if isinstance(msg, protocol.Ping):
            peer.send(protocol.Pong(id=msg.id).model_dump())
        elif isinstance(msg, protocol.NameSpeaker):
            if not self._allowed(peer, "name_speaker", "naming speakers"):
                return
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
            if not self._allowed(peer, "enroll", "enrolling voices"):
                return
            address = self._addresses.get(peer.id)
            if self.limits is not None and address is not None:
                wait_s = self.limits.hit("enroll", address)
                if wait_s is not None:
                    self._error(peer, "rate_limited", str(self.limits.refuse("enroll", wait_s)))
                    return
            proc.enroll_start(msg.name, add=msg.add)
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
        except Exception:  # a failure here must not go unanswered (nor unlogged)
            log.exception("naming a speaker failed", extra={"peer": peer.id})
            self._error(peer, "internal_error", "the server could not name this speaker")
            return
        peer.send(ack.model_dump())
