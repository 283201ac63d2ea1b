"""Online clustering of anonymous speakers (server/speaker/clusters.py) and the tracker's use of it, on
synthetic embeddings whose cosine similarities are chosen exactly (fast; real speech: test_speech.py)."""

from __future__ import annotations

import numpy as np
import pytest

from server.speaker.clusters import AnonymousSpeakers
from server.speaker.identify import SpeakerTracker
from server.speaker.identity import SpeakerIdentity
from server.speaker.profile import VoiceProfile

DIM = 192


def unit(i: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[i]


def blend(i: int, j: int, cos: float) -> np.ndarray:
    """A unit vector with cosine ``cos`` to ``unit(i)``, leaning towards ``unit(j)``."""
    v = cos * unit(i) + np.sqrt(1 - cos**2) * unit(j)
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_one_voice_keeps_one_label_and_a_new_voice_gets_the_next():
    sp = AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0)
    a = sp.assign(unit(0), 3.0)
    assert (a.identity.kind, a.identity.id, a.identity.label, a.reason) == ("anonymous", "anon:1", "Speaker 1",
                                                                             "new_speaker")
    again = sp.assign(blend(0, 5, 0.8), 2.5)
    assert (again.identity.id, again.reason) == ("anon:1", "cluster")
    assert again.score == pytest.approx(0.8, abs=1e-3)
    b = sp.assign(unit(1), 2.0)
    assert (b.identity.id, b.identity.label) == ("anon:2", "Speaker 2")
    assert [s.identity.id for s in sp.summaries()] == ["anon:1", "anon:2"]
    assert sp.find("anon:1").speech_s == pytest.approx(5.5)


def test_short_unmatched_speech_is_unknown_not_a_new_speaker():
    sp = AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0)
    sp.assign(unit(0), 3.0)
    short = sp.assign(unit(1), 1.2)
    assert (short.identity.kind, short.reason) == ("unknown", "uncertain")
    assert len(sp) == 1


def test_speakers_that_converge_are_merged_with_a_relabel():
    sp = AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0, merge_threshold=0.65)
    sp.assign(unit(0), 6.0)
    sp.assign(blend(0, 1, 0.5), 2.0)  # too far from Speaker 1 → Speaker 2, between the two voices
    assert len(sp) == 2
    # speech closer to Speaker 2 but between both pulls its centroid to 0.66 of Speaker 1's: one speaker
    out = sp.assign(blend(0, 1, 0.75), 3.0)
    assert len(sp) == 1
    assert out.identity.id == "anon:1"  # the speaker with more speech survives
    assert [(r.from_id, r.identity.id, r.reason) for r in out.relabels] == [("anon:2", "anon:1", "merged")]
    assert sp.find("anon:2").identity.id == "anon:1"  # the merged id still resolves


def test_a_profile_enrolled_later_takes_over_a_matching_speaker():
    sp = AnonymousSpeakers(join_threshold=0.6, profile_threshold=0.55)
    sp.assign(unit(0), 3.0)
    alice = VoiceProfile(4, "Alice", blend(0, 2, 0.9), 5.0, 1, 0, 0)
    out = sp.assign(unit(0), 2.0, [alice])
    assert [(r.from_id, r.identity.id, r.identity.label, r.reason) for r in out.relabels] == [
        ("anon:1", "profile:4", "Alice", "enrolled")]
    assert out.identity.id == "profile:4"


def test_naming_relabels_and_rejects_what_is_not_there():
    sp = AnonymousSpeakers()
    sp.assign(unit(0), 3.0)
    r = sp.name("anon:1", "Bea")
    assert (r.from_id, r.identity.id, r.identity.label, r.reason) == ("anon:1", "anon:1", "Bea", "named")
    assert sp.labels_in_use() == {"bea"}
    with pytest.raises(KeyError):
        sp.name("anon:9", "Cy")


