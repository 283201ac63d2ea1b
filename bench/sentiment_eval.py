"""Compare text-sentiment options on the dev sets, English and Korean, in one run; print one table.

    .venv/bin/python bench/sentiment_eval.py            # about 6–9 min on 2 CPU cores (trains the alternatives)
    .venv/bin/python bench/sentiment_eval.py --shipped  # only the shipped weights (TextSentiment), under a minute

A benchmark, not a test: it asserts nothing. Alternatives are trained on ``*_train.tsv`` only (the same code as
``bench/train_sentiment.py``) and scored on ``*_dev.tsv``; the ``shipped`` rows run :class:`server.sentiment.
TextSentiment` with the weights in ``server/sentiment/``. Options:

- en ``vader``: VADER's compound with its documented thresholds ±0.05 (Hutto & Gilbert, ICWSM 2014).
- en ``lr``: logistic regression (balanced) on the hashed n-grams, no VADER columns, no neutral bias.
- en ``lr+vader``: the same plus the 5 VADER columns, no bias; ``shipped``: plus the neutral bias of train CV.
- ko ``lr``: logistic regression (C = 4) on the hashed morphemes + char n-grams; ``nblr``: NB-LR (C = 4);
  ``shipped (polarity)``: the shipped NB-LR's arg-max; ``shipped``: with its neutral band (neutral counts wrong).

Also prints the shipped model's label on a few transcript-like sentences.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from common import loadavg, machine_summary, table  # also puts the project root on sys.path
from train_sentiment import DATA, KO_C, fit_english, fit_nblr, korean_morphemes_fast, load_tsv

from server.sentiment import TextSentiment, features

SPEECH_EN = ["yeah I think that's fine", "okay", "the meeting is at three", "so what do you want to do next",
             "can you hear me", "I'll send you the file tomorrow", "thanks a lot, that's really great",
             "this is terrible, nothing works", "um I don't know", "right, right"]
SPEECH_KO = ["네 알겠습니다", "회의는 세 시에 있어요", "내일 파일 보내드릴게요", "정말 감사합니다 너무 좋아요",
             "이거 진짜 최악이네요", "음 잘 모르겠어요"]


def scores(y_true, y_pred) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return float(accuracy_score(y_true, y_pred)), float(f1_score(y_true, y_pred, average="macro"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="compare sentiment options on the dev sets")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--shipped", action="store_true", help="only the shipped weights")
    args = ap.parse_args(argv)
    if not (args.data / "en_dev.tsv").is_file():
        print(f"no dev sets at {args.data}", file=sys.stderr)
        return 1
    load_start = loadavg()
    rows = []
    ex, ey = load_tsv(args.data / "en_dev.tsv")
    kx, ky = load_tsv(args.data / "ko_dev.tsv")
    started = time.monotonic()

    if not args.shipped:
        from sklearn.linear_model import LogisticRegression

        tx, ty = load_tsv(args.data / "en_train.tsv")
        v = features.vader_columns(ex)[:, 0]
        rows.append(["en", "vader ±0.05", *scores(ey, np.where(v >= 0.05, "positive",
                                                                np.where(v <= -0.05, "negative", "neutral"))), "-"])
        xt, xd = features.english_matrix(tx), features.english_matrix(ex)
        t0 = time.monotonic()
        m = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(xt[:, :-5], ty)
        rows.append(["en", "lr (n-grams)", *scores(ey, m.predict(xd[:, :-5])), f"{time.monotonic() - t0:.0f}"])
        t0 = time.monotonic()
        m = fit_english(xt, ty)
        rows.append(["en", "lr+vader, no bias", *scores(ey, m.predict(xd)), f"{time.monotonic() - t0:.0f}"])
        print("english done", flush=True)

        kt, kty = load_tsv(args.data / "ko_train.tsv")
        xt = features.korean_matrix(kt, korean_morphemes_fast(kt))
        xd = features.korean_matrix(kx, korean_morphemes_fast(kx))
        y01 = (kty == "positive").astype(int)
        t0 = time.monotonic()
        m = LogisticRegression(C=KO_C, max_iter=2000).fit(xt, y01)
        rows.append(["ko", "lr (morph+char)", *scores(ky, np.where(m.predict(xd) == 1, "positive", "negative")),
                     f"{time.monotonic() - t0:.0f}"])
        t0 = time.monotonic()
        w, b = fit_nblr(xt, y01)
        rows.append(["ko", "nblr (morph+char)", *scores(ky, np.where(xd @ w + b > 0, "positive", "negative")),
                     f"{time.monotonic() - t0:.0f}"])
        print("korean done", flush=True)

    ts = TextSentiment()
    t0 = time.monotonic()
    en_out = ts.classify_many(ex, "en")
    en_none = sum(s is None for s in en_out)
    en_pred = [s.label if s else "neutral" for s in en_out]  # None (no letter or digit) counted as neutral
    en_s = time.monotonic() - t0
    rows.append(["en", "shipped (lr+vader+bias)", *scores(ey, en_pred), f"{en_s:.1f} run"])
    t0 = time.monotonic()
    ko_out = ts.classify_many(kx, "ko")
    ko_none = sum(s is None for s in ko_out)
    ko_pred = [s.label if s else "neutral" for s in ko_out]
    ko_s = time.monotonic() - t0
    pol = np.where(ts.polarity(kx, "ko") >= 0.5, "positive", "negative")
    rows.append(["ko", "shipped (polarity)", *scores(ky, pol), "-"])
    rows.append(["ko", "shipped (with band)", *scores(ky, ko_pred), f"{ko_s:.1f} run"])

    print(f"\n# sentiment on the dev sets ({args.data}); {time.monotonic() - started:.0f} s in all")
    print(f"# machine: {machine_summary(load_start)}")
    table(["lang", "option", "accuracy", "macro-F1", "train/run s"],
          [[r[0], r[1], f"{r[2]:.3f}", f"{r[3]:.3f}", r[4]] for r in rows])
    ko_neutral = sum(p == "neutral" for p in ko_pred)
    print(f"\nshipped: None (no letter or digit; counted as neutral) for {en_none} en and {ko_none} ko dev texts")
    print(f"shipped ko: {ko_neutral} of {len(ko_pred)} dev reviews in the neutral band; "
          f"en dev predictions: " + ", ".join(f"{lab} {en_pred.count(lab)}" for lab in ("positive", "negative",
                                                                                     "neutral")))
    print("\n# transcript-like sentences (shipped)")
    for text, s in zip(SPEECH_EN + SPEECH_KO, ts.classify_many(SPEECH_EN + SPEECH_KO, None), strict=True):
        print(f"  {s.label:8s} {s.score:.3f}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
