"""The speech core on real recordings with the real models (Whisper base int8, CAM++, Silero/webrtcvad).

Data: ``../shared/data/speech`` (skips with a reason when absent). Bars come from the speech-core issue.
"""

from __future__ import annotations

import numpy as np
import pytest

from server.audio.ingest import load_audio
from server.stream.filemode import enroll_files, transcribe_file

from conftest import wer, write_wav

pytestmark = pytest.mark.speech


@pytest.fixture(scope="module")
def runtime(runtime_factory):
    return runtime_factory()


def spoken(finals):
    return [f for f in finals if f.text.strip()]


def test_english_wer_on_all_clips_with_reference_text(runtime, speech, manifest):
    refs, hyps, rows = [], [], []
    for item in manifest:
        if not item.get("text"):
            continue
        finals = transcribe_file(runtime, speech / item["path"])
        hyp = " ".join(f.text for f in spoken(finals))
        refs.append(item["text"])
        hyps.append(hyp)
        rows.append((item["path"], wer([item["text"]], [hyp])))
    assert len(refs) >= 16
    score = wer(refs, hyps)
    print("\n" + "\n".join(f"{w:6.1%}  {p}" for p, w in rows) + f"\ncorpus WER {score:.2%} on {len(refs)} clips")
    assert score <= 0.06


@pytest.fixture(scope="module")
def two_speakers(runtime, speech):
    d = speech / "harvard_2spk"
    for name, spk in (("Alice", "spk1"), ("Bob", "spk2")):
        done = enroll_files(runtime, name, [d / f"{spk}_snt{i}.wav" for i in (1, 2, 3)])
        assert done.speech_s >= 3.0
    return d


def test_two_speaker_conversation_has_right_speakers_and_text(runtime, two_speakers, manifest, tmp_path):
    texts = {m["path"]: m["text"] for m in manifest}
    gap = np.zeros(int(0.7 * 16000), np.float32)
    turns, parts = [], []
    for i in (4, 5, 6):
        for name, spk in (("Alice", "spk1"), ("Bob", "spk2")):
            rel = f"harvard_2spk/{spk}_snt{i}.wav"
            turns.append((name, texts[rel]))
            parts += [load_audio(two_speakers / f"{spk}_snt{i}.wav"), gap]
    conversation = write_wav(tmp_path / "conversation.wav", np.concatenate(parts))
    finals = spoken(transcribe_file(runtime, conversation))
    print("\n" + "\n".join(f"{f.speaker:8} {f.score}  {f.text}" for f in finals))
    assert [f.speaker for f in finals] == [name for name, _ in turns]
    assert wer([t for _, t in turns], [f.text for f in finals]) <= 0.10
    starts = [f.start for f in finals]
    assert starts == sorted(starts)


def test_back_to_back_speakers_are_split_and_labelled(runtime, two_speakers, manifest, tmp_path):
    """0.15 s gaps are too short to end an utterance: the turn splitter must find the speaker changes."""
    texts = {m["path"]: m["text"] for m in manifest}
    gap = np.zeros(int(0.15 * 16000), np.float32)
    parts, expected, refs = [], [], []
    for i in (4, 5, 6):
        for name, spk in (("Alice", "spk1"), ("Bob", "spk2")):
            parts += [load_audio(two_speakers / f"{spk}_snt{i}.wav"), gap]
            expected.append(name)
            refs.append(texts[f"harvard_2spk/{spk}_snt{i}.wav"])
    path = write_wav(tmp_path / "back_to_back.wav", np.concatenate([np.zeros(8000, np.float32), *parts]))
    finals = spoken(transcribe_file(runtime, path))
    print("\n" + "\n".join(f"{f.utterance_id}.{f.turn} {f.start:5.2f}-{f.end:5.2f} {f.speaker:8} {f.score} {f.text}"
                            for f in finals))
    assert len({f.utterance_id for f in finals}) < len(finals), "no utterance was split"
    # consecutive finals of the same speaker (a turn cut at the 10 s limit) count as one turn
    turns = [f.speaker for i, f in enumerate(finals) if i == 0 or f.speaker != finals[i - 1].speaker]
    assert turns == expected
    assert wer([" ".join(refs)], [" ".join(f.text for f in finals)]) <= 0.10


def test_never_enrolled_speaker_is_not_given_a_profile_name(runtime, two_speakers, speech):
    # five LibriSpeech test-other voices none of which is enrolled (two Harvard voices are): each file is one
    # voice, so it is one anonymous speaker (or unknown when too short), never Alice or Bob
    finals = []
    for spk in sorted(p.name for p in (speech / "librispeech_test-other_10spk").iterdir())[:5]:
        clip = sorted((speech / "librispeech_test-other_10spk" / spk).glob("*.flac"))[0]
        said = spoken(transcribe_file(runtime, clip))
        assert {f.speaker_id for f in said} <= {"anon:1", None}, [(f.speaker, f.score) for f in said]
        finals += said
    scored = [f for f in finals if f.speaker_reason not in ("too_short", "carried")]
    assert scored, "no utterance long enough to identify"
    assert all(f.speaker_kind != "profile" for f in finals), [(f.speaker, f.score) for f in finals]
    assert any(f.speaker_kind == "anonymous" for f in finals)


