"""Hallucination guards for Whisper output.

Whisper invents text on silence and noise and can loop on repeated phrases (WhisperLive, whisper_streaming and
faster-whisper issue trackers; docs/measurements.md). The guards, in order:

1. *Energy gate* (:func:`is_too_quiet`): audio whose RMS is below ``min_dbfs`` is never decoded.
2. *Segment rule* (:func:`is_no_speech`): OpenAI Whisper's own test (``transcribe.py``): a segment whose
   ``no_speech_prob`` exceeds ``no_speech_threshold`` while its ``avg_logprob`` is below
   ``log_prob_threshold`` is silence.
3. *Repeat filter* (:func:`collapse_repeats`): an n-gram (1–8 words) repeated more than ``max_repeats``
   times in a row is kept ``max_repeats`` times.
4. *Known phrases* (:func:`is_known_hallucination`): whole outputs that Whisper is known to produce on
   non-speech (subtitle credits, "thanks for watching", Korean "시청해주셔서 감사합니다" …).
5. *Restarted tail* (:func:`trim_restarted_tail`, partials): on the short partial window Whisper reads the
   speech, then starts it again over the 2 s of padding until the length bound cuts it
   ("Sunday is the best part of the week Sunday is the best part"). The cut copy is not a whole repeat, so
   :func:`collapse_repeats` keeps it; this drops it. :func:`clean_partial` applies 3 and 5 to a partial.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

KNOWN_HALLUCINATIONS = frozenset(
    {
        # English (subtitle/YouTube credits seen on silence)
        "thank you",
        "thank you very much",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "please subscribe",
        "subscribe to my channel",
        "like and subscribe",
        "see you next time",
        "bye",
        "you",
        "subtitles by the amaraorg community",
        "transcribed by",
        "transcription by castingwords",
        # Korean
        "시청해주셔서 감사합니다",
        "시청해 주셔서 감사합니다",
        "구독과 좋아요 부탁드립니다",
        "구독 좋아요 알림설정",
        "감사합니다",
        "mbc 뉴스 이덕영입니다",
        "다음 영상에서 만나요",
    }
)
"""Normalised (lower-case, no punctuation) outputs treated as hallucinations when they are the whole text.

"thank you" / "감사합니다" / "bye" are dropped only when the audio is short and weak (see
:func:`is_known_hallucination`), because people do say them."""

_WEAK_ONLY = frozenset({"thank you", "bye", "you", "감사합니다", "thank you very much"})


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level of ``float32[n]`` audio in dBFS (0 dBFS = full-scale square wave); -inf for silence."""
    if audio.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def is_too_quiet(audio: np.ndarray, min_dbfs: float = -55.0) -> bool:
    """True if the audio is too quiet to hold speech worth decoding."""
    return rms_dbfs(audio) < min_dbfs


def is_no_speech(no_speech_prob: float, avg_logprob: float, no_speech_threshold: float = 0.6,
                 log_prob_threshold: float = -1.0) -> bool:
    """OpenAI Whisper's silence rule for one decoded segment."""
    return no_speech_prob > no_speech_threshold and avg_logprob < log_prob_threshold


def normalise(text: str) -> str:
    """Lower-case, strip punctuation and symbols, fold white space (for phrase matching only)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch if not unicodedata.category(ch).startswith(("P", "S")) else " " for ch in text)
    return " ".join(text.split())


def is_known_hallucination(text: str, speech_s: float, avg_logprob: float) -> bool:
    """True if ``text`` as a whole is a phrase Whisper produces on non-speech.

    Phrases people really say ("thank you", "감사합니다") count only when the utterance is short
    (< 1.5 s) and decoded with low confidence (``avg_logprob < -0.7``).
    """
    norm = normalise(text)
    if not norm:
        return True
    if norm not in KNOWN_HALLUCINATIONS:
        return False
    if norm in _WEAK_ONLY:
        return speech_s < 1.5 and avg_logprob < -0.7
    return True


_WORD = re.compile(r"\S+")


def collapse_repeats(text: str, max_repeats: int = 2, max_ngram: int = 8, min_ngram: int = 1) -> str:
    """Keep at most ``max_repeats`` consecutive copies of any ``min_ngram``..``max_ngram``-word sequence.

    >>> collapse_repeats("I think I think I think I think so")
    'I think I think so'
    """
    words = _WORD.findall(text)
    if len(words) < min_ngram * (max_repeats + 1):
        return text
    changed = True
    while changed:
        changed = False
        for n in range(min_ngram, max_ngram + 1):
            i = 0
            while i + n * (max_repeats + 1) <= len(words):
                key = [w.lower().strip(".,!?") for w in words[i : i + n]]
                reps = 1
                while words[i + reps * n : i + (reps + 1) * n] and [
                    w.lower().strip(".,!?") for w in words[i + reps * n : i + (reps + 1) * n]
                ] == key:
                    reps += 1
                if reps > max_repeats:
                    del words[i + max_repeats * n : i + reps * n]
                    changed = True
                i += 1
    return " ".join(words)


def _key(word: str) -> str:
    return word.lower().strip(".,!?;:\"'")


def trim_restarted_tail(text: str, min_words: int = 2) -> str:
    """Drop a tail that starts the text over: the last *k* ≥ ``min_words`` words equal the first *k* and follow
    at least *k* other words (a decoding loop cut short, not speech).

    >>> trim_restarted_tail("Sunday is the best part of the week Sunday is the best part")
    'Sunday is the best part of the week'
    """
    words = _WORD.findall(text)
    keys = [_key(w) for w in words]
    for k in range(len(words) // 2, min_words - 1, -1):
        if keys[-k:] == keys[:k]:
            return " ".join(words[:-k])
    return text


def clean_partial(text: str) -> str:
    """The guards for an interim (partial) decode: repeats collapsed (a phrase of 3+ words at most once in a row,
    anything else at most twice), then a restarted tail dropped."""
    return trim_restarted_tail(collapse_repeats(collapse_repeats(text), 1, min_ngram=3))
