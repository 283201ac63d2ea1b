"""Hallucination guards on text and levels."""

from __future__ import annotations

import numpy as np
import pytest

from server.asr import guards


def test_collapse_repeats_keeps_two_copies():
    assert guards.collapse_repeats("I think I think I think I think so") == "I think I think so"
    assert guards.collapse_repeats("no no no no no no") == "no no"
    assert guards.collapse_repeats("and so my fellow Americans and so my fellow Americans and so my fellow Americans") \
        == "and so my fellow Americans and so my fellow Americans"


def test_partial_loop_filter():
    looped = "And so my fellow Americans. And so my fellow Americans. And"
    assert guards.collapse_repeats(looped, 1, min_ngram=3) == "And so my fellow Americans. And"
    assert guards.collapse_repeats("very very good", 1, min_ngram=3) == "very very good"


@pytest.mark.parametrize(("raw", "clean"), [
    # Whisper base's partial decodes of harvard_2spk (short window + 2 s padding), copied from a probe run
    ("Sunday is the best part of the week Sunday is the best part", "Sunday is the best part of the week"),
    ("Sunday is the best Sunday is the best Sunday is", "Sunday is the best"),
    ("The pencils have all been used. The pencils have all been", "The pencils have all been used."),
    ("The pencils have all the pencils have all the pencils", "The pencils have all"),
    ("Jump the fence and hurry up the bank. Jump the fence", "Jump the fence and hurry up the bank."),
    ("Men the coat men the coat men the coat", "Men the coat"),
])
def test_partial_restarting_itself_is_cut(raw, clean):
    assert guards.clean_partial(raw) == clean


def test_partial_guard_leaves_normal_text_alone():
    for text in ["A thin stripe runs down the middle.", "Can pair's lack full flavor.", "Sunday Sunday",
                 "We said no and we", "very very good", "Ask not what your country can do for you, ask what you can "
                 "do for your country."]:
        assert guards.clean_partial(text) == text
    assert guards.trim_restarted_tail("the best the best") == "the best"  # a whole second copy is a loop too


def test_collapse_repeats_leaves_normal_text_alone():
    text = "Ask not what your country can do for you, ask what you can do for your country."
    assert guards.collapse_repeats(text) == text
    assert guards.collapse_repeats("very very good") == "very very good"


@pytest.mark.parametrize("text", ["Thanks for watching!", "시청해주셔서 감사합니다.", "Please subscribe.", "...", ""])
def test_known_hallucinations(text):
    assert guards.is_known_hallucination(text, speech_s=3.0, avg_logprob=-0.2)


def test_real_phrases_survive_unless_short_and_unsure():
    assert not guards.is_known_hallucination("Thank you.", speech_s=2.5, avg_logprob=-0.3)
    assert not guards.is_known_hallucination("Thank you.", speech_s=1.0, avg_logprob=-0.2)
    assert guards.is_known_hallucination("Thank you.", speech_s=1.0, avg_logprob=-1.1)
    assert not guards.is_known_hallucination("Thanks for watching the kids today", 3.0, -0.2)


def test_whisper_no_speech_rule():
    assert guards.is_no_speech(0.8, -1.2)
    assert not guards.is_no_speech(0.8, -0.5)  # confident text despite a high no-speech probability
    assert not guards.is_no_speech(0.3, -1.5)


def test_dbfs():
    assert guards.rms_dbfs(np.zeros(100, np.float32)) == float("-inf")
    sine = np.sin(np.linspace(0, 200 * np.pi, 16000)).astype(np.float32)
    assert guards.rms_dbfs(sine) == pytest.approx(-3.01, abs=0.05)
    assert guards.is_too_quiet(sine * 1e-3) and not guards.is_too_quiet(sine * 0.1)
