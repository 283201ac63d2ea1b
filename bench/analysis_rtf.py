#!/usr/bin/env python
"""Recording-analysis benchmark (issue 12; a benchmark, not a test: it prints figures, asserts nothing).

1. **Real-time factor of a long recording.** A ``--minutes`` (10) long 16 kHz mono WAV is built in a temp folder
   from real clips of ``../shared/data/speech`` (the eight 30 s AMI meeting excerpts, ``pyannote_sample.wav``,
   then the Harvard and LibriSpeech clips, 0.5 s of digital silence between clips, cut at exactly the length)
   and analysed by :func:`server.analysis.pipeline.analyze_file` (diarize, features and sentiment on, language
   ``en``), with ``background=False`` (``cli``: Whisper called directly, as the command line does) and/or
   ``background=True`` (``pool``: every region queued on the runtime's worker pool as an ``AnalysisJob``, as
   jobs do). Printed per mode: processing seconds and RTF (processing s / audio s), seconds per stage (a stage
   starts at its first progress call and ends where the next one starts, the last one at the return), whether
   the progress percent never went down and how many progress calls came, speakers / segments / words, peak RSS
   before and after, process CPU, other processes' CPU and the load average before and after.
2. **One live call's latency while a job runs.** The real signaling app runs in-process (``create_app`` with a
   :class:`server.jobs.service.JobService`, default ``Settings.job_workers`` / ``job_nice``) and one real WebRTC
   caller (``bench/webrtc_latency.py``'s machinery: ``run_callers``, caller 0's usual ~33 s conversation,
   both harvard voices enrolled first) talks to it (a) with the server idle and (b) while an analysis job of the
   same recording, submitted with ``JobService.submit``, runs in that server — one call per stage named in
   ``--during`` (default: one while the job diarizes, one while it transcribes), each started once the job has
   reached that stage. Printed side by side: end of speech → final p50/p95/max (and its parts), the job's
   status / progress / stage at the call's start and end, and the job's pool work during the call.

Run: ``.venv/bin/python bench/analysis_rtf.py [--minutes 10] [--modes cli|pool|both] [--skip-call]``; see
bench/README.md. Nothing in the product is patched; the network guard allows 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import sys
import tempfile
import time
import traceback
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# -- webrtc_latency sets the hubs offline and installs the 127.0.0.1-only network guard when imported ----------
from webrtc_latency import (  # isort: skip
    LogCapture,
    ServerProbe,
    conversation_for,
    enroll_voices,
    load_data,
    mono,
    p3,
    run_callers,
    section,
    table,
)
from common import (
    ROOT,
    SR,
    Clip,
    lay_out,
    load_manifest,
    loadavg,
    machine_summary,
    net_attempts_summary,
    own_cpu_s,
    peak_rss_mb,
    proc_stat_busy,
    rss_now_mb,
    versions_summary,
)

from server.analysis.options import AnalysisOptions
from server.analysis.pipeline import analyze_file
from server.audio.ingest import load_audio
from server.jobs.service import JobService
from server.settings import Settings
from server.store.jobs import JobStore
from server.webrtc.ice import restrict_host_addresses

T_START = time.perf_counter()
GAP_S = 0.5
WARMUP_S = 10.0


# =====================================================================================================
# the recording
# =====================================================================================================
def recording_clips(root: Path) -> list[Clip]:
    """AMI excerpts, pyannote_sample.wav, then Harvard and LibriSpeech clips (speaker by speaker), in order."""
    manifest = load_manifest(root)
    rels = sorted(str(p.relative_to(root)) for p in (root / "ami_meetings").glob("*.wav"))
    rels.append("pyannote_sample.wav")
    rels += sorted(str(p.relative_to(root)) for p in (root / "harvard_2spk").glob("*.wav"))
    rels += sorted(str(p.relative_to(root)) for p in (root / "librispeech_test-other_10spk").rglob("*.flac"))
    out = []
    for rel in rels:
        speakers = manifest.get(rel, {}).get("speakers") or ["?"]
        out.append(Clip(rel, ",".join(speakers), manifest.get(rel, {}).get("text"), load_audio(root / rel)))
    return out


def build_recording(pool: list[Clip], seconds: float, path: Path) -> tuple[list[Clip], float]:
    """Write ``seconds`` of ``pool``'s clips (0.5 s gaps; the list starts over when it runs out) to a 16-bit WAV
    at ``path``. Returns the clips used (the last one cut) and the duration."""
    chosen, total, k = [], 0.0, 0
    while total < seconds:
        clip = pool[k % len(pool)]
        chosen.append(clip)
        total += clip.dur + (GAP_S if k else 0.0)
        k += 1
    audio, _ = lay_out(chosen, GAP_S, 0.0, 0.0)
    audio = audio[: round(seconds * SR)]
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    return chosen, audio.size / SR


# =====================================================================================================
# 1. analyze_file, timed
# =====================================================================================================
@dataclass
class AnalysisRun:
    mode: str
    wall: float
    cpu: float
    other_cpu: float
    calls: list[tuple[float, float, str]]  # (monotonic, percent, stage) of every progress call
    t0: float
    t_end: float
    result: dict | None
    error: str | None
    peak_before: float
    peak_after: float
    rss_before: float
    rss_after: float
    load_before: str
    load_after: str


def timed_analysis(mode: str, runtime, path: Path, options: AnalysisOptions, diarizer, sentiment) -> AnalysisRun:
    calls: list[tuple[float, float, str]] = []

    def progress(percent: float, stage: str, message: str) -> None:
        calls.append((mono(), percent, stage))

    load_before, peak_before, rss_before = loadavg(), peak_rss_mb(), rss_now_mb()
    cpu0, (busy0, _) = own_cpu_s(), proc_stat_busy()
    t0 = mono()
    result = error = None
    try:
        result = analyze_file(runtime, path, options, progress=progress, sentiment=sentiment, diarizer=diarizer,
                              background=(mode == "pool"), job_id=f"bench-{mode}").result
    except Exception as exc:  # noqa: BLE001 -- reported
        where = traceback.extract_tb(exc.__traceback__)[-1]
        error = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
    t_end = mono()
    cpu, (busy1, _) = own_cpu_s() - cpu0, proc_stat_busy()
    return AnalysisRun(mode, t_end - t0, cpu, max(0.0, busy1 - busy0 - cpu), calls, t0, t_end, result, error,
                       peak_before, peak_rss_mb(), rss_before, rss_now_mb(), load_before, loadavg())


def stage_seconds(run: AnalysisRun) -> list[tuple[str, float, float, int]]:
    """(stage, start offset s, seconds, progress calls) per stage, in order of first appearance."""
    starts: list[tuple[str, float]] = []
    counts: dict[str, int] = {}
    for t, _, stage in run.calls:
        if not starts or starts[-1][0] != stage:
            starts.append((stage, t))
        counts[stage] = counts.get(stage, 0) + 1
    out = []
    for i, (stage, t) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else run.t_end
        out.append((stage, t - run.t0, end - t, counts[stage]))
    return out


def report_analysis(runs: list[AnalysisRun], audio_s: float) -> None:
    rows = []
    for r in runs:
        res = r.result or {}
        pcts = [p for _, p, _ in r.calls]
        mono_ok = all(b >= a for a, b in itertools.pairwise(pcts))
        drops = sum(1 for a, b in itertools.pairwise(pcts) if b < a)
        segs = res.get("segments", [])
        rows.append([r.mode, f"{r.wall:.1f}", f"{r.wall / audio_s:.3f}",
                     f"{res['real_time_factor']:.3f}" if res.get("real_time_factor") is not None else "-",
                     f"{r.cpu:.0f}", f"{r.other_cpu:.0f}", len(r.calls),
                     f"{'yes' if mono_ok else f'NO ({drops} drops)'}; {pcts[0]:.1f} -> {pcts[-1]:.1f}" if pcts else "-",
                     len(res.get("speakers", [])), len(segs), sum(len(s.get("words", [])) for s in segs),
                     r.error or "ok"])
    table(["mode", "processing s", "RTF", "result RTF", "CPU-s (this proc)", "other procs CPU-s",
           "progress calls", "monotone; first -> last %", "speakers", "segments", "words", "outcome"], rows)
    print(f"  RTF = processing wall s / {audio_s:.0f} s of audio (result RTF: the result's own processing_s, "
          "measured inside analyze_file)")
    print()
    stages = [s for r in runs for s, *_ in stage_seconds(r)]
    order = list(dict.fromkeys(stages))
    per = {r.mode: {s: (start, sec, n) for s, start, sec, n in stage_seconds(r)} for r in runs}
    rows = []
    for stage in order:
        row = [stage]
        for r in runs:
            x = per[r.mode].get(stage)
            row.append("-" if x is None else f"{x[1]:.1f} s ({100 * x[1] / r.wall:.0f}%, RTF {x[1] / audio_s:.3f}; "
                                             f"from +{x[0]:.1f} s; {x[2]} calls)")
        rows.append(row)
    rows.append(["(before the first progress call)"] +
                [f"{(r.calls[0][0] - r.t0) if r.calls else r.wall:.2f} s" for r in runs])
    table(["stage"] + [f"{r.mode}: seconds (share, RTF; start; progress calls)" for r in runs], rows)
    print("  a stage starts at its first progress call and ends where the next stage's first call comes (the last "
          "one at\n  analyze_file's return: it includes building the result)")
    print()
    rows = [[r.mode, f"{r.peak_before:.0f}", f"{r.peak_after:.0f}", f"{r.rss_before:.0f}", f"{r.rss_after:.0f}",
             r.load_before, r.load_after] for r in runs]
    table(["mode", "peak RSS before MB", "peak RSS after MB", "RSS before MB", "RSS after MB", "load avg before",
           "load avg after"], rows)
    for r in runs:
        sp = (r.result or {}).get("speakers", [])
        if sp:
            print(f"  {r.mode} speakers: " + ", ".join(f"{s['speaker']} {s['talk_time_s']:.0f} s" for s in sp))


# =====================================================================================================
# 2. one live call, idle and while a job runs
# =====================================================================================================
class JobProbe(ServerProbe):
    """ServerProbe that also keeps the (start, end) of every analysis region the pool ran (never reset)."""

    def __init__(self) -> None:
        super().__init__()
        self.analysis: list[tuple[float, float]] = []

    def job_finished(self, job, started: float, ended: float, ok: bool) -> None:
        super().job_finished(job, started, ended, ok)
        if job.kind == "analysis":
            with self.lock:
                self.analysis.append((started, ended))


class HeldJobs(JobService):
    """The app's JobService, started once by the bench before the calls and stopped by it after them: the app
    (one per run_callers run) calls start at its startup and stop at its shutdown; both are no-ops here, so one
    job keeps running across the runs. A bench subclass, like webrtc_latency's BenchSession: nothing patched."""

    def start(self) -> None:
        if not getattr(self, "_started", False):
            self._started = True
            super().start()

    def stop(self) -> None:
        pass

    def release(self) -> None:
        super().stop()


