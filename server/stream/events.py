"""The typed events a stream produces — one definition, used by the CLI, the server and the tests.

Every event serialises to a JSON object with a ``type`` discriminator (``event.model_dump(mode="json")``).
Times are seconds on the stream clock (0 = first sample of the stream) unless named ``server_time``
(Unix epoch seconds).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..asr.types import Word
from ..speaker.identity import SpeakerIdentity, SpeakerKind

__all__ = ["EVENT_ADAPTER", "Event", "Final", "SentimentMark", "SentimentUpdate", "Word", "relabeled"]


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


SentimentLabel = Literal["positive", "negative", "neutral"]


class SentimentMark(BaseModel):
    """A final's sentiment: ``label`` and ``score``, the classifier's confidence in it (0..1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    label: SentimentLabel
    score: float = Field(ge=0, le=1)


class Final(_Event):
    """The result of one finished utterance.

    The speaker is a :class:`server.speaker.identity.SpeakerIdentity` spread over three fields (protocol 2):
    ``speaker`` the display label (a voice profile's name, ``"Speaker 2"`` for an anonymous voice, or
    ``"unknown"``), ``speaker_id`` its stable id (``"profile:3"``, ``"anon:2"`` — stable within a room; None
    when unknown), ``speaker_kind`` ``profile`` | ``anonymous`` | ``unknown``; :attr:`identity` gives them back
    as one object. Later corrections come as :class:`SpeakerRelabeled`. Words are
    :class:`server.asr.types.Word` on the stream clock. ``score`` is the cosine similarity behind the label
    (the best profile's, or for anonymous speakers the best centroid's; None when not scored);
    ``speaker_reason`` says how the label was chosen (``match``, ``below_threshold``, ``too_short``,
    ``carried``, ``no_profiles``, ``cluster``, ``new_speaker``, ``uncertain``; :mod:`server.speaker.identify`;
    ``no_speech`` for a final whose text the guards emptied).
    When two people spoke back to back inside one utterance, it comes as several finals with the same
    ``utterance_id`` and ``turn`` 0, 1, …; ``last_turn`` marks the last of them (the utterance is settled).
    ``sentiment`` is None as the final is sent live (its sentiment follows as a :class:`SentimentUpdate`);
    finals read back (file mode, a room's backlog, stored sessions) carry it once it is known.
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
    sentiment: SentimentMark | None = None

    @property
    def identity(self) -> SpeakerIdentity:
        return SpeakerIdentity(self.speaker_kind, self.speaker_id, self.speaker)


class SpeakerRelabeled(_Event):
    """Every earlier final whose ``speaker_id`` is ``from_id`` now belongs to the speaker given here.

    ``reason``: ``merged`` (two anonymous speakers were found to be one), ``enrolled`` (a voice profile
    enrolled meanwhile matches the speaker), ``named`` (someone named the speaker; ``speaker_id`` equals
    ``from_id`` unless it was saved as a voice profile). Finals are never rewritten in place: clients apply
    this event to what they show, and a room replays it after its backlog finals.
    """

    type: Literal["speaker_relabeled"] = "speaker_relabeled"
    from_id: str
    speaker: str
    speaker_id: str
    speaker_kind: SpeakerKind
    reason: Literal["merged", "enrolled", "named"]
    server_time: float = Field(default_factory=time.time)

    @classmethod
    def of(cls, from_id: str, identity: SpeakerIdentity, reason: str) -> SpeakerRelabeled:
        return cls(from_id=from_id, speaker=identity.label, speaker_id=identity.id or "",
                   speaker_kind=identity.kind, reason=reason)


class SentimentUpdate(_Event):
    """The sentiment of an earlier final (the one of this stream with the same ``utterance_id`` and ``turn``),
    sent once it is known so that the final itself is never delayed. At most one per final; none for finals
    without text, in an unsupported language, or with sentiment turned off (``Settings.sentiment``).
    ``score`` is the classifier's confidence in ``label`` (0..1)."""

    type: Literal["sentiment"] = "sentiment"
    utterance_id: int
    turn: int = 0
    label: SentimentLabel
    score: float = Field(ge=0, le=1)

    @property
    def mark(self) -> SentimentMark:
        return SentimentMark(label=self.label, score=self.score)


class EnrollmentStarted(_Event):
    type: Literal["enrollment_started"] = "enrollment_started"
    name: str


class EnrollmentCompleted(_Event):
    """A voice profile was created or extended; ``speech_s`` is the speech used this time. ``similar_to``
    names another profile whose voice this enrollment matched (cosine ``similarity`` at or above the
    identification threshold): probably the same person enrolled twice."""

    type: Literal["enrollment_completed"] = "enrollment_completed"
    name: str
    profile_id: int
    speech_s: float
    similar_to: str | None = None
    similarity: float | None = None


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
    SpeechStarted | Partial | Final | SpeakerRelabeled | SentimentUpdate | EnrollmentStarted | EnrollmentCompleted
    | EnrollmentFailed | Transcription | Error,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def relabeled(stream: Iterable[Event]) -> list[Final]:
    """The finals of an event stream as they stand after every later :class:`SpeakerRelabeled` (what a page
    shows at the end of a call; what file mode writes). A relabel applies to the finals before it; a
    :class:`SentimentUpdate` sets the ``sentiment`` of the latest earlier final with its ``utterance_id`` and
    ``turn`` (the events of one stream)."""
    finals: list[Final] = []
    for event in stream:
        if isinstance(event, Final):
            finals.append(event)
        elif isinstance(event, SpeakerRelabeled):
            update = {"speaker": event.speaker, "speaker_id": event.speaker_id, "speaker_kind": event.speaker_kind}
            finals = [f.model_copy(update=update) if f.speaker_id == event.from_id else f for f in finals]
        elif isinstance(event, SentimentUpdate):
            for i in range(len(finals) - 1, -1, -1):
                f = finals[i]
                if f.utterance_id == event.utterance_id and f.turn == event.turn:
                    finals[i] = f.model_copy(update={"sentiment": event.mark})
                    break
    return finals
"""Validates a dict or JSON into the right event class: ``EVENT_ADAPTER.validate_json(raw)``."""
