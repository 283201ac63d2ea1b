"""Decoding any PyAV-readable file to 16 kHz mono float32; bad files give AudioDecodeError."""

from __future__ import annotations

import numpy as np
import pytest

from server.audio.ingest import iter_file, load_audio, probe
from server.errors import AudioDecodeError

from conftest import tone, write_wav


def test_stereo_44k_is_resampled_and_downmixed(tmp_path):
    src = tone(2.0, 440.0, 0.3)
    # 44.1 kHz stereo version of the same tone
    t = np.arange(int(2.0 * 44100)) / 44100
    hi = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    path = write_wav(tmp_path / "st.wav", hi, rate=44100, channels=2)
    info = probe(path)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration_s == pytest.approx(2.0, abs=0.01)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size == pytest.approx(src.size, abs=64)
    # libswresample's down-mix (L+R)/√2 of two identical 0.3 sines: amplitude 0.424, RMS 0.3
    assert np.sqrt(np.mean(audio[1000:-1000] ** 2)) == pytest.approx(0.3, abs=0.01)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * 16000 / audio.size == pytest.approx(440, abs=2)


def test_real_8k_and_flac_recordings(speech):
    for name in ("osr_harvard_list72_8k.wav", "jfk.flac"):
        info = probe(speech / name)
        audio = load_audio(speech / name)
        assert audio.size / 16000 == pytest.approx(info.duration_s, abs=0.05)
        assert 0.01 < np.abs(audio).max() <= 1.0


def test_chunks_cover_the_file(speech):
    chunks = list(iter_file(speech / "jfk.flac", chunk_s=1.0))
    assert all(c.dtype == np.float32 for c in chunks)
    assert sum(c.size for c in chunks) == load_audio(speech / "jfk.flac").size


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"hello, this is not audio" * 50, "not a readable")])
def test_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioDecodeError, match=match):
        load_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(AudioDecodeError, match="no such file"):
        probe(tmp_path / "nope.wav")


def test_file_without_audio_stream(tmp_path):
    import av

    path = tmp_path / "video.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=5)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        load_audio(path)


def test_truncated_file_raises_or_decodes_what_is_there(tmp_path, speech):
    data = (speech / "jfk.flac").read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[:200])  # header only
    with pytest.raises(AudioDecodeError):
        load_audio(path)


def _frame(pts: int, n: int = 960, rate: int = 48000, value: float = 0.25):
    import av

    pcm = np.full((1, n), int(value * 32767), np.int16)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    from fractions import Fraction

    frame.time_base = Fraction(1, rate)
    return frame


def test_track_ingest_fills_gaps_from_pts_and_drops_late_frames():
    from server.audio.ingest import TrackIngest

    ingest = TrackIngest()
    total = 0
    for i in range(10):  # 10 × 20 ms at 48 kHz
        total += ingest.push(_frame(i * 960)).size
    total += ingest.push(_frame(15 * 960)).size  # frames 10-14 were lost: 100 ms gap
    late = ingest.push(_frame(12 * 960))  # a frame from the past
    total += ingest.resampler.flush().size
    assert late.size == 0 and ingest.late_frames == 1
    assert ingest.gap_s == pytest.approx(0.1)
    # the stream clock equals media time: 16 frames' worth of 20 ms at 16 kHz
    assert total == pytest.approx(16 * 320, abs=40)


def test_track_ingest_caps_huge_gaps():
    from server.audio.ingest import TrackIngest

    ingest = TrackIngest(max_gap_s=5.0)
    ingest.push(_frame(0))
    out = ingest.push(_frame(48000 * 3600))  # an hour later
    assert ingest.gap_s == 5.0 and out.size <= 5 * 16000 + 400
