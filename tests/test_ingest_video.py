"""Video containers and empty audio through the decoder (server.audio.ingest): a video's audio track is decoded,
a video without one and an empty audio file give a clear AudioDecodeError. Test media come from tests/media.py
(PyAV only)."""

from __future__ import annotations

import wave

import av
import numpy as np
import pytest
from media import make_video

from server.audio.features import AcousticFeatures
from server.audio.ingest import iter_file, load_audio, probe
from server.errors import AudioDecodeError

CLIP = "harvard_2spk/spk1_snt1.wav"  # 2.9 s, one voice


def _streams(path) -> list[tuple[str, str]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name) for s in c.streams]


@pytest.mark.parametrize(("suffix", "audio_codec"), [(".mp4", "aac"), (".mkv", "opus"), (".webm", "opus")])
def test_video_with_audio_track_decodes_its_audio(speech, tmp_path, suffix, audio_codec):
    src = speech / CLIP
    path = make_video(src, tmp_path / f"clip{suffix}")
    kinds = dict(_streams(path))
    assert kinds["audio"] == audio_codec and kinds["video"] in {"h264", "mpeg4", "vp8"}

    info = probe(path)
    assert (info.codec, info.sample_rate, info.channels) == (audio_codec, 48000, 1)
    ref = load_audio(src)
    assert info.duration_s == pytest.approx(ref.size / 16000, abs=0.05)

    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - ref.size) <= 160  # AAC frames pad the end by < 10 ms at 16 kHz
    n = min(audio.size, ref.size)
    assert np.corrcoef(audio[:n], ref[:n])[0, 1] > 0.98  # the clip's audio, in sync with the file's start
    # and the same voice: the median F0 survives the lossy codec
    f_ref, f_vid = AcousticFeatures(ref), AcousticFeatures(audio)
    f0_ref = np.median(f_ref.voiced_f0([(0.0, 10.0)]))
    assert np.median(f_vid.voiced_f0([(0.0, 10.0)])) == pytest.approx(f0_ref, rel=0.02)


def test_make_video_seconds_cuts_the_audio(speech, tmp_path):
    path = make_video(speech / CLIP, tmp_path / "short.mp4", seconds=1.0)
    assert load_audio(path).size == pytest.approx(16000, abs=160)


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_video_without_audio_track_is_a_clear_error(speech, tmp_path, suffix):
    path = make_video(speech / CLIP, tmp_path / f"silent{suffix}", with_audio=False)
    assert [kind for kind, _ in _streams(path)] == ["video"]
    for call in (probe, load_audio, lambda p: next(iter_file(p))):
        with pytest.raises(AudioDecodeError, match="has no audio stream") as err:
            call(path)
        assert err.value.code == "bad_audio" and str(path) in str(err.value)


def test_zero_byte_files_are_a_clear_error(tmp_path):
    for name in ("empty.wav", "empty.mp4", "empty.webm"):
        path = tmp_path / name
        path.write_bytes(b"")
        for call in (probe, load_audio):
            with pytest.raises(AudioDecodeError, match="the file is empty"):
                call(path)


def test_audio_file_with_no_samples_is_a_clear_error(tmp_path):
    """A valid WAV header with zero samples: probe reads it (0 s), decoding says no samples came out."""
    path = tmp_path / "zero.wav"
    with wave.open(str(path), "wb") as w:  # 44-byte RIFF header, 16-bit mono 16 kHz, no frames
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    assert path.stat().st_size == 44
    assert probe(path).duration_s in (0.0, None)
    with pytest.raises(AudioDecodeError, match="no audio samples could be decoded"):
        load_audio(path)
    assert list(_safe_iter(path)) == ["AudioDecodeError"]


def test_video_with_an_empty_audio_track(speech, tmp_path):
    """``seconds=0``: WebM keeps an Opus track with no packets (decoding: no samples); the MP4 muxer drops an audio
    track that never got a packet (no audio stream; measured with PyAV 18). Either way a clear AudioDecodeError,
    never an empty array."""
    webm = make_video(speech / CLIP, tmp_path / "empty_track.webm", seconds=0)
    assert dict(_streams(webm))["audio"] == "opus"
    with pytest.raises(AudioDecodeError, match="no audio samples could be decoded"):
        load_audio(webm)
    mp4 = make_video(speech / CLIP, tmp_path / "empty_track.mp4", seconds=0)
    with pytest.raises(AudioDecodeError, match="has no audio stream"):
        load_audio(mp4)


def _safe_iter(path):
    try:
        for _ in iter_file(path):
            yield "chunk"
    except AudioDecodeError:
        yield "AudioDecodeError"