@dataclass
class CallRun:
    label: str
    run: object  # webrtc_latency.RunResult
    job: list[tuple[float, str, float, str]]  # (monotonic, status, progress, stage) samples
    t_start: float | None
    t_end: float | None
    load_after: str


def job_at(samples: list[tuple[float, str, float, str]], t: float | None) -> tuple[str, float, str] | None:
    """The job's (status, progress, stage) at the last sample at or before ``t``."""
    if t is None:
        return None
    last = None
    for ts, status, progress, stage in samples:
        if ts > t:
            break
        last = (status, progress, stage)
    return last


async def poll_job(jobs: JobService, job_id: str, out: list, stop: asyncio.Event) -> None:
    while not stop.is_set():
        rec = await asyncio.to_thread(jobs.get, job_id, result=False)
        out.append((mono(), rec.status, float(rec.progress or 0.0), rec.stage or ""))
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def one_call(label: str, runtime, settings, conv, probe, logs, jobs, job_id: str | None) -> CallRun:
    samples: list = []
    stop = asyncio.Event()
    poller = asyncio.get_running_loop().create_task(poll_job(jobs, job_id, samples, stop)) if job_id else None
    r = await run_callers(runtime, settings, [conv], 0.0, probe, logs, jobs=jobs)
    stop.set()
    if poller:
        await poller
    rec = r.callers[0]
    t_end = max((w for w, _, _ in rec.messages), default=None)
    return CallRun(label, r, samples, rec.t_play, t_end, loadavg())


