"""Speaker identification rules: who said this utterance?

Open-set identification by cosine similarity (the scoring of CAM++/3D-Speaker and WeSpeaker):

1. Utterance shorter than ``min_identify_s`` (1 s: CAM++ identification fell to 82 % at 0.5 s,
   docs/measurements.md) → not scored on its own: it inherits the stream's previous label if that utterance
   ended at most ``carry_gap_s`` before it started (``carried``), else ``unknown`` (``too_short``).
2. Otherwise the best-scoring profile wins if its cosine similarity reaches ``threshold``
   (``match``). 0.50–0.55 separated known from unknown speakers on LibriSpeech (same ≈ 0.83,
   different ≈ 0.38, p95 0.51).
3. A voice that matches no profile goes to the room's anonymous speakers
   (:class:`server.speaker.clusters.AnonymousSpeakers`: ``cluster``, ``new_speaker`` or ``uncertain``);
   without that registry it is ``unknown`` (``below_threshold``, or ``no_profiles`` when none exist).

:class:`SpeakerTracker` holds the per-stream memory of rule 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .clusters import AnonymousSpeakers, Relabel
from .identity import UNKNOWN, SpeakerIdentity
from .profile import VoiceProfile


@dataclass(frozen=True)
class SpeakerDecision:
    """Label of one utterance: its :class:`SpeakerIdentity`, the best cosine ``score`` (None when not scored) and
    the ``reason`` (``match``, ``below_threshold``, ``too_short``, ``carried``, ``no_profiles``, or the
    anonymous-speaker reasons ``cluster``, ``new_speaker``, ``uncertain``); ``relabels``: corrections of
    earlier labels that this decision caused (:class:`server.speaker.clusters.Relabel`)."""

    identity: SpeakerIdentity
    score: float | None
    reason: str
    relabels: tuple[Relabel, ...] = ()

    @property
    def name(self) -> str:
        """The display label (a profile's name, an anonymous speaker's label, or ``"unknown"``)."""
        return self.identity.label

    @property
    def profile_id(self) -> int | None:
        return self.identity.profile_id


def score_profiles(embedding: np.ndarray, profiles: Sequence[VoiceProfile]) -> list[tuple[VoiceProfile, float]]:
    """Cosine similarity of ``float32[192]`` (L2-normalised) against each profile, best first."""
    if not profiles:
        return []
    matrix = np.stack([p.embedding for p in profiles])
    scores = matrix @ embedding
    order = np.argsort(-scores)
    return [(profiles[i], float(scores[i])) for i in order]


def decide(embedding: np.ndarray, profiles: Sequence[VoiceProfile], threshold: float) -> SpeakerDecision:
    """Rules 1 and 3 for an utterance long enough to score."""
    ranked = score_profiles(embedding, profiles)
    if not ranked:
        return SpeakerDecision(UNKNOWN, None, "no_profiles")
    best, score = ranked[0]
    if score >= threshold:
        return SpeakerDecision(SpeakerIdentity.profile(best.id, best.name), score, "match")
    return SpeakerDecision(UNKNOWN, score, "below_threshold")


class SpeakerTracker:
    """Per-stream labelling with the short-utterance rule (rule 1).

    ``speakers`` is the room's :class:`AnonymousSpeakers` (shared by its streams), or None to label every
    voice that matches no profile ``unknown``.
    """

    def __init__(self, threshold: float = 0.5, min_identify_s: float = 1.0, carry_gap_s: float = 1.5,
                 speakers: AnonymousSpeakers | None = None) -> None:
        self.threshold = threshold
        self.min_identify_s = min_identify_s
        self.carry_gap_s = carry_gap_s
        self.speakers = speakers
        self._last: tuple[SpeakerDecision, float] | None = None  # (decision, end time)

    def needs_embedding(self, duration_s: float) -> bool:
        return duration_s >= self.min_identify_s

    def label(self, start: float, end: float, embedding: np.ndarray | None,
              profiles: Sequence[VoiceProfile]) -> SpeakerDecision:
        """Label the utterance ``[start, end]`` (seconds); ``embedding`` None when too short to embed."""
        if embedding is None or end - start < self.min_identify_s:
            last = self._last
            if last is not None and start - last[1] <= self.carry_gap_s and last[0].identity.known:
                decision = SpeakerDecision(self._current(last[0].identity), None, "carried")
            elif not profiles and self.speakers is None:
                decision = SpeakerDecision(UNKNOWN, None, "no_profiles")
            else:
                decision = SpeakerDecision(UNKNOWN, None, "too_short")
        else:
            decision = decide(embedding, profiles, self.threshold)
            if decision.reason != "match" and self.speakers is not None:
                placed = self.speakers.assign(embedding, end - start, profiles)
                score = placed.score if placed.score is not None else decision.score  # first voice: the profiles'
                decision = SpeakerDecision(placed.identity, score, placed.reason, placed.relabels)
        self._last = (decision, end)
        return decision

    def _current(self, identity: SpeakerIdentity) -> SpeakerIdentity:
        """An anonymous identity as it stands now (it may have been named, merged or linked meanwhile)."""
        if identity.kind != "anonymous" or self.speakers is None or identity.id is None:
            return identity
        try:
            return self.speakers.find(identity.id).identity
        except KeyError:
            return identity
