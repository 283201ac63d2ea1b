"""Who spoke when, live, on real meetings: speaker attribution of the streaming pipeline's finals on AMI excerpts.

Run: ``.venv/bin/python bench/attribution_eval.py`` (needs ../shared/data/speech/ami_meetings; about 3–4 min on 2
CPU cores). Options set the speaker-turn splitter and the endpointing/labelling rules for one measured
configuration (``--help``); ``--arms enrolled`` runs one arm only.

Data: eight 30 s excerpts of AMI meetings (``trn00`` … ``trn09``, 16 kHz) with reference speaker turns in
``ami_meetings.rttm`` (overlapped speech included). Each excerpt goes through the real streaming pipeline
(:class:`server.stream.processor.StreamProcessor` over a :class:`server.compute.runtime.SpeechRuntime` with the
product's models: webrtcvad endpointing, CAM++, pyannote segmentation-3.0 via
:class:`server.speaker.turns.TurnSplitter`, Whisper **tiny.en** int8, language fixed to ``en``, one ASR worker,
torch and CTranslate2 on one thread each), pushed in 20 ms chunks with ``block=True`` and partials off (what
``callscribe transcribe`` does, :mod:`server.stream.filemode`). After each endpoint the bench waits for the
final before pushing on, so the latency below is the pipeline's work on one idle stream (no queueing).
The hypothesis is the finals' ``[start, end]`` with their speaker, as each final came (live); finals with empty
text are left out (the pages drop their bubble: noise that the ASR guards removed; ``--keep-empty`` scores
them too). Nothing in the product is patched: the runtime's collaborators are passed in, and the turn finder
is the product's :class:`~server.speaker.turns.TurnSplitter` behind a timing wrapper.

Arms:

- ``enrolled``: for each reference speaker of an excerpt who also speaks in *another* excerpt of the same
  meeting, up to 10 s (at least ``--min-enroll-s``, default 3 s = ``Settings.min_enroll_speech_s``) of its
  *exclusive* (non-overlapped) reference speech from those other excerpts, longest stretches first, is embedded
  with ``runtime.embedder.embed`` and stored as a profile (a temporary database; ``runtime.invalidate_profiles()``).
  Scored on the excerpts where an enrolled speaker speaks, with pyannote.metrics ``IdentificationErrorRate``
  (hypothesis labels: profile names; anonymous ids and ``unknown`` never match a reference name).
- ``anonymous``: nobody enrolled; rooms cluster unknown voices online (``server.speaker.clusters.AnonymousSpeakers``,
  one fresh instance per excerpt, passed as ``StreamProcessor(speakers=)``); finals carry ``anon:N`` ids.
  Scored on all excerpts with ``DiarizationErrorRate`` (optimal one-to-one label mapping; ``unknown`` finals
  are one label).
- ``sample``: the same on ``pyannote_sample.wav`` (30 s, 2 speakers, :func:`turns_eval.conversation_pyannote`),
  scored on its own so that the AMI figures stay comparable.

A *floor* is printed for each excerpt: the least error any hypothesis with one label at a time can reach at
collar 0 (overlapped speech; in IER also all speech of speakers nobody could enroll, who can only be wrong).
The enrolled arm also prints an *open-set* IER at collar 0.25: never-enrolled reference speakers and the
hypothesis' anonymous/``unknown`` labels all read ``unknown`` (saying "not an enrolled voice" is then right).
Both arms also print the pooled figure after applying ``speaker_relabeled`` events (what the chat shows at the
end).

Both metrics: collar 0 and 0.25 s, ``skip_overlap=False`` (overlapped speech counts: one hypothesis label can
cover at most one of two overlapping reference speakers), UEM = the whole excerpt. Per excerpt and pooled
(the metric accumulated over all excerpts: ``abs(metric)``, i.e. weighted by reference speech), with the pooled
components (missed speech, false alarm, confusion) as percentages of reference speech.

Also printed: the machine (CPU count, load averages), run time, end-of-speech → final latency p50/p95 per arm
(``StreamProcessor(on_latency=)``, from the endpoint decision to the finals' delivery; the endpointing silence
comes on top; on a shared machine an upper bound) and the splitter's time per call. ``--context-s`` is an
experiment the product cannot do yet: the segmentation also sees the stream before the utterance.
The last line of each arm, ``RESULT …``, sums it up for comparing configurations.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import itertools
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common import guard_network, loadavg, machine_summary, pct, set_offline_env, table
from turns_eval import audio_start, conversation_pyannote, enroll, load

ROOT = Path(__file__).resolve().parents[1]
AMI = ROOT.parent / "shared" / "data" / "speech" / "ami_meetings"
SR = 16_000
CHUNK = SR // 50  # 20 ms
COLLARS = (0.0, 0.25)
ENROLL_MAX_S = 10.0


# -- reference --------------------------------------------------------------------------------------
def read_rttm(path: Path) -> dict:
    """``{uri: pyannote.core.Annotation}`` of an RTTM file (SPEAKER lines)."""
    from pyannote.core import Annotation, Segment

    refs: dict = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            ann = refs.setdefault(f[1], Annotation(uri=f[1]))
            ann[Segment(float(f[3]), float(f[3]) + float(f[4])), len(ann)] = f[7]
    return refs


def exclusive(ref, speaker: str):
    """The reference speech of ``speaker`` that overlaps nobody else's (a Timeline)."""
    from pyannote.core import Timeline

    others = Timeline([s for s, _, lab in ref.itertracks(yield_label=True) if lab != speaker]).support()
    return ref.label_timeline(speaker).support().extrude(others)


