"""Does splitting utterances at speaker changes (pyannote segmentation-3.0) lower the identification error?

Run: ``.venv/bin/python bench/turns_eval.py`` (needs ../shared/data/speech; ~1–2 min on 2 CPU cores).

Two conversations go through the real streaming pipeline (:class:`server.stream.processor.StreamProcessor`: VAD,
endpointing, CAM++, voice profiles; Whisper tiny.en only because the pipeline needs an ASR); each final's audio
comes from the runtime's job observer (nothing in the product is patched or subclassed):

A. ``pyannote_sample.wav`` (30 s, 2 speakers) against ``pyannote_sample.rttm``. Profiles: for each RTTM speaker,
   its longest stretches of *exclusive* reference speech, longest first, up to 5 s (this audio is also part of the
   test: a mild leak, the same for both arms).
B. harvard_2spk snt4–snt6, spk1/spk2 alternating (6 turns), each clip trimmed of leading/trailing silence and
   joined with 0.15 s gaps, so that the endpointer (480 ms) merges turns into one utterance. Profiles from
   snt1–snt3 of each speaker (disjoint from the test clips). Reference = the trimmed clip extents.

Arms: ``baseline`` = the pipeline's finals as labelled (one label per utterance); ``split`` = each final
utterance's audio through :class:`server.speaker.turns.TurnSplitter`, each part embedded (CAM++) and labelled
with the same rules (:class:`server.speaker.identify.SpeakerTracker`); an unsplit utterance keeps its label.
Metrics: pyannote.metrics ``IdentificationErrorRate`` (labels = profile names or ``unknown``) and
``DiarizationErrorRate`` for information, collar 0 and 0.25 s, over the whole recording (UEM).

Also: splitter time per utterance, splits on single-speaker audio (false splits) and junctions found on
two-speaker harvard pairs.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import operator
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speech"
SR = 16_000


# -- audio helpers ---------------------------------------------------------------------------------
def load(path: Path) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == SR, f"{path}: {sr} Hz"
    return audio.mean(axis=1)


def trim(audio: np.ndarray, rel_db: float = -35.0, frame: int = 320, margin_s: float = 0.05) -> np.ndarray:
    """Cut leading/trailing frames (20 ms) more than ``rel_db`` below the loudest frame, keep ``margin_s``."""
    n = audio.size // frame
    rms = np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > rel_db)
    m = int(margin_s * SR)
    return audio[max(0, loud[0] * frame - m): min(audio.size, (loud[-1] + 1) * frame + m)]


# -- pipeline run that also keeps each final's audio -----------------------------------------------------
class FinalAudio:
    """JobObserver of the runtime (``SpeechRuntime.from_settings(..., observer=)``): keeps the audio of every
    final job, by (stream id, utterance id)."""

    def __init__(self) -> None:
        self.audio: dict[tuple[str, int], np.ndarray] = {}
        self.lock = threading.Lock()

    def job_finished(self, job, started: float, ended: float, ok: bool) -> None:
        if job.kind == "final":
            with self.lock:
                self.audio[(job.stream_id, job.utterance_id)] = job.audio


@dataclass
class Utt:
    seg: object  # server.stream.segmenter.Segment
    final: object  # server.stream.events.Final


def audio_start(stream: np.ndarray, piece: np.ndarray, start: float, frame: int) -> float:
    """Stream time of ``piece[0]``: an utterance's audio is a run of whole VAD frames of the pushed stream that
    begins at or before its first speech frame (pre-roll, or a max-length cut), so the frame is searched
    backwards from ``start``."""
    for k in range(round(start * SR / frame), -1, -1):
        if np.array_equal(stream[k * frame: k * frame + piece.size], piece):
            return k * frame / SR
    raise ValueError(f"the audio of the utterance at {start:.2f} s is not in the stream")


_STREAMS = itertools.count()


def run_stream(runtime, captured: FinalAudio, audio: np.ndarray) -> list[Utt]:
    """The pipeline's finals of ``audio`` and, for each, the utterance as the pipeline cut it (its Segment,
    rebuilt from the final and the audio of its final job)."""
    from server.stream import events
    from server.stream.processor import StreamProcessor
    from server.stream.segmenter import Segment

    stream_id = f"turns-eval-{next(_STREAMS)}"
    out: list = []
    proc = StreamProcessor(runtime, out.append, language="en", block=True, partials=False, stream_id=stream_id)
    for i in range(0, audio.size, SR):
        proc.push(audio[i: i + SR])
    proc.close()
    frame = proc.vad.frame_samples

    def on_frame(t: float) -> float:  # a final's rounded time back on the frame grid (the segmenter's clock)
        return round(t * SR / frame) * frame / SR

    utts = []
    for fin in (ev for ev in out if isinstance(ev, events.Final)):
        piece = captured.audio[(stream_id, fin.utterance_id)]
        utts.append(Utt(Segment(fin.utterance_id, on_frame(fin.start), on_frame(fin.end), piece,
                                audio_start(audio, piece, fin.start, frame)), fin))
    return utts


def hypotheses(utts: list[Utt], splitter, runtime) -> tuple:
    """(baseline Annotation, split Annotation, rows for the table, splitter ms per utterance)."""
    from pyannote.core import Annotation, Segment

    from server.speaker.identify import SpeakerDecision, SpeakerTracker

    s = runtime.settings
    base, split = Annotation(), Annotation()
    tracker = SpeakerTracker(s.speaker_threshold, s.min_identify_s, s.carry_label_gap_s)
    rows, cost = [], []
    for k, u in enumerate(utts):
        seg, fin = u.seg, u.final
        base[Segment(seg.start, seg.end), k] = fin.speaker
        t = time.perf_counter()
        parts = splitter.split(seg.audio)
        cost.append((time.perf_counter() - t) * 1000)
        labels = []
        if len(parts) == 1:
            split[Segment(seg.start, seg.end), (k, 0)] = fin.speaker
            # the tracker remembers the pipeline's own decision (what rule 2 carries to the next utterance)
            tracker._last = (SpeakerDecision(fin.identity, fin.score, fin.speaker_reason), seg.end)
            labels.append(fin.speaker)
        else:
            for j, (a, b) in enumerate(parts):
                start, end = max(seg.start, seg.audio_start + a), min(seg.end, seg.audio_start + b)
                if end <= start:
                    continue
                piece = seg.audio[int(a * SR): int(b * SR)]
                emb = runtime.embedder.embed(piece) if tracker.needs_embedding(b - a) else None
                d = tracker.label(start, end, emb, runtime.profiles())
                split[Segment(start, end), (k, j)] = d.name
                labels.append(f"{d.name}({d.score:.2f})" if d.score is not None else d.name)
        rows.append((seg.start, seg.end, f"{fin.speaker}" + (f"({fin.score:.2f})" if fin.score is not None else ""),
                     [round(seg.audio_start + a, 2) for a, _ in parts[1:]], labels))
    return base, split, rows, cost


def score(reference, hyp, uem) -> dict:
    from pyannote.metrics.diarization import DiarizationErrorRate
    from pyannote.metrics.identification import IdentificationErrorRate

    out = {}
    for collar in (0.0, 0.25):
        out[f"IER c={collar}"] = IdentificationErrorRate(collar=collar)(reference, hyp, uem=uem)
        out[f"DER c={collar}"] = DiarizationErrorRate(collar=collar)(reference, hyp, uem=uem)
    return out


def enroll(runtime, profiles: dict[str, np.ndarray], source: str) -> None:
    from server.compute.jobs import EnrollJob

    for p in runtime.profiles():
        runtime.store.delete(p.name)
    runtime.invalidate_profiles()
    for name, audio in profiles.items():
        runtime.enroll(EnrollJob(name=name, audio=audio, speech_s=audio.size / SR, source=source))


# -- conversations -------------------------------------------------------------------------------------
def conversation_pyannote():
    from pyannote.core import Annotation, Segment, Timeline

    from server.audio.ingest import iter_file

    audio = np.concatenate(list(iter_file(DATA / "pyannote_sample.wav")))
    ref = Annotation(uri="sample")
    for line in (DATA / "pyannote_sample.rttm").read_text().splitlines():
        f = line.split()
        ref[Segment(float(f[3]), float(f[3]) + float(f[4])), len(ref)] = f[7]
    profiles = {}
    for spk in ref.labels():
        others = Timeline([s for s, _, lab in ref.itertracks(yield_label=True) if lab != spk]).support()
        own = ref.label_timeline(spk).support().extrude(others)  # exclusive speech of spk
        take, got = [], 0.0
        for s in sorted(own, key=lambda s: -s.duration):
            d = min(s.duration, 5.0 - got)
            take.append(audio[int(s.start * SR): int((s.start + d) * SR)])
            got += d
            if got >= 5.0 - 1e-6:
                break
        profiles[spk] = np.concatenate(take)
    uem = Timeline([Segment(0, audio.size / SR)])
    return "pyannote_sample", audio, ref, uem, profiles


def conversation_harvard(gap_s: float = 0.15):
    from pyannote.core import Annotation, Segment, Timeline

    h = DATA / "harvard_2spk"
    profiles = {f"harvard_spk{k}": np.concatenate([trim(load(h / f"spk{k}_snt{i}.wav")) for i in (1, 2, 3)])
                for k in (1, 2)}
    ref, pieces, t = Annotation(uri="harvard"), [], 0.0
    gap = np.zeros(int(gap_s * SR), np.float32)
    for i in (4, 5, 6):
        for k in (1, 2):
            clip = trim(load(h / f"spk{k}_snt{i}.wav"))
            ref[Segment(t, t + clip.size / SR), len(ref)] = f"harvard_spk{k}"
            pieces += [clip, gap]
            t += (clip.size + gap.size) / SR
    audio = np.concatenate([*pieces, np.zeros(SR, np.float32)])  # 1 s of silence closes the last utterance
    return f"harvard alt. gap {gap_s}s", audio, ref, Timeline([Segment(0, audio.size / SR)]), profiles


# -- splitter-only checks ------------------------------------------------------------------------------
def false_splits(splitter) -> tuple[list, list]:
    """Splits on single-speaker utterances: harvard (each speaker's 6 clips, 0.15 s gaps, ≤10 s pieces) and
    the LibriSpeech test-other clips (first 10 s). Returns (rows, ms per utterance)."""
    rows, cost = [], []
    h = DATA / "harvard_2spk"
    gap = np.zeros(int(0.15 * SR), np.float32)
    for k in (1, 2):
        clips = [trim(load(h / f"spk{k}_snt{i}.wav")) for i in range(1, 7)]
        utts = []
        for r in (2, 3):  # every ordered pair and a few triples
            for combo in itertools.permutations(range(6), r):
                if r == 3 and combo[0] > 1:
                    continue
                utts.append(np.concatenate(functools.reduce(operator.iadd, ([clips[i], gap] for i in combo), [])[:-1]))
        n_split = 0
        for u in utts:
            t = time.perf_counter()
            n_split += bool(splitter.change_points(u[: 10 * SR]))
            cost.append((time.perf_counter() - t) * 1000)
        rows.append((f"harvard spk{k} 2–3 clips joined", len(utts), n_split))
    libri = sorted((DATA / "librispeech_test-other_10spk").glob("*/*.flac"))
    n_split, lens = 0, []
    for f in libri:
        u = load(f)[: 10 * SR]
        lens.append(u.size / SR)
        t = time.perf_counter()
        n_split += bool(splitter.change_points(u))
        cost.append((time.perf_counter() - t) * 1000)
    rows.append((f"librispeech test-other (≤10 s, mean {np.mean(lens):.1f} s)", len(libri), n_split))
    return rows, cost


def junctions(splitter, gap_s: float = 0.1) -> tuple[int, int, list]:
    """All 60 ordered (spk1, spk2) / (spk2, spk1) pairs of different sentences: (found, total, |error| s)."""
    h = DATA / "harvard_2spk"
    clips = {(k, i): trim(load(h / f"spk{k}_snt{i}.wav")) for k in (1, 2) for i in range(1, 7)}
    gap = np.zeros(int(gap_s * SR), np.float32)
    found, total, err = 0, 0, []
    for i, j in itertools.permutations(range(1, 7), 2):
        for a, b in ((clips[1, i], clips[2, j]), (clips[2, i], clips[1, j])):
            cuts = splitter.change_points(np.concatenate([a, gap, b]))
            junction = (a.size + gap.size / 2) / SR
            total += 1
            if len(cuts) == 1 and abs(cuts[0] - junction) <= 0.5:
                found += 1
                err.append(abs(cuts[0] - junction))
    return found, total, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the box is shared)")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent: the real recordings are needed")
    import torch

    torch.set_num_threads(args.threads)
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings
    from server.speaker.turns import TurnSplitter

    t = time.perf_counter()
    splitter = TurnSplitter()
    print(f"TurnSplitter loaded in {time.perf_counter() - t:.1f} s; torch threads = {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        # the baseline arm is the utterance pipeline without the product's own turn splitting; the split arm
        # applies the same TurnSplitter here, per final, so both arms share one transcription run
        settings = Settings(database=Path(tmp) / "profiles.sqlite3", whisper_model="tiny.en", language="en",
                            asr_workers=1, partials=False, split_speaker_turns=False)
        captured = FinalAudio()
        runtime = SpeechRuntime.from_settings(settings, observer=captured)
        try:
            results, all_cost = [], []
            for name, audio, ref, uem, profiles in (conversation_pyannote(), conversation_harvard()):
                enroll(runtime, profiles, name)
                utts = run_stream(runtime, captured, audio)
                base, split, rows, cost = hypotheses(utts, splitter, runtime)
                all_cost += cost
                print(f"\n== {name}: {audio.size / SR:.1f} s, {len(utts)} utterances; profiles "
                      + ", ".join(f"{k} {v.size / SR:.1f} s" for k, v in profiles.items()))
                print(f"{'start':>6} {'end':>6}  {'baseline label':<22} {'split at (s)':<16} split labels")
                for s0, s1, lab, cuts, labs in rows:
                    print(f"{s0:6.2f} {s1:6.2f}  {lab:<22} {cuts!s:<16} {', '.join(labs)}")
                results.append((name, score(ref, base, uem), score(ref, split, uem)))
        finally:
            runtime.close()

    print("\n== identification error (pyannote.metrics), lower is better")
    keys = ["IER c=0.0", "IER c=0.25", "DER c=0.0", "DER c=0.25"]
    print(f"{'conversation':<26} {'arm':<9} " + " ".join(f"{k:>10}" for k in keys))
    for name, b, s in results:
        for arm, m in (("baseline", b), ("split", s)):
            print(f"{name:<26} {arm:<9} " + " ".join(f"{100 * m[k]:9.1f}%" for k in keys))

    rows, cost = false_splits(splitter)
    found, total, err = junctions(splitter)
    print("\n== false splits on single-speaker utterances")
    print(f"{'audio':<44} {'utterances':>10} {'with a split':>12}")
    for what, n, k in rows:
        print(f"{what:<44} {n:>10} {k:>12}")
    print(f"\n== two-speaker harvard pairs (0.1 s gap): split found within 0.5 s of the junction in {found}/{total}"
          f" (mean |error| {np.mean(err) if err else float('nan'):.3f} s)")
    c = np.array(all_cost + cost)
    print(f"\n== splitter cost per utterance: mean {c.mean():.0f} ms, median {np.median(c):.0f} ms, "
          f"p95 {np.percentile(c, 95):.0f} ms, max {c.max():.0f} ms over {c.size} utterances "
          f"(conversation utterances alone: mean {np.mean(all_cost):.0f} ms)")


if __name__ == "__main__":
    main()
