"""Whole files with speaker diarization: what ``callscribe transcribe --diarize`` runs.

Unlike :mod:`server.stream.filemode` (the streaming path, one utterance at a time), the whole recording is
decoded first, then:

1. diarized (:class:`server.speaker.diarization.Diarizer`: pyannote segmentation-3.0 + CAM++ + agglomerative
   clustering) into anonymous clusters with one centroid embedding each;
2. clusters are matched to enrolled voice profiles: cosine similarity of centroid and profile ≥
   ``settings.speaker_threshold``, each profile to at most one cluster and each cluster to at most one
   profile (Hungarian assignment, :func:`scipy.optimize.linear_sum_assignment`, maximising the total
   similarity); the other clusters become ``Speaker 1``, ``Speaker 2``, … in order of first appearance;
3. transcribed with the runtime's Whisper, region by region: the diarized speech is cut into regions of at most
   :data:`MAX_REGION_S` (Whisper's window is 30 s) at pauses, each region is decoded with word timings, and each
   word goes to the speaker the overlap-free diarization shows at the word's midpoint (the nearest turn when
   none does); consecutive words of one speaker in one region make one :class:`server.stream.events.Final`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..asr.types import AsrResult, Word
from ..audio.ingest import iter_file
from ..compute.runtime import SpeechRuntime
from ..speaker.diarization import Diarization, Diarizer, check_speaker_counts
from ..speaker.identity import SpeakerIdentity
from ..speaker.profile import VoiceProfile
from . import events

Progress = Callable[[float], None]
"""Called with the seconds of audio the current stage has processed so far."""
Transcribe = Callable[[np.ndarray, "str | None"], AsrResult]
"""Decodes one region: ``(float32[n] 16 kHz, language or None) → AsrResult`` with word timings."""
Stage = Callable[[str, float], None]
"""Called as ``on_stage(name, total_s)`` when a stage begins: ``decode``, ``diarize``, ``transcribe``."""

DIARIZE_STEP_SHARE = {"segmentation": 0.15, "embeddings": 0.85}
"""How the diarization stage's progress is split between pyannote's two reporting steps (segmentation first):
roughly their shares of the stage's time on a 2-core CPU (``pyannote_sample.wav``: 4.7 s of 52 s under load)."""
MAX_REGION_S = 28.0
"""Longest stretch given to Whisper at once (its window is 30 s; the rest is padding)."""
MAX_PACK_GAP_S = 2.0
"""Speech separated by a shorter pause is decoded together (more context); a longer pause starts a new region."""
REGION_PAD_S = 0.2
"""Audio kept on each side of a region (diarized turns can start a little late or end a little early)."""


@dataclass(frozen=True)
class SpeakerTotal:
    """One speaker's share of a recording: ``talk_time_s`` is diarized speech in seconds (overlap counted for
    each speaker), ``turns`` the finals, ``words`` the transcribed words."""

    speaker: str
    speaker_id: str | None
    speaker_kind: str
    talk_time_s: float
    turns: int
    words: int


@dataclass
class DiarizedTranscript:
    """The result of :func:`diarize_file`.

    Attributes:
        finals: one :class:`server.stream.events.Final` per speaker turn, in time order (times in seconds from
            the file's first sample, with word timings).
        annotation: the diarization (:class:`pyannote.core.Annotation`, overlap kept) with each cluster
            relabelled by its final ``speaker`` label, for RTTM.
        speakers: per-speaker totals, by first appearance.
        identities: final ``speaker`` label → :class:`SpeakerIdentity`.
        duration_s: the file's length in seconds.
        voices: ``speaker_id`` → (the cluster's centroid ``float32[192]``, L2-normalised; its talk time in seconds),
            for saving a speaker as a voice profile afterwards.
        audio: the decoded recording, ``float32[n]`` at 16 kHz (for features computed afterwards).
    """

    finals: list[events.Final]
    annotation: object
    speakers: list[SpeakerTotal] = field(default_factory=list)
    identities: dict[str, SpeakerIdentity] = field(default_factory=dict)
    duration_s: float = 0.0
    voices: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict)
    audio: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ClusterIdentity:
    """How a diarization cluster was named: its identity, the best cosine against the profiles (None without
    profiles) and why (``match``, ``below_threshold``, ``profile_taken``, ``no_profiles``)."""

    identity: SpeakerIdentity
    score: float | None
    reason: str


