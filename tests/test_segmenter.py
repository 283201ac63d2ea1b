"""Endpointing state machine: deterministic frame sequences in, segmenter events out."""

from __future__ import annotations

import numpy as np
import pytest

from server.stream.segmenter import EndpointConfig, PartialSegment, Segmenter, SpeechStarted, UtteranceEnded

N = 480  # 30 ms frames
FRAME_S = N / 16000


def run(probs, cfg=None, flush=True):
    seg = Segmenter(N, cfg or EndpointConfig(partial_interval_s=None))
    out = []
    for i, p in enumerate(probs):
        frame = np.full(N, i, dtype=np.float32)  # frame index as sample value: lets tests check which frames
        out += seg.push(frame, p)
    if flush:
        out += seg.flush()
    return out


def frames_of(segment):
    return sorted(set(segment.audio.astype(int).tolist()))


def test_utterance_ends_after_silence_with_preroll_and_trailing_silence():
    probs = [0] * 20 + [1] * 30 + [0] * 40
    ev = run(probs)
    assert [type(e) for e in ev] == [SpeechStarted, UtteranceEnded]
    end = ev[1]
    assert end.reason == "silence"
    assert end.segment.start == pytest.approx(20 * FRAME_S)
    assert end.segment.end == pytest.approx(50 * FRAME_S)
    # 200 ms pre-roll = 7 frames of 30 ms before the first speech frame
    assert frames_of(end.segment)[0] == 20 - 7
    # ends after 480 ms = 16 silent frames; they stay in the audio
    assert frames_of(end.segment)[-1] == 50 + 16 - 1
    assert end.segment.audio_start == pytest.approx(13 * FRAME_S)


def test_short_pause_does_not_end_the_utterance():
    probs = [1] * 20 + [0] * 10 + [1] * 20 + [0] * 20  # 300 ms pause < 480 ms
    ev = [e for e in run(probs) if isinstance(e, UtteranceEnded)]
    assert len(ev) == 1
    assert ev[0].segment.end == pytest.approx(50 * FRAME_S)


def test_configurable_silence():
    probs = [1] * 20 + [0] * 10 + [1] * 20 + [0] * 20
    ev = [e for e in run(probs, EndpointConfig(silence_ms=240, partial_interval_s=None))
          if isinstance(e, UtteranceEnded)]
    assert len(ev) == 2


def test_blips_shorter_than_min_speech_are_dropped():
    probs = [0] * 10 + [1] * 5 + [0] * 30 + [1] * 3 + [0] * 30  # 150 ms and 90 ms blips (< 250 ms)
    assert run(probs) == []


def test_max_length_force_cut_at_least_speechlike_frame_and_continues():
    cfg = EndpointConfig(max_utterance_s=3.0, partial_interval_s=None)
    probs = [0.9] * 200
    probs[85] = 0.2  # a dip 2.55 s in: inside the last 2 s before the 3 s limit
    ev = run(probs, cfg)
    ends = [e for e in ev if isinstance(e, UtteranceEnded)]
    assert ends[0].reason == "max_length"
    assert frames_of(ends[0].segment)[-1] == 84  # cut right before the dip frame
    assert all(e.segment.duration <= 3.0 + 1e-9 for e in ends)
    # the rest carries on as new utterances; nothing is lost
    covered = set()
    for e in ends:
        covered |= set(frames_of(e.segment))
    assert set(range(200)) <= covered
    starts = [e for e in ev if isinstance(e, SpeechStarted)]
    assert [s.utterance_id for s in starts] == list(range(len(ends)))


def test_partials_every_interval_while_open():
    cfg = EndpointConfig(partial_interval_s=1.0)
    ev = run([1] * 120 + [0] * 20, cfg)  # 3.6 s of speech
    partials = [e for e in ev if isinstance(e, PartialSegment)]
    assert len(partials) == 3
    ends = [p.segment.end for p in partials]
    assert np.diff(ends) == pytest.approx([1.02, 1.02], abs=0.04)
    assert all(p.segment.utterance_id == 0 for p in partials)
    assert isinstance(ev[-1], UtteranceEnded)


def test_stream_end_closes_open_utterance():
    ev = run([1] * 30)
    assert isinstance(ev[-1], UtteranceEnded) and ev[-1].reason == "stream_end"


def test_hysteresis_keeps_utterance_open_on_moderate_probabilities():
    probs = [0.9] * 20 + [0.4] * 30 + [0.0] * 20  # 0.4 ≥ 0.5 - 0.15 keeps speech going
    ev = [e for e in run(probs) if isinstance(e, UtteranceEnded)]
    assert len(ev) == 1 and ev[0].segment.end == pytest.approx(50 * FRAME_S)
    # … but 0.4 alone never starts one
    assert run([0.4] * 60) == []


def test_stream_clock_offset():
    seg = Segmenter(N, EndpointConfig(partial_interval_s=None), t0=100.0)
    ev = []
    for p in [0] * 10 + [1] * 20 + [0] * 20:
        ev += seg.push(np.zeros(N, np.float32), p)
    assert ev[0].start == pytest.approx(100.0 + 10 * FRAME_S)