def enrollment_audio(uri: str, refs: dict, audio: dict, min_s: float) -> dict[str, np.ndarray]:
    """Profiles for excerpt ``uri``: every speaker of it who also speaks in another excerpt, from those others'
    exclusive speech (longest stretches first, up to ``ENROLL_MAX_S``); speakers with less than ``min_s`` of it
    are left out."""
    out = {}
    for spk in sorted(refs[uri].labels()):
        stretches = [(seg, other) for other, ref in sorted(refs.items()) if other != uri and spk in ref.labels()
                     for seg in exclusive(ref, spk)]
        take, got = [], 0.0
        for seg, other in sorted(stretches, key=lambda x: -x[0].duration):
            d = min(seg.duration, ENROLL_MAX_S - got)
            take.append(audio[other][int(seg.start * SR): int((seg.start + d) * SR)])
            got += d
            if got >= ENROLL_MAX_S - 1e-6:
                break
        if got >= min_s:
            out[spk] = np.concatenate(take)
    return out


# -- one excerpt through the pipeline -----------------------------------------------------------------
class Endpoints:
    """StreamObserver: counts endpoint decisions (the bench waits for each final before pushing on)."""

    def __init__(self) -> None:
        self.n = 0

    def endpoint(self, stream_id: str, utterance_id: int, reason: str) -> None:
        self.n += 1

    def partial_request(self, stream_id: str, utterance_id: int, outcome: str) -> None:
        pass


class TimedTurns:
    """The runtime's turn finder, timed: a TurnFinder (``split``) that delegates to a TurnSplitter.

    With ``context_s`` > 0 (an experiment: the runtime hands the splitter the utterance alone) the segmentation
    also sees up to ``context_s`` of the stream *before* the utterance (what a live stream has already heard),
    the whole window kept within the model's 10 s; the utterance is located in ``self.stream`` (the excerpt
    being pushed) with :func:`turns_eval.audio_start`, and the cuts come from the utterance's own frames."""

    def __init__(self, splitter, context_s: float = 0.0, frame: int = 480) -> None:
        self.splitter = splitter
        self.frame = frame  # VAD frame (samples): utterance audio starts on this grid
        self.context_s = context_s
        self.stream: np.ndarray | None = None
        self.ms: list[float] = []
        self.lock = threading.Lock()

    def split(self, audio: np.ndarray) -> list[tuple[float, float]]:
        t = time.perf_counter()
        parts = self._split(audio)
        with self.lock:
            self.ms.append((time.perf_counter() - t) * 1000)
        return parts

    def _split(self, audio: np.ndarray) -> list[tuple[float, float]]:
        sp, duration = self.splitter, audio.size / SR
        context = min(self.context_s, 10.0 - duration)
        if context <= 0 or self.stream is None or audio.size < 2 * sp.min_turn_s * SR:
            return sp.split(audio)
        from server.speaker.turns import turn_cuts

        a = audio_start(self.stream, audio, self.stream.size / SR, self.frame)
        w0 = max(0.0, a - context)
        window = self.stream[round(w0 * SR): round(a * SR) + audio.size]
        times, active = sp.activity(window)
        times = times - (a - w0)
        keep = (times >= 0) & (times <= duration)
        cuts = turn_cuts(times[keep], active[keep], duration, sp.min_turn_s)
        return list(itertools.pairwise([0.0, *cuts, duration]))