def test_tracker_prefers_profiles_then_anonymous_speakers_and_carries_short_turns():
    sp = AnonymousSpeakers(join_threshold=0.6)
    tracker = SpeakerTracker(threshold=0.55, min_identify_s=1.0, carry_gap_s=1.5, speakers=sp)
    alice = VoiceProfile(1, "Alice", unit(0), 5.0, 1, 0, 0)
    d1 = tracker.label(0.0, 3.0, unit(0), [alice])
    d2 = tracker.label(3.2, 6.0, unit(1), [alice])
    d3 = tracker.label(6.3, 6.8, None, [alice])
    assert [(d.identity.id, d.reason) for d in (d1, d2, d3)] == [
        ("profile:1", "match"), ("anon:1", "new_speaker"), ("anon:1", "carried")]


def test_without_a_registry_unmatched_voices_stay_unknown():
    tracker = SpeakerTracker(threshold=0.55, speakers=None)
    d = tracker.label(0.0, 3.0, unit(1), [VoiceProfile(1, "Alice", unit(0), 5.0, 1, 0, 0)])
    assert (d.identity.kind, d.reason) == ("unknown", "below_threshold")


def test_short_stretches_of_one_new_voice_add_up_to_a_speaker_and_are_relabelled():
    sp = AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0)
    sp.assign(unit(0), 3.0)
    first = sp.assign(unit(1), 1.2)
    assert (first.identity.kind, first.identity.id, first.reason) == ("unknown", "tentative:1", "uncertain")
    second = sp.assign(blend(1, 2, 0.9), 1.1)  # the same new voice: 2.3 s together
    assert (second.identity.id, second.reason) == ("anon:2", "new_speaker")
    assert [(r.from_id, r.identity.id, r.reason) for r in second.relabels] == [("tentative:1", "anon:2", "merged")]


def test_a_tentative_stretch_joins_the_speaker_it_turns_out_to_match():
    sp = AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0)
    sp.assign(unit(0), 3.0)
    sp.assign(unit(1), 3.0)  # Speaker 2
    t = sp.assign(blend(1, 3, 0.5), 1.0)  # short, too far from Speaker 2 (0.5): tentative:1
    assert t.identity.id == "tentative:1"
    # more of Speaker 2 between its voice and the tentative one: the centroid moves within 0.6 of it
    out = sp.assign(blend(1, 3, 0.8), 3.0)
    assert out.identity.id == "anon:2"
    assert [(r.from_id, r.identity.id) for r in out.relabels] == [("tentative:1", "anon:2")]


def test_the_state_restored_elsewhere_decides_as_the_original_would():
    sp = AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0, first_number=3)
    sp.assign(unit(0), 3.0)
    sp.assign(unit(1), 1.2)  # tentative:1
    sp.assign(unit(2), 2.5)
    sp.name("anon:4", "Bea")
    sp.link("anon:3", SpeakerIdentity.profile(7, "Cy"))
    copy = AnonymousSpeakers(join_threshold=0.6, new_speaker_min_s=2.0)
    copy.restore(sp.state())
    assert copy.state() == sp.state()
    assert [(s.identity, s.speech_s) for s in copy.summaries()] == [(s.identity, s.speech_s) for s in sp.summaries()]
    for registry in (sp, copy):  # the same next decisions: the tentative voice grows up, a new voice is numbered
        grown = registry.assign(blend(1, 5, 0.9), 1.0)
        assert (grown.identity.id, [r.from_id for r in grown.relabels]) == ("anon:5", ["tentative:1"])
        assert registry.assign(unit(3), 1.0).identity.id == "tentative:2"
    assert copy.state() == sp.state()


@pytest.mark.parametrize("state", [{}, {"v": 99}, {"v": 1, "speakers": [{"number": 1}]},
                                   {"v": 1, "first_number": 1, "next_tentative": 1, "tentative": [],
                                    "speakers": [{"number": 1, "label": "S", "total": "not base64!",
                                                  "speech_s": 1, "utterances": 1, "merged_into": None,
                                                  "profile": None}]}])
def test_a_malformed_state_is_refused_and_the_registry_kept(state):
    sp = AnonymousSpeakers()
    sp.assign(unit(0), 3.0)
    before = sp.state()
    with pytest.raises(ValueError):
        sp.restore(state)
    assert sp.state() == before
