"""Speaker identification rules (thresholds, short utterances, carry-over)."""

from __future__ import annotations

import numpy as np

from server.speaker.embedding import normalise
from server.speaker.identify import SpeakerTracker, decide, score_profiles
from server.speaker.profile import VoiceProfile


def profile(pid, name, v):
    return VoiceProfile(pid, name, normalise(np.asarray(v, np.float32)), 5.0, 1, 0.0, 0.0)


E1, E2 = np.eye(192, dtype=np.float32)[0], np.eye(192, dtype=np.float32)[1]
PROFILES = [profile(1, "Alice", E1), profile(2, "Bob", E2)]



def test_best_profile_above_threshold_wins():
    emb = normalise(0.9 * E1 + 0.3 * E2)
    d = decide(emb, PROFILES, threshold=0.5)
    assert (d.name, d.profile_id, d.reason) == ("Alice", 1, "match")
    assert d.score == float(np.dot(emb, E1))
    assert [p.name for p, _ in score_profiles(emb, PROFILES)] == ["Alice", "Bob"]


def test_below_threshold_is_unknown_not_a_wrong_name():
    emb = normalise(0.45 * E1 + 0.4 * E2 + 0.8 * np.eye(192, dtype=np.float32)[2])
    d = decide(emb, PROFILES, threshold=0.5)
    assert d.name == "unknown" and d.profile_id is None and d.reason == "below_threshold"
    assert d.score < 0.5


def test_no_profiles():
    assert decide(E1, [], 0.5).reason == "no_profiles"


def test_short_utterance_carries_previous_label_when_close():
    t = SpeakerTracker(threshold=0.5, min_identify_s=1.0, carry_gap_s=1.5)
    assert t.label(0.0, 3.0, E2, PROFILES).name == "Bob"
    d = t.label(3.5, 4.2, None, PROFILES)  # 0.7 s, 0.5 s after Bob
    assert (d.name, d.reason) == ("Bob", "carried")
    d = t.label(9.0, 9.6, None, PROFILES)  # 0.6 s, far from anything
    assert (d.name, d.reason) == ("unknown", "too_short")


def test_short_utterance_not_scored_even_with_embedding():
    t = SpeakerTracker(min_identify_s=1.0)
    d = t.label(0.0, 0.8, E1, PROFILES)
    assert d.name == "unknown" and d.reason == "too_short"


def test_unknown_is_not_carried():
    t = SpeakerTracker()
    t.label(0.0, 2.0, normalise(E1 * 0.3 + np.eye(192, dtype=np.float32)[5]), PROFILES)
    assert t.label(2.2, 2.8, None, PROFILES).reason == "too_short"
