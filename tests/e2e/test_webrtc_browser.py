"""A real Chromium calls the server over WebRTC (fake microphone from a WAV), sealed on loopback."""

from __future__ import annotations

import numpy as np
import pytest

from server.audio.ingest import load_audio

from conftest import write_wav

pytestmark = pytest.mark.speech


def test_browser_webrtc_roundtrip_on_loopback_only(server, launch, speech, tmp_path):
    d = speech / "harvard_2spk"
    audio = np.concatenate([np.zeros(8000, np.float32), load_audio(d / "spk1_snt4.wav"), np.zeros(32000, np.float32)])
    wav = write_wav(tmp_path / "mic.wav", audio)
    browser = launch(fake_mic_wav=wav)
    page = browser.new_page()
    page.goto(server.url + "/healthz")
    js = """async () => {
      const stream = await navigator.mediaDevices.getUserMedia({audio: {echoCancellation:false, noiseSuppression:false, autoGainControl:false}});
      const pc = new RTCPeerConnection({iceServers: []});
      stream.getTracks().forEach(t => pc.addTrack(t, stream));
      const dc = pc.createDataChannel('events');
      const msgs = [];
      dc.onmessage = e => msgs.push(JSON.parse(e.data));
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
      const resp = await fetch('/api/offer', {method:'POST', headers:{'Content-Type':'application/json'}, body: JSON.stringify({sdp: pc.localDescription.sdp, type:'offer', language:'en'})});
      const ans = await resp.json();
      await pc.setRemoteDescription(ans);
      const t0 = Date.now();
      while (Date.now() - t0 < 20000 && !msgs.some(m => m.type === 'final' && m.text)) await new Promise(r => setTimeout(r, 200));
      const stats = []; (await pc.getStats()).forEach(s => { if (s.type === 'local-candidate') stats.push(s.address || s.ip); });
      return {msgs, stats, state: pc.connectionState};
    }"""
    out = page.evaluate(js)
    assert out["state"] == "connected"
    assert set(out["stats"]) == {"127.0.0.1"}  # sealed: only loopback candidates
    assert [m["type"] for m in out["msgs"]][:2] == ["ready", "speech_started"]
    finals = [m for m in out["msgs"] if m["type"] == "final" and m["text"]]
    assert finals and "stripe" in finals[0]["text"].lower()
