"""The per-stream speech pipeline: frames in, typed events out.

``push(samples)`` runs VAD and endpointing inline (cheap) and hands model work to the shared
:class:`~server.workpool.WorkerPool`; events reach ``sink`` strictly in stream order, from whichever
thread completed the work (wrap the sink with ``loop.call_soon_threadsafe`` in async code).

Per utterance the sink sees ``speech_started``, zero or more ``partial`` (only while a worker is idle:
partials never delay finals; a partial still pending when its final is queued is dropped), then one
``final``. Between ``enroll_start(name)`` and ``enroll_stop()`` utterances are collected as enrollment
speech instead of being transcribed.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass

import numpy as np

from . import events
from .runtime import SpeechRuntime
from .segmenter import EndpointConfig, PartialSegment, Segment, Segmenter, SpeechStarted, UtteranceEnded
from .speaker.identify import SpeakerTracker
from .vad import FrameClassifier, VadStream, make_classifier

log = logging.getLogger(__name__)

Sink = Callable[[events.Event], None]
SHORT_FOR_LANGUAGE_ID_S = 1.5
"""Language detection is unreliable below ~1.5 s (notes/models.md): reuse the stream's last language."""


@dataclass
class _Slot:
    """One place in the output order: a ready event, or a future whose result becomes one."""

    kind: str  # "event" | "partial" | "final" | "enroll"
    utterance_id: int | None = None
    event: events.Event | None = None
    future: Future | None = None
    segment: Segment | None = None
    end_reason: str = "silence"
    name: str = ""
    speech_s: float = 0.0
    skip: bool = False
    submitted: float = 0.0


