#!/usr/bin/env python
"""callscribe against the peer WhisperLive (PyPI ``whisper-live`` 0.10.0), same recordings, same machine, same model
(a benchmark, not a test: it prints figures, asserts nothing).

What is compared: one caller streams the same conversation, in real time, to each server in turn, interleaved
(callscribe, WhisperLive, callscribe, … for ``--rounds``). The conversation is the twelve Harvard sentences of
``../shared/data/speech/harvard_2spk`` (spk1_snt1, spk2_snt1, spk1_snt2, …, spk2_snt6; ``--sentences N`` keeps the
first N) with 1.5 s of digital silence between sentences, 0.5 s before the first and 1 s after the last; reference
texts from ``manifest.jsonl``. Both servers decode with the same local Whisper directory (the project's own
``server.models.resolve_whisper_model(Settings().whisper_model, cache)``: Whisper base, CTranslate2), on the CPU, int8,
and get the language ``--language`` (default ``en``).

- **callscribe**: ``bench/webrtc_latency.py``'s machinery, imported: the real app (``create_app``) in this process on
  127.0.0.1 over one ``SpeechRuntime``, one real WebRTC caller (``signaling.client.CallSession``, aiortc, Opus) sending
  the conversation with ``run_callers``, paced by the client's ``FileAudioTrack`` (20 ms frames); the product's
  defaults otherwise (``CALLSCRIBE_*`` variables apply; nobody is enrolled).
- **WhisperLive**: its own server, ``whisper_live.server.TranscriptionServer().run("127.0.0.1", port,
  backend="faster_whisper", faster_whisper_custom_model_path=<the same directory>, single_model=True)`` started as a
  subprocess of the peer virtual environment (``--venv``, default ``<repo>/.venv-whisperlive``, made by ``--setup``)
  on a free loopback port, ``OMP_NUM_THREADS=--wl-omp-threads`` (1, as WhisperLive's ``run_server.py``), hubs offline,
  and a socket guard in that process that refuses any address but 127.0.0.1. The client is this script, speaking
  WhisperLive's WebSocket protocol with aiohttp (its own client module needs PyAudio): the options JSON (uid,
  language, task ``transcribe``, model, ``use_vad`` true, and the client's defaults ``send_last_n_segments`` 10,
  ``no_speech_thresh`` 0.45, ``same_output_threshold`` 10), then float32 16 kHz mono binary frames of 100 ms paced to
  the wall clock, then ``END_OF_AUDIO``. After the conversation the client keeps sending silence (as a microphone
  would) until every sentence is answered, ``--tail-wait`` (60 s) has passed since its last speech sample, or the server
  has sent nothing for 15 s. WhisperLive does not complete the pending segment at ``END_OF_AUDIO``; in silence it does
  so only after ``same_output_threshold`` + 1 identical decodes of it (one decode took ~3 s on 2 busy cores, so ~35 s),
  and its 45 s audio buffer drops the oldest 30 s when full, so a sentence still pending then is lost.

Each server is warmed up first, not measured (callscribe: one Whisper decode, turn split and embedding, then one call
with the first sentence; WhisperLive: one connection that loads its shared model and decodes the first sentence).

Definitions:

- **End of speech → final.** The speech end of a sentence is the end of its last 10 ms frame within 35 dB of the
  clip's loudest frame (the clips are tightly cut: at most 0.2 s earlier than the file end). Its *send time* is the
  wall time at which the frame / chunk holding that sample was handed over (callscribe: to the Opus encoder, the
  ``TimedTrack`` record of ``webrtc_latency.py``; WhisperLive: to the WebSocket). A sentence is *answered* by the
  first result to arrive that is final (a callscribe ``final``; a WhisperLive segment with ``completed: true``),
  overlaps the sentence by ≥ 0.1 s (result times on the stream clock) and ends at or after its speech end minus
  ``--cover-tol`` (0.5 s; Whisper's segment ends are approximate). Latency = arrival − send time. When no final
  result reaches that far, the sentence counts as answered when the last final result overlapping it first arrived
  (``short``); with none, by the first later final result that overlaps no sentence but whose text matches the
  sentence's (WER ≤ 0.5: WhisperLive stamps a segment completed across its buffer trim at the trimmed offset; ``text``);
  else it is ``missed``. ``--dump FILE`` writes every run's messages for a closer look.
- **WER** (jiwer after whisper_normalizer's ``EnglishTextNormalizer``, ``common.wer_of``) of all final texts (callscribe
  finals in order; WhisperLive's distinct completed segments by start) against the joined references.
- **Resources** of the server process: CPU seconds (``/proc/<pid>/stat`` utime + stime, sampled every 0.2 s;
  callscribe runs in this process, so its figure also holds the WebRTC client: Opus encoding, aiortc) while the
  conversation's audio was being sent (``conv.``: the same span of audio for both) and over the whole run
  (``run``: connect → hang-up; for WhisperLive it includes the silence sent after the conversation); RSS sampled
  every 0.2 s (peak during the run) and at the end of the run, and the process's lifetime peak (``VmHWM``). Other
  processes' CPU over the run (``/proc/stat``) shows how shared the machine was. Ratios are callscribe / WhisperLive.

Run::

    .venv/bin/python bench/peer_whisperlive.py --setup               # once: the peer venv (PyPI only, ~3 min, 1.4 GB)
    .venv/bin/python bench/peer_whisperlive.py                       # 12 sentences, 2 rounds: about 6-8 min
    .venv/bin/python bench/peer_whisperlive.py --sentences 2 --rounds 1   # smoke run, about 2 min

Never contacts anything but 127.0.0.1 while measuring (this process: ``webrtc_latency.py``'s guard; the peer server:
its own guard; its refused attempts are counted in its log). ``--setup`` runs pip in the peer venv and installs
nothing into the project's ``.venv``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

# -- webrtc_latency sets the hubs offline and installs the 127.0.0.1-only network guard when imported ----------
from webrtc_latency import (  # isort: skip
    Conversation,
    LogCapture,
    RunResult,
    ServerProbe,
    build_conversation,
    mono,
    p3,
    run_callers,
    section,
    start_runtime,
    table,
)
from common import (
    ROOT,
    SR,
    Clip,
    f,
    load_manifest,
    loadavg,
    machine_summary,
    net_attempts_summary,
    pct,
    proc_stat_busy,
    versions_summary,
    wer_of,
)

from server.audio.ingest import load_audio
from server.models import resolve_whisper_model
from server.settings import Settings
from server.webrtc.ice import restrict_host_addresses

T_START = time.perf_counter()
WL_VERSION = "0.10.0"
DEFAULT_VENV = ROOT / ".venv-whisperlive"
CHUNK_S = 0.1  # WhisperLive client frames
QUIET_S = 15.0  # after the conversation, stop sending silence once WhisperLive has sent nothing for this long
GAP_S, LEAD_S, TAIL_S = 1.5, 0.5, 1.0
SENTENCES = [(n, s) for n in range(1, 7) for s in ("spk1", "spk2")]  # spk1_snt1, spk2_snt1, spk1_snt2, …

# what whisper_live 0.10.0's server needs on its faster_whisper path (read from server.py, backend/ and vad.py):
# server.py imports fastapi, starlette, uvicorn, faster_whisper, torch, numpy, websockets at the top; vad.py torch and
# onnxruntime; backend/faster_whisper_backend.py torch, ctranslate2, huggingface_hub; the transcriber ctranslate2,
# tokenizers, tqdm, faster_whisper (whose own dependencies bring av, onnxruntime, huggingface_hub, tokenizers).
# Pins as whisper-live 0.10.0 declares them; its other requirements (PyAudio, openai-whisper, openvino, librosa,
# numba, kaldialign, soundfile, scipy, nvidia-*, …) are for its client, other backends or the REST API, not used here.
PEER_REQUIREMENTS = [
    "faster-whisper==1.2.0",
    "tokenizers==0.20.3",
    "numpy>=1.26.4,<2.5",
    "onnxruntime>=1.20.0,<2",
    "websockets",
    "fastapi",
    "uvicorn",
]
PEER_PACKAGES = ["whisper-live", "faster-whisper", "ctranslate2", "torch", "onnxruntime", "websockets", "numpy"]

# The peer server, run with the peer venv's python: argv = port, model dir, cache dir, bench dir. Refuses connects,
# datagrams and name lookups of anything but 127.0.0.1 (bench/netguard.py; printed to stderr as "peer-guard: refused …", counted by the bench).
WL_SERVER = r"""
import logging, sys
port, model, cache, bench = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
sys.path.insert(0, bench)
from netguard import guard_network
guard_network("peer_whisperlive", allow_loopback=True,
              report=lambda what: print(f"peer-guard: refused {what}", file=sys.stderr, flush=True))
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
from whisper_live.server import TranscriptionServer
print("peer: whisper_live imported", file=sys.stderr, flush=True)
TranscriptionServer().run("127.0.0.1", port=port, backend="faster_whisper", faster_whisper_custom_model_path=model,
                          single_model=True, max_clients=4, max_connection_time=600, cache_path=cache)
