"""Early finals (issue 11): the final's decode starts ``early_final_ms`` into a pause and is kept only when the
endpoint follows with no more speech. Plumbing with the fake runtime of test_processor.py, then real speech."""

from __future__ import annotations

import numpy as np
import pytest
from test_processor import SR, EnergyVad, FakeRuntime, silence, speech_like

from server.audio.ingest import load_audio
from server.compute.jobs import FinalJob
from server.stream.processor import StreamProcessor
from server.stream.segmenter import EndpointConfig, EndpointLikely, Segmenter, UtteranceEnded


def feed(proc, chunks):
    for c in chunks:
        for i in range(0, c.size, 320):
            proc.push(c[i : i + 320])


def test_segmenter_says_endpoint_likely_once_per_pause_before_the_endpoint():
    seg = Segmenter(480, EndpointConfig(silence_ms=480, early_final_ms=200, partial_interval_s=None))
    frame_s = 480 / SR
    out = []
    audio = np.concatenate([speech_like(1.0), silence(0.3), speech_like(1.0), silence(1.0)])
    for i in range(0, audio.size - 479, 480):
        frame = audio[i : i + 480]
        for ev in seg.push(frame, 1.0 if np.abs(frame).max() > 0.01 else 0.0):
            out.append((type(ev).__name__, round(seg.now, 2), getattr(ev, "segment", None)))
    names = [n for n, _, _ in out]
    assert names == ["SpeechStarted", "EndpointLikely", "EndpointLikely", "UtteranceEnded"]
    likely = [s for n, _, s in out if n == "EndpointLikely"]
    ended = out[-1][2]
    assert likely[0].end == pytest.approx(1.0, abs=frame_s) and likely[1].end == ended.end
    assert out[1][1] - likely[0].end == pytest.approx(0.2, abs=2 * frame_s)
    assert out[-1][1] - ended.end == pytest.approx(0.48, abs=2 * frame_s)


def test_early_final_off_and_at_or_above_silence_ms_emits_nothing():
    for early in (0, 480, 600):
        seg = Segmenter(480, EndpointConfig(silence_ms=480, early_final_ms=early, partial_interval_s=None))
        audio = np.concatenate([speech_like(1.0), silence(1.0)])
        evs = [ev for i in range(0, audio.size - 479, 480)
               for ev in seg.push(audio[i : i + 480], 1.0 if np.abs(audio[i : i + 480]).max() > 0.01 else 0.0)]
        assert not any(isinstance(e, EndpointLikely) for e in evs)
        assert sum(isinstance(e, UtteranceEnded) for e in evs) == 1


class CountingRuntime(FakeRuntime):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.settings = self.settings.model_copy(update={"early_final_ms": 200})
        self.final_audio_s = []

    def finalize(self, job: FinalJob):
        self.final_audio_s.append(job.audio.size / SR)
        return super().finalize(job)


def test_an_early_final_is_used_when_the_endpoint_follows():
    rt = CountingRuntime(final_delay=0.05)
    out = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), partials=False)
    feed(proc, [silence(0.3), speech_like(1.5), silence(1.0)])
    proc.close(timeout=10)
    rt.pool.close()
    finals = [e for e in out if e.type == "final"]
    assert len(finals) == 1 and rt.n_final == 1
    assert proc.early_finals == {"used": 1, "discarded": 0, "refused": 0}
    # the decoded audio ends ~0.2 s into the pause, not 0.48 s; the final's times are those of the speech
    assert rt.final_audio_s[0] == pytest.approx(0.2 + 1.5 + 0.2, abs=0.07)
    assert finals[0].start == pytest.approx(0.3, abs=0.04) and finals[0].end == pytest.approx(1.8, abs=0.04)


def test_an_early_final_is_thrown_away_when_speech_resumes():
    rt = CountingRuntime(final_delay=0.05)
    out = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), partials=False)
    feed(proc, [silence(0.3), speech_like(1.0), silence(0.3), speech_like(1.0), silence(1.0)])
    proc.close(timeout=10)
    rt.pool.close()
    finals = [e for e in out if e.type == "final"]
    assert len(finals) == 1, [e.type for e in out]
    # the second pause's early decode is used, or refused when the first one (cancelled) still held the queue
    assert proc.early_finals["discarded"] == 1
    assert proc.early_finals["used"] + proc.early_finals["refused"] == 1, proc.early_finals
    # the one final covers both stretches of speech
    assert finals[0].start == pytest.approx(0.3, abs=0.04) and finals[0].end == pytest.approx(2.6, abs=0.04)
    assert finals[0].text == f"utterance of {rt.final_audio_s[-1]:.1f}s" and rt.final_audio_s[-1] > 2.4


@pytest.mark.speech
def test_real_speech_with_a_short_pause_gives_one_final_with_all_the_words(runtime_factory, speech):
    """Two Harvard sentences by one speaker with a 0.4 s pause between them (over early_final_ms, under silence_ms;
    at 0.3 s webrtcvad's decisions left too little silence for an early decode): the early decode of the first is
    thrown away when the second starts; exactly one final carries the words of both."""
    from conftest import wer

    rt = runtime_factory(language="en", early_final_ms=200)

    def trimmed(path):
        x = load_audio(path)
        loud = np.flatnonzero(np.abs(x) > 0.02)
        return x[loud[0] : loud[-1] + 1]

    d = speech / "harvard_2spk"
    a, b = trimmed(d / "spk1_snt1.wav"), trimmed(d / "spk1_snt2.wav")
    out = []
    proc = StreamProcessor(rt, out.append, block=True, partials=False)
    feed(proc, [np.zeros(8000, np.float32), a, np.zeros(int(0.4 * SR), np.float32), b,
                np.zeros(SR, np.float32)])
    proc.close(timeout=120)
    finals = [e for e in out if e.type == "final" and e.text.strip()]
    assert len(finals) == 1, [f.text for f in finals]
    assert proc.early_finals["discarded"] >= 1, proc.early_finals
    ref = "THE CHILD ALMOST HURT THE SMALL DOG DROP THE TWO WHEN YOU ADD THE FIGURES"
    assert wer([ref], [finals[0].text]) <= 0.1, finals[0].text