def run_excerpt(runtime, audio: np.ndarray, stream_id: str, latency: list[float], speakers=None) -> list:
    """The finals of ``audio`` pushed in 20 ms chunks, as :func:`relabelled` pairs; ``speakers``: an
    AnonymousSpeakers for the room."""
    from server.stream.processor import StreamProcessor

    out: list = []
    seen = Endpoints()
    kw = {} if speakers is None else {"speakers": speakers}
    proc = StreamProcessor(runtime, out.append, language="en", block=True, partials=False, stream_id=stream_id,
                           on_latency=latency.append, observer=seen, **kw)
    done = 0
    for i in range(0, audio.size, CHUNK):
        proc.push(audio[i: i + CHUNK])
        if seen.n != done:  # an utterance ended: let its final come before more audio arrives
            proc.wait()
            done = seen.n
    proc.close()
    return relabelled(out)


def relabelled(out: list) -> list:
    """The finals of the events ``out``, each with the speaker the chat shows once the stream is over: a
    ``speaker_relabeled`` event moves every earlier final of ``from_id`` to its speaker (the pages do the
    same). The speaker a final had when it came is kept as ``live_*`` in a tuple ``(final, shown_final)``."""
    from server.stream import events

    finals: list = []
    for ev in out:
        if isinstance(ev, events.Final):
            finals.append([ev, ev])
        elif type(ev).__name__ == "SpeakerRelabeled":
            new = {"speaker": ev.speaker, "speaker_id": ev.speaker_id or None, "speaker_kind": ev.speaker_kind}
            for pair in finals:
                if pair[1].speaker_id == ev.from_id:
                    pair[1] = pair[1].model_copy(update=new)
    return [tuple(p) for p in finals]


def hypothesis(finals: list, uri: str, mode: str, keep_empty: bool = False):
    """Annotation of the finals: profile names (``enrolled``) or ids (``anonymous``); ``unknown`` otherwise.
    Finals with empty text are left out unless ``keep_empty``: the pages remove their bubble (noise that the
    ASR guards dropped), so the user never sees that attribution."""
    from pyannote.core import Annotation, Segment

    hyp = Annotation(uri=uri)
    for k, fin in enumerate(finals):
        if fin.end <= fin.start or not (keep_empty or fin.text.strip()):
            continue
        if fin.speaker_kind == "profile":
            label = fin.speaker if mode == "enrolled" else fin.speaker_id
        elif fin.speaker_kind == "anonymous":
            label = fin.speaker_id
        else:
            label = "unknown"
        hyp[Segment(fin.start, fin.end), k] = label
    return hyp


def show(uri: str, ref, finals: list) -> None:
    print(f"\n-- {uri} reference: " + "; ".join(f"{s.start:.2f}-{s.end:.2f} {lab}" for s, _, lab in
                                                 ref.itertracks(yield_label=True)))
    for fin, _ in finals:
        score = "" if fin.score is None else f" {fin.score:.2f}"
        print(f"   final u{fin.utterance_id}.{fin.turn} {fin.start:6.2f}-{fin.end:6.2f} {fin.speaker} "
              f"[{fin.speaker_kind} {fin.speaker_reason}{score}] {fin.text[:50]!r}")


def floor(ref, uem, known: set[str] | None, step: float = 0.01) -> tuple[float, float]:
    """(least error, reference total) in seconds, collar 0, for a hypothesis with one label at a time: where
    ``n`` reference speakers talk and ``k`` of them can be named (enrolled ones; everyone when ``known`` is None,
    as DER maps labels freely), at least ``n - min(1, k)`` of them are missed or confused."""
    t = np.arange(uem.extent().start, uem.extent().end, step) + step / 2
    n, k = np.zeros(t.size), np.zeros(t.size)
    for spk in ref.labels():
        on = np.zeros(t.size, bool)
        for seg in ref.label_timeline(spk).support():
            on |= (t >= seg.start) & (t < seg.end)
        n += on
        if known is None or spk in known:
            k += on
    return float((n - np.minimum(1, k)).sum() * step), float(n.sum() * step)


