"""The shared speech runtime of one process: models loaded once, one worker pool, one profile store.

Every stream (a WebRTC peer, or a file in ``callscribe transcribe``) gets its own
:class:`server.processor.StreamProcessor` over the same :class:`SpeechRuntime`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from . import SAMPLE_RATE
from .asr.engine import AsrResult, WhisperEngine
from .settings import Settings
from .speaker.embedding import SpeakerEmbedder
from .speaker.profiles import ProfileStore, VoiceProfile
from .workpool import WorkerPool

log = logging.getLogger(__name__)


@dataclass
class UtteranceResult:
    """What the model work of one final returns: ASR result and (if long enough) the embedding."""

    asr: AsrResult
    embedding: np.ndarray | None


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
        self.asr = WhisperEngine(self.settings) if load_asr else None
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
        """Embedding (when ``embed_audio`` is given and profiles exist) then Whisper on one utterance."""
        embedding = None
        if embed_audio is not None and embed_audio.size >= self.embedder.min_samples and self.profiles():
            embedding = self.embedder.embed(embed_audio)
        assert self.asr is not None, "runtime was created without ASR"
        asr = self.asr.transcribe(audio, language=language, word_timestamps=word_timestamps)
        return UtteranceResult(asr, embedding)

    def partial(self, audio: np.ndarray, *, language: str | None) -> AsrResult:
        assert self.asr is not None, "runtime was created without ASR"
        return self.asr.transcribe(audio[-28 * SAMPLE_RATE :], language=language, partial=True)

    def close(self) -> None:
        self.pool.close()
        self.store.close()
