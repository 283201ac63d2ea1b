"""TurnSplitter (pyannote segmentation-3.0) on real speech: splits at a change of speaker, not elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"
HARVARD = SPEECH / "harvard_2spk"
SR = 16_000

pytestmark = pytest.mark.speech


def clip(name: str) -> np.ndarray:
    audio, sr = sf.read(HARVARD / f"{name}.wav", dtype="float32")
    assert sr == SR
    return audio


def join(*clips: np.ndarray, gap_s: float = 0.1) -> np.ndarray:
    gap = np.zeros(int(gap_s * SR), np.float32)
    return np.concatenate([x for c in clips for x in (c, gap)][:-1])


@pytest.fixture(scope="module")
def splitter():
    if not HARVARD.is_dir():
        pytest.skip(f"real recordings not found at {SPEECH} (shared/data/speech is absent)")
    from server.speaker.turns import TurnSplitter

    return TurnSplitter()


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


@pytest.mark.parametrize("clips", [("spk1_snt1", "spk1_snt2", "spk1_snt3"), ("spk2_snt4", "spk2_snt5")])
def test_one_speaker_is_not_split(splitter, clips):
    audio = join(*(clip(c) for c in clips))
    assert splitter.change_points(audio) == []
    assert splitter.split(audio) == [(0.0, audio.size / SR)]


def test_too_short_or_silent_audio_is_never_split(splitter):
    short = join(clip("spk1_snt1")[: int(0.8 * SR)], clip("spk2_snt1")[: int(0.8 * SR)])  # parts < 1 s
    assert splitter.change_points(short) == []
    assert splitter.change_points(np.zeros(5 * SR, np.float32)) == []
