"""The data-channel protocol, version 4: JSON text messages, one object each, discriminated by ``type``.

Client → server (validated with pydantic; anything else gets an ``error`` event and the session goes on):

================  ==========================================================================================
``session``       ``{"language": "en" | null, "name": str | null}`` — change the session options
``enroll_start``  ``{"name": str, "add": bool}`` — start collecting the microphone's speech for voice profile
                  ``name``; an existing name is refused (``error name_taken``) unless ``add`` is true (then the
                  speech is added to that profile). Collection stops by itself after ``Settings.max_enroll_s``
                  of speech (the enrollment then completes at once; a later ``enroll_stop`` is a no-op)
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

What a connection may do depends on the credentials of its offer (:mod:`signaling.auth`): a viewer token's
connection cannot ``enroll_start`` nor ``name_speaker`` (``error forbidden``); ``ready.grants`` lists what is
allowed (null: everything, access control off or the operator key).

Every message is answered or refused, never dropped and never fatal to the call: text that is not JSON, JSON
that is not a valid message, strings holding lone UTF-16 surrogates (``"\\ud800"``: they cannot be sent back as
UTF-8), non-finite numbers (``NaN``, ``1e400``), nesting deeper than :data:`MAX_DEPTH` and binary messages all
get an ``error`` event.

Server → client: ``ready`` once the peer is set up, then the events of :mod:`server.stream.events`
(``speech_started``, ``partial``, ``final``, ``sentiment``, ``speaker_relabeled``, ``enrollment_*``, ``error``),
``transcription``, ``room`` (:class:`server.rooms.hub.RoomState`), ``speaker_named`` and ``pong``.
The full list with examples is in ``docs/protocol.md``. Version 4.1 (additive, ``ready.protocol`` stays 4) adds the
``sentiment`` update after each final and ``final.sentiment`` on replayed finals. Version 4 adds access control
(``ready.grants``, ``forbidden`` and ``rate_limited`` errors), ``enroll_start.add`` (an existing name is refused
without it), the enrollment cap, and refuses lone surrogates, non-finite numbers and deep nesting. Version 3 added
anonymous speakers (``speaker_kind: "anonymous"``, ``speaker_id: "anon:N"``), ``speaker_relabeled``,
``name_speaker`` / ``speaker_named`` and ``room``; version 2 made ``speaker_id`` a stable string id.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 4
LANGUAGE_PATTERN = r"^[a-z]{2,3}$"
ROOM_PATTERN = r"^[\w.-]+$"
"""Room names: letters, digits, ``_``, ``.``, ``-`` (1–64 characters)."""
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a client message."""
MAX_TOKEN_CHARS = 4096


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionOptions(_Message):
    """Options of a call, given with the offer (JSON body or WHIP query) or later in a ``session`` message."""

    room: str | None = Field(None, min_length=1, max_length=64, pattern=ROOM_PATTERN)
    name: str | None = Field(None, max_length=64)
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN)
    transcribe: bool = True


class OfferRequest(SessionOptions):
    """The body of ``POST /api/offer``: the SDP offer, the session options and, when access control is on, a
    room token (or send it as ``Authorization: Bearer``)."""

    sdp: str = Field(max_length=64 * 1024)
    type: str
    token: str | None = Field(None, max_length=MAX_TOKEN_CHARS)


class OfferAnswer(BaseModel):
    """The answer to ``POST /api/offer``. ``session_url`` is the call's unguessable capability: ``DELETE`` it to
    hang up (only its holder can; ``peer_id`` is public in room events and ends nothing)."""

    sdp: str
    type: Literal["answer"] = "answer"
    peer_id: str
    room: str
    session_url: str


class IceServersAnswer(BaseModel):
    """``GET /api/ice-servers``: RTCIceServer dicts for the page's ``RTCPeerConnection``."""

    iceServers: list[dict[str, Any]]  # the WebRTC API's name


class Session(_Message):
    type: Literal["session"]
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN)
    name: str | None = Field(None, max_length=64)


class EnrollStart(_Message):
    type: Literal["enroll_start"]
    name: str = Field(min_length=1, max_length=64)
    add: bool = False


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
    grants: list[str] | None = None


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


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _check_tree(data: Any) -> None:
    """Raises ProtocolError ``invalid_message`` for nesting beyond :data:`MAX_DEPTH` or a string (value or key)
    that holds a lone surrogate (such text cannot be encoded as UTF-8, so it could never be sent back)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            strings: tuple = (value,)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise ProtocolError("invalid_message", f"nested deeper than {MAX_DEPTH} levels")
            strings = tuple(value) if isinstance(value, dict) else ()  # JSON object keys are strings
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
        else:
            continue
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ProtocolError("invalid_message", "strings must be valid Unicode (a lone surrogate such as "
                                    "\\ud800 is not)") from None


def _shown(value: Any, limit: int = 40) -> str:
    """``repr`` of a client value for an error message, cut to ``limit`` characters (ASCII only)."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_client_message(raw: str | bytes, max_bytes: int) -> ClientMessage:
    """Validate one incoming data-channel message (``max_bytes``: the largest accepted, in UTF-8 bytes).

    Never raises anything but :class:`ProtocolError`, whatever ``raw`` holds.

    Raises:
        ProtocolError: ``message_too_large``, ``bad_json`` (not JSON text: also binary messages, ``NaN``,
            numbers out of range), ``unknown_type`` or ``invalid_message`` (not an object with a known
            ``type``, invalid fields, lone surrogates, nesting deeper than :data:`MAX_DEPTH`).
    """
    if not isinstance(raw, str | bytes | bytearray | memoryview):
        raise ProtocolError("bad_json", f"messages are JSON text, not {type(raw).__name__}")
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > max_bytes:
        raise ProtocolError("message_too_large", f"message of {size} bytes; the limit is {max_bytes}")
    if not isinstance(raw, str):
        raise ProtocolError("bad_json", "binary messages are not part of the protocol; send JSON text")
    try:
        data = json.loads(raw, parse_float=_finite, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise ProtocolError("invalid_message", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # NaN / Infinity, 1e400, integers beyond Python's digit limit
        raise ProtocolError("bad_json", f"not JSON: {str(exc)[:80]}") from None
    _check_tree(data)
    if not isinstance(data, dict) or "type" not in data:
        raise ProtocolError("invalid_message", 'a message is a JSON object with a "type"')
    if not isinstance(data["type"], str):
        raise ProtocolError("invalid_message", f'"type" must be a string, not {_shown(data["type"])}')
    try:
        return _CLIENT.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "union_tag_invalid":
            raise ProtocolError("unknown_type", f"unknown message type {_shown(data['type'])}") from None
        where = ".".join(str(p) for p in first["loc"][1:]) or "message"
        raise ProtocolError("invalid_message", f"{data['type']}: {where}: {first['msg']}") from None
