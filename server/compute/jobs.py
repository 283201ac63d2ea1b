"""Typed model jobs: what a stream asks the model workers to do, and how urgent it is.

Each job names its kind (and with it a priority class), the audio it works on, and the stream and utterance it
belongs to, so the pool can order, refuse, count and (later) batch work by kind, and observers (benchmarks,
metrics) can attribute it without reaching into the objects that submitted it.

Priority classes, most urgent first: ``FINAL`` (a user waits for this result), ``ENROLL`` (a one-off
enrollment), ``PARTIAL`` (optional: refused unless a worker is idle, so it never delays a final).
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
    PARTIAL = 2


@dataclass(eq=False)
class Job:
    """Base of all model jobs. ``stream_id``/``utterance_id`` tag the work for observers (may be empty)."""

    priority: ClassVar[Priority]
    optional: ClassVar[bool] = False
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
    detect.
    """

    priority: ClassVar[Priority] = Priority.FINAL
    audio: np.ndarray
    identify: bool
    language: str | None
    word_timestamps: bool
    cluster: bool = False


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
