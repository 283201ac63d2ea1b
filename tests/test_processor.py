"""Plumbing of the per-stream processor with fake models (fast).

Real-model behaviour is proven in test_speech.py; here a fake runtime records calls so that ordering,
partial dropping, enrollment and failure handling can be asserted exactly.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from pydantic import ValidationError

from server.asr.types import AsrResult
from server.compute.jobs import FinalJob, PartialJob
from server.compute.runtime import Enrollment, UtteranceResult
from server.compute.workpool import WorkerPool
from server.settings import Settings
from server.speaker.profile import VoiceProfile
from server.stream import events
from server.stream.processor import StreamProcessor

SR = 16000


class EnergyVad:
    """Speech = RMS above 0.01 (test stand-in for webrtcvad/Silero)."""

    frame_samples = 480

    def speech_prob(self, frame):
        return 1.0 if np.sqrt(np.mean(frame**2)) > 0.01 else 0.0

    def reset(self):
        pass


class FakeRuntime:
    def __init__(self, final_delay=0.0, partial_delay=0.0, fail_on=None):
        self.settings = Settings(partial_interval_s=1.0, min_enroll_speech_s=3.0)
        self.pool = WorkerPool(self.run, 2, 8)
        self.final_delay, self.partial_delay, self.fail_on = final_delay, partial_delay, fail_on
        self.enrolled = []
        self.n_final = 0
        self._profiles = [VoiceProfile(1, "Alice", np.eye(192, dtype=np.float32)[0], 5.0, 1, 0, 0)]

    def profiles(self):
        return self._profiles

    def run(self, job):
        if isinstance(job, FinalJob):
            return self.finalize(job)
        if isinstance(job, PartialJob):
            return self.partial(job)
        return self.enroll(job)

    def finalize(self, job):
        i = self.n_final
        self.n_final += 1
        time.sleep(self.final_delay)
        if self.fail_on == i:
            raise RuntimeError("decoder exploded")
        emb = np.eye(192, dtype=np.float32)[0] if job.identify else None
        return UtteranceResult(AsrResult(f"utterance of {job.audio.size / SR:.1f}s", "en"), emb,
                               profiles=self._profiles)

    def partial(self, job):
        time.sleep(self.partial_delay)
        return AsrResult(f"partial {job.audio.size / SR:.1f}", "en")

    def enroll(self, job):
        self.enrolled.append((job.name, job.speech_s))
        return Enrollment(VoiceProfile(7, job.name, np.zeros(192, np.float32), job.speech_s, 1, 0, 0))


def speech_like(seconds):
    return (0.1 * np.sin(2 * np.pi * 200 * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def silence(seconds):
    return np.zeros(int(seconds * SR), np.float32)


def run(rt, chunks, pace=0.0, **kw):
    out = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), **kw)
    for c in chunks:
        for i in range(0, c.size, 320):  # 20 ms frames like WebRTC
            proc.push(c[i : i + 320])
            time.sleep(pace)
    proc.close(timeout=10)
    rt.pool.close()
    return out


def test_events_come_in_stream_order_with_speakers():
    rt = FakeRuntime(final_delay=0.05)
    out = run(rt, [silence(0.5), speech_like(2.0), silence(1.0), speech_like(0.6), silence(2.5), speech_like(0.6),
                   silence(1.0), speech_like(1.5)], partials=False)
    kinds = [(e.type, getattr(e, "utterance_id", None)) for e in out]
    assert kinds == [(t, i) for i in range(4) for t in ("speech_started", "final")]
    finals = [e for e in out if e.type == "final"]
    # 0.6 s utterances are not scored: 1.0 s after Alice it carries her label, 2.5 s after it is unknown
    assert [f.speaker for f in finals] == ["Alice", "Alice", "unknown", "Alice"]
    assert [f.speaker_reason for f in finals] == ["match", "carried", "too_short", "match"]
    assert finals[0].start == pytest.approx(0.5, abs=0.04) and finals[0].end == pytest.approx(2.5, abs=0.04)


def test_partials_about_every_second_of_speech_then_the_final():
    rt = FakeRuntime(final_delay=0.01, partial_delay=0.01)
    out = run(rt, [speech_like(3.5), silence(1.0)], pace=0.004)  # 4× faster than real time
    assert [e.type for e in out] == ["speech_started", "partial", "partial", "partial", "final"]
    partial_ends = [e.end for e in out if e.type == "partial"]
    assert np.diff(partial_ends) == pytest.approx([1.0, 1.0], abs=0.05)
    # the first partial comes 1 s after speech was confirmed (0.25 s in)
    assert next(e.text for e in out if e.type == "partial") == "partial 1.2"


def test_slow_partials_are_dropped_never_delivered_after_their_final():
    rt = FakeRuntime(final_delay=0.01, partial_delay=0.4)
    out = run(rt, [speech_like(3.5), silence(1.0)])  # pushed at once: the final is queued while partial 1 runs
    assert [e.type for e in out] == ["speech_started", "final"]


def test_failed_decode_is_an_error_event_and_the_stream_goes_on():
    rt = FakeRuntime(fail_on=0)
    out = run(rt, [speech_like(1.5), silence(1.0), speech_like(1.5), silence(1.0)], partials=False)
    assert [e.type for e in out] == ["speech_started", "error", "speech_started", "final"]
    assert out[1].code == "decode_failed"


def test_enrollment_collects_speech_instead_of_transcribing():
    rt = FakeRuntime()
    out = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), partials=False)
    proc.enroll_start("Bob")
    for c in (speech_like(2.0), silence(0.8), speech_like(1.8)):
        proc.push(c)
    proc.enroll_stop()
    proc.push(silence(0.3))
    proc.push(speech_like(1.2))
    proc.close(timeout=10)
    assert [e.type for e in out] == ["enrollment_started", "enrollment_completed", "speech_started", "final"]
    assert rt.enrolled[0][0] == "Bob" and rt.enrolled[0][1] == pytest.approx(3.8, abs=0.1)
    rt.pool.close()


def test_enrollment_with_too_little_speech_fails_with_reason():
    rt = FakeRuntime()
    out = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), partials=False)
    proc.enroll_start("Bob")
    proc.push(speech_like(1.5))
    proc.enroll_stop()
    proc.close(timeout=10)
    assert out[-1] == events.EnrollmentFailed(name="Bob", reason=out[-1].reason)
    assert "too little speech" in out[-1].reason and rt.enrolled == []
    rt.pool.close()


def test_stream_end_mid_utterance_still_finalises():
    rt = FakeRuntime()
    out = run(rt, [silence(0.3), speech_like(2.0)], partials=False)
    assert out[-1].type == "final" and out[-1].end_reason == "stream_end"


def test_wrong_sample_format_is_refused_and_nothing_is_lost():
    rt = FakeRuntime()
    out = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), partials=False)
    proc.push(speech_like(1.5))
    with pytest.raises(ValueError, match="float32"):
        proc.push((speech_like(0.1) * 32767).astype(np.int16))
    proc.push(silence(1.0))
    proc.close(timeout=10)
    assert [e.type for e in out] == ["speech_started", "final"]
    rt.pool.close()


def test_sink_errors_do_not_stop_delivery():
    rt = FakeRuntime()
    seen = []

    def sink(ev):
        seen.append(ev)
        if ev.type == "speech_started":
            raise RuntimeError("client gone")

    proc = StreamProcessor(rt, sink, classifier=EnergyVad(), partials=False)
    proc.push(speech_like(1.5))
    proc.push(silence(1.0))
    proc.close(timeout=10)
    assert [e.type for e in seen] == ["speech_started", "final"]
    rt.pool.close()


def test_events_serialise_and_validate_round_trip():
    ev = events.Final(utterance_id=3, start=1.0, end=2.5, speaker="Alice", speaker_id="profile:1",
                      speaker_kind="profile", score=0.8, speaker_reason="match", text="hi", language="en")
    raw = ev.model_dump_json()
    assert events.EVENT_ADAPTER.validate_json(raw) == ev
    with pytest.raises(ValidationError):
        events.EVENT_ADAPTER.validate_python({"type": "final", "text": "missing fields"})


def test_pause_finalises_and_keeps_the_stream_clock():
    rt = FakeRuntime()
    out = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), partials=False)
    proc.push(speech_like(1.5))
    proc.pause()  # mid-utterance: finalised now
    proc.push(speech_like(2.0))  # not transcribed while paused
    proc.resume()
    proc.push(silence(0.5))
    proc.push(speech_like(1.5))
    proc.close(timeout=10)
    finals = [e for e in out if e.type == "final"]
    assert len(finals) == 2
    assert finals[0].end_reason == "stream_end" and finals[0].end == pytest.approx(1.5, abs=0.04)
    assert finals[1].start == pytest.approx(4.0, abs=0.04)  # 1.5 + 2.0 paused + 0.5 silence
    rt.pool.close()
