"""Assembly of finals: one utterance's model result → the parts that become ``final`` events.

Pure functions, no locks, no I/O. Whisper's word times are shifted onto the stream clock; when the runtime
found speaker changes inside the utterance, each word goes to the turn that holds its midpoint and each turn
becomes its own part (README, "Speaker changes inside an utterance").
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

import numpy as np

from ..asr.types import Word
from ..compute.runtime import UtteranceResult
from .segmenter import Segment


@dataclass(frozen=True)
class Part:
    """One speaker's stretch of an utterance: stream-clock seconds, its embedding (``float32[192]`` or None),
    its text and its words (stream clock, Whisper's leading space kept)."""

    start: float
    end: float
    embedding: np.ndarray | None
    text: str
    words: list[Word]


def assemble(segment: Segment, result: UtteranceResult) -> list[Part]:
    """The parts of ``segment``: one, or one per speaker turn when ``result.turns`` holds several."""
    words = [w.shifted(segment.audio_start) for w in result.asr.words]
    if not result.turns:
        return [Part(segment.start, segment.end, result.embedding, result.asr.text, words)]
    bounds = [segment.audio_start + t.start for t in result.turns[1:]]  # turn changes on the stream clock
    owned: list[list[Word]] = [[] for _ in result.turns]
    for w in words:
        owned[bisect.bisect_right(bounds, (w.start + w.end) / 2)].append(w)
    edges = [segment.start, *bounds, segment.end]
    return [Part(edges[i], edges[i + 1], turn.embedding, "".join(w.word for w in owned[i]).strip(), owned[i])
            for i, turn in enumerate(result.turns)]


def stripped(words: list[Word]) -> list[Word]:
    """The words without Whisper's leading spaces (what a final carries)."""
    return [replace(w, word=w.word.strip()) for w in words]
