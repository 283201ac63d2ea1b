"""Endpointing: turn a stream of classified VAD frames into utterances.

A pure, deterministic state machine (no models, no clocks but the sample count):

- an utterance **starts** when speech frames add up to ``min_speech_ms`` (shorter blips are dropped);
  its audio begins ``preroll_ms`` before the first speech frame;
- while it is open, a **partial** segment is emitted every ``partial_interval_s`` of utterance audio;
- once its trailing silence reaches ``early_final_ms`` (shorter than ``silence_ms``), an **endpoint likely** event
  carries the utterance so far, so that its final can be decoded while the endpoint is still being confirmed
  (issue 11; emitted once per pause, again after the next pause if speech resumes);
- it **ends** after ``silence_ms`` of continuous non-speech (the trailing silence stays in the audio, the
  reported ``end`` is the end of the last speech frame), or is **force-cut** at ``max_utterance_s``
  at the least speech-like frame of its last ``cut_search_s`` seconds, the rest carrying on as the next
  utterance, or ends with the stream.

Speech onset uses ``threshold``; once inside an utterance a frame stays speech down to
``threshold - 0.15``, the hysteresis of Silero's ``get_speech_timestamps`` (``neg_threshold``).
For webrtcvad (probabilities 0 or 1) the hysteresis has no effect.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import SAMPLE_RATE
from ..settings import Settings


@dataclass(frozen=True)
class Segment:
    """Audio of one utterance, so far or in full.

    Attributes:
        utterance_id: 0, 1, 2 … per stream.
        start: stream time (s) of the first speech frame.
        end: stream time (s) of the end of the last speech frame seen.
        audio: ``float32[n]`` at 16 kHz, from ``audio_start``, including pre-roll and trailing silence.
        audio_start: stream time (s) of ``audio[0]``.
    """

    utterance_id: int
    start: float
    end: float
    audio: np.ndarray
    audio_start: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SpeechStarted:
    utterance_id: int
    start: float


@dataclass(frozen=True)
class PartialSegment:
    segment: Segment


@dataclass(frozen=True)
class EndpointLikely:
    """``early_final_ms`` of silence after speech: the utterance so far (``segment.end`` = end of its last speech
    frame). The utterance may still go on."""

    segment: Segment


@dataclass(frozen=True)
class UtteranceEnded:
    segment: Segment
    reason: Literal["silence", "max_length", "stream_end"]


SegmenterEvent = SpeechStarted | PartialSegment | EndpointLikely | UtteranceEnded


@dataclass
class EndpointConfig:
    """Endpointing parameters (seconds or milliseconds as named); defaults are the seed's."""

    silence_ms: int = 480
    max_utterance_s: float = 10.0
    min_speech_ms: int = 250
    preroll_ms: int = 200
    partial_interval_s: float | None = 1.0
    threshold: float = 0.5
    hysteresis: float = 0.15
    cut_search_s: float = 2.0
    early_final_ms: int = 0

    @classmethod
    def from_settings(cls, s: Settings, *, partials: bool) -> EndpointConfig:
        """The configured endpointing (``Settings.silence_ms`` …); ``partials`` off gives no partial cadence. The
        speech threshold is Silero's setting for Silero, 0.5 for webrtcvad's 0/1 decisions."""
        return cls(silence_ms=s.silence_ms, max_utterance_s=s.max_utterance_s, min_speech_ms=s.min_speech_ms,
                   preroll_ms=s.preroll_ms, partial_interval_s=s.partial_interval_s if partials else None,
                   threshold=s.vad_threshold if s.vad == "silero" else 0.5, early_final_ms=s.early_final_ms)


@dataclass
class _Open:
    utterance_id: int
    frames: list[np.ndarray]
    probs: list[float]
    audio_start_frame: int  # absolute frame index of frames[0]
    first_speech: int  # absolute frame index
    last_speech: int  # absolute frame index
    speech_frames: int
    confirmed: bool = False
    last_partial_frame: int = 0
    silence_run: int = 0


