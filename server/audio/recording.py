"""Call recording: the 16 kHz mono audio a call's speech processor receives, encoded to FLAC (lossless) or
Ogg/Opus as it arrives (PyAV's FFmpeg encoders), so the file grows during the call and a crash loses only the
last I/O buffer (32 KiB, about 2 s of FLAC); such a file lacks its total length in the header but decodes.

Units: samples are ``float32[n]`` in [-1, 1] at 16 kHz. Opus is encoded at 24 kbit/s (libopus accepts 16 kHz
input directly; RFC 6716 §2 lists 16 kHz "wideband" as a native rate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import av
import numpy as np

from ..errors import AudioDecodeError

SAMPLE_RATE = 16_000
_CODECS = {"flac": ("flac", "flac", "s16"), "opus": ("ogg", "libopus", "s16")}
SUFFIX = {"flac": ".flac", "opus": ".ogg"}


class AudioRecorder:
    """Appends audio to ``path`` (created with its parent folder).

    Args:
        path: the output file.
        fmt: ``"flac"`` or ``"opus"`` (Ogg container).
    Raises:
        AudioDecodeError: the file cannot be created or the encoder is missing from this FFmpeg build.
    """

    def __init__(self, path: str | Path, fmt: Literal["flac", "opus"] = "flac") -> None:
        self.path = Path(path)
        container, codec, self._sample_format = _CODECS[fmt]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # an unbuffered file of ours: PyAV hands each filled I/O buffer (32 KiB) to it at once, so a killed
            # process leaves a decodable file; with a path, PyAV 18 held everything until close() here
            self._file = self.path.open("wb", buffering=0)
        except OSError as exc:
            raise AudioDecodeError(f"cannot record to {self.path}: {exc}") from None
        try:
            self._out = av.open(self._file, "w", format=container)
            self._stream = self._out.add_stream(codec, rate=SAMPLE_RATE)
            self._stream.layout = "mono"
            if fmt == "opus":
                self._stream.bit_rate = 24_000
        except (OSError, av.error.FFmpegError, ValueError) as exc:
            self._file.close()
            raise AudioDecodeError(f"cannot record to {self.path}: {exc}") from None
        self._pts = 0
        self.seconds = 0.0
        self._closed = False

    def write(self, samples: np.ndarray) -> None:
        """Encode ``float32[n]`` samples at 16 kHz (clipped to [-1, 1])."""
        if self._closed or samples.size == 0:
            return
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format=self._sample_format, layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += pcm.shape[1]
        self.seconds = self._pts / SAMPLE_RATE
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def close(self) -> None:
        """Flush the encoder and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._out.mux(packet)
        finally:
            self._out.close()
            self._file.close()
