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

:class:`SpeakerTracker` holds the per-stream memory of rule 1. A whole recording (an upload to identify or to
enroll) is one voice: :class:`VoiceprintBuilder` embeds its speech window by window in bounded memory and
:func:`identify` applies rules 1–2 to the result; :func:`profile_map` lays the profiles out in 2-D and finds pairs
of profiles that are probably one voice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import SAMPLE_RATE
from .clusters import Relabel, SpeakerClusters
from .embedding import normalise
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

    ``speakers`` is the room's :class:`~server.speaker.clusters.SpeakerClusters` (shared by its streams), or None
    to label every voice that matches no profile ``unknown``.
    """

    def __init__(self, threshold: float = 0.5, min_identify_s: float = 1.0, carry_gap_s: float = 1.5,
                 speakers: SpeakerClusters | None = None) -> None:
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


# -- whole recordings -------------------------------------------------------------------------------------------
EMBED_WINDOW_S = 20.0
"""Longest stretch of speech embedded at once. CAM++'s memory grows with the length it is given (on CPU about
3 MB per second of speech, measured with bench/upload_memory.py: 10 minutes at once took 1.9 GB), so longer speech
is embedded in windows of this length and the window embeddings are averaged."""

CLOSE_PAIR_THRESHOLD = 0.65
"""Cosine similarity at or above which two voice profiles are reported as probably one voice
(:func:`profile_map`). Measured on voiceprints built like the store builds them (``bench/identify_eval.py``
section 4, LibriSpeech test-other, 10 speakers, voiceprints of 1, 2, 3 or 5 utterances): two voiceprints of
*different* speakers reached at most 0.616 (p99 0.54–0.58), and no utterance scored above 0.622 against another
speaker's profile (section 2); two voiceprints of the *same* speaker from disjoint utterances were at least 0.594
from single utterances (p1 0.654) and at least 0.789 from two or more. At 0.65 no pair of different speakers was
warned about and 1 % of same-speaker pairs from single utterances (none from more) were missed; 0.62 would miss
0.5 % but sits just 0.004 above the highest different-speaker pair seen. Higher than the identification threshold
(``Settings.speaker_threshold``, 0.55): a warning should mean "one person", not "could be confused"."""


class VoiceprintBuilder:
    """One voiceprint from any amount of speech, in bounded memory.

    Speech is buffered until ``window_s`` seconds have come, then embedded and dropped; the voiceprint is the
    speech-duration-weighted mean of the window embeddings, L2-normalised (as
    :class:`server.store.profiles.ProfileStore` combines a profile's enrollments). Speech of at most ``window_s``
    seconds is embedded whole, exactly as before windows existed.

    Args:
        embed: ``float32[n]`` 16 kHz speech → L2-normalised ``float32[d]`` (``SpeakerEmbedder.embed``).
        window_s: seconds embedded at once (memory of one embedding grows linearly with it).
        min_samples: a last window shorter than this is not embedded (too short for the model).
    """

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], window_s: float = EMBED_WINDOW_S,
                 min_samples: int = SAMPLE_RATE // 4) -> None:
        self._embed = embed
        self._window = max(1, int(window_s * SAMPLE_RATE))
        self._min = min_samples
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._sum: np.ndarray | None = None
        self.windows = 0
        self.samples = 0

    @property
    def speech_s(self) -> float:
        """Seconds of speech added so far."""
        return self.samples / SAMPLE_RATE

    def add(self, speech: np.ndarray) -> None:
        """Add ``float32[n]`` 16 kHz speech; embeds every window that fills up."""
        self.samples += speech.size
        while speech.size:
            take = min(speech.size, self._window - self._buffered)
            self._buffer.append(speech[:take])
            self._buffered += take
            speech = speech[take:]
            if self._buffered >= self._window:
                self._flush()

    def finish(self) -> np.ndarray | None:
        """The voiceprint, ``float32[d]`` L2-normalised; None when there was too little speech to embed."""
        if self._buffered >= self._min:
            self._flush()
        self._buffer, self._buffered = [], 0
        return None if self._sum is None else normalise(self._sum)

    def _flush(self) -> None:
        audio = np.concatenate(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffered = [], 0
        emb = self._embed(audio).astype(np.float64) * audio.size
        self._sum = emb if self._sum is None else self._sum + emb
        self.windows += 1


@dataclass(frozen=True)
class Identification:
    """Who is speaking in a whole recording: the ``decision`` (rules 1–2: ``match``, ``below_threshold``,
    ``no_profiles``, or ``too_short`` when it held less than ``min_identify_s`` of speech), every profile's cosine
    similarity best first (``ranked``; empty when not scored) and the seconds of speech behind it."""

    decision: SpeakerDecision
    ranked: list[tuple[VoiceProfile, float]] = field(default_factory=list)
    speech_s: float = 0.0


def identify(embedding: np.ndarray | None, speech_s: float, profiles: Sequence[VoiceProfile], threshold: float,
             min_identify_s: float = 1.0) -> Identification:
    """Rules 1–2 for a recording's voiceprint (``float32[192]``, None when there was no speech to embed)."""
    if embedding is None or speech_s < min_identify_s:
        return Identification(SpeakerDecision(UNKNOWN, None, "too_short"), [], speech_s)
    return Identification(decide(embedding, profiles, threshold), score_profiles(embedding, profiles), speech_s)


@dataclass(frozen=True)
class ProfileMap:
    """A 2-D layout of voice profiles: ``points`` ``(name, x, y)`` (the first two principal components of the
    L2-normalised voiceprints, centred; distances in the plane approximate the Euclidean distances between
    voiceprints, ``sqrt(2 − 2·cosine)``), ``close_pairs`` ``(a, b, cosine)`` at or above ``threshold``, most
    similar first."""

    points: list[tuple[str, float, float]]
    close_pairs: list[tuple[str, str, float]]
    threshold: float


def profile_map(profiles: Sequence[VoiceProfile], threshold: float = CLOSE_PAIR_THRESHOLD) -> ProfileMap:
    """PCA (numpy SVD) of the profiles' voiceprints and the pairs whose cosine similarity reaches ``threshold``.

    One profile sits at (0, 0); two lie on the x axis. Signs are fixed (each axis points to where the profile
    farthest along it lies) so the same profiles always get the same picture.
    """
    if not profiles:
        return ProfileMap([], [], threshold)
    x = np.stack([normalise(p.embedding) for p in profiles]).astype(np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    coords = np.zeros((len(profiles), 2))
    if len(profiles) > 1:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:2]
        proj = centred @ axes.T
        for k in range(proj.shape[1]):
            far = int(np.argmax(np.abs(proj[:, k])))
            coords[:, k] = proj[:, k] * (1.0 if proj[far, k] >= 0 else -1.0)
    sims = x @ x.T
    pairs = [(profiles[i].name, profiles[j].name, round(float(sims[i, j]), 4))
             for i in range(len(profiles)) for j in range(i + 1, len(profiles)) if sims[i, j] >= threshold]
    pairs.sort(key=lambda p: -p[2])
    points = [(p.name, round(float(coords[i, 0]), 4), round(float(coords[i, 1]), 4)) for i, p in enumerate(profiles)]
    return ProfileMap(points, pairs, threshold)
