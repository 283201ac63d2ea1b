"""Request and response bodies of the REST API, as pydantic models: the handlers validate and build their bodies
with them, and :mod:`signaling.openapi` generates the OpenAPI document's component schemas from the very same
classes (``@operation(body=…, response=…)``, :mod:`signaling.apidoc`).

Units: seconds (``*_s``), Unix seconds (``*_at``), cosine similarity in [-1, 1] (``score``, ``similarity``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.speaker.identify import Identification, ProfileMap
from server.speaker.identity import SpeakerKind
from server.speaker.profile import VoiceProfile
from server.stream.events import Final


class _Body(BaseModel):
    """A request body: unknown fields are an error (``400 bad_request``), never silently ignored."""

    model_config = ConfigDict(extra="forbid")


# -- errors --------------------------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable; the HTTP status follows from it (signaling/errors.py)",
                      examples=["not_found"])
    message: str = Field(description="for people; never parse it", examples=["no voice profile named 'Bob'"])


class Error(BaseModel):
    """The one error shape of every route, with a 4xx/5xx status."""

    error: ErrorBody


# -- voice profiles ------------------------------------------------------------------------------------------
class Profile(BaseModel):
    """A voice profile (its voiceprint stays on the server)."""

    id: int
    name: str = Field(description="1–64 characters; unique case-insensitively")
    speech_s: float = Field(description="seconds of speech behind the voiceprint, all enrollments together")
    enrollments: int = Field(description="how many recordings or live enrollments it was made from")
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, profile: VoiceProfile) -> Profile:
        return cls(id=profile.id, name=profile.name, speech_s=round(profile.speech_s, 2),
                   enrollments=profile.enrollments, created_at=profile.created_at, updated_at=profile.updated_at)


class ProfileList(BaseModel):
    profiles: list[Profile] = Field(description="by name, case-insensitively")


class ProfileChange(BaseModel):
    """One entry of a profile's history (``created``, ``extended``, ``renamed``; Unix seconds)."""

    action: Literal["created", "extended", "renamed", "deleted"]
    name: str = Field(description="the profile's name after the change")
    speech_s: float | None = Field(description="seconds of speech the enrollment added")
    detail: dict | None = Field(description='{"source"} for enrollments, {"from", "to"} for renames')
    created_at: float


class ProfileOne(BaseModel):
    profile: Profile
    history: list[ProfileChange] = Field(default_factory=list, description="oldest first")


class Enrolled(BaseModel):
    """An enrollment from an upload: the profile as it is now and what this upload added."""

    profile: Profile
    speech_s: float = Field(description="seconds of speech used from this upload (at most Settings.max_enroll_s)")
    similar_to: str | None = Field(
        None, description="another profile this voice already matches (cosine ≥ the identification threshold): "
        "probably the same person enrolled twice")
    similarity: float | None = Field(None, description="cosine similarity to `similar_to`")


class RenameRequest(_Body):
    name: str = Field(max_length=200, description="the new name (1–64 characters after trimming)")


# -- identify ------------------------------------------------------------------------------------------------
class ProfileScore(BaseModel):
    name: str
    profile_id: int
    score: float = Field(description="cosine similarity of the recording's voiceprint to the profile's")


class IdentifyResult(BaseModel):
    """Whose voice a recording is. ``speaker`` is the best profile when its score reaches ``threshold``, else
    ``"unknown"``; ``reason`` says why: ``match``, ``below_threshold``, ``no_profiles``, or ``too_short`` (less
    than ``Settings.min_identify_s`` of speech: not scored)."""

    speaker: str = Field(examples=["Alice", "unknown"])
    speaker_kind: Literal["profile", "unknown"]
    profile_id: int | None
    score: float | None = Field(description="the best profile's cosine similarity (null when not scored)")
    threshold: float = Field(description="Settings.speaker_threshold: the score a match needs")
    reason: Literal["match", "below_threshold", "no_profiles", "too_short"]
    scores: list[ProfileScore] = Field(description="every profile, best first (empty when not scored)")
    speech_s: float = Field(description="seconds of speech scored (at most Settings.max_enroll_s)")
    audio_s: float = Field(description="seconds of audio in the recording")

    @classmethod
    def of(cls, result: Identification, threshold: float, audio_s: float) -> IdentifyResult:
        who = result.decision.identity
        return cls(speaker=who.label, speaker_kind="profile" if who.kind == "profile" else "unknown",
                   profile_id=who.profile_id, score=None if result.decision.score is None
                   else round(result.decision.score, 4), threshold=threshold, reason=result.decision.reason,
                   scores=[ProfileScore(name=p.name, profile_id=p.id, score=round(s, 4)) for p, s in result.ranked],
                   speech_s=round(result.speech_s, 2), audio_s=round(audio_s, 2))