def report_calls(calls: list[CallRun], probe: JobProbe) -> None:
    rows, rows2 = [], []
    for c in calls:
        r = c.run
        sil = [u for u in r.utts if u.end_reason == "silence" and u.eos is not None]
        e2f = [u.recv - u.eos for u in sil]
        e2d = [u.decision - u.eos for u in sil if u.decision is not None]
        d2f = [u.recv - u.decision for u in sil if u.decision is not None]
        qw = [u.call[0] - u.decision for u in sil if u.call and u.decision is not None]
        dec = [u.call[1] - u.call[0] for u in sil if u.call]
        rows.append([c.label, len(sil), p3(e2f), p3(e2d), p3(d2f), p3(qw), p3(dec)])
        a, b = job_at(c.job, c.t_start), job_at(c.job, c.t_end)
        through = all(s == "running" for t, s, _, _ in c.job if c.t_start is not None and c.t_end is not None
                      and c.t_start <= t <= c.t_end)
        regions = [(s, e) for s, e in probe.analysis
                   if c.t_start is not None and c.t_end is not None and e > c.t_start and s < c.t_end]
        busy = sum(min(e, c.t_end) - max(s, c.t_start) for s, e in regions) if regions else 0.0
        errs = len(r.log_records) + sum(1 for x in r.callers if x.exception)
        rows2.append([c.label,
                      "-" if a is None else f"{a[0]} {a[1]:.1f}% {a[2]}",
                      "-" if b is None else f"{b[0]} {b[1]:.1f}% {b[2]}",
                      "-" if a is None or b is None else f"{b[1] - a[1]:+.1f} points",
                      "-" if not c.job else ("yes" if through and a and b else "NO"),
                      f"{len(regions)} / {busy:.1f} s" if c.job else "-",
                      f"{(c.t_end - c.t_start) if c.t_start and c.t_end else float('nan'):.1f}",
                      f"{r.cpu:.0f} / {max(0.0, r.busy - r.cpu):.0f}", c.load_after, errs])
    table(["call", "utts", "eos -> final p50/p95/max", "eos -> endpoint decision", "decision -> final",
           "queue wait", "model call (turns+embed+ASR)"], rows)
    print()
    table(["call", "job at call start", "job at call end", "job progress during call", "running throughout",
           "analysis regions in pool / s", "call s", "CPU-s this proc / other procs", "load avg after", "errors"],
          rows2)
    print("  eos = wall time the client track handed the frame with the final's `end` sample to the encoder; "
          "only utterances\n  ended by silence (webrtc_latency.py's definitions). Call = the caller's first frame "
          "played -> its last message.\n  Job progress is the database's (written at most every 0.5 s), sampled "
          "every 0.25 s; analysis regions = the job's\n  AnalysisJob work the pool ran overlapping the call (count / "
          "seconds inside the call).")
    for c in calls:
        for line in c.run.log_records[:5]:
            print(f"  [{c.label}] log {line}")
        for x in c.run.callers:
            if x.exception:
                print(f"  [{c.label}] {x.exception}")


