"""Shared fixtures.

Real recordings come from ``../shared/data/speech`` (relative to the project root); tests that need them
skip with a clear reason when the folder is absent. Models come from the installed wheels only.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"


def speech_dir() -> Path:
    if not (SPEECH / "manifest.jsonl").is_file():
        pytest.skip(f"real recordings not found at {SPEECH} (the shared data folder is absent)")
    return SPEECH


@pytest.fixture(scope="session")
def speech() -> Path:
    return speech_dir()


@pytest.fixture(scope="session")
def manifest(speech) -> list[dict]:
    return [json.loads(line) for line in (speech / "manifest.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """Assembled Whisper models: reuse CALLSCRIBE_MODEL_CACHE_DIR if set, else one per test session."""
    env = os.environ.get("CALLSCRIBE_MODEL_CACHE_DIR")
    return Path(env) if env else tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def runtime_factory(model_cache, tmp_path_factory):
    """Build real SpeechRuntimes (real Whisper base, real CAM++) on fresh SQLite files; closed at the end."""
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings

    made = []

    def make(**overrides) -> SpeechRuntime:
        db = tmp_path_factory.mktemp("db") / "profiles.sqlite3"
        rt = SpeechRuntime.from_settings(Settings(model_cache_dir=model_cache, database=db, **overrides))
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER after Whisper's English text normaliser (whisper-normalizer), via jiwer."""
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    refs = [norm(r) for r in references]
    hyps = [norm(h) for h in hypotheses]
    return jiwer.wer(refs, hyps)


def tone(seconds: float, freq: float = 220.0, level: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    """Write float32 audio as 16-bit PCM WAV with PyAV (channels duplicated when > 1)."""
    import av

    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout=layout)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        data = np.repeat(pcm[None, :], channels, axis=0).T.reshape(1, -1).copy()
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def mic_wav(path: Path, clips: list[Path], lead_s: float = 4.0, gap_s: float = 1.0, tail_s: float = 30.0) -> Path:
    """A fake microphone for Chromium: ``lead_s`` of silence, each clip followed by ``gap_s``, then ``tail_s``."""
    from server.audio.ingest import load_audio

    sr = 16000
    parts = [np.zeros(int(lead_s * sr), np.float32)]
    for clip in clips:
        parts += [load_audio(clip), np.zeros(int(gap_s * sr), np.float32)]
    parts.append(np.zeros(int(tail_s * sr), np.float32))
    return write_wav(path, np.concatenate(parts))


@contextlib.asynccontextmanager
async def served(app, timeout_s: float = 120.0):
    """Serve an aiohttp ``app`` on 127.0.0.1 (a free port) and yield ``(client session, base URL)``."""
    import aiohttp
    from aiohttp.test_utils import TestServer

    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
            yield http, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of a throwaway PostgreSQL server started for this test session (``tests/postgres_server.py``;
    skips when the machine cannot run one). Make a fresh database per test with ``postgres_server.create_database``."""
    from postgres_server import start_or_skip

    server = start_or_skip()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A throwaway Redis server started for this test session (``tests/redis_server.py``; skips when the machine
    cannot run one). Tests that share it use their own key prefix or call ``flush()``."""
    from redis_server import start_or_skip

    server = start_or_skip()
    try:
        yield server
    finally:
        server.stop()