class BatchItem(BaseModel):
    """One file of a batch: its ``result``, or the ``error`` that file alone got (the others still count)."""

    filename: str
    result: IdentifyResult | None = None
    error: ErrorBody | None = None


class BatchResult(BaseModel):
    results: list[BatchItem] = Field(description="in upload order")


class MapPoint(BaseModel):
    name: str
    x: float
    y: float


class ClosePair(BaseModel):
    a: str
    b: str
    similarity: float = Field(description="cosine similarity of the two voiceprints")


class VoiceMap(BaseModel):
    """A 2-D picture of the voice profiles: the first two principal components (PCA) of their L2-normalised
    voiceprints, centred (distance in the plane ≈ distance between voiceprints, ``sqrt(2 − 2·cosine)``), and the
    pairs similar enough to be probably one voice."""

    points: list[MapPoint]
    close_pairs: list[ClosePair] = Field(description="cosine ≥ threshold, most similar first")
    threshold: float = Field(description="the similarity above which a pair is reported (bench/identify_eval.py)")

    @classmethod
    def of(cls, m: ProfileMap) -> VoiceMap:
        return cls(points=[MapPoint(name=n, x=x, y=y) for n, x, y in m.points],
                   close_pairs=[ClosePair(a=a, b=b, similarity=s) for a, b, s in m.close_pairs],
                   threshold=m.threshold)


# -- export --------------------------------------------------------------------------------------------------
ExportFormat = Literal["text", "json", "srt", "vtt", "rttm"]


class ExportQuery(BaseModel):
    format: ExportFormat = Field(description="text (chat lines), json, srt (SubRip), vtt (WebVTT) or rttm")


MAX_CLOCK_S = 30 * 86400.0
"""Stream times beyond this (30 days) are not a call's: refused, so that rendering never overflows."""


class ExportFinal(Final):
    """A ``final`` event as the data channel delivered it; a room's ``peer_id`` and ``caller`` are kept in the
    JSON export, other unknown fields are ignored. ``start`` and ``end`` are stream seconds, 0 to 30 days."""

    model_config = ConfigDict(extra="ignore")
    start: float = Field(ge=0, le=MAX_CLOCK_S)
    end: float = Field(ge=0, le=MAX_CLOCK_S)
    peer_id: str | None = None
    caller: str | None = None


class ExportRequest(_Body):
    finals: list[ExportFinal]
    meta: dict[str, Any] = Field(default_factory=dict, description="copied into the JSON export; `room` names "
                                 "the file (Content-Disposition), `file` the RTTM's recording")


# -- rooms' speakers -----------------------------------------------------------------------------------------
class SpeakerSummary(BaseModel):
    speaker_id: str | None = Field(examples=["anon:1"])
    speaker: str = Field(description="the label the room shows", examples=["Speaker 1"])
    speaker_kind: SpeakerKind
    speech_s: float
    utterances: int


class SpeakerList(BaseModel):
    speakers: list[SpeakerSummary]


class NameRequest(_Body):
    name: str = Field(max_length=200)
    save: bool = Field(False, description="also save the speaker's voice as a voice profile")
    extend: bool = Field(False, description="with save: add to the existing profile of that name")


class SpeakerNamedBody(BaseModel):
    speaker_id: str
    name: str
    profile_id: int | None = Field(description="the saved profile, when `save` was given")


# -- operations (signaling/app.py) ---------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool = Field(description="the models are loaded (503 while not)")
    peers: int
    queue: int = Field(description="decode jobs waiting for a worker")
