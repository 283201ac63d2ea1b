"""TurnSplitter (pyannote segmentation-3.0) on real speech: splits at a change of speaker, not elsewhere; and the
pure rule :func:`server.speaker.turns.turn_cuts` on synthetic activity (no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from server.speaker.turns import turn_cuts

SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"
HARVARD = SPEECH / "harvard_2spk"
SR = 16_000

STEP = 0.017  # segmentation-3.0's frame step (~16.9 ms)


def clip(name: str) -> np.ndarray:
    audio, sr = sf.read(HARVARD / f"{name}.wav", dtype="float32")
    assert sr == SR
    return audio


def join(*clips: np.ndarray, gap_s: float = 0.1) -> np.ndarray:
    gap = np.zeros(int(gap_s * SR), np.float32)
    return np.concatenate([x for c in clips for x in (c, gap)][:-1])


def activity(*spans: tuple[str, float], k: int = 3) -> tuple[np.ndarray, np.ndarray, float]:
    """Synthetic local activity from consecutive ``(who, seconds)`` spans: who is "" (silence), "A", "B", "AB"."""
    rows = []
    for who, seconds in spans:
        row = np.array([c in who for c in "ABC"[:k]])
        rows += [row] * round(seconds / STEP)
    active = np.array(rows)
    times = (np.arange(len(rows)) + 0.5) * STEP
    return times, active, len(rows) * STEP


def test_cut_midway_between_two_speakers():
    times, active, duration = activity(("", 0.2), ("A", 2.0), ("", 0.3), ("B", 2.0), ("", 0.5))
    (cut,) = turn_cuts(times, active, duration)
    assert abs(cut - 2.35) <= STEP, cut  # the middle of the 0.3 s pause (a 0.27 s pause is split too)


def test_overlap_frames_are_skipped_and_the_cut_falls_inside_the_overlap():
    times, active, duration = activity(("A", 2.0), ("AB", 0.6), ("B", 2.0))
    (cut,) = turn_cuts(times, active, duration)
    assert 2.0 <= cut <= 2.6, cut


def test_a_short_interjection_is_absorbed():
    times, active, duration = activity(("A", 3.0), ("B", 0.6), ("A", 3.0))
    assert turn_cuts(times, active, duration, min_turn_s=1.0) == []
    assert len(turn_cuts(times, active, duration, min_turn_s=0.5)) == 2  # A | B | A when 0.6 s counts


def test_silence_never_splits():
    times, active, duration = activity(("", 4.0))
    assert turn_cuts(times, active, duration) == []


def test_every_part_holds_min_turn_s_of_one_speaker():
    # B speaks 1.2 s then 0.5 s of trailing silence: split; B speaks 0.7 s: absorbed, although 0.7 s of speech
    # plus the silence would make a 1.2 s part (it would be too short to identify on the stream clock)
    times, active, duration = activity(("", 0.2), ("A", 2.0), ("B", 1.2), ("", 0.5))
    assert len(turn_cuts(times, active, duration, min_turn_s=1.0)) == 1
    times, active, duration = activity(("", 0.2), ("A", 2.0), ("B", 0.7), ("", 0.5))
    assert turn_cuts(times, active, duration, min_turn_s=1.0) == []


@pytest.fixture(scope="module")
def splitter():
    if not HARVARD.is_dir():
        pytest.skip(f"real recordings not found at {SPEECH} (shared/data/speech is absent)")
    from server.speaker.turns import TurnSplitter

    return TurnSplitter()


@pytest.mark.speech
@pytest.mark.parametrize("first,second", [("spk1_snt4", "spk2_snt4"), ("spk2_snt5", "spk1_snt6")])
def test_two_speakers_back_to_back_split_once_at_the_junction(splitter, first, second):
    a, b = clip(first), clip(second)
    audio = join(a, b)
    junction = (a.size + 0.05 * SR) / SR
    cuts = splitter.change_points(audio)
    assert len(cuts) == 1, cuts
    assert abs(cuts[0] - junction) <= 0.5, (cuts, junction)
    parts = splitter.split(audio)
    assert parts == [(0.0, cuts[0]), (cuts[0], audio.size / SR)]


@pytest.mark.speech
@pytest.mark.parametrize("clips", [("spk1_snt1", "spk1_snt2", "spk1_snt3"), ("spk2_snt4", "spk2_snt5")])
def test_one_speaker_is_not_split(splitter, clips):
    audio = join(*(clip(c) for c in clips))
    assert splitter.change_points(audio) == []
    assert splitter.split(audio) == [(0.0, audio.size / SR)]


@pytest.mark.speech
def test_too_short_or_silent_audio_is_never_split(splitter):
    short = join(clip("spk1_snt1")[: int(0.8 * SR)], clip("spk2_snt1")[: int(0.8 * SR)])  # parts < 1 s
    assert splitter.change_points(short) == []
    assert splitter.change_points(np.zeros(5 * SR, np.float32)) == []
