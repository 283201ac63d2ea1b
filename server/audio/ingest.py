"""Audio in: any PyAV-decodable source → 16 kHz mono ``float32`` with a stream clock.

Resampling and down-mixing use PyAV's ``AudioResampler`` (libswresample), never hand-written
filters. The same :class:`FrameResampler` serves files (here) and WebRTC tracks (``peer``),
so the speech core always sees ``float32[n_samples]`` in [-1, 1] at :data:`server.SAMPLE_RATE`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .. import SAMPLE_RATE
from ..errors import AudioDecodeError, AudioTooLong


class FrameResampler:
    """Convert ``av.AudioFrame`` objects of any format, rate and layout to 16 kHz mono float32.

    ``push(frame)`` returns ``float32[n]`` (possibly empty: the resampler buffers a few samples);
    ``flush()`` returns what is left at the end of the stream.

    Down-mixing uses libswresample's default matrix, mono = (L + R)/√2: a mono source sent as two
    identical channels (what aiortc's encoder does, at −3 dB) comes back at its original level. Output is
    clipped to [-1, 1] (resampling can overshoot full-scale input by a few per cent).
    """

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def _convert(self, frame: av.AudioFrame | None) -> np.ndarray:
        out = self._resampler.resample(frame)
        if not out:
            return np.zeros(0, dtype=np.float32)
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.float32, copy=False)
        return np.clip(samples, -1.0, 1.0, out=samples)

    def push(self, frame: av.AudioFrame) -> np.ndarray:
        return self._convert(frame)

    def flush(self) -> np.ndarray:
        return self._convert(None)


@dataclass(frozen=True)
class AudioInfo:
    """What a file says about itself before decoding: duration in seconds (None if unknown)."""

    duration_s: float | None
    sample_rate: int
    channels: int
    codec: str


def _open(path: str | Path) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: the file is empty")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise AudioDecodeError(f"{path}: not a readable audio file ({exc})") from None
    if not container.streams.audio:
        container.close()
        raise AudioDecodeError(f"{path}: the file has no audio stream")
    return container, container.streams.audio[0]


def probe(path: str | Path) -> AudioInfo:
    """Read a file's header. Raises :class:`AudioDecodeError` if it is not audio."""
    container, stream = _open(path)
    with container:
        duration = _declared_duration(container, stream)
        return AudioInfo(duration, stream.rate or 0, stream.channels or 0, stream.codec_context.name)


def iter_file(path: str | Path, chunk_s: float = 1.0, *, max_s: float | None = None) -> Iterator[np.ndarray]:
    """Decode a file incrementally, yielding ``float32[≈chunk_s·16000]`` mono chunks at 16 kHz.

    Memory stays at one chunk (plus the decoder's own buffers) whatever the file's length. With ``max_s``,
    a file whose header already says it is longer is refused before anything is decoded, and decoding stops as
    soon as more than ``max_s`` seconds have come out (a header can lie, and highly compressed audio is small:
    10 minutes of Opus fit in 1 MB), so no more than ``max_s`` seconds are ever decoded.

    Raises:
        AudioDecodeError: unreadable, empty, non-audio or corrupt input (also mid-stream).
        AudioTooLong: more than ``max_s`` seconds of audio (raised before any chunk past the limit is yielded).
    """
    limit = None if max_s is None else int(max_s * SAMPLE_RATE)
    container, stream = _open(path)
    if max_s is not None:
        declared = _declared_duration(container, stream)
        if declared is not None and declared > max_s + 1.0:  # 1 s of slack for container rounding
            container.close()
            raise AudioTooLong(f"{path}: {declared:.0f} s of audio; the limit is {max_s:.0f} s")
    resampler = FrameResampler()
    pending: list[np.ndarray] = []
    pending_n = 0
    chunk_n = max(1, int(chunk_s * SAMPLE_RATE))
    total = 0

    def too_long() -> AudioTooLong:
        return AudioTooLong(f"{path}: more than {max_s:.0f} s of audio; the limit is {max_s:.0f} s")

    with container:
        try:
            frames = container.decode(stream)
            for frame in frames:
                samples = resampler.push(frame)
                pending.append(samples)
                pending_n += samples.size
                if limit is not None and total + pending_n > limit:
                    raise too_long()
                if pending_n >= chunk_n:
                    block = np.concatenate(pending)
                    pending, pending_n = [], 0
                    total += block.size
                    yield block
        except av.error.FFmpegError as exc:
            raise AudioDecodeError(f"{path}: decoding failed ({exc})") from None
        pending.append(resampler.flush())
    block = np.concatenate(pending) if pending else np.zeros(0, np.float32)
    if limit is not None and total + block.size > limit:
        raise too_long()
    total += block.size
    if total == 0:
        raise AudioDecodeError(f"{path}: no audio samples could be decoded")
    if block.size:
        yield block


def _declared_duration(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    """Seconds of audio the header announces, or None when it does not say."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def load_audio(path: str | Path) -> np.ndarray:
    """Decode a whole file to ``float32[n_samples]`` at 16 kHz mono. Raises :class:`AudioDecodeError`."""
    return np.concatenate(list(iter_file(path, chunk_s=30.0)))


class TrackIngest:
    """Frames of a WebRTC audio track → 16 kHz mono float32 on a stream clock that never drifts.

    aiortc does not conceal lost packets: the decoded audio silently gets shorter (docs/measurements.md). The gap
    is found from each frame's ``pts`` (in ``1/sample_rate`` units, from the RTP timestamps) and filled with
    silence, so stream time = samples delivered / 16 kHz stays equal to media time. Gaps are capped at
    ``max_gap_s`` (a sender that paused for minutes does not make us allocate minutes of zeros).

    Attributes:
        gap_s: silence inserted so far (seconds); ``late_frames``: frames dropped for going back in time.
    """

    def __init__(self, max_gap_s: float = 5.0) -> None:
        self.resampler = FrameResampler()
        self.max_gap_s = max_gap_s
        self._expected_pts: int | None = None
        self.gap_s = 0.0
        self.late_frames = 0
        self.frames = 0

    def push(self, frame: av.AudioFrame) -> np.ndarray:
        """Convert one frame; returns ``float32[n]`` (gap silence first, when there was a gap)."""
        self.frames += 1
        gap = np.zeros(0, np.float32)
        if frame.pts is not None and frame.sample_rate:
            if self._expected_pts is not None:
                missing = frame.pts - self._expected_pts
                if missing < 0:
                    self.late_frames += 1
                    return gap
                if missing > 0:
                    gap_s = min(missing / frame.sample_rate, self.max_gap_s)
                    self.gap_s += gap_s
                    gap = np.zeros(round(gap_s * SAMPLE_RATE), np.float32)
            self._expected_pts = frame.pts + frame.samples
        samples = self.resampler.push(frame)
        return np.concatenate([gap, samples]) if gap.size else samples