def name_clusters(diarization: Diarization, profiles: Sequence[VoiceProfile],
                  threshold: float) -> dict[str, ClusterIdentity]:
    """Give every cluster label of ``diarization`` an identity (see the module docstring, step 2).

    Returns:
        cluster label → :class:`ClusterIdentity`; anonymous speakers are numbered by first appearance.
    """
    from scipy.optimize import linear_sum_assignment

    order = _first_appearance(diarization)
    named: dict[str, ClusterIdentity] = {}
    best: dict[str, float] = {}
    if profiles and order:
        centroids = np.stack([diarization.centroids.get(c, np.zeros(192, np.float32)) for c in order])
        voices = np.stack([p.embedding for p in profiles]).astype(np.float32)
        similarity = centroids @ voices.T  # both L2-normalised: cosine, (n_clusters, n_profiles)
        best = {c: float(similarity[i].max()) for i, c in enumerate(order)}
        rows, cols = linear_sum_assignment(np.where(similarity >= threshold, similarity, -1.0), maximize=True)
        for i, j in zip(rows, cols, strict=True):
            if similarity[i, j] >= threshold:
                p = profiles[j]
                named[order[i]] = ClusterIdentity(SpeakerIdentity.profile(p.id, p.name),
                                                  round(float(similarity[i, j]), 4), "match")
    n = 0
    for c in order:
        if c in named:
            continue
        n += 1
        if not profiles:
            reason, score = "no_profiles", None
        else:
            score = round(best[c], 4)
            reason = "profile_taken" if best[c] >= threshold else "below_threshold"
        named[c] = ClusterIdentity(SpeakerIdentity("anonymous", f"anon:{n}", f"Speaker {n}"), score, reason)
    return named


def _first_appearance(diarization: Diarization) -> list[str]:
    first: dict[str, float] = {}
    for segment, _, label in diarization.annotation.itertracks(yield_label=True):
        first.setdefault(label, segment.start)
    return sorted(first, key=lambda c: (first[c], c))


def speech_regions(diarization: Diarization, max_region_s: float = MAX_REGION_S,
                   max_gap_s: float = MAX_PACK_GAP_S) -> list[tuple[float, float]]:
    """Stretches ``(start_s, end_s)`` of diarized speech to decode at once, each ≤ ``max_region_s``.

    Speech (all speakers together) separated by pauses shorter than ``max_gap_s`` is packed into one region
    while it fits; longer speech without such a pause is cut at speaker changes, else every ``max_region_s``.
    """
    speech = [(s.start, s.end) for s in diarization.annotation.get_timeline().support()]
    changes = sorted({round(s.start, 3) for s in diarization.exclusive.get_timeline()})
    pieces: list[tuple[float, float]] = []
    for start, end in speech:
        while end - start > max_region_s:
            inside = [t for t in changes if start + 1.0 < t <= start + max_region_s]
            cut = inside[-1] if inside else start + max_region_s
            pieces.append((start, cut))
            start = cut
        pieces.append((start, end))
    regions: list[tuple[float, float]] = []
    for start, end in pieces:
        if regions and start - regions[-1][1] < max_gap_s and end - regions[-1][0] <= max_region_s:
            regions[-1] = (regions[-1][0], end)
        else:
            regions.append((start, end))
    return regions


class _Turns:
    """The overlap-free diarization as sorted turns, to find who speaks at a time."""

    def __init__(self, diarization: Diarization) -> None:
        self.turns = sorted((s.start, s.end, label) for s, _, label in diarization.exclusive.itertracks(
            yield_label=True))
        self.starts = [t[0] for t in self.turns]

    def speaker_at(self, t: float) -> str | None:
        if not self.turns:
            return None
        i = bisect.bisect_right(self.starts, t) - 1
        if i >= 0 and self.turns[i][0] <= t < self.turns[i][1]:
            return self.turns[i][2]
        near = [k for k in (i, i + 1) if 0 <= k < len(self.turns)]
        if not near:
            return None
        return self.turns[min(near, key=lambda k: max(self.turns[k][0] - t, t - self.turns[k][1]))][2]


