"""Speaker work beside Whisper (issue 11, ``Settings.speaker_work="parallel"``): a final's turn split and speaker
embedding run on a second thread while Whisper decodes, and the result is the one the sequential order gives.

Plumbing with recording stand-ins first (which thread ran what, and that the two overlapped in time), then the real
models on a real two-speaker utterance, parallel against sequential.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from server.asr.types import AsrResult, Word
from server.audio.ingest import load_audio
from server.compute.jobs import FinalJob
from server.compute.runtime import SpeechRuntime
from server.settings import Settings
from server.store.profiles import ProfileStore

SR = 16000


class Recorder:
    """Remembers (what, thread name, start, end) of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, float]] = []
        self.lock = threading.Lock()

    def record(self, what: str, seconds: float) -> None:
        t0 = time.monotonic()
        time.sleep(seconds)
        with self.lock:
            self.calls.append((what, threading.current_thread().name, t0, time.monotonic()))

    def of(self, what: str) -> list[tuple[str, str, float, float]]:
        return [c for c in self.calls if c[0] == what]


class SlowEmbedder:
    min_samples = SR

    def __init__(self, rec: Recorder, fail: bool = False) -> None:
        self.rec, self.fail = rec, fail

    def embed(self, audio: np.ndarray) -> np.ndarray:
        self.rec.record("embed", 0.15)
        if self.fail:
            raise RuntimeError("embedding model exploded")
        return np.eye(192, dtype=np.float32)[audio.size % 192]


class HalfTurns:
    """A speaker change in the middle of every utterance of 2 s or more."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def split(self, audio: np.ndarray) -> list[tuple[float, float]]:
        self.rec.record("split", 0.05)
        d = audio.size / SR
        return [(0.0, d / 2), (d / 2, d)] if d >= 2 else [(0.0, d)]


class SlowAsr:
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.word_requests: list[bool] = []

    def transcribe(self, audio, *, language=None, partial=False, word_timestamps=False,
                   language_hint=None) -> AsrResult:
        self.word_requests.append(word_timestamps)
        self.rec.record("asr", 0.3)
        words = [Word("hello", 0.1, 0.5, 0.9), Word("there", 1.2, 1.6, 0.9)] if word_timestamps else []
        return AsrResult("hello there", "en", words=words)


def runtime(tmp_path, mode: str, rec: Recorder, *, fail: bool = False) -> SpeechRuntime:
    settings = Settings(database=tmp_path / f"{mode}.sqlite3", model_cache_dir=tmp_path / "models",
                        speaker_work=mode)
    return SpeechRuntime(settings, store=ProfileStore(settings.database), embedder=SlowEmbedder(rec, fail),
                         asr=SlowAsr(rec), turns=HalfTurns(rec))


def job(seconds: float, **kw) -> FinalJob:
    return FinalJob(audio=np.zeros(int(seconds * SR), np.float32), identify=True, language="en",
                    word_timestamps=False, cluster=True, **kw)


@pytest.mark.parametrize("seconds", [1.5, 3.0])
def test_parallel_speaker_work_overlaps_whisper_and_gives_the_sequential_result(tmp_path, seconds):
    results = {}
    for mode in ("sequential", "parallel"):
        rec = Recorder()
        rt = runtime(tmp_path, mode, rec)
        try:
            results[mode] = rt.finalize(job(seconds))
        finally:
            rt.close()
        (asr,) = rec.of("asr")
        speaker = rec.of("split") + rec.of("embed")
        assert asr[1] == threading.current_thread().name  # Whisper on the calling (pool) thread
        if mode == "parallel":
            assert all(c[1].startswith("speaker") for c in speaker)
            assert min(c[2] for c in speaker) < asr[3] and asr[2] < max(c[3] for c in speaker)  # overlapped
            assert rt.asr.word_requests == [True]  # a turn split may need the word timings
        else:
            assert all(c[1] == threading.current_thread().name for c in speaker)
            assert all(c[3] <= asr[2] for c in speaker)  # all speaker work before Whisper
            assert rt.asr.word_requests == [seconds >= 2]
    seq, par = results["sequential"], results["parallel"]
    assert par.asr.text == seq.asr.text
    assert len(par.turns) == len(seq.turns) == (2 if seconds >= 2 else 0)
    if seq.embedding is None:
        assert par.embedding is None
    else:
        assert np.array_equal(par.embedding, seq.embedding)
    for a, b in zip(par.turns, seq.turns, strict=True):
        assert (a.start, a.end) == (b.start, b.end) and np.array_equal(a.embedding, b.embedding)
    assert par.asr.words == seq.asr.words


def test_no_speaker_work_means_no_second_thread_and_no_word_timings(tmp_path):
    rec = Recorder()
    rt = runtime(tmp_path, "parallel", rec)
    try:
        out = rt.finalize(FinalJob(audio=np.zeros(3 * SR, np.float32), identify=True, language="en",
                                   word_timestamps=False, cluster=False))  # no profiles, no clustering
    finally:
        rt.close()
    assert out.embedding is None and out.turns == [] and rec.of("embed") == [] and rec.of("split") == []
    assert rt.asr.word_requests == [False]


def test_a_failing_embedder_fails_the_final_in_parallel_too(tmp_path):
    rec = Recorder()
    rt = runtime(tmp_path, "parallel", rec, fail=True)
    try:
        with pytest.raises(RuntimeError, match="embedding model exploded"):
            rt.finalize(job(1.5))
        # the runtime still works afterwards
        rt.embedder.fail = False
        assert rt.finalize(job(1.5)).embedding is not None
    finally:
        rt.close()


def test_real_models_parallel_equals_sequential_on_two_speakers(runtime_factory, speech):
    """Harvard spk1 then spk2 with no pause, clustered: the real turn splitter, CAM++ and Whisper give the same
    split, embeddings and text whether speaker work runs beside Whisper or before it."""
    d = speech / "harvard_2spk"
    audio = np.concatenate([load_audio(d / "spk1_snt2.wav"), load_audio(d / "spk2_snt3.wav")])
    out = {}
    for mode in ("sequential", "parallel"):
        rt = runtime_factory(speaker_work=mode, final_window="short")
        out[mode] = rt.finalize(FinalJob(audio=audio, identify=True, language="en", word_timestamps=False,
                                         cluster=True))
    seq, par = out["sequential"], out["parallel"]
    assert len(seq.turns) == 2, "the turn splitter found no change: this clip no longer tests a split"
    assert par.asr.text == seq.asr.text and par.asr.text
    assert [(t.start, t.end) for t in par.turns] == [(t.start, t.end) for t in seq.turns]
    for a, b in zip(par.turns, seq.turns, strict=True):
        assert float(a.embedding @ b.embedding) > 0.999
    assert [w.word for w in par.asr.words] == [w.word for w in seq.asr.words]
