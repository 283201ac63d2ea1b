"""No model hub, no telemetry: loading and running every model makes no network connection."""

from __future__ import annotations

import socket

import numpy as np
import pytest


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_loading_and_running_all_models_contacts_nothing(no_network, tmp_path):
    import os

    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings
    from server.speaker.turns import TurnSplitter

    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "false"
    rt = SpeechRuntime.from_settings(Settings(database=tmp_path / "p.sqlite3", model_cache_dir=tmp_path / "cache"))
    splitter = TurnSplitter()  # a fresh pyannote model load (where pyannote's telemetry fires)
    audio = (0.05 * np.random.default_rng(0).standard_normal(3 * 16000)).astype(np.float32)
    splitter.split(audio)
    rt.embedder.embed(audio)
    rt.asr.transcribe(audio)
    rt.asr.transcribe(audio, partial=True)
    rt.close()
    assert no_network == []
