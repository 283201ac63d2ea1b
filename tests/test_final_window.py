"""Short-window finals (issue 11): the doubt rule, and the real engine on real clips, a looping input and noise."""

from __future__ import annotations

import numpy as np
import pytest

from server.asr.engine import short_final_doubt
from server.audio.ingest import load_audio

from conftest import wer

GOOD = {"truncated": False, "avg_logprob": -0.2, "no_speech_prob": 0.02, "speech_s": 2.5}


def test_a_confident_short_decode_is_kept():
    assert short_final_doubt("The birch canoe slid on the smooth planks.", "The birch canoe slid on the smooth planks.",
                             **GOOD) is None


@pytest.mark.parametrize(("text", "cleaned", "change", "reason"), [
    ("and so my fellow", "and so my fellow", {"truncated": True}, "length"),
    ("the week Sunday is the week Sunday", "the week Sunday", {}, "repeat"),
    ("la " * 40, "la " * 40, {}, "compression"),
    ("I'm going to get some water.", "I'm going to get some water.", {"no_speech_prob": 0.45}, "no_speech"),
    ("I'm", "I'm", {"avg_logprob": -1.3}, "logprob"),
    ("", "", {}, "empty"),
])
def test_each_doubt_sends_the_final_to_the_full_window(text, cleaned, change, reason):
    assert short_final_doubt(text, cleaned, **{**GOOD, **change}) == reason


def test_a_short_blip_with_no_text_is_not_doubted():
    assert short_final_doubt("", "", **{**GOOD, "speech_s": 0.4}) is None


@pytest.fixture(scope="module")
def engines(model_cache):
    from server.asr.engine import WhisperEngine
    from server.settings import Settings

    made = {w: WhisperEngine(Settings(model_cache_dir=model_cache, final_window=w)) for w in ("short", "full")}
    # the narrowest short window (utterance + 2 s): it loops on real inputs the 10 s default reads correctly
    made["short 0 s"] = WhisperEngine(Settings(model_cache_dir=model_cache, final_window="short",
                                               short_final_window_s=0.0))
    return made


@pytest.mark.speech
def test_short_window_finals_read_real_clips_as_well_as_the_full_window(engines, speech, manifest):
    clips = [m for m in manifest if m.get("text") and m["path"].startswith("harvard_2spk")]
    assert len(clips) == 12
    refs, hyps = {"short": [], "full": []}, {"short": [], "full": []}
    windows = []
    for m in clips:
        audio = load_audio(speech / m["path"])
        for w in ("short", "full"):
            r = engines[w].transcribe(audio, language="en")
            refs[w].append(m["text"])
            hyps[w].append(r.text)
            if w == "short":
                windows.append(r.window)
    assert len(windows) == 12 and windows.count("short") >= 10, windows
    # 12 clips hold 86 words, so one word is 1.2 points: at most one word more wrong than the 30 s window (the
    # corpus-level bar, +0.5 points on all 16 reference clips, is bench/final_window.py's and tests/test_speech.py's)
    words = sum(len(r.split()) for r in refs["full"])
    short, full = wer(refs["short"], hyps["short"]), wer(refs["full"], hyps["full"])
    assert round(short * words) <= round(full * words) + 1, (short, full, hyps)
    assert short <= 0.10


@pytest.mark.speech
def test_short_window_word_timings_cover_the_text_in_order(engines, speech):
    audio = load_audio(speech / "jfk.flac")
    r = engines["short"].transcribe(audio, language="en", word_timestamps=True)
    assert r.window == "short"
    assert "".join(w.word for w in r.words).strip() == r.text
    starts = [w.start for w in r.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= audio.size / 16000 + 0.05 for w in r.words)
    assert r.words[-1].end > 0.6 * audio.size / 16000


