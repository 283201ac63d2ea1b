"""The data-channel protocol, version 3: JSON text messages, one object each, discriminated by ``type``.

Client → server (validated with pydantic; anything else gets an ``error`` event and the session goes on):

================  ==========================================================================================
``session``       ``{"language": "en" | null, "name": str | null}`` — change the session options
``enroll_start``  ``{"name": str}`` — start collecting the microphone's speech for voice profile ``name``
``enroll_stop``   ``{}`` — embed and store it → ``enrollment_completed`` or ``enrollment_failed``
``transcribe_start`` / ``transcribe_stop``  ``{}`` — (re)start or stop transcription (stop finalises the open
                  utterance) → ``transcription {"active": bool}``
``name_speaker``  ``{"speaker_id": "anon:2", "name": str, "save": bool, "extend": bool, "room"?: str}`` — name
                  an anonymous speaker of the connection's room (callers and viewers); with ``save`` its voice
                  becomes a profile (``extend``: add to an existing one) → ``speaker_named`` to the requester,
                  ``speaker_relabeled`` to the room, or an ``error`` (``not_found``, ``name_taken``,
                  ``invalid_name``, ``not_in_room``, ``not_anonymous``, ``profile_error``)
``ping``          ``{"id": any}`` → ``pong {"id": …}``
================  ==========================================================================================

Server → client: ``ready`` once the peer is set up, then the events of :mod:`server.stream.events`
(``speech_started``, ``partial``, ``final``, ``speaker_relabeled``, ``enrollment_*``, ``error``),
``transcription``, ``room`` (:class:`server.rooms.hub.RoomState`), ``speaker_named`` and ``pong``.
The full list with examples is in ``docs/protocol.md``. Version 3 (this one) adds anonymous speakers
(``speaker_kind: "anonymous"``, ``speaker_id: "anon:N"``), ``speaker_relabeled``, ``name_speaker`` /
``speaker_named`` and ``room``; version 2 made ``speaker_id`` a stable string id.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 3
LANGUAGE_PATTERN = r"^[a-z]{2,3}$"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionOptions(_Message):
    """Options of a call, given with the offer (JSON body or WHIP query) or later in a ``session`` message."""

    room: str | None = Field(None, max_length=64, pattern=r"^[\w.-]+$")
    name: str | None = Field(None, max_length=64)
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN)
    transcribe: bool = True


class Session(_Message):
    type: Literal["session"]
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN)
    name: str | None = Field(None, max_length=64)


class EnrollStart(_Message):
    type: Literal["enroll_start"]
    name: str = Field(min_length=1, max_length=64)


class EnrollStop(_Message):
    type: Literal["enroll_stop"]


class TranscribeStart(_Message):
    type: Literal["transcribe_start"]


class TranscribeStop(_Message):
    type: Literal["transcribe_stop"]


class NameSpeaker(_Message):
    type: Literal["name_speaker"]
    speaker_id: str = Field(min_length=1, max_length=64)
    name: str = Field(max_length=200)
    save: bool = False
    extend: bool = False
    room: str | None = Field(None, max_length=64)


class Ping(_Message):
    type: Literal["ping"]
    id: Any = None


ClientMessage = Annotated[Session | EnrollStart | EnrollStop | TranscribeStart | TranscribeStop | NameSpeaker
                          | Ping, Field(discriminator="type")]
_CLIENT = TypeAdapter(ClientMessage)


class Ready(_Message):
    type: Literal["ready"] = "ready"
    protocol: int = PROTOCOL_VERSION
    peer_id: str
    room: str
    transcribing: bool
    listen_only: bool = False


class SpeakerNamed(_Message):
    """Acknowledges a ``name_speaker`` (to the requester; the room gets the ``speaker_relabeled``)."""

    type: Literal["speaker_named"] = "speaker_named"
    speaker_id: str
    name: str
    profile_id: int | None


class Pong(_Message):
    type: Literal["pong"] = "pong"
    id: Any = None


class ProtocolError(ValueError):
    """A message that is not valid protocol: ``code`` is sent back in an ``error`` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_client_message(raw: str | bytes, max_bytes: int) -> ClientMessage:
    """Validate one incoming data-channel message.

    Raises:
        ProtocolError: ``message_too_large``, ``bad_json``, ``unknown_type`` or ``invalid_message``.
    """
    size = len(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ProtocolError("message_too_large", f"message of {size} bytes; the limit is {max_bytes}")
    if isinstance(raw, bytes):
        raise ProtocolError("bad_json", "binary messages are not part of the protocol; send JSON text")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or "type" not in data:
        raise ProtocolError("invalid_message", 'a message is a JSON object with a "type"')
    try:
        return _CLIENT.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "union_tag_invalid":
            raise ProtocolError("unknown_type", f"unknown message type {data['type']!r}") from None
        where = ".".join(str(p) for p in first["loc"][1:]) or "message"
        raise ProtocolError("invalid_message", f"{data['type']}: {where}: {first['msg']}") from None
