"""The call page when its server dies or stops mid-call, in a real Chromium against a real ``callscribe serve``:
the process gets SIGKILL (no shutdown handler runs), the page says it is reconnecting, calls the same room again
with back-off and, once a server answers there again (a restarted one here; in a cluster any node, tests/
test_cluster.py routes such an offer), goes on transcribing the same microphone; then the same after a clean
stop (SIGTERM: the server says ``server_shutdown``). What was shown stays, once."""

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
    """~110 s of speech (twelve Harvard sentences of two voices, 1.5 s apart, twice): speech before and after
    each restart."""
    from server.audio.ingest import load_audio

    d = speech / "harvard_2spk"
    gap = np.zeros(24000, np.float32)
    parts = [p for _ in range(2) for spk in ("spk1", "spk2") for i in range(1, 7)
             for p in (load_audio(d / f"{spk}_snt{i}.wav"), gap)]
    return write_wav(tmp_path / "talk.wav", np.concatenate([np.zeros(16000, np.float32), *parts]))


def test_the_call_page_calls_again_when_its_server_is_killed_and_keeps_the_transcript(netns, server_env, launch,
                                                                                      long_talk, tmp_path):
    env = {**server_env, "CALLSCRIBE_DATABASE": str(tmp_path / "redial.sqlite3")}
    first = ServerProcess(netns, PORT, env)
    second = third = None
    try:
        first.wait_ready()
        page = launch(fake_mic_wav=long_talk).new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{first.url}/?room=redial")
        page.fill("#caller", "Kim")
        page.click("#start")
        page.wait_for_function("() => window.callscribe.chat.finals().filter(f => f.text.trim()).length >= 2",
                               timeout=60_000)
        old_peer = page.evaluate("window.callscribe.peerId")
        first.proc.kill()  # SIGKILL, mid-call
        first.proc.wait(10)
        killed = time.monotonic()
        page.wait_for_selector("#state[data-state=reconnecting]", timeout=20_000)
        noticed_s = time.monotonic() - killed
        before = page.evaluate("window.callscribe.chat.finals().filter(f => f.text.trim()).map(f => f.text)")
        assert len(before) >= 2
        assert page.inner_text("#banner .banner-title") == "Reconnecting…"
        assert page.is_visible("#hangup") and not page.is_visible("#start")  # Hang up ends the attempts
        page.screenshot(path=str(ARTIFACTS / "call-page-reconnecting.png"))
        second = ServerProcess(netns, PORT, env)  # the service comes back (systemd restarts it; or another node)
        second.wait_ready()
        page.wait_for_function("old => window.callscribe.ready && window.callscribe.peerId !== old", arg=old_peer,
                               timeout=45_000)
        redialled_s = time.monotonic() - killed
        page.wait_for_function("() => window.callscribe.transcribing", timeout=10_000)  # it goes on transcribing
        page.wait_for_function("n => window.callscribe.chat.finals().filter(f => f.text.trim()).length > n",
                               arg=len(before), timeout=60_000)
        finals = page.evaluate("window.callscribe.chat.finals().filter(f => f.text.trim())"
                               ".map(f => [f.peer_id, f.utterance_id, f.turn, f.text])")
        texts = [f[3] for f in finals]
        assert texts[: len(before)] == before  # what was transcribed before the kill stays, in order
        assert len({tuple(f[:3]) for f in finals}) == len(finals)  # the new call's backlog is not shown twice
        new_peer = page.evaluate("window.callscribe.peerId")
        assert any(f[0] == new_peer for f in finals[len(before):])  # new finals come from the new call
        assert page.is_hidden("#banner")
        assert page.get_attribute("#state", "data-state") == "live"
        # a clean stop (SIGTERM: systemd stop, a rolling restart) says server_shutdown first: the page calls again
        # as soon as the channel closes, no ICE timeout to wait for
        shown = len(finals)
        stopped_peer = page.evaluate("window.callscribe.peerId")
        second.stop()
        page.wait_for_selector("#state[data-state=reconnecting]", timeout=10_000)
        assert page.inner_text("#banner .banner-title") == "Reconnecting…"
        third = ServerProcess(netns, PORT, env)
        third.wait_ready()
        page.wait_for_function("old => window.callscribe.ready && window.callscribe.peerId !== old", arg=stopped_peer,
                               timeout=45_000)
        page.wait_for_function("n => window.callscribe.chat.finals().filter(f => f.text.trim()).length > n",
                               arg=shown, timeout=60_000)
        again = page.evaluate("window.callscribe.chat.finals().filter(f => f.text.trim()).map(f => f.text)")
        assert again[:shown] == texts
        print(f"page reconnecting {noticed_s:.1f} s after the kill; new call ready {redialled_s:.1f} s after it")
    finally:
        for srv in (first, second, third):
            if srv is not None and srv.proc.poll() is None:
                srv.stop()
