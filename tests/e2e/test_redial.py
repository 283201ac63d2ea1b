"""The call page when its server stops mid-call and comes back, in a real Chromium against a real ``callscribe
serve``: SIGTERM (systemd stop, a restart), so the server says ``server_shutdown`` before it closes the call; the
page says it is reconnecting, calls the same room again with back-off and, once the server answers again, goes on
transcribing the same microphone; what was shown stays, once. A node killed with SIGKILL behind nginx, the call
moving to another node: tests/e2e/test_cluster_page.py."""

from __future__ import annotations

import time

import numpy as np
import pytest

from .conftest import ARTIFACTS, ServerProcess
from conftest import write_wav

pytestmark = pytest.mark.speech
PORT = 8771


@pytest.fixture
def long_talk(speech, tmp_path):
    """~70 s of speech (twelve Harvard sentences of two voices, 1.5 s apart): speech before and after a restart
    or a move to another node."""
    from server.audio.ingest import load_audio

    d = speech / "harvard_2spk"
    gap = np.zeros(24000, np.float32)
    parts = [p for spk in ("spk1", "spk2") for i in range(1, 7) for p in (load_audio(d / f"{spk}_snt{i}.wav"), gap)]
    return write_wav(tmp_path / "talk.wav", np.concatenate([np.zeros(16000, np.float32), *parts]))


def test_the_call_page_calls_again_when_its_server_restarts_and_keeps_the_transcript(netns, server_env, launch,
                                                                                     long_talk, tmp_path):
    env = {**server_env, "CALLSCRIBE_DATABASE": str(tmp_path / "redial.sqlite3")}
    first = ServerProcess(netns, PORT, env)
    second = None
    try:
        first.wait_ready()
        page = launch(fake_mic_wav=long_talk).new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{first.url}/?room=redial")
        page.fill("#caller", "Kim")
        page.click("#start")
        page.wait_for_function("() => window.callscribe.chat.finals().filter(f => f.text.trim()).length >= 2",
                               timeout=60_000)
        old_peer = page.evaluate("window.callscribe.peerId")
        stopped = time.monotonic()
        first.stop()  # SIGTERM, mid-call: the server says server_shutdown, delivers what it holds, closes
        page.wait_for_selector("#state[data-state=reconnecting]", timeout=10_000)
        noticed_s = time.monotonic() - stopped
        before = page.evaluate("window.callscribe.chat.finals().filter(f => f.text.trim()).map(f => f.text)")
        assert len(before) >= 2
        assert page.inner_text("#banner .banner-title") == "Reconnecting…"
        assert page.is_visible("#hangup") and not page.is_visible("#start")  # Hang up ends the attempts
        page.screenshot(path=str(ARTIFACTS / "call-page-reconnecting.png"))
        second = ServerProcess(netns, PORT, env)  # the service comes back (systemd restarts it)
        second.wait_ready()
        page.wait_for_function("old => window.callscribe.ready && window.callscribe.peerId !== old", arg=old_peer,
                               timeout=45_000)
        redialled_s = time.monotonic() - stopped
        page.wait_for_function("() => window.callscribe.transcribing", timeout=10_000)  # it goes on transcribing
        page.wait_for_function("n => window.callscribe.chat.finals().filter(f => f.text.trim()).length > n",
                               arg=len(before), timeout=60_000)
        finals = page.evaluate("window.callscribe.chat.finals().filter(f => f.text.trim())"
                               ".map(f => [f.peer_id, f.utterance_id, f.turn, f.text])")
        assert [f[3] for f in finals][: len(before)] == before  # what was transcribed before the stop stays
        assert len({tuple(f[:3]) for f in finals}) == len(finals)  # the new call's backlog is not shown twice
        new_peer = page.evaluate("window.callscribe.peerId")
        assert any(f[0] == new_peer for f in finals[len(before):])  # new finals come from the new call
        assert page.is_hidden("#banner")
        assert page.get_attribute("#state", "data-state") == "live"
        print(f"page reconnecting {noticed_s:.1f} s after SIGTERM; new call ready {redialled_s:.1f} s after it")
    finally:
        for srv in (first, second):
            if srv is not None and srv.proc.poll() is None:
                srv.stop()