def decode(path: str | Path, progress: Progress | None = None) -> np.ndarray:
    """The whole file as ``float32[n]`` mono 16 kHz (:func:`server.audio.ingest.iter_file`).

    Raises:
        AudioDecodeError: the file is not decodable audio.
    """
    chunks, n = [], 0
    for chunk in iter_file(path, chunk_s=10.0):
        chunks.append(chunk)
        n += chunk.size
        if progress is not None:
            progress(n / SAMPLE_RATE)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def diarize_file(runtime: SpeechRuntime, path: str | Path, *, language: str | None = None,
                 num_speakers: int | None = None, min_speakers: int | None = None, max_speakers: int | None = None,
                 progress: Progress | None = None, on_stage: Stage | None = None,
                 diarizer: Diarizer | None = None, asr: Transcribe | None = None) -> DiarizedTranscript:
    """Diarize then transcribe one file (see the module docstring).

    Args:
        runtime: gives Whisper (``runtime.asr``), CAM++ (``runtime.embedder``), the voice profiles and settings.
        language: ISO 639-1 code, or None to detect per region.
        num_speakers, min_speakers, max_speakers: speaker-count hints for the diarizer.
        progress: seconds of audio processed in the current stage (see ``on_stage``).
        on_stage: told when each stage starts.
        diarizer: a loaded :class:`Diarizer` to reuse; None = build one sharing the runtime's CAM++.
        asr: decodes one region (``float32[n]`` 16 kHz, language) with word timings; None = the runtime's Whisper
            directly, ``asr_workers`` regions at a time. Analysis jobs pass one that queues each region on the
            shared worker pool behind live calls' work (:class:`server.compute.jobs.AnalysisJob`).

    Raises:
        AudioDecodeError: the file is not decodable audio.
        SpeakerCountError: inconsistent speaker counts (checked before anything is decoded).
        ModelError: the diarization pipeline cannot be loaded.
        RuntimeError: the runtime was created without ASR.
    """
    check_speaker_counts(num_speakers, min_speakers, max_speakers)
    if runtime.asr is None:
        raise RuntimeError("runtime was created without ASR")
    _stage(on_stage, "decode", 0.0)
    audio = decode(path, progress)
    duration = audio.size / SAMPLE_RATE
    if diarizer is None:
        diarizer = Diarizer(runtime.settings, embedder=runtime.embedder)
    _stage(on_stage, "diarize", duration)

    def diarize_progress(step: str, completed: int, total: int) -> None:
        if progress is None or step not in DIARIZE_STEP_SHARE or not total:
            return
        steps = list(DIARIZE_STEP_SHARE)  # in the order pyannote runs them
        before = sum(DIARIZE_STEP_SHARE[k] for k in steps[: steps.index(step)])
        progress(duration * (before + DIARIZE_STEP_SHARE[step] * completed / total))

    diarization = diarizer.diarize(audio, num_speakers=num_speakers, min_speakers=min_speakers,
                                   max_speakers=max_speakers, progress=diarize_progress)
    named = name_clusters(diarization, runtime.profiles(), runtime.settings.speaker_threshold)
    _stage(on_stage, "transcribe", duration)
    finals = _transcribe(runtime, audio, diarization, named, language, progress, asr)
    transcript = _assemble(diarization, named, finals, duration)
    transcript.audio = audio
    return transcript


def _stage(on_stage: Stage | None, name: str, total: float) -> None:
    if on_stage is not None:
        on_stage(name, total)


def _transcribe(runtime: SpeechRuntime, audio: np.ndarray, diarization: Diarization,
                named: dict[str, ClusterIdentity], language: str | None,
                progress: Progress | None, asr: Transcribe | None) -> list[events.Final]:
    regions = speech_regions(diarization)
    duration = audio.size / SAMPLE_RATE
    if asr is None:
        def asr(clip: np.ndarray, language: str | None) -> AsrResult:
            return runtime.asr.transcribe(clip, language=language, word_timestamps=True)

    def run(region: tuple[float, float]) -> tuple[float, AsrResult]:
        a = max(0.0, region[0] - REGION_PAD_S)
        b = min(duration, region[1] + REGION_PAD_S)
        clip = audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]
        return a, asr(clip, language)

    turns = _Turns(diarization)
    finals: list[events.Final] = []
    workers = max(1, runtime.settings.asr_workers) if asr is None else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for uid, ((_, end), (offset, result)) in enumerate(zip(regions, pool.map(run, regions), strict=True)):
            finals.extend(_region_finals(uid, offset, result, turns, named))
            if progress is not None:
                progress(end)
    return finals


def _region_finals(uid: int, offset: float, result: AsrResult, turns: _Turns,
                   named: dict[str, ClusterIdentity]) -> list[events.Final]:
    words = [w.shifted(offset) for w in result.words]
    if not words:
        return []
    runs: list[tuple[str, list[Word]]] = []
    for w in words:
        who = turns.speaker_at(0.5 * (w.start + w.end))
        if who is None or who not in named:
            who = runs[-1][0] if runs else next(iter(named))
        if runs and runs[-1][0] == who:
            runs[-1][1].append(w)
        else:
            runs.append((who, [w]))
    out = []
    for k, (who, ws) in enumerate(runs):
        c = named[who]
        out.append(events.Final(
            utterance_id=uid, turn=k, last_turn=k == len(runs) - 1, start=ws[0].start, end=ws[-1].end,
            speaker=c.identity.label, speaker_id=c.identity.id, speaker_kind=c.identity.kind, score=c.score,
            speaker_reason=c.reason, text="".join(w.word for w in ws).strip(), language=result.language,
            words=[replace(w, word=w.word.strip()) for w in ws], end_reason="silence"))
    return out


def _assemble(diarization: Diarization, named: dict[str, ClusterIdentity], finals: list[events.Final],
              duration: float) -> DiarizedTranscript:
    labels = {c: n.identity.label for c, n in named.items()}
    annotation = diarization.annotation.rename_labels(mapping=labels)
    totals = []
    voices = {}
    for c, n in named.items():
        mine = [f for f in finals if f.speaker_id == n.identity.id]
        talk = sum(s.duration for s in diarization.annotation.label_timeline(c).support())
        if c in diarization.centroids and n.identity.id is not None:
            voices[n.identity.id] = (np.asarray(diarization.centroids[c], np.float32), round(talk, 3))
        totals.append(SpeakerTotal(n.identity.label, n.identity.id, n.identity.kind, round(talk, 3), len(mine),
                                   sum(len(f.words or ()) for f in mine)))
    return DiarizedTranscript(finals, annotation, totals, {n.identity.label: n.identity for n in named.values()},
                              duration, voices)
