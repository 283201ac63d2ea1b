#!/usr/bin/env python
"""Short-window finals against the 30 s window (issue 11; a benchmark, not a test: it prints figures, asserts nothing).

Every English clip of the data folder's manifest that has a reference text and is at most 28 s long is decoded as
one final by :class:`server.asr.engine.WhisperEngine` several times in the same run, interleaved clip by clip:
``final_window="full"`` (faster-whisper's 30 s window, what finals did before) and ``final_window="short"`` for each
``--short-windows`` length (the clip + at least 2 s of silence, padded to that length,
``Settings.short_final_window_s``; falling back to the full window when :func:`server.asr.engine.short_final_doubt`
doubts it). Clips longer than ``--max-s`` are cut into pieces of that length at the nearest quiet 10 ms (a live
final is at most ``max_utterance_s`` = 10 s long); the reference of a cut clip counts once, against the joined pieces.
``--unlabelled N`` LibriSpeech test-other clips without references are decoded too and each short window's text is
compared with the 30 s window's (a check on recordings the lengths were not chosen on).

Prints, for each window: corpus WER (jiwer + whisper_normalizer), disagreement with the 30 s window on the clips
without references, decode-time p50/p95/max per final, the total decode time, how many short finals fell back and
why; then the clips whose WER differs; then non-speech inputs
(digital silence is caught by the energy gate, so white, pink and brown noise and a 50 Hz hum at -45, -30 and
-15 dBFS, language detected and given) and what each window made of them. The engines share nothing but the model
files.

Run: ``.venv/bin/python bench/final_window.py [--short-windows 0,10] [--unlabelled 40] [--language-hint en] [--limit N]
[--words]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from common import ROOT, f, loadavg, machine_summary, pct, set_offline_env, table, wer_of

set_offline_env()

import numpy as np  # noqa: E402

from server import SAMPLE_RATE  # noqa: E402
from server.asr.engine import WhisperEngine  # noqa: E402
from server.audio.ingest import load_audio  # noqa: E402
from server.settings import Settings  # noqa: E402

SR = SAMPLE_RATE


def pieces(audio: np.ndarray, max_s: float) -> list[np.ndarray]:
    """``audio`` cut into pieces of at most ``max_s`` seconds, each cut at the quietest 10 ms of its last second."""
    out, start, limit, hop = [], 0, int(max_s * SR), SR // 100
    while audio.size - start > limit:
        window = audio[start + limit - SR : start + limit]
        energy = np.square(window[: window.size // hop * hop].reshape(-1, hop)).mean(axis=1)
        cut = start + limit - SR + int(np.argmin(energy)) * hop
        out.append(audio[start:cut])
        start = cut
    out.append(audio[start:])
    return out


def noises(seconds: float = 3.0, dbfs: float = -30.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = int(seconds * SR)
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SR), 1.0)
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    brown = np.fft.irfft(spectrum / freqs, n)
    hum = np.sin(2 * np.pi * 50 * np.arange(n) / SR) + 0.3 * np.sin(2 * np.pi * 150 * np.arange(n) / SR)
    out = {}
    for name, x in {"white": white, "pink": pink, "brown": brown, "hum 50 Hz": hum}.items():
        x = x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20)
        out[name] = x.astype(np.float32)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speech")
    ap.add_argument("--limit", type=int, default=0, help="at most this many clips (0 = all)")
    ap.add_argument("--max-s", type=float, default=10.0, help="cut longer clips into pieces this long (s)")
    ap.add_argument("--words", action="store_true", help="ask for word timings (as analysis and turn splits do)")
    ap.add_argument("--beam-size", type=int, default=None, help="beam for both windows (default: the setting)")
    ap.add_argument("--short-windows", default="0,10",
                    help="short-window lengths to compare (s, comma-separated; Settings.short_final_window_s)")
    ap.add_argument("--language-hint", default=None,
                    help="pass this language_hint with every final (a stream whose language is established), e.g. en")
    ap.add_argument("--unlabelled", type=int, default=40,
                    help="also decode this many LibriSpeech test-other clips (no references) and compare each "
                    "short window with the 30 s window's text")
    args = ap.parse_args()
    if not (args.data / "manifest.jsonl").exists():
        print(f"no recordings at {args.data}: pass --data", file=sys.stderr)
        return 2
    load_start = loadavg()
    import json

    json_entries = [json.loads(x) for x in (args.data / "manifest.jsonl").read_text().splitlines() if x.strip()]
    entries = json_entries
    entries = [e for e in entries if e.get("text") and not e["path"].startswith("ami_meetings")]
    if args.limit:
        entries = entries[: args.limit]
    unlabelled = [e for e in json_entries if e["path"].startswith("librispeech_test-other")][: args.unlabelled]
    extra = {"beam_size": args.beam_size, "short_beam_size": args.beam_size} if args.beam_size else {}
    cache = os.environ.get("CALLSCRIBE_MODEL_CACHE_DIR")
    base = {"model_cache_dir": cache} if cache else {}
    engines = {"full": WhisperEngine(Settings(final_window="full", **base, **extra))}
    for w in (float(x) for x in args.short_windows.split(",")):
        engines[f"short {w:g} s"] = WhisperEngine(Settings(final_window="short", short_final_window_s=w, **base,
                                                           **extra))
    shorts = [w for w in engines if w != "full"]
    times: dict[str, list[float]] = {w: [] for w in engines}
    hyps: dict[str, list[str]] = {w: [] for w in engines}
    fallbacks: dict[str, dict[str, int]] = {w: {} for w in shorts}
    kept_no_speech: dict[str, list[float]] = {w: [] for w in shorts}
    refs, differ, n_finals = [], [], 0
    unl: dict[str, list[str]] = {w: [] for w in engines}
    t_all = time.perf_counter()
    for i, e in enumerate(entries + unlabelled):
        audio = load_audio(args.data / e["path"])
        parts = pieces(audio, args.max_s)
        labelled = i < len(entries)
        texts = {}
        for w, engine in engines.items():
            out = []
            for part in parts:
                t0 = time.perf_counter()
                r = engine.transcribe(part, language="en" if not engine.multilingual else None,
                                      word_timestamps=args.words, language_hint=args.language_hint)
                times[w].append(time.perf_counter() - t0)
                out.append(r.text)
                if w != "full":
                    n_finals += w == shorts[0]
                    if r.fallback:
                        fallbacks[w][r.fallback] = fallbacks[w].get(r.fallback, 0) + 1
                    elif r.window == "short" and r.no_speech_prob is not None:
                        kept_no_speech[w].append(r.no_speech_prob)
            texts[w] = " ".join(t for t in out if t)
            (hyps if labelled else unl)[w].append(texts[w])
        if labelled:
            refs.append(e["text"])
            if len({wer_of(e["text"], t)["wer"] for t in texts.values()}) > 1:
                differ.append((e["path"], e["text"], texts))
        print(f"\r  {i + 1}/{len(entries) + len(unlabelled)} clips", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    wall = time.perf_counter() - t_all
    print(machine_summary(load_start))
    print(f"  {len(entries)} clips with references + {len(unlabelled)} without, {n_finals} finals per window, "
          f"word timings {'on' if args.words else 'off'}, beam {engines['full'].settings.beam_size} (full) / "
          f"{engines[shorts[0]].settings.short_beam_size} (short), model {engines['full'].model_dir.name}, "
          f"language hint {args.language_hint or 'none'}, wall {wall:.0f} s, load at the end {loadavg()}")
    print("  'short N s': the utterance + at least 2 s of silence, padded to N s (Settings.short_final_window_s)")
    rows = []
    for w in engines:
        wr = wer_of(" ".join(refs), " ".join(hyps[w]))
        vs_full = wer_of(" ".join(unl["full"]), " ".join(unl[w]))["wer"] if unlabelled else float("nan")
        rows.append([w, f(100 * wr["wer"], 2, " %"), f"{wr['S']}/{wr['D']}/{wr['I']} of {wr['N']}",
                     "-" if w == "full" else f(100 * vs_full, 2, " %"),
                     "-" if w == "full" else str(sum(fallbacks[w].values())),
                     f(pct(times[w], 50), 3), f(pct(times[w], 95), 3), f(max(times[w]), 3), f(sum(times[w]), 1)])
    print("\n  WER on the clips with references; 'vs 30 s': WER of the clips without references against the 30 s"
          " window's text (disagreement, not error); decode wall time per final (s)")
    table(["window", "WER", "S/D/I", "vs 30 s", "fallbacks", "p50", "p95", "max", "total"], rows)
    for w in shorts:
        print(f"  {w}: decoded again on the 30 s window {sum(fallbacks[w].values())}/{n_finals} "
              f"({', '.join(f'{k} {v}' for k, v in sorted(fallbacks[w].items())) or 'none'})"
              + (f"; no-speech probability of the finals kept p50 {pct(kept_no_speech[w], 50):.3f}, max "
                 f"{max(kept_no_speech[w]):.3f}" if kept_no_speech[w] else ""))
    print(f"\n  clips with references whose WER differs between the windows: {len(differ)}")
    for path, ref, texts in differ:
        print(f"    {path}\n      ref   {ref.lower()}")
        for w, t in texts.items():
            print(f"      {w:10s} {t}")
    print("\n  non-speech, 3 s (text kept, or empty; for short: why it went to the full window)")
    rows = []
    for dbfs in (-45.0, -30.0, -15.0):
        for name, x in noises(dbfs=dbfs).items():
            for language in (None, "en"):
                row = [f"{name} {dbfs:.0f} dBFS", language or "detect"]
                for engine in engines.values():
                    r = engine.transcribe(x, language=language)
                    row.append(repr(r.text) if r.text else f"empty ({r.dropped or r.fallback or '-'})")
                rows.append(row)
    table(["input", "language", *engines], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
