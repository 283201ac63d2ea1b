"""The per-stream speech pipeline: frames in, typed events out.

``push(samples)`` runs VAD and endpointing inline (cheap) and hands model work to the shared
:class:`~server.compute.workpool.WorkerPool`; events reach ``sink`` strictly in stream order, from whichever
thread completed the work (wrap the sink with ``loop.call_soon_threadsafe`` in async code).

Per utterance the sink sees ``speech_started``, zero or more ``partial`` (only while a worker is idle:
partials never delay finals; a partial still pending when its final is queued is dropped), then one
``final`` (its decode may start ``Settings.early_final_ms`` into the pause that ends the utterance, on the
segmenter's ``EndpointLikely``; it is used when the endpoint follows with no more speech, else thrown away and
the utterance decoded again at its end, so early finals change when a final comes, never what it holds),
and, once the final has been handed to the sink and its text classified, one ``sentiment`` update for
it (a :class:`~server.compute.jobs.SentimentJob`, when ``Settings.sentiment`` is on and the runtime has a
classifier; none for finals without text, unsupported languages or a failed classification). Updates do not hold
the order back: they reach the sink, one deliverer at a time, as soon as they are ready, always after their final.
Between ``enroll_start(name)`` and ``enroll_stop()`` utterances are collected as enrollment
speech instead of being transcribed, at most ``Settings.max_enroll_s`` of it: at that much the enrollment
completes by itself, and speech until ``enroll_stop()`` is ignored.

Work leaves as typed jobs (:mod:`server.compute.jobs`); results come back on worker threads. The lock guards
only the queue of output slots: results are turned into events (word assignment, speaker labels) and handed
to the sink outside it, by one delivering thread at a time, so the order holds without holding the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from .. import SAMPLE_RATE
from ..audio.vad import FrameClassifier, VadStream, make_classifier
from ..compute.jobs import EarlyFinalJob, EnrollJob, FinalJob, PartialJob, SentimentJob
from ..compute.runtime import SpeechRuntime, UtteranceResult
from ..speaker.clusters import AnonymousSpeakers, SpeakerClusters
from ..speaker.identify import SpeakerDecision, SpeakerTracker
from ..speaker.identity import UNKNOWN
from . import events
from .assembly import assemble, stripped
from .segmenter import (
    EndpointConfig,
    EndpointLikely,
    PartialSegment,
    Segment,
    Segmenter,
    SpeechStarted,
    UtteranceEnded,
)

log = logging.getLogger(__name__)

Sink = Callable[[events.Event], None]
SHORT_FOR_LANGUAGE_ID_S = 1.5
"""Language detection is unreliable below ~1.5 s (docs/measurements.md): reuse the stream's last language."""

PartialOutcome = Literal["submitted", "inflight", "refused"]


class StreamObserver(Protocol):
    """Told what a stream decides (benchmarks attach here; every method must be quick and must not block)."""

    def endpoint(self, stream_id: str, utterance_id: int, reason: str) -> None:
        """An utterance ended (``silence``, ``max_length``, ``stream_end``); its final job is submitted now."""

    def partial_request(self, stream_id: str, utterance_id: int, outcome: PartialOutcome) -> None:
        """The segmenter asked for a partial: ``submitted``, skipped because one is ``inflight``, or
        ``refused`` by the pool (no idle worker)."""


# -- output slots: one place each in the stream's event order ---------------------------------------
@dataclass(eq=False)
class _ReadySlot:
    event: events.Event
    future = None
    skip = False


@dataclass(eq=False)
class _PartialSlot:
    future: Future
    segment: Segment
    skip: bool = False


@dataclass(eq=False)
class _FinalSlot:
    future: Future
    segment: Segment
    end_reason: str
    submitted: float
    skip = False


@dataclass(eq=False)
class _EnrollSlot:
    future: Future
    name: str
    speech_s: float
    skip = False


_Slot = _ReadySlot | _PartialSlot | _FinalSlot | _EnrollSlot


