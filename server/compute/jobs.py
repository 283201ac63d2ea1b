"""Typed model jobs: what a stream asks the model workers to do, and how urgent it is.

Each job names its kind (and with it a priority class), the audio it works on, and the stream and utterance it
belongs to, so the pool can order, refuse, count and (later) batch work by kind, and observers (benchmarks,
metrics) can attribute it without reaching into the objects that submitted it.

Priority classes, most urgent first: ``FINAL`` (a user waits for this result), ``ENROLL`` (a one-off
enrollment), ``SENTIMENT`` (the update that follows a final), ``PARTIAL`` (optional: refused unless a worker is
idle, so it never delays a final), ``ANALYSIS`` (background: one region of a recording-analysis job; it never
makes the pool look busy to admission control).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

import numpy as np


class Priority(IntEnum):
    """Lower runs first; ties run in submission order."""

    FINAL = 0
    ENROLL = 1
    SENTIMENT = 2
    PARTIAL = 3
    ANALYSIS = 4


@dataclass(eq=False)
class Job:
    """Base of all model jobs. ``stream_id``/``utterance_id`` tag the work for observers (may be empty)."""

    priority: ClassVar[Priority]
    optional: ClassVar[bool] = False
    background: ClassVar[bool] = False
    """Background work (recording analysis) waits behind everything else and is not counted as load."""
    stream_id: str = field(default="", kw_only=True)
    utterance_id: int | None = field(default=None, kw_only=True)

    @property
    def kind(self) -> str:
        return self.priority.name.lower()


@dataclass(eq=False)
class FinalJob(Job):
    """Speaker work then Whisper on one finished utterance.

    ``audio`` is ``float32[n]`` at 16 kHz; ``identify`` is False when the utterance is too short to identify
    (no embedding is computed); ``cluster``: the stream places voices that match no profile among anonymous
    speakers, so speaker work is needed even when no profile exists; ``language`` an ISO 639-1 code or None to
    detect; ``language_hint`` the stream's established language, kept when detection is unsure but ranks it first
    (:meth:`server.asr.engine.WhisperEngine.transcribe`).
    """

    priority: ClassVar[Priority] = Priority.FINAL
    audio: np.ndarray
    identify: bool
    language: str | None
    word_timestamps: bool
    cluster: bool = False
    language_hint: str | None = None


@dataclass(eq=False)
class EarlyFinalJob(FinalJob):
    """A :class:`FinalJob` started before its endpoint is confirmed (``Settings.early_final_ms`` into a pause).

    Optional like a partial: refused unless a worker is idle and nothing waits, so a decode that may be thrown
    away never delays another stream's final; refused, the final is decoded at the endpoint as usual.
    """

    optional: ClassVar[bool] = True


@dataclass(eq=False)
class PartialJob(Job):
    """Interim decode of an open utterance (``float32[n]`` 16 kHz) on a short window."""

    priority: ClassVar[Priority] = Priority.PARTIAL
    optional: ClassVar[bool] = True
    audio: np.ndarray
    language: str | None


@dataclass(eq=False)
class EnrollJob(Job):
    """Embed ``float32[n]`` 16 kHz enrollment speech (``speech_s`` seconds) and store it as profile ``name``;
    when a profile has that name, ``add`` the speech to it or refuse (``NameTaken``, nothing stored)."""

    priority: ClassVar[Priority] = Priority.ENROLL
    name: str
    audio: np.ndarray
    speech_s: float
    source: str
    add: bool = True


@dataclass(eq=False)
class SentimentJob(Job):
    """The sentiment of one final's ``text`` (``language`` an ISO 639-1 code or None), submitted once the final
    has been delivered (:mod:`server.sentiment`); ``turn`` with ``utterance_id`` names the final."""

    priority: ClassVar[Priority] = Priority.SENTIMENT
    text: str
    language: str | None
    turn: int = 0


@dataclass(eq=False)
class AnalysisJob(Job):
    """Whisper with word timings on one region (``float32[n]`` 16 kHz, ≤ 30 s) of a recording being analysed
    (:mod:`server.analysis`); ``stream_id`` is the analysis job's id."""

    priority: ClassVar[Priority] = Priority.ANALYSIS
    background: ClassVar[bool] = True
    audio: np.ndarray
    language: str | None
