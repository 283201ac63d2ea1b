"""The shared speech runtime of one process: the models, one worker pool, one profile store.

Every stream (a WebRTC peer, or a file in ``callscribe transcribe``) gets its own
:class:`server.stream.processor.StreamProcessor` over the same :class:`SpeechRuntime`. The collaborators are
passed in (:meth:`SpeechRuntime.from_settings` builds the real ones), so tests and benchmarks can hand it their
own models, store or pool observer without patching anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .. import SAMPLE_RATE
from ..asr.types import AsrResult
from ..errors import NameTaken, ProfileConflict, ProfileError
from ..settings import Settings
from ..speaker.identify import VoiceprintBuilder
from ..speaker.profile import VoiceProfile
from ..store.profiles import ProfileStore
from .jobs import AnalysisJob, EnrollJob, FinalJob, Job, PartialJob, SentimentJob
from .workpool import JobObserver, WorkerPool

log = logging.getLogger(__name__)


class AsrEngine(Protocol):
    """What the runtime needs of a speech recogniser (:class:`server.asr.engine.WhisperEngine`)."""

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, partial: bool = False,
                   word_timestamps: bool = False, language_hint: str | None = None) -> AsrResult: ...


class Embedder(Protocol):
    """What the runtime needs of a speaker-embedding model (:class:`server.speaker.embedding.SpeakerEmbedder`)."""

    min_samples: int

    def embed(self, audio: np.ndarray) -> np.ndarray: ...


class SentimentClassifier(Protocol):
    """The sentiment of a text (:class:`server.sentiment.TextSentiment`): an object with ``label``
    (``positive`` | ``negative`` | ``neutral``) and ``score`` (0..1), or None for empty text or an unsupported
    language. Must be thread-safe (pool workers call it in parallel)."""

    def classify(self, text: str, language: str | None): ...


class TurnFinder(Protocol):
    """Speaker changes inside an utterance (:class:`server.speaker.turns.TurnSplitter`)."""

    def split(self, audio: np.ndarray) -> list[tuple[float, float]]: ...


@dataclass
class Turn:
    """One speaker's part of an utterance: seconds from the utterance audio's start, and its embedding."""

    start: float
    end: float
    embedding: np.ndarray


@dataclass
class UtteranceResult:
    """What the model work of one final returns.

    ``embedding`` is the whole utterance's ``float32[192]`` (None when too short, or when no profiles exist and
    the stream does not cluster anonymous speakers);
    ``turns`` holds two or more parts when a speaker change was found inside the utterance (then ``asr.words``
    has word timings); ``profiles`` is the snapshot of voice profiles the utterance is to be scored against,
    taken on the worker so that delivery never reads the store.
    """

    asr: AsrResult
    embedding: np.ndarray | None
    turns: list[Turn] = field(default_factory=list)
    profiles: Sequence[VoiceProfile] = ()


@dataclass(frozen=True)
class Enrollment:
    """An enrollment's outcome: the stored profile and, when the voice matched another profile, its name and
    cosine similarity."""

    profile: VoiceProfile
    similar_to: str | None = None
    similarity: float | None = None


class SpeechRuntime:
    """Models, pool and store shared by all streams.

    Args:
        settings: :class:`Settings`.
        store: the voice-profile store.
        embedder: the speaker-embedding model.
        asr: the speech recogniser, or None for enrollment-only use (``callscribe enroll``).
        turns: the speaker-change finder, or None to keep every utterance whole.
        sentiment: the text-sentiment classifier behind the ``sentiment`` update of each final, or None for none.
        observer: told of every model job's run (benchmarks, metrics).
    """

    def __init__(self, settings: Settings, *, store: ProfileStore, embedder: Embedder, asr: AsrEngine | None,
                 turns: TurnFinder | None = None, observer: JobObserver | None = None,
                 sentiment: SentimentClassifier | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.asr = asr
        self.turns = turns
        self.sentiment = sentiment
        self.pool = WorkerPool(self.run, settings.asr_workers, settings.max_queue, observer=observer)
        self._profiles: list[VoiceProfile] | None = None
        self._profiles_lock = threading.Lock()
        self._speaker_threads = None
        if settings.speaker_work == "parallel":
            from concurrent.futures import ThreadPoolExecutor

            self._speaker_threads = ThreadPoolExecutor(settings.asr_workers, thread_name_prefix="speaker")

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, load_asr: bool = True,
                      observer: JobObserver | None = None) -> SpeechRuntime:
        """The real collaborators: SQLite profile store, CAM++, faster-whisper, pyannote segmentation-3.0, and
        with ``Settings.sentiment`` the text-sentiment classifier (its models load on first use, not here).

        Raises:
            ModelError, StoreError: see :mod:`server.models` and :mod:`server.store.profiles`.
        """
        from ..asr.engine import WhisperEngine
        from ..speaker.embedding import SpeakerEmbedder

        settings = settings or Settings()
        store = ProfileStore(settings.database)
        try:
            embedder = SpeakerEmbedder(settings.speaker_model, settings.device)
            if embedder.device == "cpu" and settings.cpu_threads:
                limit_torch_threads(settings.cpu_threads)
            asr = WhisperEngine(settings) if load_asr else None
            turns = None
            if load_asr and settings.split_speaker_turns:
                from ..speaker.turns import TurnSplitter

                turns = TurnSplitter(settings.segmentation_model, min_turn_s=settings.min_identify_s)
            sentiment = None
            if load_asr and settings.sentiment:
                from ..sentiment import TextSentiment

                sentiment = TextSentiment()
        except BaseException:
            store.close()
            raise
        return cls(settings, store=store, embedder=embedder, asr=asr, turns=turns, observer=observer,
                   sentiment=sentiment)

    # -- profiles (cached; writes invalidate) ---------------------------------------------------
    def profiles(self) -> list[VoiceProfile]:
        with self._profiles_lock:
            if self._profiles is None:
                self._profiles = self.store.list()
            return self._profiles

    def invalidate_profiles(self) -> None:
        with self._profiles_lock:
            self._profiles = None

    # -- model work (runs in pool threads) -----------------------------------------------------
    def run(self, job: Job):
        """Execute one job (the pool's ``execute``): :class:`FinalJob` → :class:`UtteranceResult`,
        :class:`PartialJob` → :class:`AsrResult`, :class:`EnrollJob` → :class:`Enrollment`,
        :class:`AnalysisJob` → :class:`AsrResult` with word timings, :class:`SentimentJob` → the classifier's
        sentiment (or None).

        Raises:
            TypeError: an unknown kind of job.
        """
        if isinstance(job, FinalJob):
            return self.finalize(job)
        if isinstance(job, PartialJob):
            return self.partial(job)
        if isinstance(job, EnrollJob):
            return self.enroll(job)
        if isinstance(job, AnalysisJob):
            return self.asr.transcribe(job.audio, language=job.language, word_timestamps=True)
        if isinstance(job, SentimentJob):
            if self.sentiment is None:
                raise RuntimeError("runtime was created without a sentiment classifier")
            return self.sentiment.classify(job.text, job.language)
        raise TypeError(f"no handler for {type(job).__name__}")

    def finalize(self, job: FinalJob) -> UtteranceResult:
        """Speaker work and Whisper on one utterance: one after the other, or at the same time on two threads
        with ``Settings.speaker_work="parallel"``.

        When speakers are to be told apart (profiles enrolled, or ``job.cluster``) and a turn finder is
        present, the utterance is first split at speaker changes
        (pyannote segmentation-3.0); each part gets its own embedding and Whisper returns word timings so that
        the text can be divided between the parts.
        """
        if self.asr is None:
            raise RuntimeError("runtime was created without ASR")
        audio = job.audio
        profiles = self.profiles()
        if not (job.identify and audio.size >= self.embedder.min_samples and (profiles or job.cluster)):
            asr = self.asr.transcribe(audio, language=job.language, word_timestamps=job.word_timestamps,
                                      language_hint=job.language_hint)
            return UtteranceResult(asr, None, [], profiles)
        if self._speaker_threads is None:
            embedding, turns = self.speaker_work(audio)
            asr = self.asr.transcribe(audio, language=job.language, language_hint=job.language_hint,
                                      word_timestamps=job.word_timestamps or bool(turns))
            return UtteranceResult(asr, embedding, turns, profiles)
        # speaker work on a second thread while Whisper decodes: word timings are asked for whenever a turn split
        # may need them, since whether it does is known only afterwards
        pending = self._speaker_threads.submit(self.speaker_work, audio)
        try:
            asr = self.asr.transcribe(audio, language=job.language, language_hint=job.language_hint,
                                      word_timestamps=job.word_timestamps or self.turns is not None)
        except BaseException:
            pending.cancel()
            raise
        embedding, turns = pending.result()
        if not (turns or job.word_timestamps):
            asr.words = []  # asked for a split that did not happen: the result is the sequential one
        return UtteranceResult(asr, embedding, turns, profiles)

    def speaker_work(self, audio: np.ndarray) -> tuple[np.ndarray | None, list[Turn]]:
        """``(embedding, [])`` for one speaker's ``float32[n]`` 16 kHz utterance, or ``(None, turns)`` with one
        embedding per part when the turn finder sees a speaker change inside it."""
        parts = self.turns.split(audio) if self.turns is not None else []
        if len(parts) > 1:
            return None, [Turn(a, b, self.embedder.embed(audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]))
                          for a, b in parts]
        return self.embedder.embed(audio), []

    def partial(self, job: PartialJob) -> AsrResult:
        if self.asr is None:
            raise RuntimeError("runtime was created without ASR")
        return self.asr.transcribe(job.audio, language=job.language, partial=True)

    def enroll(self, job: EnrollJob) -> Enrollment:
        """Embed the enrollment speech and store it under ``job.name``; say which *other* profile, if any, the
        voice matches (cosine at or above ``Settings.speaker_threshold``: probably the same person twice).
        An existing profile of that name is extended when ``job.add``, else refused.

        Raises:
            NameTaken: ``add`` is false and a profile has the name (checked again in the store's transaction).
            ProfileError, StoreError: see :meth:`ProfileStore.enroll`.
        """
        append = job.add
        key = " ".join(job.name.split()).lower()
        if not append and any(p.name.lower() == key for p in self.profiles()):
            raise _taken(job.name)
        embedding = self.embed_speech(job.audio)
        others = [p for p in self.profiles() if p.name.lower() != key]
        similar, similarity = None, None
        if others:
            scores = np.stack([p.embedding for p in others]) @ embedding
            best = int(np.argmax(scores))
            if scores[best] >= self.settings.speaker_threshold:
                similar, similarity = others[best].name, round(float(scores[best]), 4)
        try:
            profile = self.store.enroll(job.name, embedding, job.speech_s, job.source, append=append)
        except ProfileConflict:
            raise _taken(job.name) from None
        self.invalidate_profiles()
        return Enrollment(profile, similar, similarity)

    def check_unclaimed(self, name: str, *, extend: bool = False) -> None:
        """Refuse a name a voice profile has (case-insensitive), unless the speech is to be added to it.

        Raises:
            NameTaken: a profile has the name and ``extend`` is off.
        """
        if not extend and any(p.name.lower() == name.lower() for p in self.profiles()):
            raise NameTaken(f"a voice profile is named {name!r}; save with extend to add this speech to it")

    def save_voice(self, name: str, embedding: np.ndarray, speech_s: float, source: str, *,
                   extend: bool = False) -> VoiceProfile:
        """Store a voice collected elsewhere (an anonymous speaker's centroid ``float32[192]`` over ``speech_s``
        seconds of speech) as profile ``name``, or add it to that profile with ``extend``.

        Raises:
            NameTaken: a profile has the name and ``extend`` is off.
            ProfileError: under ``Settings.min_enroll_speech_s`` of speech.  StoreError: see the store.
        """
        self.check_unclaimed(name, extend=extend)
        need = self.settings.min_enroll_speech_s
        if speech_s < need:
            raise ProfileError(f"only {speech_s:.1f} s of this speaker's speech so far; {need:.1f} s are needed "
                               "to save a voice profile (name it without saving, or save later)")
        try:
            profile = self.store.enroll(name, embedding, speech_s, source, append=extend)
        except ProfileConflict as exc:
            raise NameTaken(str(exc)) from None
        self.invalidate_profiles()
        return profile

    def voiceprint(self) -> VoiceprintBuilder:
        """A builder of one voiceprint from speech of any length, embedded window by window with this runtime's
        embedder (bounded memory: :data:`server.speaker.identify.EMBED_WINDOW_S`); used for enrollments and
        for identifying uploads. Runs on the calling thread (the embedder serialises its forwards)."""
        return VoiceprintBuilder(self.embedder.embed, min_samples=self.embedder.min_samples)

    def embed_speech(self, audio: np.ndarray) -> np.ndarray:
        """Voiceprint ``float32[192]`` (L2-normalised) of ``float32[n]`` 16 kHz speech of any length: one
        embedding up to :data:`~server.speaker.identify.EMBED_WINDOW_S` seconds, the duration-weighted mean of
        window embeddings beyond.

        Raises:
            ValueError: under ``embedder.min_samples`` of audio.
        """
        builder = self.voiceprint()
        builder.add(audio)
        embedding = builder.finish()
        if embedding is None:
            raise ValueError(f"{audio.size / SAMPLE_RATE:.2f} s of audio is too short for a speaker embedding")
        return embedding

    def close(self) -> None:
        self.pool.close()
        if self._speaker_threads is not None:
            self._speaker_threads.shutdown(wait=True, cancel_futures=True)
        self.store.close()


def _taken(name: str) -> NameTaken:
    return NameTaken(f"a voice profile named {name!r} already exists; enroll with add to add this speech to it")


def limit_torch_threads(threads: int) -> None:
    """Cap torch's intra-op threads: its default of one per core fights the parallel decode workers on small
    machines (a 10 s segmentation pass took 640 ms with 2 threads under load vs 58 ms with 1;
    ``bench/turns_eval.py --threads``)."""
    import torch

    torch.set_num_threads(threads)