@pytest.mark.parametrize("kind", ["silence", "white_-30dBFS", "white_-15dBFS", "pink_-20dBFS", "hum_50Hz"])
def test_silence_and_noise_produce_no_text(runtime, kind, tmp_path):
    rng = np.random.default_rng(1)
    n = 8 * 16000
    if kind == "silence":
        audio = np.zeros(n, np.float32)
    elif kind.startswith("white"):
        level = 10 ** (float(kind.split("_")[1][:-4]) / 20)
        audio = rng.standard_normal(n) * level
    elif kind.startswith("pink"):
        spectrum = np.fft.rfft(rng.standard_normal(n))
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
        audio = np.fft.irfft(spectrum, n)
        audio *= 10 ** (-20 / 20) / np.sqrt(np.mean(audio**2))
    else:
        t = np.arange(n) / 16000
        audio = 0.1 * np.sin(2 * np.pi * 50 * t) + 0.03 * np.sin(2 * np.pi * 150 * t)
    path = write_wav(tmp_path / f"{kind}.wav", np.asarray(audio, np.float32))
    finals = transcribe_file(runtime, path)
    assert [f.text for f in finals if f.text.strip()] == []


def test_stereo_8k_mp3_like_input_is_handled(runtime, speech, tmp_path):
    """Any rate and channel count: JFK re-encoded as 8 kHz stereo still transcribes."""
    audio = load_audio(speech / "jfk.flac")
    import av

    path = tmp_path / "jfk_8k_stereo.wav"
    write_wav(path, audio[::2], rate=8000, channels=2)
    assert av.open(str(path)).streams.audio[0].channels == 2
    text = " ".join(f.text for f in spoken(transcribe_file(runtime, path)))
    assert wer(["And so my fellow Americans, ask not what your country can do for you, ask what you can do for "
                "your country."], [text]) <= 0.15


def test_enrollment_from_a_live_stream_then_identification(runtime_factory, speech):
    """enroll_start / enroll_stop around 20 ms chunks, as a WebRTC peer sends them; then the voice is named."""
    from server.stream.processor import StreamProcessor

    rt = runtime_factory()
    d = speech / "harvard_2spk"
    out = []
    proc = StreamProcessor(rt, out.append, language="en")
    silence = np.zeros(16000, np.float32)

    def stream(audio):
        for i in range(0, audio.size, 320):
            proc.push(audio[i : i + 320])

    for name, spk in (("Alice", "spk1"), ("Bob", "spk2")):
        proc.enroll_start(name)
        for i in (1, 2, 3):
            stream(np.concatenate([load_audio(d / f"{spk}_snt{i}.wav"), silence]))
        proc.enroll_stop()
    proc.wait(60)
    for spk in ("spk2", "spk1"):
        stream(np.concatenate([load_audio(d / f"{spk}_snt5.wav"), silence]))
    proc.close(60)
    types = [e.type for e in out]
    assert types[:4] == ["enrollment_started", "enrollment_completed", "enrollment_started", "enrollment_completed"]
    assert out[1].speech_s >= 3.0 and out[3].speech_s >= 3.0
    finals = [e for e in out if e.type == "final"]
    assert [f.speaker for f in finals] == ["Bob", "Alice"]


def test_partials_while_speaking_in_real_time(runtime, speech):
    """Paced like a live microphone, an utterance gets interim text before its final, which replaces it."""
    import time

    from server.stream.processor import StreamProcessor

    out = []
    proc = StreamProcessor(runtime, lambda e: out.append((time.monotonic(), e)), language="en")
    audio = np.concatenate([load_audio(speech / "librispeech_2412-153948-0000.flac")[: 5 * 16000],
                            np.zeros(16000, np.float32)])
    t0 = time.monotonic()
    for i in range(0, audio.size, 320):
        proc.push(audio[i : i + 320])
        time.sleep(max(0.0, t0 + (i + 320) / 16000 - time.monotonic()))
    proc.close(60)
    events = [e for _, e in out]
    partials = [e for e in events if e.type == "partial"]
    final = next(e for e in events if e.type == "final")
    assert partials, [e.type for e in events]
    assert events.index(partials[-1]) < events.index(final)
    assert all(p.utterance_id == final.utterance_id for p in partials)
    # interim text grows toward the final text: its first word is already right
    assert partials[0].text.split()[0].lower().strip(",.") == final.text.split()[0].lower().strip(",.")