async def live_call(args, runtime, settings, probe: JobProbe, rec_path: Path, options: AnalysisOptions) -> None:
    logs = LogCapture()
    for name in ("server", "signaling", "aiortc", "aioice"):
        logging.getLogger(name).addHandler(logs)
    harvard, enroll_audio, libri = load_data(args.data)
    conv = conversation_for(0, harvard, libri)

    section("2. One live WebRTC call: idle, then while an analysis job of the recording runs")
    print(f"  caller: {conv.dur:.1f} s: {conv.description}")
    print(f"  job workers {settings.job_workers}, job_nice {settings.job_nice}, asr_workers {settings.asr_workers}, "
          f"cpu_threads {settings.cpu_threads}")
    t = time.perf_counter()
    rows = await enroll_voices(runtime, settings, probe, enroll_audio)
    print(f"  enrolled {', '.join(r[0] for r in rows) or 'nobody'} over the data channel in "
          f"{time.perf_counter() - t:.1f} s (real time)")

    jobs = HeldJobs(runtime, JobStore(runtime.store.database))
    await asyncio.to_thread(jobs.start)
    calls = []
    try:
        calls.append(await one_call("(a) idle", runtime, settings, conv, probe, logs, jobs, None))
        print(f"  (a) idle call done; load avg {loadavg()}", flush=True)
        t_submit = mono()
        record = await asyncio.to_thread(jobs.submit, rec_path, rec_path.name, options, owned=False)
        print(f"  job {record.id} submitted (JobService.submit, {options.model_dump()})", flush=True)
        stages = ["decoding", "diarization", "transcription", "features", "sentiment"]
        for want in [s.strip() for s in args.during.split(",") if s.strip()]:
            while True:
                cur = await asyncio.to_thread(jobs.get, record.id, result=False)
                if cur.finished or (cur.status == "running" and cur.stage in stages
                                    and stages.index(cur.stage) >= stages.index(want)):
                    break
                await asyncio.sleep(0.25)
            if cur.finished or cur.stage != want:
                print(f"  (b) during {want}: skipped, the job is {cur.status} at {cur.progress:.1f}% {cur.stage} "
                      f"(+{mono() - t_submit:.0f} s after submit)", flush=True)
                continue
            print(f"  (b) during {want}: job {cur.status} at {cur.progress:.1f}% {cur.stage}, "
                  f"+{mono() - t_submit:.0f} s after submit; calling", flush=True)
            calls.append(await one_call(f"(b) job {want}", runtime, settings, conv, probe, logs, jobs, record.id))
        final = await asyncio.to_thread(jobs.get, record.id, result=False)
        print(f"  job after the calls: {final.status} {final.progress:.1f}% {final.stage} "
              f"(+{mono() - t_submit:.0f} s after submit)"
              + (f"; error {final.error_code}: {final.error_message}" if final.error_code else ""))
        if not final.finished:
            await asyncio.to_thread(jobs.cancel_or_delete, record.id)
            print("  job cancelled (JobService.cancel_or_delete)")
    finally:
        t = mono()
        await asyncio.to_thread(jobs.release)
        print(f"  job workers stopped in {mono() - t:.1f} s")
    print()
    report_calls(calls, probe)


