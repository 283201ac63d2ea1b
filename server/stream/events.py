"""The typed events a stream produces — one definition, used by the CLI, the server and the tests.

Every event serialises to a JSON object with a ``type`` discriminator (``event.model_dump(mode="json")``).
Times are seconds on the stream clock (0 = first sample of the stream) unless named ``server_time``
(Unix epoch seconds).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..asr.types import Word
from ..speaker.identity import SpeakerIdentity, SpeakerKind

__all__ = ["EVENT_ADAPTER", "Event", "Final", "Word"]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpeechStarted(_Event):
    """An utterance began (endpointing confirmed speech)."""

    type: Literal["speech_started"] = "speech_started"
    utterance_id: int
    start: float


class Partial(_Event):
    """Interim hypothesis of an open utterance; replaced by later partials and by its ``final``."""

    type: Literal["partial"] = "partial"
    utterance_id: int
    start: float
    end: float
    text: str
    server_time: float = Field(default_factory=time.time)


class Final(_Event):
    """The result of one finished utterance.

    The speaker is a :class:`server.speaker.identity.SpeakerIdentity` spread over three fields (protocol 2):
    ``speaker`` the display label (a voice profile's name, or ``"unknown"``), ``speaker_id`` its stable id
    (``"profile:3"``; None when unknown), ``speaker_kind`` ``profile`` | ``anonymous`` | ``unknown``;
    :attr:`identity` gives them back as one object. Words are :class:`server.asr.types.Word` on the stream
    clock. ``score`` is the best cosine similarity against the enrolled profiles (None when
    the utterance was too short to score or no profile exists); ``speaker_reason`` says how the label
    was chosen (``match``, ``below_threshold``, ``too_short``, ``carried``, ``no_profiles``).
    When two people spoke back to back inside one utterance, it comes as several finals with the same
    ``utterance_id`` and ``turn`` 0, 1, …; ``last_turn`` marks the last of them (the utterance is settled).
    """

    type: Literal["final"] = "final"
    utterance_id: int
    turn: int = 0
    last_turn: bool = True
    start: float
    end: float
    speaker: str
    speaker_id: str | None
    speaker_kind: SpeakerKind
    score: float | None
    speaker_reason: str
    text: str
    language: str | None
    words: list[Word] | None = None
    end_reason: Literal["silence", "max_length", "stream_end"] = "silence"
    server_time: float = Field(default_factory=time.time)

    @property
    def identity(self) -> SpeakerIdentity:
        return SpeakerIdentity(self.speaker_kind, self.speaker_id, self.speaker)


class EnrollmentStarted(_Event):
    type: Literal["enrollment_started"] = "enrollment_started"
    name: str


class EnrollmentCompleted(_Event):
    """A voice profile was created or extended; ``speech_s`` is the speech used this time."""

    type: Literal["enrollment_completed"] = "enrollment_completed"
    name: str
    profile_id: int
    speech_s: float


class EnrollmentFailed(_Event):
    type: Literal["enrollment_failed"] = "enrollment_failed"
    name: str
    reason: str


class Transcription(_Event):
    """Transcription was started or stopped; after ``active: false`` no more finals of the stopped part come."""

    type: Literal["transcription"] = "transcription"
    active: bool


class Error(_Event):
    """Something went wrong; the stream goes on. ``code`` is machine-readable (e.g. ``server_busy``)."""

    type: Literal["error"] = "error"
    code: str
    message: str


Event = Annotated[
    SpeechStarted | Partial | Final | EnrollmentStarted | EnrollmentCompleted | EnrollmentFailed | Transcription
    | Error,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
"""Validates a dict or JSON into the right event class: ``EVENT_ADAPTER.validate_json(raw)``."""