# -- scoring -------------------------------------------------------------------------------------------
@dataclass
class Arm:
    name: str
    metric: str  # "IER" or "DER"
    pooled: dict = field(default_factory=dict)  # collar -> accumulating pyannote metric
    rows: list = field(default_factory=list)
    latency: list = field(default_factory=list)
    wall_s: float = 0.0
    silence_ms: int = 0
    floor: list = field(default_factory=lambda: [0.0, 0.0])  # seconds: least error, reference total

    def __post_init__(self) -> None:
        from pyannote.metrics.diarization import DiarizationErrorRate
        from pyannote.metrics.identification import IdentificationErrorRate

        cls = IdentificationErrorRate if self.metric == "IER" else DiarizationErrorRate
        self.pooled = {c: cls(collar=c, skip_overlap=False) for c in COLLARS}
        self.after = cls(collar=0.25, skip_overlap=False)  # with speaker_relabeled applied
        self.open_set = cls(collar=0.25, skip_overlap=False)  # IER: never-enrolled speakers as "unknown"
        self.relabels = 0

    def add(self, uri: str, ref, pairs: list, uem, known: set[str] | None, note: str = "",
            keep_empty: bool = False) -> None:
        """Score one excerpt; ``pairs``: (final as it came, final as shown at the end) from :func:`relabelled`."""
        mode = "enrolled" if self.metric == "IER" else "anonymous"
        finals = [p[0] for p in pairs]
        hyp = hypothesis(finals, uri, mode, keep_empty)
        values = [self.pooled[c](ref, hyp, uem=uem) for c in COLLARS]
        self.after(ref, hypothesis([p[1] for p in pairs], uri, mode, keep_empty), uem=uem)
        self.relabels += sum(1 for a, b in pairs if a.speaker_id != b.speaker_id)
        if known is not None:  # open-set IER: "not an enrolled voice" is a right answer for one
            others = {lab: "unknown" for lab in ref.labels() if lab not in known}
            anon = {lab: "unknown" for lab in hyp.labels() if lab not in known}
            self.open_set(ref.rename_labels(others), hyp.rename_labels(anon), uem=uem)
        speech = ref.get_timeline().support().duration()
        least, total = floor(ref, uem, known)
        self.floor[0] += least
        self.floor[1] += total
        self.rows.append([uri, f"{speech:.1f}", f"{ref.get_overlap().duration():.1f}", len(finals),
                          sum(1 for f in finals if f.turn > 0), f"{100 * least / total:.1f}%",
                          *(f"{100 * v:.1f}%" for v in values), note])

    def components(self, collar: float) -> str:
        m = self.pooled[collar]
        acc = m.accumulated_
        total = acc["total"] or float("nan")
        conf = "confusion" if "confusion" in acc else None
        parts = [f"missed {100 * acc['missed detection'] / total:.1f}%",
                 f"false alarm {100 * acc['false alarm'] / total:.1f}%"]
        if conf:
            parts.append(f"confusion {100 * acc[conf] / total:.1f}%")
        return ", ".join(parts)


def print_arm(arm: Arm) -> None:
    print(f"\n== {arm.name}: {arm.metric} per excerpt (collar 0 / 0.25 s, overlap counted); run {arm.wall_s:.0f} s")
    heads = ["excerpt", "speech s", "overlap s", "finals", "split", "floor", f"{arm.metric} c=0",
             f"{arm.metric} c=0.25",
             "profiles (s)" if arm.metric == "IER" else "finals by kind"]
    pooled = [f"{100 * abs(arm.pooled[c]):.1f}%" for c in COLLARS]
    table(heads, [*arm.rows, ["POOLED", "", "", sum(r[3] for r in arm.rows), sum(r[4] for r in arm.rows),
                              f"{100 * arm.floor[0] / arm.floor[1]:.1f}%", *pooled, ""]])
    print("  floor: the least error of any one-label-at-a-time hypothesis at collar 0 (overlapped speech; in IER "
          "also the speech of speakers nobody enrolled)")
    for c in COLLARS:
        print(f"  pooled components at collar {c}: {arm.components(c)}")
    print(f"  after speaker_relabeled events: pooled {arm.metric} c=0.25 {100 * abs(arm.after):.1f}% "
          f"({arm.relabels} finals relabelled)")
    if arm.metric == "IER":
        print(f"  open-set IER (reference speakers nobody enrolled and the hypothesis' anonymous/unknown labels all "
              f"read 'unknown'): pooled c=0.25 {100 * abs(arm.open_set):.1f}%")
    print(f"  end-of-speech -> final (endpoint decision -> finals delivered): p50 {pct(arm.latency, 50):.3f} s, "
          f"p95 {pct(arm.latency, 95):.3f} s over {len(arm.latency)} utterances (+ {arm.silence_ms} ms endpointing)")
    open_set = f" | open-set c=0.25 {100 * abs(arm.open_set):.1f}%" if arm.metric == "IER" else ""
    print(f"RESULT {arm.name} {arm.metric} pooled c=0 {pooled[0]} c=0.25 {pooled[1]} | "
          + " ".join(f"{r[0]}={r[7]}" for r in arm.rows) + f" | after relabels c=0.25 {100 * abs(arm.after):.1f}%"
          + open_set + f" | latency p50 {pct(arm.latency, 50):.3f} s")


