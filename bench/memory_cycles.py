#!/usr/bin/env python
"""Is memory returned after many call cycles? (issue 11; a benchmark, not a test: it prints figures, asserts nothing)

Each *cycle* is one stream as a call makes it: a fresh :class:`server.stream.processor.StreamProcessor` over the one
shared :class:`server.compute.runtime.SpeechRuntime` (real Whisper base int8, CAM++, turn splitter, worker pool),
fed a real two-speaker conversation (``--pairs`` pairs of Harvard sentences, one by each speaker, 0.6 s pauses;
default one pair, ~6 s) in 20 ms frames as fast as the models allow,
with partials on, then closed. WebRTC is left out on purpose: this isolates the speech core's allocations (model
calls from the pool's threads) from aiortc's. With ``--webrtc`` each cycle is a real call instead: one long-lived
app (``server.compose.create_app``) on 127.0.0.1 in the child, an aiortc ``signaling.client.CallSession`` in the same
process connects, sends the same audio at ``--speed`` × real time (2), waits for its finals, hangs up, and the cycle
ends when the server has dropped the peer (so RSS includes the client's side of each call too).

The same cycles run in child processes under each malloc setting, one after another:
``default`` (glibc's arenas: up to 8 × cores), ``MALLOC_ARENA_MAX=2`` and ``MALLOC_ARENA_MAX=1``; each prints RSS
after the models load and after cycles 10, 50, 100 and ``--cycles``, then after glibc's ``malloc_trim(0)``
(memory that ``malloc_trim`` gives back was free but held by the allocator — fragmentation or arenas, not a
leak), plus the number of threads and the wall time per cycle.

Run: ``.venv/bin/python bench/memory_cycles.py [--cycles 200] [--variants default,arena2,arena1] [--webrtc]``.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import ROOT, f, guard_network, loadavg, machine_summary, rss_now_mb, set_offline_env, table

VARIANTS = {"default": {}, "arena2": {"MALLOC_ARENA_MAX": "2"}, "arena1": {"MALLOC_ARENA_MAX": "1"}}
MARKS = (10, 50, 100)


def child(args) -> int:
    set_offline_env()
    guard_network("bench/memory_cycles.py", allow_loopback=True)  # --webrtc talks to 127.0.0.1 only
    import numpy as np

    from server import SAMPLE_RATE
    from server.audio.ingest import load_audio
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings
    from server.stream.events import Final
    from server.stream.processor import StreamProcessor

    d = args.data / "harvard_2spk"
    pause = np.zeros(int(0.6 * SAMPLE_RATE), np.float32)
    parts = []
    for n in range(1, args.pairs + 1):
        for spk in ("spk1", "spk2"):
            parts += [load_audio(d / f"{spk}_snt{n}.wav"), pause]
    audio = np.concatenate(parts)
    cache = os.environ.get("CALLSCRIBE_MODEL_CACHE_DIR")
    settings = Settings(database=args.db, final_window=args.final_window, ice_servers=[],
                        ice_host_addresses=["127.0.0.1"], **({"model_cache_dir": cache} if cache else {}))
    runtime = SpeechRuntime.from_settings(settings)
    out = {"loaded": rss_now_mb()}
    t0 = time.perf_counter()
    if args.webrtc:
        finals = asyncio.run(webrtc_cycles(args, runtime, settings, audio, out))
    else:
        finals = 0
        frame = SAMPLE_RATE // 50
        for cycle in range(1, args.cycles + 1):
            got = []
            proc = StreamProcessor(runtime, got.append, block=True, partials=True)
            for i in range(0, audio.size, frame):
                proc.push(audio[i : i + frame])
            proc.close()
            finals += sum(1 for e in got if isinstance(e, Final))
            mark(out, cycle, args.cycles)
    out["wall_per_cycle"] = (time.perf_counter() - t0) / args.cycles
    out["finals_per_cycle"] = finals / args.cycles
    out["threads"] = threading.active_count()
    out["os_threads"] = len(os.listdir("/proc/self/task"))
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    out["trimmed"] = rss_now_mb()
    runtime.close()
    print(json.dumps(out))
    return 0


def mark(out: dict, cycle: int, cycles: int) -> None:
    if cycle in MARKS or cycle == cycles:
        out[str(cycle)] = rss_now_mb()


async def webrtc_cycles(args, runtime, settings, audio, out: dict) -> int:
    """``--webrtc``: each cycle is one real call to one long-lived app on 127.0.0.1 (aiortc client in this process:
    connect, send the audio at ``--speed``, wait for its finals, hang up, wait until the server dropped the peer)."""
    from aiohttp.test_utils import TestServer

    from server.compose import create_app
    from server.webrtc.ice import restrict_host_addresses
    from signaling.app import PEERS
    from signaling.client import CallSession

    restrict_host_addresses(settings.ice_host_addresses)
    app = create_app(runtime, settings)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    finals = 0
    try:
        for cycle in range(1, args.cycles + 1):
            call = CallSession(url, speed=args.speed, transcribe=False)
            try:
                await call.connect()
                finals += len(await call.transcribe(audio, timeout=120.0))
                await call.hangup()
            finally:
                await call.close()
            for _ in range(100):  # bounded: the server tears the peer down in the background
                if not app[PEERS]:
                    break
                await asyncio.sleep(0.1)
            mark(out, cycle, args.cycles)
    finally:
        await server.close()
        restrict_host_addresses(None)
    return finals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speech")
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--variants", default="default,arena2,arena1")
    ap.add_argument("--pairs", type=int, default=1, help="Harvard sentence pairs (spk1, spk2) per cycle, 1-6")
    ap.add_argument("--final-window", choices=("short", "full"), default="short",
                    help="window the finals are decoded on (Settings.final_window)")
    ap.add_argument("--webrtc", action="store_true",
                    help="each cycle is a real WebRTC call to one in-process server (127.0.0.1) instead of a stream")
    ap.add_argument("--speed", type=float, default=2.0, help="--webrtc: audio sent at this multiple of real time")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if not (args.data / "harvard_2spk").is_dir():
        print(f"no recordings at {args.data}: pass --data", file=sys.stderr)
        return 2
    import tempfile

    load_start = loadavg()
    rows = []
    for name in args.variants.split(","):
        env = {**os.environ, **VARIANTS[name]}
        with tempfile.TemporaryDirectory() as tmp:
            print(f"  {name}: {args.cycles} cycles …", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, __file__, "--child", "--cycles", str(args.cycles), "--pairs",
                                   str(args.pairs), "--final-window", args.final_window, "--speed", str(args.speed),
                                   *(["--webrtc"] if args.webrtc else []), "--data",
                                   str(args.data), "--db", str(Path(tmp) / "p.sqlite3")],
                                  env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        r = json.loads(done.stdout.strip().splitlines()[-1])
        marks = [r.get(str(m)) for m in (*MARKS, args.cycles) if str(m) in r]
        growth = (r[str(args.cycles)] / r["10"] - 1) * 100 if "10" in r else float("nan")
        rows.append([name, f(r["loaded"], 0), *[f(x, 0) for x in marks], f(growth, 1, " %"), f(r["trimmed"], 0),
                     r["os_threads"], f(r["wall_per_cycle"], 2), f(r["finals_per_cycle"], 1)])
    print(machine_summary(load_start))
    print(f"  load at the end {loadavg()}; RSS in MB (VmRSS); finals on the {args.final_window} window; cycles: "
          + (f"WebRTC calls (client in the same process, audio at {args.speed:g}x real time)" if args.webrtc
             else "streams into the speech core"))
    marks = [m for m in MARKS if m <= args.cycles] + ([args.cycles] if args.cycles not in MARKS else [])
    table(["malloc", "loaded", *[f"after {m}" for m in marks], f"{args.cycles} vs 10", "after malloc_trim",
           "threads", "s/cycle", "finals/cycle"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
