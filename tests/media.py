"""Test media built with PyAV only: video files (a generated picture track, with or without the audio of a clip).

``make_video(src, dst)`` picks the codecs from ``dst``'s suffix, among those PyAV's bundled FFmpeg can encode:

========  ==========================  ==============
suffix    video                       audio
========  ==========================  ==============
``.mp4``  H.264 (libx264; else MPEG-4 part 2)  AAC (FFmpeg's native encoder)
``.mov``  same as ``.mp4``
``.mkv``  same video                  Opus (libopus)
``.webm`` VP8 (libvpx)                Opus (libopus)
========  ==========================  ==============

The picture is a horizontal gradient that scrolls by 4 pixels a frame (160×120, 25 frames/s, yuv420p), so the
encoder produces real motion-predicted frames. Audio is the source clip decoded and resampled to 48 kHz mono with
PyAV's ``AudioResampler``; packets of both streams are muxed in time order.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS = 160, 120, 25
AUDIO_RATE = 48_000

_CODECS = {
    ".mp4": (("libx264", "mpeg4"), "aac"),
    ".mov": (("libx264", "mpeg4"), "aac"),
    ".mkv": (("libx264", "mpeg4"), "libopus"),
    ".webm": (("libvpx",), "libopus"),
}
_VIDEO_OPTIONS = {"libx264": {"preset": "ultrafast"},
                  "libvpx": {"deadline": "realtime", "cpu-used": "16", "threads": "1"}}


def _encoder(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
    raise RuntimeError(f"PyAV {av.__version__} can encode none of {names}")


def _decode_mono(path: Path) -> np.ndarray:
    """float32[n] at 48 kHz mono, via PyAV's resampler."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    parts = []
    with av.open(str(path)) as src:
        for frame in src.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _picture(index: int) -> np.ndarray:
    """uint8[HEIGHT, WIDTH, 3] RGB: a diagonal gradient scrolled by 4 pixels per frame."""
    x = (np.arange(WIDTH) * 255 // (WIDTH - 1) + 4 * index) % 256
    y = np.arange(HEIGHT)[:, None] * 255 // (HEIGHT - 1)
    rgb = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    rgb[..., 0] = x[None, :]
    rgb[..., 1] = y
    rgb[..., 2] = (x[None, :] + y) // 2
    return rgb


def make_video(src_audio: Path, dst: Path, *, seconds: float | None = None, with_audio: bool = True) -> Path:
    """Write a video file at ``dst`` with a generated picture track and (unless ``with_audio`` is False) the audio
    of ``src_audio``.

    Args:
        src_audio: any PyAV-readable audio file; its audio is also what sets the length when ``seconds`` is None.
        dst: output path; its suffix (``.mp4``, ``.mov``, ``.mkv``, ``.webm``) chooses container and codecs.
        seconds: length of both tracks (the audio is cut, or padded with silence); ``0`` gives an audio track
            with no samples at all (and a one-frame picture track).
        with_audio: False writes the picture track only.

    Returns:
        ``dst``.
    """
    dst = Path(dst)
    if dst.suffix.lower() not in _CODECS:
        raise ValueError(f"unsupported video suffix {dst.suffix!r}; use one of {sorted(_CODECS)}")
    video_names, audio_name = _CODECS[dst.suffix.lower()]
    audio = _decode_mono(Path(src_audio))
    if seconds is not None:
        n = round(seconds * AUDIO_RATE)
        audio = audio[:n] if audio.size >= n else np.pad(audio, (0, n - audio.size))
    duration = audio.size / AUDIO_RATE
    n_video = max(1, round(duration * FPS))

    with av.open(str(dst), "w") as out:
        video_codec = _encoder(video_names)
        vstream = out.add_stream(video_codec, rate=FPS)
        vstream.width, vstream.height, vstream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vstream.options = dict(_VIDEO_OPTIONS.get(video_codec, {}))
        astream = None
        if with_audio:
            astream = out.add_stream(_encoder((audio_name,)), rate=AUDIO_RATE, layout="mono")

        chunk = AUDIO_RATE // FPS  # one picture's worth of audio per step: muxed in time order
        for i in range(n_video):
            frame = av.VideoFrame.from_ndarray(_picture(i), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in vstream.encode(frame):
                out.mux(packet)
            if astream is not None and i * chunk < audio.size:
                piece = audio[i * chunk:(i + 1) * chunk] if i < n_video - 1 else audio[i * chunk:]
                aframe = av.AudioFrame.from_ndarray(piece[None, :].copy(), format="flt", layout="mono")
                aframe.sample_rate = AUDIO_RATE
                aframe.pts, aframe.time_base = i * chunk, Fraction(1, AUDIO_RATE)
                for packet in astream.encode(aframe):
                    out.mux(packet)
        for packet in vstream.encode(None):
            out.mux(packet)
        if astream is not None:
            for packet in astream.encode(None):
                out.mux(packet)
    return dst