class StreamProcessor:
    """Speech processing of one audio stream.

    Args:
        runtime: the shared :class:`SpeechRuntime`.
        sink: called with each :data:`server.events.Event`, in order.
        language: ISO 639-1 code for this stream, or None for per-utterance detection.
        block: wait for room in the worker queue instead of failing (file mode).
        t0: stream time (s) of the first sample.
        classifier: VAD frame classifier; default from ``Settings.vad``.
        on_latency: called with the seconds from endpoint decision to delivery of each utterance's finals.
    """

    def __init__(self, runtime: SpeechRuntime, sink: Sink, *, language: str | None = None,
                 block: bool = False, t0: float = 0.0, word_timestamps: bool | None = None,
                 partials: bool | None = None, classifier: FrameClassifier | None = None,
                 on_latency: Callable[[float], None] | None = None) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.sink = sink
        self.language = language if language is not None else s.language
        self.block = block
        self.word_timestamps = s.word_timestamps if word_timestamps is None else word_timestamps
        self.partials = s.partials if partials is None else partials
        self.vad = VadStream(classifier or make_classifier(s.vad, s.vad_aggressiveness))
        cfg = EndpointConfig(
            silence_ms=s.silence_ms, max_utterance_s=s.max_utterance_s, min_speech_ms=s.min_speech_ms,
            preroll_ms=s.preroll_ms, partial_interval_s=s.partial_interval_s if self.partials else None,
            threshold=s.vad_threshold if s.vad == "silero" else 0.5,
        )
        self.segmenter = Segmenter(self.vad.frame_samples, cfg, t0)
        self.tracker = SpeakerTracker(s.speaker_threshold, s.min_identify_s, s.carry_label_gap_s)
        self._slots: deque[_Slot] = deque()
        self._lock = threading.RLock()
        self._pending: set[Future] = set()
        self._partial_inflight: Future | None = None
        self._last_language: str | None = None
        self._enrolling: str | None = None
        self._enroll_segments: list[Segment] = []
        self._closed = False
        self._paused = False
        self.on_latency = on_latency

    # -- input ---------------------------------------------------------------------------------
    def push(self, samples: np.ndarray) -> None:
        """Feed ``float32[n]`` 16 kHz mono audio (any n). Raises ValueError on other dtypes/shapes."""
        if self._closed:
            raise RuntimeError("stream processor is closed")
        if self._paused and self._enrolling is None:
            self.vad.check(samples)
            self.segmenter.skip(samples.size + self.vad.reset())  # exact clock: buffered samples count too
            return
        for frame, prob in self.vad.push(samples):
            for ev in self.segmenter.push(frame, prob):
                self._on_segmenter_event(ev)

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop transcribing: the open utterance is finalised; later audio only advances the stream clock
        (enrollment still listens)."""
        if self._paused:
            return
        for ev in self.segmenter.flush():
            self._on_segmenter_event(ev)
        self._paused = True
        self._emit_now(events.Transcription(active=False))  # ordered after the flushed utterance's final

    def resume(self) -> None:
        """Transcribe again from the next pushed sample."""
        if self._paused:
            self._paused = False
            self._emit_now(events.Transcription(active=True))

    @property
    def now(self) -> float:
        """Stream time (s) of the audio pushed so far (whole VAD frames)."""
        return self.segmenter.now

    def enroll_start(self, name: str) -> None:
        """Start collecting enrollment speech for voice profile ``name`` (created or extended)."""
        if self._enrolling is not None:
            busy = f"already enrolling {self._enrolling!r}"
            self._emit_now(events.Error(code="enrollment_in_progress", message=busy))
            return
        self._enrolling = name
        self._enroll_segments = []
        self._emit_now(events.EnrollmentStarted(name=name))

    def enroll_stop(self, source: str = "stream") -> None:
        """Close the enrollment: embed the collected speech and store it (result comes as an event)."""
        for ev in self.segmenter.flush():  # the utterance in progress belongs to the enrollment
            self._on_segmenter_event(ev)
        name, segments = self._enrolling, self._enroll_segments
        self._enrolling, self._enroll_segments = None, []
        if name is None:
            self._emit_now(events.Error(code="not_enrolling", message="no enrollment in progress"))
            return
        speech_s = sum(seg.duration for seg in segments)
        need = self.runtime.settings.min_enroll_speech_s
        if speech_s < need:
            self._emit_now(events.EnrollmentFailed(
                name=name, reason=f"too little speech: {speech_s:.1f} s heard, {need:.1f} s needed"))
            return
        audio = np.concatenate([seg.audio for seg in segments])
        fut = self.runtime.pool.submit(self.runtime.enroll, name, audio, speech_s, source, block=self.block)
        self._add_slot(_Slot("enroll", future=fut, name=name, speech_s=speech_s))

    def close(self, timeout: float | None = None) -> None:
        """End of stream: finish the open utterance (and enrollment), wait for all results."""
        if self._closed:
            return
        if self._enrolling is not None:
            self.enroll_stop()
        for ev in self.segmenter.flush():
            self._on_segmenter_event(ev)
        self._closed = True
        self.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until all submitted work has been delivered; False on timeout."""
        with self._lock:
            pending = set(self._pending)
        _, not_done = wait(pending, timeout=timeout)
        self._pump()
        return not not_done

    # -- segmenter events → work ---------------------------------------------------------------
    # Called on the producer thread only. The processor lock guards the output order alone and is never
    # held while submitting: a blocking submit waits for workers whose done-callbacks take that lock.
    def _on_segmenter_event(self, ev) -> None:
        if isinstance(ev, SpeechStarted):
            if self._enrolling is None:
                self._emit_now(events.SpeechStarted(utterance_id=ev.utterance_id, start=ev.start))
        elif isinstance(ev, PartialSegment):
            if self._enrolling is None:
                self._submit_partial(ev.segment)
        elif isinstance(ev, UtteranceEnded):
            if self._enrolling is not None:
                self._enroll_segments.append(ev.segment)
            else:
                self._submit_final(ev.segment, ev.reason)

    def _language_for(self, duration_s: float) -> str | None:
        if self.language is not None:
            return self.language
        return self._last_language if duration_s < SHORT_FOR_LANGUAGE_ID_S else None

    def _submit_partial(self, seg: Segment) -> None:
        if self._partial_inflight is not None and not self._partial_inflight.done():
            return
        fut = self.runtime.pool.submit_optional(self.runtime.partial, seg.audio,
                                                language=self._language_for(seg.duration))
        if fut is None:
            return
        self._partial_inflight = fut
        self._add_slot(_Slot("partial", seg.utterance_id, future=fut, segment=seg))

    def _submit_final(self, seg: Segment, reason: str) -> None:
        with self._lock:
            for slot in list(self._slots):  # cancel() may run callbacks that pump the deque
                if slot.kind == "partial" and slot.utterance_id == seg.utterance_id:
                    slot.skip = True
                    if slot.future is not None:
                        slot.future.cancel()
        embed = seg.audio if self.tracker.needs_embedding(seg.duration) else None
        fut = self.runtime.pool.submit(
            self.runtime.finalize, seg.audio, embed_audio=embed, language=self._language_for(seg.duration),
            word_timestamps=self.word_timestamps, block=self.block,
        )
        self._add_slot(_Slot("final", seg.utterance_id, future=fut, segment=seg, end_reason=reason,
                             submitted=time.monotonic()))

    # -- ordered delivery ----------------------------------------------------------------------
    def _emit_now(self, event: events.Event) -> None:
        self._add_slot(_Slot("event", event=event))

    def _add_slot(self, slot: _Slot) -> None:
        with self._lock:
            self._slots.append(slot)
            if slot.future is not None:
                self._pending.add(slot.future)
                slot.future.add_done_callback(self._on_done)
        self._pump()

    def _on_done(self, fut: Future) -> None:
        with self._lock:
            self._pending.discard(fut)
        self._pump()

    def _pump(self) -> None:
        with self._lock:
            while self._slots:
                slot = self._slots[0]
                if not slot.skip and slot.future is not None and not slot.future.done():
                    return
                self._slots.popleft()
                if slot.skip:
                    continue
                if slot.kind == "final" and self.on_latency is not None:
                    self.on_latency(time.monotonic() - slot.submitted)
                for event in self._materialise(slot):
                    try:
                        self.sink(event)
                    except Exception:  # a failing sink must not stop the stream
                        log.exception("event sink failed")

    def _materialise(self, slot: _Slot) -> list[events.Event]:
        if slot.kind == "event":
            return [slot.event]
        if slot.kind == "final":
            return self._finals(slot)
        event = self._single(slot)
        return [] if event is None else [event]

    def _single(self, slot: _Slot) -> events.Event | None:
        fut = slot.future
        assert fut is not None
        if fut.cancelled():
            return None
        exc = fut.exception()
        if slot.kind == "enroll":
            if exc is not None:
                return events.EnrollmentFailed(name=slot.name, reason=str(exc))
            profile = fut.result()
            return events.EnrollmentCompleted(name=profile.name, profile_id=profile.id, speech_s=slot.speech_s)
        seg = slot.segment
        assert seg is not None
        if exc is not None:
            log.error("partial decode failed", exc_info=exc)
            return None
        result = fut.result()
        if not result.text:
            return None
        return events.Partial(utterance_id=seg.utterance_id, start=seg.start, end=seg.end, text=result.text)

    def _finals(self, slot: _Slot) -> list[events.Event]:
        """One final per utterance, or one per speaker turn when the runtime split it."""
        seg, fut = slot.segment, slot.future
        assert seg is not None and fut is not None
        if fut.cancelled():
            return []
        if fut.exception() is not None:
            log.error("decode failed", exc_info=fut.exception())
            return [events.Error(code="decode_failed", message=f"utterance {seg.utterance_id}: {fut.exception()}")]
        result = fut.result()
        asr = result.asr
        if asr.language and seg.duration >= SHORT_FOR_LANGUAGE_ID_S:
            self._last_language = asr.language
        # Whisper's words carry their leading space; shift them onto the stream clock
        words = [w.model_copy(update={"start": round(w.start + seg.audio_start, 3),
                                      "end": round(w.end + seg.audio_start, 3)}) for w in asr.words]
        if result.turns:
            # each word goes to the turn holding its midpoint (turn boundaries on the stream clock)
            bounds = [seg.audio_start + t.start for t in result.turns[1:]]
            owned: list[list[events.Word]] = [[] for _ in result.turns]
            for w in words:
                owned[bisect.bisect_right(bounds, (w.start + w.end) / 2)].append(w)
            edges = [seg.start, *bounds, seg.end]
            parts = [(edges[i], edges[i + 1], t.embedding, "".join(w.word for w in owned[i]).strip(), owned[i])
                     for i, t in enumerate(result.turns)]
        else:
            parts = [(seg.start, seg.end, result.embedding, asr.text, words)]
        out: list[events.Event] = []
        profiles = self.runtime.profiles()
        for i, (a, b, embedding, text, part_words) in enumerate(parts):
            decision = self.tracker.label(a, b, embedding, profiles)
            out.append(events.Final(
                utterance_id=seg.utterance_id, turn=i, last_turn=i == len(parts) - 1,
                start=round(a, 3), end=round(b, 3), speaker=decision.name, speaker_id=decision.profile_id,
                score=None if decision.score is None else round(decision.score, 4), speaker_reason=decision.reason,
                text=text, language=asr.language, end_reason=slot.end_reason,
                words=[w.model_copy(update={"word": w.word.strip()}) for w in part_words]
                if self.word_timestamps else None,
            ))
        return out

