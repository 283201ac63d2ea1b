"""How much memory does one long upload cost the server, and where does it go?

Run: ``.venv/bin/python bench/upload_memory.py`` (needs ../shared/data/speech; about 3 min on 2 CPU cores).
``--root PATH`` runs the server from another checkout of the project (e.g. an export of an older commit,
``git archive HEAD | tar -x -C /tmp/head``) with this virtual environment, for a before/after comparison.

1. **Server.** A real ``callscribe serve`` (a subprocess on 127.0.0.1, Whisper base and CAM++ loaded, a fresh
   database) gets a long Opus recording: ``--minutes`` (default 10) of real speech, LibriSpeech test-other
   utterances joined end to end, encoded with PyAV (libopus, 12 kbit/s mono, Ogg: about 0.9 MB for 10 minutes)
   and uploaded to ``POST /api/profiles`` (enroll) and, where the server has it, ``POST /api/identify``. The
   server's resident set (``VmRSS`` of its process, sampled every 20 ms) is printed before, at the peak during,
   and after each request.
2. **Where it goes.** In this process: the CAM++ embedder (``server.speaker.embedding``) alone on 10 to 120 s of
   that speech, split into the feature extraction (``fbank``) and the network's forward pass, peak RSS growth of
   each: the cost per second of audio embedded at once.

Nothing here contacts the network but 127.0.0.1 (the process's sockets are guarded).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import (
    ROOT,
    SR,
    guard_network,
    loadavg,
    machine_summary,
    net_attempts_summary,
    section,
    set_offline_env,
    table,
    versions_summary,
)

DATA = ROOT.parent / "shared" / "data" / "speech"
LIBRI = DATA / "librispeech_test-other_10spk"


def make_long_opus(path: Path, minutes: float) -> float:
    """Write ``minutes`` of LibriSpeech speech as Ogg/Opus at 12 kbit/s; returns the seconds written."""
    import av
    import numpy as np

    from server.audio.ingest import load_audio

    want = int(minutes * 60 * SR)
    parts, n = [], 0
    for f in sorted(LIBRI.glob("*/*.flac")):
        parts.append(load_audio(f))
        n += parts[-1].size
        if n >= want:
            break
    audio = np.concatenate(parts)[:want]
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        stream.bit_rate = 12000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for i in range(0, pcm.size, SR):
            frame = av.AudioFrame.from_ndarray(pcm[None, i : i + SR], format="s16", layout="mono")
            frame.sample_rate = SR
            for r in resampler.resample(frame):
                for packet in stream.encode(r):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return audio.size / SR


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Sampler:
    """Samples a process's VmRSS every 20 ms in a thread; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return
            time.sleep(0.02)

    def reset(self) -> float:
        self.peak = now = rss_mb(self.pid)
        return now

    def stop(self) -> None:
        self._stop = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def upload(url: str, path: Path, fields: dict[str, str]) -> tuple[int, str]:
    import aiohttp

    form = aiohttp.FormData()
    for k, v in fields.items():
        form.add_field(k, v)
    form.add_field("audio", path.read_bytes(), filename=path.name, content_type="audio/ogg")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as http, http.post(url, data=form) as r:
        return r.status, (await r.text())[:160]


def server_section(root: Path, opus: Path, audio_s: float, tmp: Path) -> None:
    section(f"1. Server RSS around one upload ({audio_s / 60:.1f} min of Opus, {opus.stat().st_size / 1e6:.2f} MB), "
            f"server code from {root}")
    port = free_port()
    env = {**os.environ, "CALLSCRIBE_DATABASE": str(tmp / "profiles.sqlite3"),
           "CALLSCRIBE_MODEL_CACHE_DIR": os.environ.get("CALLSCRIBE_MODEL_CACHE_DIR", "/tmp/cs-cache"),
           "PYANNOTE_METRICS_ENABLED": "false", "HF_HUB_OFFLINE": "1"}
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {(tmp / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server not ready in 300 s")
            time.sleep(0.5)
        time.sleep(2.0)
        sampler = Sampler(proc.pid)
        rows = []
        for label, route, fields in (("enroll (POST /api/profiles)", "/api/profiles", {"name": "Long"}),
                                     ("identify (POST /api/identify)", "/api/identify", {})):
            before = sampler.reset()
            t = time.perf_counter()
            status, text = asyncio.run(upload(base + route, opus, fields))
            took = time.perf_counter() - t
            time.sleep(1.0)
            after = rss_mb(proc.pid)
            rows.append([label, status, f"{took:.1f}", f"{before:.0f}", f"{sampler.peak:.0f}", f"{after:.0f}",
                         f"+{sampler.peak - before:.0f}", text.replace("\n", " ")[:70]])
        sampler.stop()
        table(["request", "status", "s", "RSS before MB", "peak MB", "after MB", "peak - before", "answer"], rows)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def embedder_section(opus: Path) -> None:
    import numpy as np
    import torch
    from common import rss_now_mb

    from server.audio.ingest import load_audio
    from server.speaker.embedding import SpeakerEmbedder, fbank

    section("2. Where it goes: CAM++ on speech embedded at once (this process, 1 torch thread)")
    torch.set_num_threads(1)
    embedder = SpeakerEmbedder()
    audio = load_audio(opus)
    peak = [0.0]
    stop = [False]

    def sample() -> None:
        while not stop[0]:
            peak[0] = max(peak[0], rss_now_mb())
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    rows = []
    for seconds in (10, 30, 60, 120):
        clip = np.ascontiguousarray(audio[: seconds * SR])
        time.sleep(0.1)
        peak[0] = base = rss_now_mb()
        feats = fbank(clip)
        time.sleep(0.05)
        fb = peak[0] - base
        peak[0] = base = rss_now_mb()
        with torch.inference_mode():
            embedder.model(torch.from_numpy(feats).unsqueeze(0))
        time.sleep(0.05)
        fw = peak[0] - base
        rows.append([seconds, f"{fb:.0f}", f"{fw:.0f}", f"{fb / seconds:.2f}", f"{fw / seconds:.2f}"])
    stop[0] = True
    table(["speech s", "fbank +MB", "forward +MB", "fbank MB/s", "forward MB/s"], rows)
    print("  (fbank hands the samples to kaldi-native-fbank as a Python list: ~32 bytes a sample; the forward pass "
          "keeps activations proportional to the frames)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--root", type=Path, default=ROOT, help="project checkout to run the server from")
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--skip-embedder", action="store_true")
    args = ap.parse_args()
    if not LIBRI.is_dir():
        raise SystemExit(f"{LIBRI} is absent")
    set_offline_env()
    guard_network("bench/upload_memory.py", allow_loopback=True)
    section("callscribe upload memory benchmark")
    print(f"  {machine_summary(loadavg())}")
    print(f"  {versions_summary(['torch', 'av', 'aiohttp'])}")
    with tempfile.TemporaryDirectory() as tmp:
        opus = Path(tmp) / "long.opus"
        audio_s = make_long_opus(opus, args.minutes)
        if not args.skip_server:
            server_section(args.root.resolve(), opus, audio_s, Path(tmp))
        if not args.skip_embedder:
            embedder_section(opus)
    print(f"\n  refused network attempts: {net_attempts_summary()}; load avg at end {loadavg()}")


if __name__ == "__main__":
    main()
