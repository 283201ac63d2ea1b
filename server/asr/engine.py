"""Whisper decoding with faster-whisper on one shared model instance.

One :class:`WhisperEngine` per process; its :meth:`transcribe` is thread-safe and is called from the
:class:`server.compute.workpool.WorkerPool` threads (CTranslate2 runs ``num_workers`` decodes in parallel
on one model: ``cpu_threads=1, num_workers=2`` gave the best throughput on 2 cores, docs/measurements.md).

Decoding choices (faster-whisper ``WhisperModel.transcribe`` arguments):
- ``condition_on_previous_text=False``: no carrying of text across pauses (a known loop source);
- ``vad_filter=False``: our own endpointing already cut the audio;
- temperature fallback with Whisper's ``compression_ratio_threshold``/``log_prob_threshold``;
- language, when not set, is identified on a short window first (:meth:`WhisperEngine.detect_language`), which
  halves the cost of a final; faster-whisper's 30 s-window detection is the fallback when it is unsure;
- **partials** skip faster-whisper's padding of every window to 30 s (``pad_or_trim`` to 3000 mel frames):
  they encode only the utterance + 2 s of silence with CTranslate2's ``encode``/``generate`` (which accept
  fewer frames; docs/measurements.md: 2.3 s took 0.19 s instead of 1.68 s), greedy, with a bounded output length.
- **finals** (``Settings.final_window="short"``, the default; issue 11) decode on a short window too, the
  utterance padded with silence to ``Settings.short_final_window_s`` (10 s; on utterance + 2 s Whisper base misread
  more and looped more), with beam ``Settings.short_beam_size``, and fall back to faster-whisper's full 30 s
  window when the short decode is not to be trusted (:func:`short_final_doubt`: output cut by the length bound,
  a repeat or restarted tail, Whisper's own compression-ratio / log-probability fallback rule, a no-speech
  verdict, no text for speech, or an unsure language ID). Word timings come from CTranslate2's cross-attention
  alignment on the short encoder output (faster-whisper's ``find_alignment``). Figures: bench/final_window.py,
  quoted in docs/measurements.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import SAMPLE_RATE
from ..errors import ModelError
from ..models import resolve_whisper_model
from ..settings import Settings
from . import guards
from .types import AsrResult, Word

log = logging.getLogger(__name__)

FAST_LANGUAGE_ID_MIN_PROB = 0.8
SHORT_WINDOW_MAX_S = 28.0
"""Longest audio the short window holds (plus 2 s of padding = Whisper's 30 s)."""
SHORT_WINDOW_NO_SPEECH = 0.2
"""A short-window final whose no-speech probability exceeds this goes to the full window. Whisper's own 0.6 is too
lax on the short window: it read fluent sentences into white and pink noise at -45..-15 dBFS with no-speech
probabilities of 0.35-0.6, while real speech stayed below 0.07 (bench/final_window.py prints both)."""
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
"""Punctuation merged into the neighbouring word's timing: faster-whisper ``transcribe()``'s defaults."""


def short_final_doubt(text: str, cleaned: str, *, truncated: bool, avg_logprob: float, no_speech_prob: float,
                      speech_s: float, compression_ratio_threshold: float = 2.4,
                      log_prob_threshold: float = -1.0,
                      no_speech_threshold: float = SHORT_WINDOW_NO_SPEECH) -> str | None:
    """Why a short-window final must be decoded again on the full 30 s window, or None to keep it.

    Args:
        text: the decoded text; ``cleaned``: after :func:`guards.clean_partial` (repeats and restarted tails).
        truncated: the decode stopped at the output-length bound (~6 tokens per second of speech).
        avg_logprob, no_speech_prob: Whisper's scores for the decode.
        speech_s: seconds of audio decoded (without the padding).

    Returns one of ``"length"``, ``"repeat"``, ``"compression"``, ``"logprob"``, ``"no_speech"``, ``"empty"``
    or None. The compression-ratio and log-probability tests are Whisper's temperature-fallback rule
    (OpenAI ``whisper/transcribe.py``; faster-whisper ``generate_with_fallback``), with the same thresholds; any
    no-speech probability above ``no_speech_threshold`` (:data:`SHORT_WINDOW_NO_SPEECH`) doubts, whatever the
    log-probability.
    """
    from faster_whisper.transcribe import get_compression_ratio

    if truncated:
        return "length"
    if cleaned != text:
        return "repeat"
    if text and get_compression_ratio(text) > compression_ratio_threshold:
        return "compression"
    if no_speech_prob > no_speech_threshold:
        return "no_speech"
    if avg_logprob < log_prob_threshold:
        return "logprob"
    if not text.strip() and speech_s >= 1.0:
        return "empty"
    return None


def _compute_type(settings: Settings, device: str) -> str:
    if settings.compute_type != "default":
        return settings.compute_type
    return "float16" if device == "cuda" else "int8"


@dataclass
class _ShortDecode:
    """One decode on the short window: the tokenizer, text tokens (no special tokens), their text, scores."""

    tokenizer: Any
    tokens: list[int]
    text: str
    avg_logprob: float
    no_speech_prob: float
    truncated: bool


class WhisperEngine:
    """The shared faster-whisper model.

    Raises:
        ModelError: the model directory cannot be resolved or loaded.
    """

    def __init__(self, settings: Settings) -> None:
        from faster_whisper import WhisperModel

        self.settings = settings
        self.model_dir = resolve_whisper_model(settings.whisper_model, settings.model_cache_dir)
        device = settings.device
        if device == "auto":
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        self.device = device
        self.compute_type = _compute_type(settings, device)
        try:
            self.model = WhisperModel(
                str(self.model_dir),
                device=device,
                compute_type=self.compute_type,
                cpu_threads=settings.cpu_threads,
                num_workers=settings.asr_workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load Whisper model from {self.model_dir}: {exc}") from exc
        self.multilingual = self.model.model.is_multilingual
        log.info("whisper model loaded", extra={"dir": str(self.model_dir), "device": device,
                                                 "compute_type": self.compute_type})

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, partial: bool = False,
                   word_timestamps: bool = False, language_hint: str | None = None) -> AsrResult:
        """Decode ``float32[n]`` 16 kHz mono audio (one utterance, ≤ 30 s).

        Args:
            language: ISO 639-1 code, or None to detect (ignored by English-only models).
            language_hint: with ``language`` None, the stream's established language: a short-window final whose
                language ID is unsure (< :data:`FAST_LANGUAGE_ID_MIN_PROB`) but ranks this language first keeps it
                instead of going to the 30 s window (bench/final_window.py counts the ``language`` fallbacks).
            partial: interim decode: short window, greedy, no temperature fallback, no words.
            word_timestamps: return word timings (costs up to +0.35 s, docs/measurements.md).
        """
        s = self.settings
        speech_s = audio.size / SAMPLE_RATE
        if not self.multilingual:
            language = "en"
        if guards.is_too_quiet(audio):
            return AsrResult("", language, dropped="too_quiet")
        if partial:
            return self._decode_short(audio, language)
        fallback = None
        if s.final_window == "short":
            if speech_s > SHORT_WINDOW_MAX_S:
                fallback = "too_long"
            else:
                short, fallback = self._final_short(audio, language, word_timestamps, language_hint)
                if short is not None:
                    return short
        result = self._final_full(audio, language, word_timestamps)
        result.fallback = fallback
        return result

    def _final_full(self, audio: np.ndarray, language: str | None, word_timestamps: bool) -> AsrResult:
        """faster-whisper's own transcription on the 30 s window, with temperature fallback."""
        s = self.settings
        speech_s = audio.size / SAMPLE_RATE
        if language is None and self.multilingual:
            detected, probability = self.detect_language(audio)
            if probability >= FAST_LANGUAGE_ID_MIN_PROB:
                language = detected
        segments, info = self.model.transcribe(
            audio,
            language=language,
            beam_size=s.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
            compression_ratio_threshold=s.compression_ratio_threshold,
            log_prob_threshold=s.log_prob_threshold,
            no_speech_threshold=s.no_speech_threshold,
            word_timestamps=word_timestamps,
            without_timestamps=not word_timestamps,
        )
        texts: list[str] = []
        words: list[Word] = []
        logprobs: list[float] = []
        no_speech: list[float] = []
        for seg in segments:
            no_speech.append(seg.no_speech_prob)
            logprobs.append(seg.avg_logprob)
            if guards.is_no_speech(seg.no_speech_prob, seg.avg_logprob, s.no_speech_threshold, s.log_prob_threshold):
                continue
            texts.append(seg.text.strip())
            for w in seg.words or ():
                words.append(Word(word=w.word, start=w.start, end=w.end, probability=w.probability))
        avg_logprob = float(np.mean(logprobs)) if logprobs else None
        max_no_speech = max(no_speech) if no_speech else None
        text = guards.collapse_repeats(" ".join(t for t in texts if t))
        result = AsrResult(text, info.language, info.language_probability, avg_logprob, max_no_speech, words,
                           window="full")
        if not texts and no_speech:
            result.text, result.words, result.dropped = "", [], "no_speech"
        elif text and guards.is_known_hallucination(text, speech_s, avg_logprob if avg_logprob is not None else 0.0):
            result.text, result.words, result.dropped = "", [], "known_phrase"
        return result

    def _final_short(self, audio: np.ndarray, language: str | None, word_timestamps: bool,
                     language_hint: str | None = None) -> tuple[AsrResult | None, str | None]:
        """A final decoded on the audio padded with silence to ``Settings.short_final_window_s`` (by ≥ 2 s), with
        ``Settings.short_beam_size``.

        Returns ``(result, None)``, or ``(None, reason)`` when :func:`short_final_doubt` (or an unsure language
        ID, reason ``"language"``) says the full window must decide.
        """
        from faster_whisper.transcribe import merge_punctuations

        s = self.settings
        fw = self.model
        speech_s = audio.size / SAMPLE_RATE
        encoder_output = self._encode_short(audio, s.short_final_window_s)
        probability = None
        if language is None:
            token, probability = fw.model.detect_language(encoder_output)[0][0]
            language = token[2:-2]
            if probability < FAST_LANGUAGE_ID_MIN_PROB and language != language_hint:
                return None, "language"
        short = self._generate_short(encoder_output, language, speech_s, s.short_beam_size)
        doubt = short_final_doubt(short.text, guards.clean_partial(short.text), truncated=short.truncated,
                                  avg_logprob=short.avg_logprob, no_speech_prob=short.no_speech_prob,
                                  speech_s=speech_s, compression_ratio_threshold=s.compression_ratio_threshold,
                                  log_prob_threshold=s.log_prob_threshold)
        if doubt is not None:
            return None, doubt
        words: list[Word] = []
        if word_timestamps and short.tokens:
            num_frames = audio.size // fw.feature_extractor.hop_length
            alignment = fw.find_alignment(short.tokenizer, [short.tokens], encoder_output, num_frames)[0]
            merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
            words = [Word(word=w["word"], start=round(float(w["start"]), 2), end=round(float(w["end"]), 2),
                          probability=float(w["probability"])) for w in alignment if w["word"]]
        result = AsrResult(short.text, language, probability, short.avg_logprob, short.no_speech_prob, words,
                           window="short")
        if guards.is_known_hallucination(short.text, speech_s, short.avg_logprob):
            result.text, result.words, result.dropped = "", [], "known_phrase"
        return result, None

    def _generate_short(self, encoder_output, language: str, speech_s: float, beam_size: int) -> _ShortDecode:
        """Whisper's decoder on a short-window encoder output, without timestamps, its length bounded to
        ~6 tokens per second of speech (~3 is typical; the bound stops repetition loops early)."""
        from faster_whisper.tokenizer import Tokenizer

        fw = self.model
        tokenizer = Tokenizer(fw.hf_tokenizer, self.multilingual, task="transcribe", language=language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        max_length = len(prompt) + 8 + int(6 * speech_s)
        generated = fw.model.generate(encoder_output, [prompt], beam_size=beam_size, max_length=max_length,
                                      return_scores=True, return_no_speech_prob=True,
                                      suppress_blank=True, suppress_tokens=[-1])[0]
        ids = generated.sequences_ids[0]
        tokens = [t for t in ids if t < tokenizer.eot]
        # CTranslate2's score is the sum of log-probabilities divided by length ** length_penalty (1 here);
        # Whisper's avg_logprob divides the sum by length + 1 (faster-whisper generate_with_fallback)
        cum_logprob = generated.scores[0] * len(ids)
        return _ShortDecode(
            tokenizer, tokens, tokenizer.decode(tokens).strip(),
            avg_logprob=cum_logprob / (len(ids) + 1), no_speech_prob=generated.no_speech_prob,
            truncated=len(prompt) + len(ids) >= max_length - 1 and len(tokens) == len(ids))

    def _encode_short(self, audio: np.ndarray, min_window_s: float = 0.0):
        """Encoder output for the audio (its last 28 s) + at least 2 s of silence, padded to ``min_window_s``
        seconds when shorter, without padding to 30 s."""
        fw = self.model
        audio = audio[-28 * SAMPLE_RATE :]
        pad = max(2 * SAMPLE_RATE, int(min_window_s * SAMPLE_RATE) - audio.size)
        padded = np.concatenate([audio, np.zeros(pad, np.float32)])
        return fw.encode(fw.feature_extractor(padded)[:, : fw.feature_extractor.nb_max_frames])

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """Whisper language ID on the short window: ``(ISO 639-1 code, probability)``.

        ~0.06 s instead of faster-whisper's 30 s-window pass (~0.8 s) on this CPU. On 202 probes of English
        speech (1.5–10 s) it was never wrong when its probability was ≥ 0.8 (151 probes); below that,
        :meth:`transcribe` falls back to faster-whisper's own detection.
        """
        lang_token, probability = self.model.model.detect_language(self._encode_short(audio))[0][0]
        return lang_token[2:-2], float(probability)

    def _decode_short(self, audio: np.ndarray, language: str | None) -> AsrResult:
        """Interim decode on a window of the audio's own length + 2 s of silence, greedy.

        1 s of padding looped ("and so my fellow Americans and so my …") on 2 of 24 probes; 2 s did not.
        """
        fw = self.model
        speech_s = audio.size / SAMPLE_RATE
        encoder_output = self._encode_short(audio)
        if language is None:
            language = fw.model.detect_language(encoder_output)[0][0][0][2:-2]
        short = self._generate_short(encoder_output, language, speech_s, beam_size=1)
        # a short window loops more easily than a 30 s one: no phrase of 3+ words twice in a row in a partial
        text = guards.clean_partial(short.text)
        if guards.is_no_speech(short.no_speech_prob, short.avg_logprob, self.settings.no_speech_threshold,
                               self.settings.log_prob_threshold):
            return AsrResult("", language, avg_logprob=short.avg_logprob, no_speech_prob=short.no_speech_prob,
                             dropped="no_speech")
        return AsrResult(text, language, avg_logprob=short.avg_logprob, no_speech_prob=short.no_speech_prob)