def anonymous_arm(name: str, items: list, runtime, turns, args) -> Arm:
    """DER of ``items`` ``(uri, audio, reference)`` with nobody enrolled and a fresh AnonymousSpeakers each."""
    from pyannote.core import Segment, Timeline

    from server.speaker.clusters import AnonymousSpeakers

    arm = Arm(name, "DER")
    arm.silence_ms = runtime.settings.silence_ms
    enroll(runtime, {}, "bench")  # nobody enrolled
    t = time.perf_counter()
    for uri, audio, ref in items:
        if turns is not None:
            turns.stream = audio
        finals = run_excerpt(runtime, audio, f"{name}-{uri}", arm.latency, speakers=AnonymousSpeakers())
        if args.show:
            show(uri, ref, finals)
        kinds = collections.Counter(f.speaker_kind for f, _ in finals)
        arm.add(uri, ref, finals, Timeline([Segment(0, audio.size / SR)]), None,
                " ".join(f"{k}:{n}" for k, n in sorted(kinds.items())), args.keep_empty)
    arm.wall_s = time.perf_counter() - t
    return arm


# -- main ------------------------------------------------------------------------------------------------
def build_runtime(args, tmp: Path):
    """The product's runtime over its real models, with the turn splitter set from ``args``."""
    from server.asr.engine import WhisperEngine
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings
    from server.speaker.embedding import SpeakerEmbedder
    from server.speaker.turns import TurnSplitter
    from server.store.profiles import ProfileStore

    overrides = {k: v for k, v in (("silence_ms", args.silence_ms), ("min_identify_s", args.min_identify_s),
                                   ("carry_label_gap_s", args.carry_gap_s)) if v is not None}
    settings = Settings(database=tmp / "profiles.sqlite3", whisper_model=args.model, language="en", asr_workers=1,
                        cpu_threads=1, partials=False, **overrides)
    turns = None
    if not args.no_split:
        accepted = inspect.signature(TurnSplitter).parameters
        kw = dict(args.splitter)
        unknown = set(kw) - set(accepted)
        if unknown:
            raise SystemExit(f"TurnSplitter takes no {sorted(unknown)} (it takes {sorted(accepted)})")
        kw.setdefault("min_turn_s", settings.min_identify_s)  # what SpeechRuntime.from_settings passes
        turns = TimedTurns(TurnSplitter(settings.segmentation_model, **kw), args.context_s,
                           480 if settings.vad == "webrtc" else 512)
    store = ProfileStore(settings.database)
    runtime = SpeechRuntime(settings, store=store, embedder=SpeakerEmbedder(settings.speaker_model, "cpu"),
                            asr=WhisperEngine(settings), turns=turns)
    return settings, runtime, turns