"""


# =====================================================================================================
# --setup: the peer virtual environment
# =====================================================================================================
def peer_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def cpu_torch_spec(py: Path) -> str:
    """``torch==<newest +cpu version pip can see>`` (e.g. a local CPU wheel among pip's find-links), else ``torch``.

    WhisperLive imports torch but on this path only asks ``torch.cuda.is_available()``; PyPI's default Linux wheel
    is the CUDA build, which brings several GB of nvidia-* wheels."""
    out = subprocess.run([str(py), "-m", "pip", "index", "versions", "torch"], capture_output=True, text=True,
                         timeout=300)
    m = re.search(r"Available versions: (.*)", out.stdout)
    cpu = [v.strip() for v in m.group(1).split(",") if v.strip().endswith("+cpu")] if m else []
    return f"torch=={cpu[0]}" if cpu else "torch"


def setup(venv: Path, torch_spec: str | None) -> int:
    """Create ``venv`` with ``python -m venv`` and install WhisperLive (no deps) and what its server needs."""
    py = peer_python(venv)

    def run(cmd: list[str], timeout: float = 1800) -> None:
        print("  $ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, timeout=timeout)

    if not py.exists():
        run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    run([str(py), "-m", "pip", "install", "--no-deps", f"whisper-live=={WL_VERSION}"])
    torch_spec = torch_spec or cpu_torch_spec(py)
    if torch_spec == "torch":
        print("  note: no CPU-only torch build visible to pip; installing PyPI's default torch (CUDA libraries too)")
    run([str(py), "-m", "pip", "install", torch_spec, *PEER_REQUIREMENTS])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    check = ("import importlib.metadata as m, whisper_live.server, whisper_live.backend.faster_whisper_backend; "
             f"print('; '.join(p + ' ' + m.version(p) for p in {PEER_PACKAGES!r}))")
    print("  $ " + f"{py} -c 'import whisper_live.server …'", flush=True)
    out = subprocess.run([str(py), "-c", check], capture_output=True, text=True, timeout=300, env=env)
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        print(f"setup: the WhisperLive server does not import in {venv}", file=sys.stderr)
        return 1
    print(f"  peer venv ready: {venv}\n  {out.stdout.strip()}")
    return 0


def peer_versions(py: Path) -> str:
    code = ("import importlib.metadata as m, platform; "
            f"print('; '.join(['python ' + platform.python_version()] + [p + ' ' + m.version(p) for p in {PEER_PACKAGES!r}]))")
    try:
        out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "?"
    return out.stdout.strip() or out.stderr.strip()[-200:]


# =====================================================================================================
# process figures: CPU and RSS of a pid (this process for callscribe)
# =====================================================================================================
def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds, from /proc/<pid>/stat."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = data[data.rindex(")") + 2:].split()  # fields[0] is stat field 3 (state): utime = 14, stime = 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_mb(pid: int, key: str) -> float:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM) in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class ProcSampler:
    """CPU-s and VmRSS of a process every ``interval`` seconds in a thread: ``samples`` = (monotonic, cpu, rss)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proc-sampler")

    def _run(self) -> None:
        while True:
            self.samples.append((mono(), proc_cpu_s(self.pid), proc_status_mb(self.pid, "VmRSS")))
            if self._stop.wait(self.interval):
                return

    @property
    def peak(self) -> float:
        v = [x for _, _, x in self.samples if not math.isnan(x)]
        return max(v) if v else float("nan")

    def cpu_at(self, t: float) -> float:
        """CPU-s at monotonic ``t``, interpolated between the samples around it."""
        pts = [(a, b) for a, b, _ in self.samples if not math.isnan(b)]
        if not pts or t < pts[0][0] or t > pts[-1][0]:
            return float("nan")
        for (t0, c0), (t1, c1) in itertools.pairwise(pts):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return pts[-1][1]

    def __enter__(self) -> ProcSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


async def wait_idle(pid: int, timeout: float = 20.0, window: float = 1.0, busy: float = 0.05) -> float:
    """Wait (at most ``timeout`` s) until ``pid`` used under ``busy`` CPU-s in ``window`` s; returns the wait.

    After a session ends, WhisperLive's transcription thread finishes the decode it is in (seconds on a busy
    machine) before it sees the exit flag: that CPU belongs to the session, not to the next run."""
    t0 = mono()
    while mono() - t0 < timeout:
        c0 = proc_cpu_s(pid)
        await asyncio.sleep(window)
        if not proc_cpu_s(pid) - c0 >= busy:  # also true when the process is gone (nan)
            break
    return mono() - t0


@dataclass
class Resources:
    wall: float
    cpu: float  # server process CPU-s over the run
    peak_rss: float  # sampled during the run, MB
    final_rss: float  # at the end of the run, MB
    hwm: float  # VmHWM (lifetime peak) at the end of the run, MB
    busy: float  # whole-machine busy CPU-s over the run
    client_cpu: float = 0.0  # this process's CPU-s when the server is another process
    conv_cpu: float = float("nan")  # server CPU-s while the conversation's audio was being sent (same length for both)


class Measure:
    """Wall, CPU, RSS of ``pid`` and the machine's busy time between ``__enter__`` and ``__exit__``; ``conv(t0, t1)``
    then sets the server's CPU-s between two monotonic times of the run (from the 0.2 s samples)."""

    def __init__(self, pid: int, client_pid: int | None = None) -> None:
        self.pid, self.client_pid = pid, client_pid
        self.sampler = ProcSampler(pid)
        self.res: Resources | None = None

    def __enter__(self) -> Measure:
        self.t0, self.cpu0, (self.busy0, _) = mono(), proc_cpu_s(self.pid), proc_stat_busy()
        self.ccpu0 = proc_cpu_s(self.client_pid) if self.client_pid else 0.0
        self.sampler.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.sampler.__exit__()
        busy1, _ = proc_stat_busy()
        ccpu = proc_cpu_s(self.client_pid) - self.ccpu0 if self.client_pid else 0.0
        self.res = Resources(mono() - self.t0, proc_cpu_s(self.pid) - self.cpu0, self.sampler.peak,
                             proc_status_mb(self.pid, "VmRSS"), proc_status_mb(self.pid, "VmHWM"),
                             busy1 - self.busy0, ccpu)

    def conv(self, t0: float | None, t1: float | None) -> None:
        if self.res is not None and t0 is not None and t1 is not None:
            self.res.conv_cpu = self.sampler.cpu_at(t1) - self.sampler.cpu_at(t0)


# =====================================================================================================
# data
# =====================================================================================================
def speech_end(audio: np.ndarray) -> float:
    """End (seconds into the clip) of its last 10 ms frame within 35 dB of its loudest frame."""
    n = audio.size // 160
    rms = np.sqrt((audio[: n * 160].reshape(n, 160).astype(np.float64) ** 2).mean(axis=1))
    idx = np.nonzero(rms > max(rms.max() * 10 ** (-35 / 20), 1e-5))[0]
    return (idx[-1] + 1) * 0.01 if idx.size else audio.size / SR


@dataclass
class Sentence:
    name: str
    text: str
    start: float  # conversation seconds
    end: float  # speech end, conversation seconds
    file_end: float


def load_conversation(root: Path, n: int) -> tuple[Conversation, list[Sentence]]:
    manifest = load_manifest(root)
    clips = []
    for num, spk in SENTENCES[:n]:
        rel = f"harvard_2spk/{spk}_snt{num}.wav"
        clips.append(Clip(rel, f"harvard_{spk}", manifest.get(rel, {}).get("text"), load_audio(root / rel)))
    desc = " ".join(c.name for c in clips)
    conv = build_conversation(clips, gap_s=GAP_S, lead_s=LEAD_S, tail_s=TAIL_S, description=desc)
    sents = [Sentence(p.clip.name, p.clip.text or "", p.start, p.start + speech_end(p.clip.audio), p.end)
             for p in conv.placed]
    return conv, sents


# =====================================================================================================
# scoring, the same for both systems
# =====================================================================================================
@dataclass
class Answer:
    latency: float | None  # arrival - send time of the speech end
    how: str  # "end" (reached the speech end), "short" (overlaps, ends early), "missed"


def answer(sent: Sentence, results: list[tuple[float, list[tuple[float, float, str]]]], eos_wall: float | None,
           tol: float) -> Answer:
    """``results``: (arrival, [(start, end, text) of final results in it]) in arrival order, conversation seconds."""
    if eos_wall is None:
        return Answer(None, "missed")
    first_seen: dict[tuple, float] = {}
    for t, segs in results:
        for s, e, text in segs:
            if min(e, sent.end) - max(s, sent.start) < 0.1:
                continue
            if e >= sent.end - tol:
                return Answer(t - eos_wall, "end")
            first_seen.setdefault((s, e, text), t)
    if first_seen:
        return Answer(max(first_seen.values()) - eos_wall, "short")
    return Answer(None, "missed")


def answer_all(sents: list[Sentence], results: list[tuple[float, list[tuple[float, float, str]]]],
               eos: list[float | None], tol: float) -> list[Answer]:
    """:func:`answer` for every sentence; a sentence still missed then is answered ``"text"`` by the first final
    result that overlaps no sentence at all (stamped elsewhere on the stream clock) but whose text has a WER ≤ 0.5
    against the sentence's (WhisperLive stamps a segment completed across its 45 s buffer trim at the new offset)."""
    out = [answer(s, results, e, tol) for s, e in zip(sents, eos, strict=True)]
    stray: dict[tuple[float, float, str], float] = {}
    for t, segs in results:
        for seg in segs:
            if all(min(seg[1], x.end) - max(seg[0], x.start) < 0.1 for x in sents):
                stray.setdefault(seg, t)
    for i, (s, e) in enumerate(zip(sents, eos, strict=True)):
        if out[i].how != "missed" or e is None:
            continue
        hits = [t for (_, _, text), t in stray.items() if t > e and text.strip() and wer_of(s.text, text)["wer"] <= 0.5]
        if hits:
            out[i] = Answer(min(hits) - e, "text")
    return out


@dataclass
class SystemRun:
    system: str
    round: int
    answers: list[Answer]
    hyps: list[str]
    res: Resources
    notes: list[str] = field(default_factory=list)
    send_lag: list[float] = field(default_factory=list)  # seconds late against the pacing schedule
    n_interim: int = 0  # partials / incomplete segments received
    leftover: str = ""  # WhisperLive: text of the last incomplete segment never completed
    raw: list = field(default_factory=list)  # [seconds since conversation sample 0 was sent, message] for --dump

    def wer(self, sents: list[Sentence]) -> dict:
        return wer_of(" ".join(s.text for s in sents), " ".join(self.hyps))


# =====================================================================================================
# callscribe: one webrtc_latency.run_callers run with one caller
# =====================================================================================================
async def run_callscribe(runtime, settings: Settings, probe: ServerProbe, logs: LogCapture, conv: Conversation,
                         sents: list[Sentence], k: int, tol: float) -> SystemRun:
    with Measure(os.getpid()) as m:
        r: RunResult = await run_callers(runtime, settings, [conv], 0.0, probe, logs)
        idle_s = await wait_idle(os.getpid())  # as for WhisperLive: work left after the hang-up belongs to the run
    rec = r.callers[0]
    notes = [f"process idle {idle_s:.1f} s after the call ended"]
    if rec.exception:
        notes.append(rec.exception)
    notes += [f"event {x.get('type')}: {x.get('code', '')} {x.get('message', '')}" for _, _, x in rec.messages
              if x.get("type") == "error"]
    notes += r.log_records
    finals = [(w, x) for w, _, x in rec.messages if x.get("type") == "final"]
    base = (rec.buf_pts or 0) / SR  # stream time of the conversation's first sample
    results = [(w, [(x["start"] - base, x["end"] - base, x["text"])]) for w, x in finals]
    eos = [rec.track.wall_of_sample(rec.buf_pts + max(0, round(s.end * SR) - 1))
           if rec.track is not None and rec.buf_pts is not None else None for s in sents]
    answers = answer_all(sents, results, eos, tol)
    t_ref = eos[0] - sents[0].end if eos and eos[0] is not None else 0.0  # ~ wall time of conversation sample 0
    raw = [[round(w - t_ref, 3), x] for w, _, x in rec.messages]
    if rec.track is not None and rec.buf_pts is not None:
        m.conv(rec.track.wall_of_sample(rec.buf_pts), rec.track.wall_of_sample(rec.buf_pts + conv.audio.size - 1))
    lag = list(rec.track.lateness) if rec.track is not None else []
    sil = [u for u in r.utts if u.eos is not None and u.decision is not None]
    print(f"  callscribe's own split (webrtc_latency.py definitions, p50/p95/max s): final's end -> endpoint decision "
          f"{p3([u.decision - u.eos for u in sil])}, decision -> final {p3([u.recv - u.decision for u in sil])}, model "
          f"call {p3([u.call[1] - u.call[0] for u in r.utts if u.call])}; event-loop lag ms "
          f"{p3([x * 1000 for x in r.loop_lag], 0)}")
    return SystemRun("callscribe", k, answers, [x["text"] for _, x in finals if x["text"].strip()], m.res, notes,
                     lag, sum(1 for _, _, x in rec.messages if x.get("type") == "partial"), raw=raw)


# =====================================================================================================
# WhisperLive: the server subprocess and a WebSocket client
# =====================================================================================================
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeerServer:
    """``TranscriptionServer().run`` in a subprocess of the peer venv, on 127.0.0.1:<free port>."""

    def __init__(self, venv: Path, model_dir: Path, tmp: Path, omp_threads: int) -> None:
        self.port = free_port()
        self.log_path = tmp / "whisperlive.log"
        self.log = open(self.log_path, "wb")
        cache = tmp / "whisperlive-cache"
        cache.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
                   HF_HOME=str(tmp / "hf-home"), OMP_NUM_THREADS=str(omp_threads), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([str(peer_python(venv)), "-c", WL_SERVER, str(self.port), str(model_dir),
                                      str(cache), str(Path(__file__).resolve().parent)], stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_listening(self, timeout: float) -> None:
        deadline = mono() + timeout
        while mono() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the WhisperLive server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 2)
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()
                return
            except (OSError, TimeoutError):
                await asyncio.sleep(0.25)
        raise TimeoutError(f"the WhisperLive server did not listen within {timeout:.0f} s:\n{self.log_tail()}")

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 25) -> str:
        return "\n".join("    " + x for x in self.log_text().splitlines()[-n:])

    def stop(self) -> int | None:
        """SIGTERM to its process group, 10 s, then SIGKILL, 5 s."""
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.log.close()
        return self.proc.returncode


