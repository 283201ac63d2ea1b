"""TURN with coturn (Debian's turnserver) on loopback: time-limited credentials, relayed calls, refusals."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import time

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from server.audio.ingest import load_audio
from server.compose import create_app
from server.webrtc.ice import restrict_host_addresses
from signaling.client import CallError, call_file, turn_diagnosis
from turn.coturn import CoturnConfig, TurnError, render_config, start, wait_listening
from turn.credentials import mint


def test_credentials_follow_the_shared_secret_scheme():
    creds = mint("s3cret", "alice", ttl_s=600, now=1_000_000)
    assert creds.username == "1000600:alice" and creds.expires_at == 1_000_600
    import base64

    assert len(base64.b64decode(creds.credential)) == 20  # a SHA-1 digest; coturn's acceptance is tested below
    with pytest.raises(ValueError):
        mint("", "alice", 600)
    with pytest.raises(ValueError):
        mint("s", "a:b", 600)


def test_config_needs_a_secret():
    with pytest.raises(TurnError, match="CALLSCRIBE_TURN_SECRET"):
        render_config(CoturnConfig(secret=""))
    text = render_config(CoturnConfig(secret="x", allow_loopback_peers=True))
    assert "use-auth-secret" in text and "static-auth-secret=x" in text and "allow-loopback-peers" in text


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def coturn(tmp_path_factory):
    if shutil.which("turnserver") is None:
        pytest.skip("coturn is not installed (apt-get install coturn)")
    log = tmp_path_factory.mktemp("coturn") / "turn.log"
    cfg = CoturnConfig(secret=secrets.token_hex(16), port=free_udp_port(), min_port=49300, max_port=49400,
                       allow_loopback_peers=True, log_file=log, verbose=True)
    proc, conf = start(cfg)
    wait_listening(proc, log)
    yield cfg, log
    proc.terminate()
    proc.wait(15)  # coturn needs over a second after SIGTERM
    conf.unlink(missing_ok=True)


def servers_for(cfg, secret=None, ttl=600, now=None):
    creds = mint(secret or cfg.secret, "test", ttl, now)
    return [{"urls": [f"turn:127.0.0.1:{cfg.port}"], "username": creds.username, "credential": creds.credential}]


@pytest.mark.asyncio
async def test_coturn_accepts_minted_credentials_and_refuses_wrong_or_expired(coturn):
    cfg, _ = coturn
    assert "accepts the credentials" in await turn_diagnosis(servers_for(cfg))
    wrong = await turn_diagnosis(servers_for(cfg, secret="not-the-secret"))
    assert "refused the credentials (401" in wrong
    expired = await turn_diagnosis(servers_for(cfg, ttl=60, now=time.time() - 3600))
    assert "refused the credentials (401" in expired


@pytest.fixture(scope="module")
def runtime(runtime_factory, speech):
    restrict_host_addresses(["127.0.0.1"])
    yield runtime_factory()
    restrict_host_addresses(None)


@pytest.mark.speech
@pytest.mark.asyncio(loop_scope="module")
async def test_call_relayed_through_coturn(runtime, coturn, speech):
    cfg, log = coturn
    settings = runtime.settings.model_copy(update={"turn_urls": [f"turn:127.0.0.1:{cfg.port}"],
                                                   "turn_secret": cfg.secret, "turn_ttl_s": 600})
    server = TestServer(create_app(runtime, settings), host="127.0.0.1", port=0)
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    audio = np.concatenate([load_audio(speech / "harvard_2spk" / "spk1_snt4.wav"), np.zeros(16000, np.float32)])
    before = log.read_text().count("ALLOCATE")
    try:
        # ICE servers (with fresh credentials) come from the server's /api/ice-servers; relay only
        result = await call_file(url, audio, speed=4.0, relay_only=True)
        finals = [f for f in result.finals if f["text"]]
        assert finals and "stripe" in finals[0]["text"].lower()
        await asyncio.sleep(0.5)
        text = log.read_text()
        assert text.count("ALLOCATE") > before
        assert "ALLOCATE processed, success" in text
        assert "CREATE_PERMISSION processed, success" in text or "CHANNEL_BIND processed, success" in text
        # a server whose secret does not match coturn's: the client says why
        bad = settings.model_copy(update={"turn_secret": "wrong"})
        server2 = TestServer(create_app(runtime, bad), host="127.0.0.1", port=0)
        await server2.start_server()
        try:
            with pytest.raises(CallError, match="refused the credentials \\(401"):
                await call_file(f"http://127.0.0.1:{server2.port}", audio, speed=4.0, relay_only=True)
        finally:
            await server2.close()
    finally:
        await server.close()