class StreamProcessor:
    """Speech processing of one audio stream.

    Args:
        runtime: the shared :class:`SpeechRuntime`.
        sink: called with each :data:`server.stream.events.Event`, in order.
        language: ISO 639-1 code for this stream, or None for per-utterance detection.
        block: wait for room in the worker queue instead of failing (file mode).
        t0: stream time (s) of the first sample.
        classifier: VAD frame classifier; default from ``Settings.vad``.
        on_latency: called with the seconds from endpoint decision to delivery of each utterance's finals.
        stream_id: tags this stream's jobs and observer calls (the peer id in the server).
        observer: optional :class:`StreamObserver`.
        speakers: the anonymous speakers this stream shares (a room's); None = a registry of its own when
            ``Settings.anonymous_speakers`` is on (a file, a call alone), else voices that match no profile are
            ``unknown``.
    """

    def __init__(self, runtime: SpeechRuntime, sink: Sink, *, language: str | None = None,
                 block: bool = False, t0: float = 0.0, word_timestamps: bool | None = None,
                 partials: bool | None = None, classifier: FrameClassifier | None = None,
                 on_latency: Callable[[float], None] | None = None, stream_id: str = "",
                 observer: StreamObserver | None = None, speakers: SpeakerClusters | None = None) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.sink = sink
        self.language = language if language is not None else s.language
        self.block = block
        self.word_timestamps = s.word_timestamps if word_timestamps is None else word_timestamps
        self.partials = s.partials if partials is None else partials
        self.vad = VadStream(classifier or make_classifier(s.vad, s.vad_aggressiveness))
        self.segmenter = Segmenter(self.vad.frame_samples, EndpointConfig.from_settings(s, partials=self.partials), t0)
        if speakers is None and s.anonymous_speakers:
            speakers = AnonymousSpeakers.from_settings(s)
        self.speakers = speakers
        self.tracker = SpeakerTracker(s.speaker_threshold, s.min_identify_s, s.carry_label_gap_s, speakers)
        self.stream_id = stream_id
        self.observer = observer
        self.on_latency = on_latency
        self._slots: deque[_Slot] = deque()
        self._updates: deque[events.Event] = deque()  # sentiment updates ready for the sink (out of slot order)
        self.sentiment = s.sentiment and getattr(runtime, "sentiment", None) is not None
        self._lock = threading.Condition(threading.RLock())
        self._delivering = False
        self._pending: set[Future] = set()
        self._partial_inflight: Future | None = None
        self._early: tuple[Segment, Future] | None = None  # a final decoded before its endpoint was confirmed
        self.early_finals = {"used": 0, "discarded": 0, "refused": 0}  # early decodes, counted for tests and benches
        self._last_language: str | None = None
        self._enrolling: str | None = None
        self._enroll_add = True
        self._enroll_capped = False
        self._enroll_segments: list[Segment] = []
        self._closed = False
        self._paused = False

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

    def enroll_start(self, name: str, add: bool = True) -> None:
        """Start collecting enrollment speech for voice profile ``name``: created, or, when a profile has that
        name, extended with ``add`` and refused without it (an ``error`` event ``name_taken``; the store checks
        again when the enrollment is stored, then ``enrollment_failed``)."""
        if self._enrolling is not None:
            busy = f"already enrolling {self._enrolling!r}"
            self._emit_now(events.Error(code="enrollment_in_progress", message=busy))
            return
        key = " ".join(name.split()).lower()
        if not add and any(p.name.lower() == key for p in self.runtime.profiles()):
            self._emit_now(events.Error(code="name_taken", message=f"a voice profile named {name!r} already "
                                        "exists; enroll with add to add this speech to it, or choose another name"))
            return
        self._enrolling = name
        self._enroll_add = add
        self._enroll_capped = False
        self._enroll_segments = []
        self._emit_now(events.EnrollmentStarted(name=name))

    def enroll_stop(self, source: str = "stream") -> None:
        """Close the enrollment: embed the collected speech and store it (result comes as an event). After an
        enrollment that completed at ``Settings.max_enroll_s`` this only ends the wait for ``enroll_stop``."""
        for ev in self.segmenter.flush():  # the utterance in progress belongs to the enrollment (or is dropped)
            self._on_segmenter_event(ev)
        if self._enroll_capped:
            self._enrolling, self._enroll_segments, self._enroll_capped = None, [], False
            return
        self._finish_enrollment(source)

    def _finish_enrollment(self, source: str) -> None:
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
        job = EnrollJob(name=name, audio=audio, speech_s=speech_s, source=source, stream_id=self.stream_id,
                               add=self._enroll_add)
        fut = self.runtime.pool.submit(job, block=self.block)
        self._add_slot(_EnrollSlot(fut, name, speech_s))

    def _collect_enrollment(self, seg: Segment) -> None:
        """Keep ``seg`` for the enrollment, up to ``Settings.max_enroll_s`` of speech in all; reaching it
        completes the enrollment at once (the part of ``seg`` beyond the cap is dropped)."""
        if self._enroll_capped:
            return
        cap = self.runtime.settings.max_enroll_s
        have = sum(s.duration for s in self._enroll_segments)
        if have + seg.duration < cap:
            self._enroll_segments.append(seg)
            return
        keep_s = cap - have
        cut = round((seg.start - seg.audio_start + keep_s) * SAMPLE_RATE)
        self._enroll_segments.append(Segment(seg.utterance_id, seg.start, seg.start + keep_s, seg.audio[:cut],
                                             seg.audio_start))
        log.info("enrollment speech reached the cap", extra={"stream": self.stream_id, "cap_s": cap})
        name = self._enrolling
        self._finish_enrollment("stream")
        self._enrolling, self._enroll_capped = name, True  # speech until enroll_stop() is ignored

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
        """Block until all submitted work has been delivered to the sink, the sentiment updates that delivering
        finals started included; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        while True:
            with self._lock:
                pending = set(self._pending)
            _, not_done = wait(pending, timeout=left())
            self._pump()
            with self._lock:  # another thread may still be handing events to the sink
                while self._delivering:
                    if left() == 0.0:
                        return False
                    self._lock.wait(left())
                if not self._pending and not self._slots and not self._updates:
                    return True
            if not_done or left() == 0.0:
                return False

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
        elif isinstance(ev, EndpointLikely):
            if self._enrolling is None:
                self._submit_early_final(ev.segment)
        elif isinstance(ev, UtteranceEnded):
            if self._enrolling is not None:
                self._discard_early()
                self._collect_enrollment(ev.segment)
            else:
                self._submit_final(ev.segment, ev.reason)

    def _language_for(self, duration_s: float) -> str | None:
        if self.language is not None:
            return self.language
        return self._last_language if duration_s < SHORT_FOR_LANGUAGE_ID_S else None

    def _submit_partial(self, seg: Segment) -> None:
        if self._partial_inflight is not None and not self._partial_inflight.done():
            self._observe_partial(seg, "inflight")
            return
        job = PartialJob(audio=seg.audio, language=self._language_for(seg.duration), stream_id=self.stream_id,
                         utterance_id=seg.utterance_id)
        fut = self.runtime.pool.submit(job)
        self._observe_partial(seg, "refused" if fut is None else "submitted")
        if fut is None:
            return
        self._partial_inflight = fut
        self._add_slot(_PartialSlot(fut, seg))

    def _observe_partial(self, seg: Segment, outcome: PartialOutcome) -> None:
        if self.observer is not None:
            self.observer.partial_request(self.stream_id, seg.utterance_id, outcome)

    def _final_job(self, seg: Segment, kind: type[FinalJob] = FinalJob) -> FinalJob:
        return kind(audio=seg.audio, identify=self.tracker.needs_embedding(seg.duration),
                    language=self._language_for(seg.duration), word_timestamps=self.word_timestamps,
                    cluster=self.speakers is not None, language_hint=self._last_language, stream_id=self.stream_id,
                    utterance_id=seg.utterance_id)

    def _submit_early_final(self, seg: Segment) -> None:
        """Decode the final of ``seg`` now, ``early_final_ms`` into a pause, if a worker is idle.

        :meth:`_submit_final` uses it when the endpoint comes with no speech added, else it is thrown away. The
        model work is pure (embedding, turn split, Whisper); speaker labels are decided on delivery, so a
        discarded decode leaves nothing behind."""
        self._discard_early()
        fut = self.runtime.pool.submit(self._final_job(seg, EarlyFinalJob))
        if fut is None:  # refused (no idle worker): decoded at the endpoint instead
            self.early_finals["refused"] += 1
        else:
            self._early = (seg, fut)

    def _discard_early(self) -> None:
        if self._early is not None:
            self._early[1].cancel()  # a decode already running finishes and is ignored
            self._early = None
            self.early_finals["discarded"] += 1

    def _take_early(self, seg: Segment) -> Future | None:
        """The early decode of ``seg`` if it covered the same speech (same utterance, same last speech frame)."""
        early = self._early
        if early is None:
            return None
        if early[0].utterance_id == seg.utterance_id and early[0].end == seg.end \
                and early[0].audio_start == seg.audio_start and not early[1].cancelled():
            self._early = None
            self.early_finals["used"] += 1
            return early[1]
        self._discard_early()
        return None

    def _submit_final(self, seg: Segment, reason: str) -> None:
        with self._lock:
            for slot in list(self._slots):  # cancel() may run callbacks that pump the deque
                if isinstance(slot, _PartialSlot) and slot.segment.utterance_id == seg.utterance_id:
                    slot.skip = True
                    slot.future.cancel()
        if self.observer is not None:
            self.observer.endpoint(self.stream_id, seg.utterance_id, reason)
        fut = self._take_early(seg)
        if fut is None:
            fut = self.runtime.pool.submit(self._final_job(seg), block=self.block)
        self._add_slot(_FinalSlot(fut, seg, reason, time.monotonic()))

    # -- ordered delivery ----------------------------------------------------------------------
    def _emit_now(self, event: events.Event) -> None:
        self._add_slot(_ReadySlot(event))

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

    def _take_ready(self) -> list[_Slot]:
        """Pop the leading slots whose result is in (caller holds the lock)."""
        ready = []
        while self._slots:
            slot = self._slots[0]
            if not slot.skip and slot.future is not None and not slot.future.done():
                break
            ready.append(self._slots.popleft())
        return ready

    def _pump(self) -> None:
        """Deliver every slot that is ready, in order. One thread delivers at a time; a thread that finds
        another delivering leaves its ready slots to it (the deliverer looks again before it stops)."""
        while True:
            with self._lock:
                if self._delivering:
                    return
                ready = self._take_ready()
                updates = list(self._updates)
                self._updates.clear()
                if not ready and not updates:
                    return
                self._delivering = True
            try:
                for event in updates:
                    self._send(event)
                for slot in ready:
                    self._deliver(slot)
            finally:
                with self._lock:
                    self._delivering = False
                    self._lock.notify_all()

    def _deliver(self, slot: _Slot) -> None:
        if slot.skip:
            return
        if isinstance(slot, _FinalSlot) and self.on_latency is not None:
            self.on_latency(time.monotonic() - slot.submitted)
        for event in self._materialise(slot):
            self._send(event)
            if self.sentiment and isinstance(event, events.Final) and event.text.strip():
                self._submit_sentiment(event)

    def _send(self, event: events.Event) -> None:
        try:
            self.sink(event)
        except Exception:  # a failing sink must not stop the stream
            log.exception("event sink failed")

    # -- sentiment updates (after their final; never hold the order back) ---------------------------
    def _submit_sentiment(self, final: events.Final) -> None:
        """Classify a delivered final's text on the pool (never blocking: this runs while delivering, often on
        a worker thread); its update joins :attr:`_updates` when done."""
        job = SentimentJob(text=final.text, language=final.language, turn=final.turn, stream_id=self.stream_id,
                           utterance_id=final.utterance_id)
        try:
            fut = self.runtime.pool.submit(job)
        except RuntimeError as exc:  # the pool is closed (shutting down): the final stands without sentiment
            log.warning("sentiment not submitted", extra={"stream": self.stream_id, "error": str(exc)})
            return
        if fut is None:
            return
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(lambda f: self._on_sentiment(f, final.utterance_id, final.turn))

    def _on_sentiment(self, fut: Future, utterance_id: int, turn: int) -> None:
        update = None
        try:
            result = fut.result()
            if result is not None:
                score = round(min(1.0, max(0.0, float(result.score))), 4)
                update = events.SentimentUpdate(utterance_id=utterance_id, turn=turn, label=result.label,
                                                score=score)
        except Exception:  # a failing classifier costs the update, never the stream
            log.warning("sentiment failed", exc_info=True, extra={"stream": self.stream_id,
                                                                   "utterance": utterance_id})
        with self._lock:
            if update is not None:
                self._updates.append(update)
            self._pending.discard(fut)
        self._pump()

    def _materialise(self, slot: _Slot) -> list[events.Event]:
        if isinstance(slot, _ReadySlot):
            return [slot.event]
        if slot.future.cancelled():
            return []
        exc = slot.future.exception()
        if isinstance(slot, _FinalSlot):
            if exc is not None:
                log.error("decode failed", exc_info=exc)
                uid = slot.segment.utterance_id
                return [events.Error(code="decode_failed", message=f"utterance {uid}: {exc}")]
            return self._finals(slot.segment, slot.end_reason, slot.future.result())
        if isinstance(slot, _EnrollSlot):
            if exc is not None:
                return [events.EnrollmentFailed(name=slot.name, reason=str(exc))]
            done = slot.future.result()
            return [events.EnrollmentCompleted(name=done.profile.name, profile_id=done.profile.id,
                                               speech_s=slot.speech_s, similar_to=done.similar_to,
                                               similarity=done.similarity)]
        if exc is not None:
            log.error("partial decode failed", exc_info=exc)
            return []
        result, seg = slot.future.result(), slot.segment
        if not result.text:
            return []
        return [events.Partial(utterance_id=seg.utterance_id, start=seg.start, end=seg.end, text=result.text)]

    def _finals(self, seg: Segment, end_reason: str, result: UtteranceResult) -> list[events.Event]:
        """One final per utterance, or one per speaker turn when the runtime split it (in delivery order: the
        speaker tracker's carry rule depends on the previous label), each preceded by the relabels its
        speaker decision caused."""
        asr = result.asr
        if asr.language and asr.text and seg.duration >= SHORT_FOR_LANGUAGE_ID_S:  # noise has no language
            self._last_language = asr.language
        parts = assemble(seg, result)
        out: list[events.Event] = []
        for i, part in enumerate(parts):
            if part.text:
                decision = self.tracker.label(part.start, part.end, part.embedding, result.profiles)
            else:  # noise the guards emptied: clients drop it; it must not shape anyone's voice or carry a label
                decision = SpeakerDecision(UNKNOWN, None, "no_speech")
            who = decision.identity
            out.extend(events.SpeakerRelabeled.of(r.from_id, r.identity, r.reason) for r in decision.relabels)
            out.append(events.Final(
                utterance_id=seg.utterance_id, turn=i, last_turn=i == len(parts) - 1,
                start=round(part.start, 3), end=round(part.end, 3),
                speaker=who.label, speaker_id=who.id, speaker_kind=who.kind,
                score=None if decision.score is None else round(decision.score, 4), speaker_reason=decision.reason,
                text=part.text, language=asr.language, end_reason=end_reason,
                words=stripped(part.words) if self.word_timestamps else None,
            ))
        return out
