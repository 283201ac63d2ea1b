"""A real Chromium forced through a real coturn relay (iceTransportPolicy "relay"), sealed on loopback.

coturn, the server and Chromium all run in the test's private network namespace. The server hands the page
TURN credentials minted from the shared secret; ``/?relay=1`` makes the page relay-only.
"""

from __future__ import annotations

import json
import secrets
import time

import numpy as np
import pytest

from server.audio.ingest import load_audio
from turn.coturn import CoturnConfig, start, wait_listening

from .conftest import ARTIFACTS, ServerProcess
from conftest import write_wav

pytestmark = pytest.mark.speech
TURN_PORT = 3478


@pytest.fixture(scope="module")
def coturn(netns):
    import shutil

    if shutil.which("turnserver") is None:
        pytest.skip("coturn is not installed (apt-get install coturn)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "coturn.log"
    log.unlink(missing_ok=True)
    cfg = CoturnConfig(secret=secrets.token_hex(16), port=TURN_PORT, min_port=49300, max_port=49400,
                       allow_loopback_peers=True, log_file=log, verbose=True)
    proc, conf = start(cfg, prefix=netns.cmd())
    wait_listening(proc, log)
    yield cfg, log
    proc.terminate()
    proc.wait(15)
    conf.unlink(missing_ok=True)


def turn_server(netns, server_env, coturn, port, secret):
    env = {**server_env, "CALLSCRIBE_TURN_URLS": json.dumps([f"turn:127.0.0.1:{TURN_PORT}"]),
           "CALLSCRIBE_TURN_SECRET": secret}
    srv = ServerProcess(netns, port, env)
    srv.wait_ready()
    return srv


def test_page_call_through_the_turn_relay(netns, server_env, coturn, launch, speech, tmp_path):
    cfg, log = coturn
    srv = turn_server(netns, server_env, coturn, 8770, cfg.secret)
    try:
        status, body = srv.request("GET", "/api/ice-servers")
        turn = body["iceServers"][0]
        assert status == 200 and turn["urls"] == [f"turn:127.0.0.1:{TURN_PORT}"]
        expiry = int(turn["username"].split(":")[0])
        assert 3500 < expiry - time.time() <= 3600  # time-limited (default lifetime 1 h)

        audio = np.concatenate([np.zeros(24000, np.float32), load_audio(speech / "harvard_2spk" / "spk1_snt4.wav"),
                                np.zeros(48000, np.float32)])
        page = launch(fake_mic_wav=write_wav(tmp_path / "mic.wav", audio)).new_page()
        page.goto(srv.url + "/?relay=1")
        page.select_option("#language", "en")
        page.click("#start")
        page.wait_for_selector("#state[data-state=live]", timeout=20_000)
        page.wait_for_selector("#route[data-route=relay]", timeout=10_000)
        assert page.inner_text("#route") == "Connected via relay"
        page.wait_for_selector("#chat .msg.final", timeout=30_000)
        text = page.inner_text("#chat .msg.final .bubble").lower()
        assert "stripe" in text and "middle" in text
        page.screenshot(path=str(ARTIFACTS / "call-page-relay.png"))
        logged = log.read_text()
        assert "ALLOCATE processed, success" in logged
        assert "CHANNEL_BIND processed, success" in logged or "CREATE_PERMISSION processed, success" in logged
    finally:
        srv.stop()


def test_page_explains_refused_turn_credentials(netns, server_env, coturn, launch, tmp_path):
    srv = turn_server(netns, server_env, coturn, 8771, "not-the-relays-secret")
    try:
        page = launch(fake_mic_wav=write_wav(tmp_path / "mic.wav", np.zeros(16000 * 3, np.float32))).new_page()
        page.goto(srv.url + "/?relay=1")
        page.click("#start")
        page.wait_for_selector("#banner:not([hidden])", timeout=20_000)
        text = page.inner_text("#banner")
        assert "TURN relay refused the credentials (401" in text
    finally:
        srv.stop()
