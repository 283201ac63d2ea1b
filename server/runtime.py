"""The shared speech runtime of one process: models loaded once, one worker pool, one profile store.

Every stream (a WebRTC peer, or a file in ``callscribe transcribe``) gets its own
:class:`server.processor.StreamProcessor` over the same :class:`SpeechRuntime`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np

from . import SAMPLE_RATE
from .asr.engine import AsrResult, WhisperEngine
from .settings import Settings
from .speaker.embedding import SpeakerEmbedder
from .speaker.profiles import ProfileStore, VoiceProfile
from .workpool import WorkerPool

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """One speaker's part of an utterance: seconds from the utterance audio's start, and its embedding."""

    start: float
    end: float
    embedding: np.ndarray


@dataclass
class UtteranceResult:
    """What the model work of one final returns.

    ``embedding`` is the whole utterance's (None when too short or no profiles exist); ``turns`` holds two or
    more parts when a speaker change was found inside the utterance (then ``asr.words`` has word timings).
    """

    asr: AsrResult
    embedding: np.ndarray | None
    turns: list[Turn] = field(default_factory=list)


class SpeechRuntime:
    """Models, pool and store shared by all streams.

    Args:
        settings: :class:`Settings`.
        load_asr: False for enrollment-only use (``callscribe enroll``), which needs no Whisper.

    Raises:
        ModelError, StoreError: see :mod:`server.models` and :mod:`server.speaker.profiles`.
    """

    def __init__(self, settings: Settings | None = None, *, load_asr: bool = True) -> None:
        self.settings = settings or Settings()
        self.store = ProfileStore(self.settings.database)
        self.embedder = SpeakerEmbedder(self.settings.speaker_model, self.settings.device)
        if self.embedder.device == "cpu" and self.settings.cpu_threads:
            # torch's default of one thread per core fights the parallel decode workers on small machines:
            # a 10 s segmentation pass took 640 ms with 2 threads under load vs 58 ms with 1 (bench/turns_eval.py)
            import torch

            torch.set_num_threads(self.settings.cpu_threads)
        self.asr = WhisperEngine(self.settings) if load_asr else None
        self.turns = None
        if load_asr and self.settings.split_speaker_turns:
            from .speaker.turns import TurnSplitter

            self.turns = TurnSplitter(self.settings.segmentation_model, min_turn_s=self.settings.min_identify_s)
        self.pool = WorkerPool(self.settings.asr_workers, self.settings.max_queue)
        self._profiles: list[VoiceProfile] | None = None
        self._profiles_lock = threading.Lock()

    # -- profiles (cached; writes invalidate) ---------------------------------------------------
    def profiles(self) -> list[VoiceProfile]:
        with self._profiles_lock:
            if self._profiles is None:
                self._profiles = self.store.list()
            return self._profiles

    def invalidate_profiles(self) -> None:
        with self._profiles_lock:
            self._profiles = None

    def enroll(self, name: str, audio: np.ndarray, speech_s: float, source: str) -> VoiceProfile:
        """Embed ``float32[n]`` enrollment speech and store it under ``name`` (runs in a worker)."""
        profile = self.store.enroll(name, self.embedder.embed(audio), speech_s, source)
        self.invalidate_profiles()
        return profile

    # -- model work (runs in pool threads) -----------------------------------------------------
    def finalize(self, audio: np.ndarray, *, embed_audio: np.ndarray | None, language: str | None,
                 word_timestamps: bool) -> UtteranceResult:
        """Speaker work then Whisper on one utterance (``float32[n]`` 16 kHz; ``embed_audio`` is the same audio
        when it is long enough to identify, else None).

        With profiles enrolled and ``split_speaker_turns`` on, the utterance is first split at speaker changes
        (pyannote segmentation-3.0); each part gets its own embedding and Whisper returns word timings so that
        the text can be divided between the parts.
        """
        assert self.asr is not None, "runtime was created without ASR"
        embedding, turns = None, []
        if embed_audio is not None and embed_audio.size >= self.embedder.min_samples and self.profiles():
            parts = self.turns.split(embed_audio) if self.turns is not None else []
            if len(parts) > 1:
                turns = [Turn(a, b, self.embedder.embed(embed_audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]))
                         for a, b in parts]
            else:
                embedding = self.embedder.embed(embed_audio)
        asr = self.asr.transcribe(audio, language=language, word_timestamps=word_timestamps or bool(turns))
        return UtteranceResult(asr, embedding, turns)

    def partial(self, audio: np.ndarray, *, language: str | None) -> AsrResult:
        assert self.asr is not None, "runtime was created without ASR"
        return self.asr.transcribe(audio, language=language, partial=True)

    def close(self) -> None:
        self.pool.close()
        self.store.close()