def splitter_arg(text: str) -> tuple[str, float | str]:
    key, _, value = text.partition("=")
    try:
        return key, float(value)
    except ValueError:
        return key, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arms", default="enrolled,anonymous,sample",
                    help="comma-separated: enrolled, anonymous (AMI), sample (anonymous on pyannote_sample.wav)")
    ap.add_argument("--model", default="tiny.en", help="Whisper model (tiny.en, as bench/turns_eval.py)")
    ap.add_argument("--min-enroll-s", type=float, default=3.0, help="least exclusive speech to enroll a speaker")
    ap.add_argument("--silence-ms", type=int, default=None, help="endpointing silence (default: Settings)")
    ap.add_argument("--min-identify-s", type=float, default=None, help="Settings.min_identify_s")
    ap.add_argument("--carry-gap-s", type=float, default=None, help="Settings.carry_label_gap_s")
    ap.add_argument("--no-split", action="store_true", help="no speaker-turn splitting (split_speaker_turns off)")
    ap.add_argument("--splitter", type=splitter_arg, action="append", default=[], metavar="KEY=VALUE",
                    help="a TurnSplitter keyword argument, e.g. --splitter min_turn_s=0.8 (repeatable)")
    ap.add_argument("--context-s", type=float, default=0.0,
                    help="experiment: segmentation also sees this much of the stream before each utterance")
    ap.add_argument("--only", default="", help="comma-separated excerpts (default: all)")
    ap.add_argument("--keep-empty", action="store_true", help="also score finals with empty text")
    ap.add_argument("--show", action="store_true", help="print each excerpt's finals and reference turns")
    args = ap.parse_args()
    if not AMI.is_dir():
        raise SystemExit(f"{AMI} is absent: the AMI excerpts are needed")
    set_offline_env()
    guard_network("attribution_eval")
    import torch

    torch.set_num_threads(1)
    from pyannote.core import Segment, Timeline

    load_start = loadavg()
    t_all = time.perf_counter()
    refs = read_rttm(AMI / "ami_meetings.rttm")
    uris = sorted(refs)
    if args.only:
        uris = [u for u in uris if u in args.only.split(",")]
    audio = {u: load(AMI / f"{u}.wav") for u in refs}
    arms = args.arms.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        settings, runtime, turns = build_runtime(args, Path(tmp))
        s = settings
        print(machine_summary(load_start) + f"; os.cpu_count() = {__import__('os').cpu_count()}")
        print(f"whisper {s.whisper_model} ({s.compute_type}), language en, asr_workers {s.asr_workers}, torch threads "
              f"{torch.get_num_threads()}; silence_ms {s.silence_ms}, min_identify_s {s.min_identify_s}, "
              f"carry_label_gap_s {s.carry_label_gap_s}, threshold {s.speaker_threshold}")
        if turns is None:
            print("turn splitting: off")
        else:
            sp = turns.splitter
            public = {k: v for k, v in vars(sp).items() if not k.startswith("_") and isinstance(v, (int, float, str))}
            print(f"turn splitting: TurnSplitter {public}; left context {turns.context_s} s")
        results = []
        try:
            if "enrolled" in arms:
                arm = Arm("enrolled", "IER")
                arm.silence_ms = s.silence_ms
                t = time.perf_counter()
                for uri in uris:
                    profiles = enrollment_audio(uri, refs, audio, args.min_enroll_s)
                    if not profiles:
                        continue
                    enroll(runtime, profiles, "bench")
                    if turns is not None:
                        turns.stream = audio[uri]
                    finals = run_excerpt(runtime, audio[uri], f"enrolled-{uri}", arm.latency)
                    uem = Timeline([Segment(0, audio[uri].size / SR)])
                    if args.show:
                        show(uri, refs[uri], finals)
                    note = ", ".join(f"{k} {v.size / SR:.1f}" for k, v in profiles.items())
                    arm.add(uri, refs[uri], finals, uem, set(profiles), note, args.keep_empty)
                arm.wall_s = time.perf_counter() - t
                results.append(arm)
            for name in ("anonymous", "sample"):
                if name not in arms:
                    continue
                if name == "anonymous":
                    items = [(uri, audio[uri], refs[uri]) for uri in uris]
                else:  # pyannote_sample.wav, 2 speakers: a recording of another kind, scored on its own
                    _, sample, ref, _, _ = conversation_pyannote()
                    items = [("sample", sample, ref)]
                results.append(anonymous_arm(name, items, runtime, turns, args))
        finally:
            runtime.close()
    for arm in results:
        print_arm(arm)
    if turns is not None and turns.ms:
        print(f"\nsplitter per call: p50 {np.median(turns.ms):.0f} ms, max {max(turns.ms):.0f} ms over {len(turns.ms)}")
    print(f"\nrun time {time.perf_counter() - t_all:.0f} s; load avg at end {loadavg()}")


if __name__ == "__main__":
    main()