class Segmenter:
    """Endpointing state machine over fixed-size frames.

    Args:
        frame_samples: samples per frame (480 for webrtcvad, 512 for Silero).
        config: :class:`EndpointConfig`.
        t0: stream time (s) of the first frame.
    """

    def __init__(self, frame_samples: int, config: EndpointConfig | None = None, t0: float = 0.0) -> None:
        self.cfg = config or EndpointConfig()
        self.n = frame_samples
        self.t0 = t0
        fps = SAMPLE_RATE / frame_samples
        self._silence_frames = max(1, round(self.cfg.silence_ms / 1000 * fps))
        early = round(self.cfg.early_final_ms / 1000 * fps)
        self._early_frames = early if 0 < early < self._silence_frames else 0
        self._min_speech_frames = max(1, round(self.cfg.min_speech_ms / 1000 * fps))
        self._max_frames = max(2, round(self.cfg.max_utterance_s * fps))
        self._cut_search = max(1, round(self.cfg.cut_search_s * fps))
        self._partial_frames = round(self.cfg.partial_interval_s * fps) if self.cfg.partial_interval_s else None
        self._preroll: deque[np.ndarray] = deque(maxlen=max(0, round(self.cfg.preroll_ms / 1000 * fps)) or None)
        self._preroll_on = self.cfg.preroll_ms > 0
        self._frame_index = 0
        self._next_id = 0
        self._open: _Open | None = None

    # -- clock ---------------------------------------------------------------------------------
    def time_of(self, frame_index: int) -> float:
        """Stream time (s) of the start of absolute frame ``frame_index``."""
        return self.t0 + frame_index * self.n / SAMPLE_RATE

    @property
    def now(self) -> float:
        """Stream time (s) of the end of the last frame pushed."""
        return self.time_of(self._frame_index)

    # -- input ---------------------------------------------------------------------------------
    def push(self, frame: np.ndarray, prob: float) -> list[SegmenterEvent]:
        """Feed one frame (``float32[frame_samples]``) with its speech probability."""
        idx = self._frame_index
        self._frame_index += 1
        u = self._open
        if u is None:
            if prob >= self.cfg.threshold:
                pre = list(self._preroll) if self._preroll_on else []
                self._preroll.clear()
                u = self._open = _Open(self._next_id, [*pre, frame], [*([0.0] * len(pre)), prob],
                                       idx - len(pre), idx, idx, 1)
                return self._maybe_confirm(u, idx)
            if self._preroll_on:
                self._preroll.append(frame)
            return []
        u.frames.append(frame)
        u.probs.append(prob)
        is_speech = prob >= (self.cfg.threshold - self.cfg.hysteresis if u.confirmed else self.cfg.threshold)
        if is_speech:
            u.last_speech = idx
            u.speech_frames += 1
            u.silence_run = 0
        else:
            u.silence_run += 1
        events: list[SegmenterEvent] = []
        if not u.confirmed:
            if u.silence_run >= self._silence_frames:
                self._drop_candidate(u)
                return []
            return self._maybe_confirm(u, idx)
        if self._early_frames and u.silence_run == self._early_frames:
            events.append(EndpointLikely(self._segment(u)))
        if u.silence_run >= self._silence_frames:
            events.append(UtteranceEnded(self._segment(u), "silence"))
            self._close(u)
            return events
        if len(u.frames) >= self._max_frames:
            return self._force_cut(u)
        if self._partial_frames and idx + 1 - u.last_partial_frame >= self._partial_frames:
            u.last_partial_frame = idx + 1
            events.append(PartialSegment(self._segment(u)))
        return events

    def flush(self) -> list[SegmenterEvent]:
        """End of stream: close an open utterance (``reason="stream_end"``) if it was confirmed."""
        u = self._open
        if u is None:
            return []
        self._open = None
        if not u.confirmed:
            return []
        return [UtteranceEnded(self._segment(u), "stream_end")]

    def skip(self, n_samples: int) -> None:
        """Advance the stream clock over audio that is not classified (e.g. transcription paused).

        Raises:
            RuntimeError: an utterance is open (``flush()`` first).
        """
        if self._open is not None:
            raise RuntimeError("cannot skip audio inside an open utterance")
        self.t0 += n_samples / SAMPLE_RATE
        self._preroll.clear()

    # -- internals -----------------------------------------------------------------------------
    def _maybe_confirm(self, u: _Open, idx: int) -> list[SegmenterEvent]:
        if u.speech_frames >= self._min_speech_frames:
            u.confirmed = True
            u.last_partial_frame = idx + 1
            self._next_id += 1
            return [SpeechStarted(u.utterance_id, self.time_of(u.first_speech))]
        return []

    def _drop_candidate(self, u: _Open) -> None:
        self._open = None
        self._preroll.clear()
        if self._preroll_on:
            self._preroll.extend(u.frames[-(self._preroll.maxlen or 0):])

    def _close(self, u: _Open) -> None:
        self._open = None
        self._preroll.clear()
        if self._preroll_on:
            # the tail of the closed utterance is silence: it is the next utterance's pre-roll
            self._preroll.extend(u.frames[-(self._preroll.maxlen or 0):])

    def _segment(self, u: _Open, upto: int | None = None) -> Segment:
        frames = u.frames if upto is None else u.frames[:upto]
        last_speech = u.last_speech if upto is None else min(u.last_speech, u.audio_start_frame + upto - 1)
        return Segment(
            utterance_id=u.utterance_id,
            start=self.time_of(u.first_speech),
            end=self.time_of(last_speech + 1),
            audio=np.concatenate(frames),
            audio_start=self.time_of(u.audio_start_frame),
        )

    def _force_cut(self, u: _Open) -> list[SegmenterEvent]:
        # cut at the least speech-like frame among the last cut_search frames (latest wins on ties)
        lo = max(1, len(u.probs) - self._cut_search)
        window = np.asarray(u.probs[lo:])
        cut = lo + int(len(window) - 1 - np.argmin(window[::-1]))  # frames[:cut] close, frames[cut:] carry on
        ended = self._segment(u, upto=cut)
        rest_frames, rest_probs = u.frames[cut:], u.probs[cut:]
        rest_start = u.audio_start_frame + cut
        self._open = None
        events: list[SegmenterEvent] = [UtteranceEnded(ended, "max_length")]
        speech_idx = [rest_start + i for i, p in enumerate(rest_probs) if p >= self.cfg.threshold - self.cfg.hysteresis]
        if not speech_idx:
            self._preroll.clear()
            if self._preroll_on:
                self._preroll.extend(rest_frames[-(self._preroll.maxlen or 0):])
            return events
        nxt = _Open(self._next_id, list(rest_frames), list(rest_probs), rest_start, speech_idx[0], speech_idx[-1],
                    len(speech_idx), silence_run=rest_start + len(rest_frames) - 1 - speech_idx[-1])
        self._open = nxt
        events += self._maybe_confirm(nxt, rest_start + len(rest_frames) - 1)
        return events
