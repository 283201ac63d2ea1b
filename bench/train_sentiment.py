"""Rebuild the shipped sentiment weights (``server/sentiment/{en,ko}.npz`` and ``sentiment.json``) from the labelled
training sets, never from the dev sets.

    .venv/bin/python bench/train_sentiment.py                  # both languages, about 4–6 min on 2 CPU cores
    .venv/bin/python bench/train_sentiment.py --language ko    # one language (the other's entry is kept)
    .venv/bin/python bench/train_sentiment.py --data PATH --out DIR

Data: ``../shared/data/text/sentiment/{en,ko}_train.tsv`` (``--data``; tab-separated, header ``text label …``):
English review snippets of Hutto & Gilbert, ICWSM 2014 (MIT), Korean NSMC reviews (CC0). The methods are described
in :mod:`server.sentiment.model`; features in :mod:`server.sentiment.features`.

- English: multinomial logistic regression (C = 1, balanced class weights; the training set is 8 % neutral, speech
  is mostly neutral); the neutral log-odds bias is chosen by 3-fold stratified cross-validation on the training set,
  maximising macro-F1 with balanced sample weights (grid −1.5…1.5, step 0.1).
- Korean: NB-LR (Wang & Manning, ACL 2012): binary presence counts give the log-count ratio r (add-one smoothing),
  logistic regression (C = 4) on ``x ∘ r``; the shipped weights are ``w ∘ r``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.sentiment import features  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "text" / "sentiment"
OUT = ROOT / "server" / "sentiment"
VERSION = "1"
EN_C = 1.0
KO_C = 4.0
KO_NEUTRAL_BAND = 0.05
BIAS_GRID = np.round(np.arange(-1.5, 1.51, 0.1), 2)


def load_tsv(path: Path) -> tuple[list[str], np.ndarray]:
    """(texts, labels) of a ``text<TAB>label<TAB>…`` file with a header row (CSV quoting)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


def balanced_weights(y: np.ndarray) -> np.ndarray:
    classes, counts = np.unique(y, return_counts=True)
    w = dict(zip(classes, len(y) / (len(classes) * counts), strict=True))
    return np.array([w[c] for c in y])


def fit_english(x, y: np.ndarray, c: float = EN_C):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(x, y)


def neutral_bias_cv(x, y: np.ndarray, folds: int = 3, log=print) -> tuple[float, float]:
    """(bias, cv macro-F1): the neutral log-odds bias that maximises balanced-weight macro-F1 out of fold."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros((len(y), 3))
    classes = None
    for k, (a, b) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y)):
        m = fit_english(x[a], y[a])
        classes = m.classes_
        oof[b] = m.predict_log_proba(x[b])
        log(f"  english fold {k + 1}/{folds} done")
    sw = balanced_weights(y)
    neutral = list(classes).index("neutral")
    best = (-1.0, 0.0)
    for bias in BIAS_GRID:
        q = oof.copy()
        q[:, neutral] += bias
        score = f1_score(y, classes[q.argmax(1)], average="macro", sample_weight=sw)
        if score > best[0] + 1e-9:
            best = (float(score), float(bias))
    return best[1], best[0]


def nb_ratio(x, y01: np.ndarray) -> np.ndarray:
    """Wang & Manning's log-count ratio r = log((p/|p|₁)/(q/|q|₁)) over binary feature presence, α = 1."""
    xb = x.copy()
    xb.data[:] = 1.0
    p = np.asarray(xb[y01 == 1].sum(0)).ravel() + 1.0
    q = np.asarray(xb[y01 == 0].sum(0)).ravel() + 1.0
    return np.log((p / p.sum()) / (q / q.sum()))


def fit_nblr(x, y01: np.ndarray, c: float = KO_C) -> tuple[np.ndarray, float]:
    """(folded weights ``w ∘ r`` (n_features,), intercept) of NB-LR."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    r = nb_ratio(x, y01)
    m = LogisticRegression(C=c, max_iter=2000).fit(x @ sp.diags(r), y01)
    return m.coef_[0] * r, float(m.intercept_[0])


def korean_morphemes_fast(texts: list[str]) -> list[list[str]]:
    """Kiwi morphemes with two worker threads (training only; the server uses the shared single-thread one)."""
    from kiwipiepy import Kiwi

    return features.korean_morphemes(texts, Kiwi(num_workers=2))


def train_english(data: Path, log=print) -> tuple[dict, dict]:
    texts, y = load_tsv(data / "en_train.tsv")
    t0 = time.monotonic()
    x = features.english_matrix(texts)
    log(f"english: {len(texts)} texts, features {x.shape} in {time.monotonic() - t0:.0f} s")
    bias, cv = neutral_bias_cv(x, y, log=log)
    log(f"english: neutral bias {bias:+.1f} (3-fold cv macro-F1 {cv:.3f}, balanced weights)")
    m = fit_english(x, y)
    arrays = {"coef": m.coef_.astype(np.float32), "intercept": m.intercept_.astype(np.float32),
              "classes": np.array(m.classes_, dtype=str)}
    meta = {"method": "logistic regression (balanced) on hashed word 1-2-grams + char_wb 2-5-grams + VADER 3.3.2 "
                      "scores; neutral bias by 3-fold CV on train",
            "version": VERSION, "data": "Hutto & Gilbert ICWSM 2014 snippets (MIT), en_train.tsv",
            "n_train": len(texts), "C": EN_C, "neutral_bias": bias, "cv_macro_f1": round(cv, 4),
            "n_features": features.EN_N_FEATURES, "vader_columns": features.VADER_COLUMNS}
    return arrays, meta


def train_korean(data: Path, log=print) -> tuple[dict, dict]:
    texts, y = load_tsv(data / "ko_train.tsv")
    t0 = time.monotonic()
    morphs = korean_morphemes_fast(texts)
    x = features.korean_matrix(texts, morphs)
    log(f"korean: {len(texts)} texts, Kiwi + features {x.shape} in {time.monotonic() - t0:.0f} s")
    w, b = fit_nblr(x, (y == "positive").astype(int))
    arrays = {"coef": w[None, :].astype(np.float32), "intercept": np.array([b], np.float32),
              "classes": np.array(["negative", "positive"])}
    meta = {"method": "NB-LR (Wang & Manning 2012) on hashed Kiwi morphemes + morpheme bigrams + char 1-3-grams; "
                      f"neutral when |P(pos) - 0.5| < {KO_NEUTRAL_BAND}",
            "version": VERSION, "data": "NSMC (e9t/nsmc, CC0), ko_train.tsv", "n_train": len(texts), "C": KO_C,
            "neutral_band": KO_NEUTRAL_BAND, "n_features": features.KO_N_FEATURES}
    return arrays, meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--language", choices=["en", "ko"], help="train one language only (default both)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    meta_path = args.out / "sentiment.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    started = time.monotonic()
    for lang, train in (("en", train_english), ("ko", train_korean)):
        if args.language not in (None, lang):
            continue
        arrays, meta[lang] = train(args.data, log=lambda s: print(s, flush=True))
        np.savez_compressed(args.out / f"{lang}.npz", **arrays)
        print(f"wrote {args.out / f'{lang}.npz'} ({(args.out / f'{lang}.npz').stat().st_size / 1e6:.2f} MB)", flush=True)
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {meta_path}; {time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
