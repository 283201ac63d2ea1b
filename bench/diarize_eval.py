"""Whole-file diarization (``callscribe transcribe --diarize``): DER, run time and real-time factor.

Run: ``.venv/bin/python bench/diarize_eval.py`` (needs ../shared/data/speech; about 2–3 min on 2 idle CPU
cores, much longer on a loaded machine). ``--sweep 0.6,0.7,0.8`` also re-clusters the same files at other
clustering thresholds (segmentation and embeddings are computed once and reused), ``--threads N`` sets torch's
intra-op threads (default 1, what ``callscribe`` uses with ``CALLSCRIBE_CPU_THREADS=1``).

What it measures: :class:`server.speaker.diarization.Diarizer` (pyannote segmentation-3.0 + CAM++ +
agglomerative clustering, the product's default :class:`~server.speaker.diarization.DiarizationParams`), nobody
enrolled, no speaker count given, on

- ``pyannote_sample.wav`` (30 s, 2 speakers) against ``pyannote_sample.rttm``;
- the 8 AMI excerpts in ``ami_meetings/`` (30 s each, 1–4 speakers, spontaneous, overlapping) against
  ``ami_meetings.rttm``.

DER is pyannote.metrics ``DiarizationErrorRate`` (optimal one-to-one label mapping) with ``skip_overlap=False``
(overlapping speech is scored: each reference speaker must be found) over the whole file (UEM = [0, duration]),
at ``collar=0`` and ``collar=0.25``. pyannote.metrics' ``collar`` is the *total* width of the no-score zone
centred on every reference boundary, i.e. ±0.125 s around each turn start and end. Per file it prints DER with
its parts (missed speech, false alarm, speaker confusion, as fractions of reference speech), the number of
speakers found vs. in the reference, the diarization time (wall clock, models already loaded) and the real-time
factor (time / audio duration). "AMI pooled" and "all pooled" sum the error and reference durations of the files
(not a mean of per-file rates). The header gives the machine: CPU model and count, load averages, and how busy
the CPUs were during the run (other processes included), since timings on a shared machine are upper bounds.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from common import (
    ROOT,
    guard_network,
    loadavg,
    machine_summary,
    net_attempts_summary,
    proc_stat_busy,
    section,
    set_offline_env,
    table,
    versions_summary,
)

DATA = ROOT.parent / "shared" / "data" / "speech"
AMI = ("trn00", "trn01", "trn02", "trn03", "trn04", "trn05", "trn06", "trn09")


def files(data: Path) -> list[tuple[str, Path, str, Path]]:
    """``(name, wav, rttm uri, rttm)`` of the evaluation files."""
    out = [("pyannote_sample", data / "pyannote_sample.wav", "sample", data / "pyannote_sample.rttm")]
    out += [(u, data / "ami_meetings" / f"{u}.wav", u, data / "ami_meetings" / "ami_meetings.rttm") for u in AMI]
    return out


def main() -> None:
    set_offline_env()
    guard_network("diarize_eval")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--sweep", default="", help="comma-separated clustering thresholds to re-cluster at")
    args = parser.parse_args()

    import torch
    from pyannote.core import Segment, Timeline
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    from server.audio.ingest import load_audio
    from server.speaker.diarization import Diarizer

    warnings.filterwarnings("ignore", module="pyannote")
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    torch.set_num_threads(args.threads)
    load_start = loadavg()
    busy0, total0 = proc_stat_busy()
    t0 = time.perf_counter()
    diarizer = Diarizer()
    load_s = time.perf_counter() - t0
    params = diarizer.params

    section("diarize_eval: machine and settings")
    print(machine_summary(load_start))
    print(versions_summary(["pyannote.audio", "pyannote.metrics", "torch"]))
    print(f"torch threads: {torch.get_num_threads()}; pipeline load: {load_s:.1f} s; params: {params}")

    data = files(args.data)
    if not data[0][1].is_file():
        raise SystemExit(f"real recordings not found at {args.data}")
    rows, pooled, cache = [], {}, {}
    for name, wav, uri, rttm in data:
        audio = load_audio(wav)
        duration = audio.size / 16000
        reference = load_rttm(rttm)[uri]
        t = time.perf_counter()
        hyp = diarizer.diarize(audio).annotation
        took = time.perf_counter() - t
        uem = Timeline([Segment(0, duration)])
        scores = []
        for collar in (0.0, 0.25):
            metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
            detail = metric(reference, hyp, uem=uem, detailed=True)
            scores.append(detail)
            for group in ("all", "ami" if name != "pyannote_sample" else "sample"):
                bucket = pooled.setdefault((group, collar), {})
                for k, v in detail.items():
                    bucket[k] = bucket.get(k, 0.0) + v
        rows.append(_row(name, scores, len(hyp.labels()), len(reference.labels()), took, duration))
        cache[name] = (audio, reference, uem)
        print(f"  {name}: {took:.1f} s", flush=True)

    section("DER per file (nobody enrolled, no speaker count given)")
    per_file = list(rows)
    for group, label in (("ami", "AMI pooled"), ("all", "all pooled")):
        scores = [pooled[(group, c)] for c in (0.0, 0.25)]
        mine = [r for r in per_file if group == "all" or r[0] != "pyannote_sample"]
        rows.append(_row(label, scores, None, None, sum(r[-2] for r in mine), sum(r[-1] for r in mine)))
    table(["file", "DER c0", "miss", "FA", "conf", "DER c0.25", "spk found/ref", "time s", "RTF"],
          [[*r[:-2], f"{r[-2]:.1f}", f"{r[-2] / r[-1]:.3f}"] for r in rows])

    if args.sweep:
        _sweep(diarizer, cache, [float(x) for x in args.sweep.split(",")])

    busy1, total1 = proc_stat_busy()
    section("machine during the run")
    share = (busy1 - busy0) / (total1 - total0) if total1 > total0 else float("nan")
    print(f"CPUs busy {share:.0%} of the time (all processes); load avg at end {loadavg()}; "
          f"refused network attempts: {net_attempts_summary()}")


def _rate(detail: dict) -> float:
    total = detail["total"]
    return (detail["missed detection"] + detail["false alarm"] + detail["confusion"]) / total if total else 0.0


def _row(name: str, scores: list[dict], found: int | None, ref: int | None, took: float, dur: float) -> list:
    c0, c25 = scores
    total = c0["total"] or 1.0
    return [name, f"{_rate(c0):.1%}", f"{c0['missed detection'] / total:.1%}", f"{c0['false alarm'] / total:.1%}",
            f"{c0['confusion'] / total:.1%}", f"{_rate(c25):.1%}",
            "-" if found is None else f"{found}/{ref}", took, dur]


def _sweep(diarizer, cache: dict, thresholds: list[float]) -> None:
    """Re-cluster every file at each threshold, reusing segmentation and embeddings (pyannote's training cache)."""
    import torch
    from pyannote.metrics.diarization import DiarizationErrorRate

    pipeline = diarizer.pipeline
    base = diarizer.params.pipeline_parameters()
    files_ = {}
    pipeline.training = True  # makes the pipeline keep segmentation and embeddings in the file dict
    try:
        rows = []
        for threshold in thresholds:
            params = {**base, "clustering": {**base["clustering"], "threshold": threshold}}
            pipeline.instantiate(params)
            metrics = {c: DiarizationErrorRate(collar=c, skip_overlap=False) for c in (0.0, 0.25)}
            ami = DiarizationErrorRate(collar=0.0, skip_overlap=False)
            per = []
            for name, (audio, reference, uem) in cache.items():
                file = files_.setdefault(name, {"waveform": torch.from_numpy(audio)[None], "sample_rate": 16000,
                                                "uri": name})
                hyp = pipeline(file).speaker_diarization.crop(uem.extent())
                for m in metrics.values():
                    m(reference, hyp, uem=uem)
                if name != "pyannote_sample":
                    ami(reference, hyp, uem=uem)
                per.append(f"{len(hyp.labels())}")
            rows.append([f"{threshold:.2f}", f"{abs(metrics[0.0]):.1%}", f"{abs(metrics[0.25]):.1%}",
                         f"{abs(ami):.1%}", " ".join(per)])
    finally:
        pipeline.training = False
        pipeline.instantiate(base)
    section(f"threshold sweep ({diarizer.params.method} linkage; other parameters as above)")
    table(["threshold", "all DER c0", "all DER c0.25", "AMI DER c0", "speakers found (sample, trn00 …)"], rows)


if __name__ == "__main__":
    main()