def wl_options(model_dir: Path, language: str | None, same_output: int = 10) -> dict:
    """The first message, as whisper_live/client.py 0.10.0 sends it (its defaults), for one stream."""
    return {"uid": str(uuid.uuid4()), "language": language, "task": "transcribe", "model": str(model_dir),
            "use_vad": True, "send_last_n_segments": 10, "no_speech_thresh": 0.45, "clip_audio": False,
            "same_output_threshold": same_output, "enable_translation": False, "hotwords": None, "enable_diarization": False,
            "word_timestamps": False, "initial_prompt": None, "vad_parameters": None}


@dataclass
class WLStream:
    ready_s: float = float("nan")  # connect -> SERVER_READY
    messages: list[tuple[float, dict]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)  # wall time of chunk k
    lag: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    closed_by_server: bool = False

    def results(self) -> list[tuple[float, list[tuple[float, float, str]]]]:
        return [(t, [(float(s["start"]), float(s["end"]), s["text"]) for s in m["segments"] if s.get("completed")])
                for t, m in self.messages if "segments" in m]


async def wl_stream(port: int, opts: dict, audio: np.ndarray, *, paced: bool, until=None, tail_wait: float = 0.0,
                    speech_end_s: float = 0.0, ready_timeout: float = 180.0) -> WLStream:
    """One WhisperLive session: options, SERVER_READY, ``audio`` in 100 ms float32 chunks (paced to the wall clock
    when ``paced``), then silence while ``until(stream)`` is false and less than ``tail_wait`` s have passed since the
    chunk holding ``speech_end_s`` was sent, then END_OF_AUDIO and the server's close (all waits bounded)."""
    st = WLStream()
    step = int(CHUNK_S * SR)
    async with aiohttp.ClientSession() as http:
        t = mono()
        ws = await asyncio.wait_for(http.ws_connect(f"ws://127.0.0.1:{port}", max_msg_size=0, autoping=True), 30)
        try:
            await ws.send_str(json.dumps(opts))
            deadline = mono() + ready_timeout
            while True:
                msg = await asyncio.wait_for(ws.receive(), max(0.1, deadline - mono()))
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"WhisperLive closed before SERVER_READY ({msg.type.name} {msg.data!r})")
                d = json.loads(msg.data)
                if d.get("message") == "SERVER_READY":
                    st.ready_s = mono() - t
                    break
                if d.get("status") in ("WAIT", "ERROR"):
                    raise RuntimeError(f"WhisperLive refused the stream: {d}")

            async def receive() -> None:
                async for m in ws:
                    if m.type == aiohttp.WSMsgType.TEXT:
                        d = json.loads(m.data)
                        st.messages.append((mono(), d))
                        if d.get("status") in ("WARNING", "ERROR"):
                            st.notes.append(f"status {d.get('status')}: {d.get('message')}")
                    elif m.type in (aiohttp.WSMsgType.ERROR,):
                        st.notes.append(f"websocket error: {ws.exception()!r}")
                st.closed_by_server = True

            reader = asyncio.get_running_loop().create_task(receive())
            n_chunks = math.ceil(audio.size / step)
            eos_chunk = min(n_chunks - 1, int(speech_end_s * SR) // step)
            t0, k = mono(), 0
            while not reader.done():
                if k >= n_chunks:
                    quiet = mono() - (st.messages[-1][0] if st.messages else st.sent[eos_chunk])
                    if until is None or until(st) or mono() - st.sent[eos_chunk] > tail_wait or quiet > QUIET_S:
                        break
                due = t0 + k * CHUNK_S
                if paced and due > mono():
                    await asyncio.sleep(due - mono())
                elif not paced and k >= n_chunks:
                    await asyncio.sleep(CHUNK_S)  # unpaced audio, but the silence after it in real time
                chunk = audio[k * step:(k + 1) * step] if k < n_chunks else np.zeros(step, np.float32)
                now = mono()
                await ws.send_bytes(chunk.astype(np.float32).tobytes())
                st.sent.append(now)
                st.lag.append(now - due)
                k += 1
                if not paced and k < n_chunks:
                    await asyncio.sleep(0)
            if not reader.done():
                await ws.send_bytes(b"END_OF_AUDIO")
            try:
                await asyncio.wait_for(asyncio.shield(reader), 15)
            except TimeoutError:
                st.notes.append("the server did not close within 15 s of END_OF_AUDIO")
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        finally:
            await asyncio.wait_for(ws.close(), 10)
    return st


async def run_whisperlive(peer: PeerServer, model_dir: Path, language: str | None, conv: Conversation,
                          sents: list[Sentence], k: int, tol: float, tail_wait: float, same_output: int) -> SystemRun:
    def all_answered(st: WLStream) -> bool:
        res = st.results()
        return all(answer(s, res, 0.0, tol).how == "end" for s in sents)

    notes = []
    with Measure(peer.pid, client_pid=os.getpid()) as m:
        try:
            st = await wl_stream(peer.port, wl_options(model_dir, language, same_output), conv.audio, paced=True,
                                 until=all_answered, tail_wait=tail_wait, speech_end_s=sents[-1].end)
        except Exception as exc:  # noqa: BLE001 -- reported
            st = WLStream()
            notes.append(f"stream failed: {type(exc).__name__}: {exc}")
        idle_s = await wait_idle(peer.pid)  # its last decode finishes after the session: part of this run
    notes.append(f"server idle {idle_s:.1f} s after the session closed")
    step = int(CHUNK_S * SR)
    n_chunks = math.ceil(conv.audio.size / step)
    if len(st.sent) >= n_chunks:
        m.conv(st.sent[0], st.sent[n_chunks - 1] + CHUNK_S)
    res = st.results()
    eos = []
    for s in sents:
        kk = max(0, round(s.end * SR) - 1) // step
        eos.append(st.sent[kk] if kk < len(st.sent) else None)
    answers = answer_all(sents, res, eos, tol)
    raw = [[round(t - st.sent[0], 3), mm] for t, mm in st.messages] if st.sent else []
    distinct: dict[tuple[float, float, str], None] = {}
    for _, segs in res:
        for seg in segs:
            distinct.setdefault(seg)
    hyps = [text for _, _, text in sorted(distinct) if text.strip()]
    last = next((mm for _, mm in reversed(st.messages) if mm.get("segments")), None)
    leftover = ""
    if last and not last["segments"][-1].get("completed"):
        leftover = last["segments"][-1]["text"].strip()
    n_interim = sum(1 for _, mm in st.messages for s in mm.get("segments", [])[-1:] if not s.get("completed"))
    return SystemRun("WhisperLive", k, answers, hyps, m.res, notes + st.notes, st.lag, n_interim, leftover, raw)


# =====================================================================================================
# report
# =====================================================================================================
def lat(runs: list[SystemRun]) -> list[float]:
    return [a.latency for r in runs for a in r.answers if a.latency is not None]


def pooled_wer(runs: list[SystemRun], sents: list[Sentence], pending: bool = False) -> dict:
    """Corpus WER of the runs' final texts (``pending``: plus the text WhisperLive never completed)."""
    hyps = [h for r in runs for h in [*r.hyps, *([r.leftover] if pending and r.leftover else [])]]
    return wer_of(" ".join(s.text for _ in runs for s in sents), " ".join(hyps))


def ratio(a: float, b: float) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def mean(values) -> float:
    v = [x for x in values if x is not None and not math.isnan(x)]
    return sum(v) / len(v) if v else float("nan")


def report(runs: list[SystemRun], sents: list[Sentence], conv: Conversation, args) -> None:
    systems = ["callscribe", "WhisperLive"]
    by = {s: [r for r in runs if r.system == s] for s in systems}

    section("per run (in the order run)")
    rows = []
    for r in runs:
        w = r.wer(sents)
        rows.append([r.round + 1, r.system, p3([a.latency for a in r.answers]),
                     "/".join(str(sum(a.how == h for a in r.answers)) for h in ("short", "text", "missed")),
                     f"{w['wer'] * 100:.1f}%", f"{r.res.wall:.1f}", f(r.res.conv_cpu, 1), f"{r.res.cpu:.1f}",
                     f"{r.res.client_cpu:.1f}" if r.system == "WhisperLive" else "(in server)",
                     f"{max(0.0, r.res.busy - r.res.cpu - r.res.client_cpu):.1f}", f"{r.res.peak_rss:.0f}",
                     f"{r.res.final_rss:.0f}", p3([x * 1000 for x in r.send_lag], 0), r.n_interim])
    table(["round", "system", "eos -> final s p50/p95/max", "short/text/missed", "WER", "wall s",
           "server CPU-s (conv.)", "server CPU-s (run)", "client CPU-s", "other procs CPU-s", "peak RSS MB",
           "final RSS MB", "send lag ms p50/p95/max", "interim msgs"], rows)
    print(f"  conv. = while the {conv.dur:.1f} s of conversation audio were being sent (the same span for both); run = "
          "connect -> hang-up,\n  which for WhisperLive includes the silence sent until its last sentence completes "
          "(--tail-wait)")

    section("per sentence: end of speech -> final, seconds (median over rounds); texts of round 1")
    rows = []
    for i, s in enumerate(sents):
        cells = [i + 1, s.name, f"{s.end:.2f}"]
        for sysname in systems:
            v = [r.answers[i].latency for r in by[sysname] if r.answers[i].latency is not None]
            hows = {r.answers[i].how for r in by[sysname]} - {"end"}
            cells.append((f"{float(np.median(v)):.2f}" if v else "-") + (f" ({'/'.join(sorted(hows))})" if hows else ""))
        cells.append(s.text.lower())
        rows.append(cells)
    table(["#", "clip", "speech end s", "callscribe", "WhisperLive", "reference"], rows)
    for sysname in systems:
        if by[sysname]:
            print(f"  {sysname} round 1: " + " | ".join(h.strip() for h in by[sysname][0].hyps))
            if by[sysname][0].leftover:
                print(f"    (never completed: {by[sysname][0].leftover!r})")

    section(f"summary: {len(by['callscribe'])} + {len(by['WhisperLive'])} runs of {len(sents)} sentences "
            f"({conv.dur:.1f} s of audio each), pooled")
    rows, vals = [], {}
    for sysname in systems:
        rs = by[sysname]
        if not rs:
            continue
        v = lat(rs)
        w, wp = pooled_wer(rs, sents), pooled_wer(rs, sents, pending=True)
        x = vals[sysname] = {"p50": pct(v, 50), "p95": pct(v, 95), "max": max(v) if v else float("nan"),
                             "wer": w["wer"], "werp": wp["wer"], "conv": mean(r.res.conv_cpu for r in rs),
                             "run": mean(r.res.cpu for r in rs), "peak": max(r.res.peak_rss for r in rs),
                             "final": rs[-1].res.final_rss, "hwm": max(r.res.hwm for r in rs)}
        rows.append([sysname, f"{len(v)}/{len(rs) * len(sents)}", f"{f(x['p50'])} / {f(x['p95'])} / {f(x['max'])}",
                     "/".join(str(sum(a.how == h for r in rs for a in r.answers)) for h in ("short", "text", "missed")),
                     f"{w['wer'] * 100:.1f}% (S{w['S']} D{w['D']} I{w['I']}/N{w['N']})", f"{wp['wer'] * 100:.1f}%",
                     f(x["conv"], 1), f(x["conv"] / conv.dur), f(x["run"], 1), f(x["peak"], 0), f(x["final"], 0),
                     f(x["hwm"], 0)])
    if len(vals) == 2:
        a, b = vals["callscribe"], vals["WhisperLive"]
        rows.append(["callscribe / WhisperLive", "", " / ".join(ratio(a[k], b[k]) for k in ("p50", "p95", "max")),
                     "", ratio(a["wer"], b["wer"]), ratio(a["werp"], b["werp"]), ratio(a["conv"], b["conv"]),
                     "", ratio(a["run"], b["run"]), ratio(a["peak"], b["peak"]), ratio(a["final"], b["final"]),
                     ratio(a["hwm"], b["hwm"])])
    table(["system", "answered", "eos -> final s p50 / p95 / max", "short/text/missed", "WER of finals",
           "WER + never completed", "server CPU-s (conv.)", "CPU-s per audio s", "server CPU-s (run)",
           "peak RSS MB", "final RSS MB", "VmHWM MB"], rows)
    print(f"  eos -> final: wall time the frame/chunk holding a sentence's last speech sample was sent -> first final "
          f"result reaching it\n  (overlap >= 0.1 s, end >= speech end - {args.cover_tol} s); 'short' = answered only "
          "by finals ending earlier (timed at the last of them),\n  'text' = only by a final stamped "
          "elsewhere whose text matches (WER <= 0.5), 'missed' = none (latencies are over the answered sentences only).\n  "
          "CPU-s per run are means over the rounds; peak RSS = max over runs (sampled every 0.2 s), final RSS = after "
          "the last run,\n  VmHWM = the server process's lifetime peak. callscribe runs in this process: its CPU and RSS "
          "include the WebRTC client\n  (aiortc, Opus); WhisperLive's are its server process alone.")


# =====================================================================================================
# main
# =====================================================================================================
async def amain(args) -> int:
    load_start = loadavg()
    py = peer_python(args.venv)
    section("callscribe vs WhisperLive: the same recordings streamed in real time, interleaved")
    print(f"  {machine_summary(load_start)}")
    print(f"  callscribe side: {versions_summary(['aiortc', 'faster-whisper', 'ctranslate2', 'torch', 'numpy'])}")
    print(f"  WhisperLive side ({args.venv}): {peer_versions(py)}")

    cache = Path(os.environ.get("CALLSCRIBE_MODEL_CACHE_DIR") or "/tmp/cs-cache")
    tmpdir = tempfile.TemporaryDirectory(prefix="cs-peer-wl-")
    tmp = Path(tmpdir.name)
    language = None if args.language == "auto" else args.language
    overrides = {"model_cache_dir": cache, "database": tmp / "profiles.sqlite3", "ice_servers": [],
                 "ice_host_addresses": ["127.0.0.1"], "language": language}
    settings = Settings(**overrides)
    model_dir = resolve_whisper_model(settings.whisper_model, settings.model_cache_dir)
    conv, sents = load_conversation(args.data, args.sentences)
    print(f"  model: {settings.whisper_model} -> {model_dir} (both servers), CPU, int8; language "
          f"{language or 'auto-detect'}")
    print(f"  conversation: {len(sents)} sentences, {conv.dur:.1f} s, gaps {GAP_S} s: {conv.description}")

    peer = PeerServer(args.venv, model_dir, tmp, args.wl_omp_threads)
    runtime = None
    try:
        runtime, probe, logs, load_s = start_runtime(settings)
        s = runtime.settings
        print(f"  callscribe: models loaded in {load_s:.1f} s; device {runtime.asr.device}, "
              f"compute_type {runtime.asr.compute_type}, cpu_threads {s.cpu_threads}, asr_workers {s.asr_workers}, "
              f"beam {s.beam_size} (30 s window) / {s.short_beam_size} (short), final window {s.final_window} (short: "
              f"at least {s.short_final_window_s:g} s), early finals {s.early_final_ms} ms, speaker work "
              f"{s.speaker_work}, VAD {s.vad}, silence_ms {s.silence_ms}, partials "
              f"{s.partials}, sentiment {s.sentiment}, split_speaker_turns {s.split_speaker_turns}")
        t = mono()
        await peer.wait_listening(args.wl_start_timeout)
        print(f"  WhisperLive: listening on 127.0.0.1:{peer.port} (pid {peer.pid}) {mono() - t:.1f} s after callscribe "
              f"loaded; backend faster_whisper, single_model, OMP_NUM_THREADS {args.wl_omp_threads}, "
              f"same_output_threshold {args.wl_same_output}; its transcribe() defaults: beam 5, temperature fallback, "
              "faster-whisper's Silero VAD filter")

        section("warm-up (not measured)")
        warm = conv.placed[0].clip.audio
        t = time.perf_counter()
        await asyncio.to_thread(runtime.asr.transcribe, warm, language=s.language)
        if runtime.turns is not None:
            await asyncio.to_thread(runtime.turns.split, warm)
        runtime.embedder.embed(warm)
        print(f"  callscribe: one Whisper decode + turn split + embedding: {time.perf_counter() - t:.2f} s")
        t = mono()
        wconv = build_conversation([conv.placed[0].clip], gap_s=GAP_S, lead_s=LEAD_S, tail_s=TAIL_S, description="warm")
        r = await run_callers(runtime, settings, [wconv], 0.0, probe, logs)
        print(f"  callscribe: one call with the first sentence: {mono() - t:.1f} s, finals "
              f"{[x['text'] for _, _, x in r.callers[0].messages if x.get('type') == 'final']}")
        t = mono()
        audio = np.concatenate([warm, np.zeros(int(1.5 * SR), np.float32)])
        st = await wl_stream(peer.port, wl_options(model_dir, language), audio, paced=False,
                             until=lambda st: any("segments" in m for _, m in st.messages), tail_wait=30.0,
                             speech_end_s=warm.size / SR, ready_timeout=args.wl_start_timeout)
        seg = next((m["segments"] for _, m in st.messages if "segments" in m), [])
        await wait_idle(peer.pid)
        print(f"  WhisperLive: connect -> SERVER_READY {st.ready_s:.1f} s (loads the shared model), first segments "
              f"{mono() - t:.1f} s after connecting: {' '.join(x['text'] for x in seg)!r}; notes {st.notes or 'none'}")

        runs: list[SystemRun] = []
        for k in range(args.rounds):
            for sysname in ("callscribe", "WhisperLive"):
                section(f"round {k + 1}/{args.rounds}: {sysname}")
                if sysname == "callscribe":
                    idle0 = proc_cpu_s(peer.pid)
                    r = await run_callscribe(runtime, settings, probe, logs, conv, sents, k, args.cover_tol)
                    r.notes.append(f"the idle WhisperLive server used {proc_cpu_s(peer.pid) - idle0:.2f} CPU-s meanwhile")
                else:
                    r = await run_whisperlive(peer, model_dir, language, conv, sents, k, args.cover_tol,
                                              args.tail_wait, args.wl_same_output)
                runs.append(r)
                print(f"  done in {r.res.wall:.1f} s; eos -> final p50/p95/max {p3([a.latency for a in r.answers])} s; "
                      f"WER {r.wer(sents)['wer'] * 100:.1f}%; server CPU {r.res.cpu:.1f} s; load avg {loadavg()}")
                for n in r.notes[:10]:
                    print(f"    note: {n}")
                if peer.proc.poll() is not None:
                    raise RuntimeError(f"the WhisperLive server died ({peer.proc.returncode}):\n{peer.log_tail()}")

        report(runs, sents, conv, args)
        if args.dump:
            with open(args.dump, "w") as fh:
                for r in runs:
                    fh.write(json.dumps({"system": r.system, "round": r.round + 1, "sentences": [
                        {"name": x.name, "start": x.start, "speech_end": x.end, "text": x.text} for x in sents],
                        "answers": [[a.latency, a.how] for a in r.answers], "messages": r.raw}) + "\n")
            print(f"  messages of every run written to {args.dump}")
    finally:
        rc = peer.stop()
        log = peer.log_text()
        if runtime is not None:
            runtime.close()
        restrict_host_addresses(None)
        tmpdir.cleanup()
    refused = [x for x in log.splitlines() if "peer-guard: refused" in x]
    errors = [x for x in log.splitlines() if " ERROR " in x or "Traceback" in x]
    section("end")
    print(f"  WhisperLive server stopped (exit {rc}); its log: {len(errors)} error lines, refused network attempts "
          f"{len(refused)}{' (' + '; '.join(refused[:3]) + ')' if refused else ''}")
    for x in errors[:8]:
        print(f"    {x[:200]}")
    print(f"  this process: network attempts to anything but 127.0.0.1 (refused): {net_attempts_summary()}")
    print(f"  load avg at start {load_start}; at end {loadavg()}; bench wall {time.perf_counter() - T_START:.0f} s")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--setup", action="store_true", help="create the peer venv (--venv) and install WhisperLive, then exit")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"peer virtual environment (default {DEFAULT_VENV})")
    ap.add_argument("--torch", default=None, help="--setup: torch requirement (default: the newest +cpu build pip sees, "
                    "else 'torch')")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds: callscribe, WhisperLive, … (default 2)")
    ap.add_argument("--sentences", type=int, default=len(SENTENCES),
                    help=f"first N of the {len(SENTENCES)} Harvard sentences (default all)")
    ap.add_argument("--language", default="en", help="language given to both servers ('auto' = detect; default en)")
    ap.add_argument("--cover-tol", type=float, default=0.5,
                    help="a final answers a sentence when it ends at or after its speech end minus this (s; 0.5)")
    ap.add_argument("--tail-wait", type=float, default=60.0,
                    help="WhisperLive: keep sending silence up to this long after the last speech (s; 60)")
    ap.add_argument("--wl-same-output", type=int, default=10,
                    help="WhisperLive same_output_threshold: identical decodes before a pending segment is completed "
                    "(10, its client's default)")
    ap.add_argument("--wl-omp-threads", type=int, default=1,
                    help="OMP_NUM_THREADS of the WhisperLive server (1, as its run_server.py defaults)")
    ap.add_argument("--wl-start-timeout", type=float, default=240.0,
                    help="seconds allowed for the WhisperLive server to listen / load its model (240)")
    ap.add_argument("--dump", type=Path, default=None,
                    help="write every run's messages (seconds since the conversation's first sample was sent) as JSON lines")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speech",
                    help="folder of the real recordings (default: ../shared/data/speech)")
    args = ap.parse_args()
    if args.setup:
        return setup(args.venv, args.torch)
    if not peer_python(args.venv).exists():
        print(f"no peer venv at {args.venv}: run with --setup first", file=sys.stderr)
        return 2
    if not (args.data / "manifest.jsonl").is_file():
        print(f"real recordings not found at {args.data}: nothing to benchmark", file=sys.stderr)
        return 2
    args.sentences = max(1, min(args.sentences, len(SENTENCES)))
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