@pytest.mark.speech
def test_a_looping_input_falls_back_to_the_full_window(engines, speech):
    """Real inputs on which the short window has looped: on the utterance + 2 s of silence, beam 5 read "What joy
    there is in living." and then started the sentence again over the padding (seen on harvard spk2_snt2, and on
    spk1_snt3 followed by 0.5 s of silence, on one machine; on another CPU the same int8 model read both once, so
    whether it loops is the model's numerics, not ours: the doubt rule itself is tested with fixed texts above).
    What must hold everywhere: a final says each sentence once, and a doubted one comes from the 30 s window."""
    from server.asr import guards

    d = speech / "harvard_2spk"
    inputs = [load_audio(d / "spk2_snt2.wav"),
              np.concatenate([load_audio(d / "spk1_snt3.wav"), np.zeros(8000, np.float32)])]
    results = [engines["short 0 s"].transcribe(x, language="en") for x in inputs]
    seen = [(r.window, r.fallback, r.text) for r in results]
    for r in results:
        assert r.text and guards.clean_partial(r.text) == r.text, seen
        assert guards.collapse_repeats(r.text, 1, min_ngram=3) == r.text, seen  # no sentence said twice
        if r.fallback:
            assert r.window == "full", seen


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise_read_as_speech_on_the_short_window_is_not_kept(engines, colour):
    """With the language given, the short window reads fluent English into noise at a no-speech probability below
    Whisper's 0.6; the short-window threshold sends it to the full window, which finds nothing."""
    rng = np.random.default_rng(3)
    n = 3 * 16000
    x = rng.standard_normal(n)
    if colour == "pink":
        spectrum = np.fft.rfft(x) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / 16000), 1.0))
        x = np.fft.irfft(spectrum, n)
    x = (x / np.sqrt(np.mean(x**2)) * 10 ** (-30 / 20)).astype(np.float32)
    r = engines["short"].transcribe(x, language="en")
    assert r.text == ""
    assert r.window == "full" and r.fallback is not None


@pytest.mark.speech
def test_an_unsure_language_id_keeps_the_streams_language_when_it_ranks_first(engines, speech):
    """A real English LibriSpeech test-other clip on which Whisper base's short-window language ID is unsure (< 0.8)
    but ranks English first: alone it goes to the 30 s window ("language"); with the stream's established English
    as the hint it stays on the short window; a hint the ID does not rank first changes nothing."""
    audio = load_audio(speech / "librispeech_test-other_10spk/2033/2033-164914-0004.flac")
    alone = engines["short"].transcribe(audio)
    assert alone.fallback == "language" and alone.window == "full", "the ID is sure here: this clip tests nothing"
    hinted = engines["short"].transcribe(audio, language_hint="en")
    assert hinted.window == "short" and hinted.fallback is None and hinted.language == "en"
    assert hinted.language_probability < 0.8 and hinted.text
    assert wer([alone.text], [hinted.text]) <= 0.25, (alone.text, hinted.text)
    other = engines["short"].transcribe(audio, language_hint="ko")
    assert other.fallback == "language" and other.window == "full"


def test_finals_carry_the_streams_last_language_as_a_hint():
    """Plumbing: the first final has no hint; later ones carry the language of the last final with text ≥ 1.5 s;
    a final without text (noise) does not set it."""
    from test_processor import EnergyVad, FakeRuntime, silence, speech_like

    from server.asr.types import AsrResult
    from server.compute.runtime import UtteranceResult
    from server.stream.processor import StreamProcessor

    class Languages(FakeRuntime):
        def __init__(self) -> None:
            super().__init__()
            self.settings = self.settings.model_copy(update={"early_final_ms": 0})
            self.hints: list[str | None] = []
            self.answers = [("hello", "en"), ("", "nn"), ("안녕하세요", "ko"), ("again", "en")]

        def finalize(self, job):
            self.hints.append(job.language_hint)
            text, language = self.answers[len(self.hints) - 1]
            return UtteranceResult(AsrResult(text, language), None, profiles=self._profiles)

    rt = Languages()
    proc = StreamProcessor(rt, lambda e: None, classifier=EnergyVad(), partials=False, block=True)
    for _ in range(4):
        for chunk in (speech_like(2.0), silence(1.0)):
            for i in range(0, chunk.size, 320):
                proc.push(chunk[i : i + 320])
    proc.close(timeout=10)
    rt.pool.close()
    assert rt.hints == [None, "en", "en", "ko"]