# =====================================================================================================
# main
# =====================================================================================================
def check_modules(options: AnalysisOptions) -> str | None:
    """None when the modules the options need import; else what is missing."""
    try:
        if options.features:
            from server.audio.features import AcousticFeatures  # noqa: F401
        if options.sentiment:
            from server.sentiment import TextSentiment  # noqa: F401
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the built recording (default 10)")
    ap.add_argument("--modes", default="both", choices=["cli", "pool", "both"],
                    help="analyze_file with background=False (cli), True (pool) or both (default)")
    ap.add_argument("--skip-call", action="store_true", help="skip part 2 (the live call)")
    ap.add_argument("--during", default="diarization,transcription",
                    help="job stages during which a call is made in part 2 (default diarization,transcription)")
    ap.add_argument("--language", default="en", help="the analysis's language option (default en)")
    ap.add_argument("--features", action=argparse.BooleanOptionalAction, default=True,
                    help="acoustic features on/off (default on)")
    ap.add_argument("--sentiment", action=argparse.BooleanOptionalAction, default=True,
                    help="sentiment on/off (default on)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speech",
                    help="folder of the real recordings (default: ../shared/data/speech)")
    args = ap.parse_args()
    if not (args.data / "manifest.jsonl").is_file():
        print(f"real recordings not found at {args.data}: nothing to benchmark", file=sys.stderr)
        return 2
    options = AnalysisOptions(language=args.language, diarize=True, features=args.features, sentiment=args.sentiment)
    missing = check_modules(options)
    if missing:
        print(f"cannot analyse with {options.model_dump()}: {missing} (try --no-features / --no-sentiment)",
              file=sys.stderr)
        return 2

    load_start = loadavg()
    busy_start, _ = proc_stat_busy()
    cpu_start = own_cpu_s()
    section("callscribe recording analysis: real-time factor, and a live call while a job runs")
    print(f"  {machine_summary(load_start)}")
    print(f"  {versions_summary(['faster-whisper', 'ctranslate2', 'torch', 'pyannote.audio', 'librosa', 'praat-parselmouth', 'transformers', 'huey', 'aiortc', 'numpy'])}")

    cache = Path(os.environ.get("CALLSCRIBE_MODEL_CACHE_DIR") or "/tmp/cs-cache")
    tmpdir = tempfile.TemporaryDirectory(prefix="cs-analysis-bench-")
    tmp = Path(tmpdir.name)
    settings = Settings(model_cache_dir=cache, database=tmp / "profiles.sqlite3", ice_servers=[],
                        ice_host_addresses=["127.0.0.1"])
    restrict_host_addresses(settings.ice_host_addresses)
    logging.getLogger().setLevel(logging.WARNING)

    from server.compute.runtime import SpeechRuntime
    from server.speaker.diarization import Diarizer

    probe = JobProbe()
    t = time.perf_counter()
    runtime = SpeechRuntime.from_settings(settings, observer=probe)
    load_s = time.perf_counter() - t
    s = runtime.settings
    print(f"  whisper: {s.whisper_model}, device {runtime.asr.device}, compute_type {runtime.asr.compute_type}, "
          f"cpu_threads {s.cpu_threads}, asr_workers {s.asr_workers}, beam {s.beam_size}; speech models loaded in "
          f"{load_s:.1f} s; job_workers {s.job_workers}, job_nice {s.job_nice}; options {options.model_dump()}")

    rec_path = tmp / f"recording_{args.minutes:g}min.wav"
    t = time.perf_counter()
    pool = recording_clips(args.data)
    clips, audio_s = build_recording(pool, args.minutes * 60.0, rec_path)
    kinds = {}
    for c in clips:
        kind = c.path.split("/")[0] if "/" in c.path else c.name
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"  recording: {audio_s:.1f} s, {len(clips)} clips ({', '.join(f'{k} {n}' for k, n in kinds.items())}), "
          f"{GAP_S} s gaps, 16 kHz mono 16-bit WAV ({rec_path.stat().st_size / 1e6:.1f} MB), built in "
          f"{time.perf_counter() - t:.1f} s")

    modes = ["cli", "pool"] if args.modes == "both" else [args.modes]
    section("1. analyze_file: real-time factor, stages, progress, memory")
    t = time.perf_counter()
    diarizer = Diarizer(settings, embedder=runtime.embedder)
    t_diar = time.perf_counter() - t
    sentiment = None
    t_sent = 0.0
    if options.sentiment:
        from server.sentiment import TextSentiment

        t = time.perf_counter()
        sentiment = TextSentiment()
        t_sent = time.perf_counter() - t
    # warm-up on 10 s of the Harvard clips (read speech: finals come, so every stage runs), so that neither mode
    # pays for lazy loading
    warm_path = tmp / "warmup.wav"
    build_recording([c for c in pool if c.path.startswith("harvard_2spk/")], WARMUP_S, warm_path)
    warm = timed_analysis("cli", runtime, warm_path, options, diarizer, sentiment)
    print(f"  diarizer built in {t_diar:.1f} s; sentiment model built in {t_sent:.1f} s (the command line builds "
          f"both inside analyze_file);\n  warm-up analysis of {WARMUP_S:.0f} s of Harvard clips (cli, not counted) "
          f"{warm.wall:.1f} s: " + ", ".join(f"{st} {sec:.1f} s" for st, _, sec, _ in stage_seconds(warm))
          + ("" if not warm.error else "; FAILED: " + warm.error))
    print("  the same diarizer and sentiment objects go to every analyze_file call (as a job worker reuses them); "
          "analyze_file runs\n  in the main thread at normal priority in both modes", flush=True)
    runs = []
    for mode in modes:
        r = timed_analysis(mode, runtime, rec_path, options, diarizer, sentiment)
        runs.append(r)
        print(f"  {mode}: {r.wall:.1f} s (RTF {r.wall / audio_s:.3f}){' ERROR ' + r.error if r.error else ''}; "
              f"load avg {r.load_after}", flush=True)
    print()
    report_analysis(runs, audio_s)

    if not args.skip_call:
        asyncio.run(live_call(args, runtime, settings, probe, rec_path, options))

    section("3. Summary")
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


if __name__ == "__main__":
    sys.exit(main())
