"""Offline text sentiment for English and Korean: hashed n-gram features, one linear model per language.

Method (weights in this folder, rebuilt by ``bench/train_sentiment.py``; figures in ``bench/README.md``):

- **English** (three classes): multinomial logistic regression, balanced class weights, over hashed word 1–2-grams
  and char 2–5-grams plus VADER's scores as 5 dense columns (Hutto & Gilbert, ICWSM 2014,
  https://github.com/cjhutto/vaderSentiment); trained on labelled review snippets of Hutto & Gilbert's ICWSM 2014
  data (MIT). A neutral log-odds bias, chosen by 3-fold cross-validation on the training set (macro-F1 with balanced
  class weights), is added before the arg-max.
- **Korean** (positive / negative): NB-LR — logistic regression on features scaled by their naive-Bayes log-count
  ratio (Wang & Manning, "Baselines and Bigrams: Simple, Good Sentiment and Topic Classification", ACL 2012,
  https://aclanthology.org/P12-2018/) — over Kiwi morphemes, morpheme bigrams and char 1–3-grams; trained on NSMC
  movie reviews (e9t/nsmc, CC0, https://github.com/e9t/nsmc). The ratio is folded into the weights. No labelled
  Korean neutral text was available: a text whose positive probability lies within ``neutral_band`` of 0.5 is
  labelled neutral (a fixed band, not tuned).

Files: ``sentiment.json`` (method, versions, biases), ``en.npz`` and ``ko.npz`` (``coef`` float32
``(n_classes or 1, n_features)``, ``intercept`` float32, ``classes``); loading needs numpy and scikit-learn's
HashingVectorizer, not the training data, and never unpickles.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from . import features

MODEL_DIR = Path(__file__).resolve().parent
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Sentiment:
    """The sentiment of one text: ``label`` ``positive`` / ``negative`` / ``neutral`` and ``score``, the model's
    confidence in that label (a probability, 0..1, rounded to 3 decimals)."""

    label: str
    score: float

    def as_dict(self) -> dict:
        return {"label": self.label, "score": self.score}


@dataclass(frozen=True)
class _Linear:
    coef: np.ndarray  # (n_classes, n_features) float64 (stored as float32); one row for a binary model
    intercept: np.ndarray  # (n_classes,)
    classes: tuple[str, ...]


def _load_linear(path: Path, n_features: int) -> _Linear:
    try:
        with np.load(path, allow_pickle=False) as z:
            coef = np.asarray(z["coef"], dtype=np.float32)
            intercept = np.asarray(z["intercept"], dtype=np.float32)
            classes = tuple(str(c) for c in z["classes"])
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"cannot load the sentiment weights {path}: {exc}") from None
    if coef.ndim != 2 or coef.shape[1] != n_features or intercept.shape != (coef.shape[0],):
        raise ModelError(f"sentiment weights {path} have shape {coef.shape}, expected (k, {n_features})")
    return _Linear(coef.astype(np.float64), intercept, classes)  # converted once, not per classification


def guess_language(text: str) -> str:
    """``ko`` when ``text`` contains Hangul, else ``en``."""
    return "ko" if features.has_hangul(text) else "en"


def _normalise_language(language: str | None) -> str | None:
    if language is None:
        return None
    return language.strip().lower().replace("_", "-").split("-")[0]


class TextSentiment:
    """Sentiment of short texts (one final utterance, one transcript segment), offline, English and Korean.

    Thread-safe: each language's weights (and the Kiwi analyser for Korean) load once, lazily, on first use.
    """

    languages: frozenset[str] = frozenset({"en", "ko"})

    def __init__(self, model_dir: Path | None = None) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else MODEL_DIR
        try:
            self.meta = json.loads((self.model_dir / "sentiment.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {self.model_dir / 'sentiment.json'}: {exc}") from None
        self._models: dict[str, _Linear] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------------- loading
    def _model(self, language: str) -> _Linear:
        with self._lock:
            model = self._models.get(language)
            if model is None:
                n = features.EN_N_FEATURES + features.VADER_COLUMNS if language == "en" else features.KO_N_FEATURES
                model = _load_linear(self.model_dir / f"{language}.npz", n)
                self._models[language] = model
            return model

    def warm(self) -> None:
        """Load every language's weights and tokenizer now (seconds: VADER's lexicon, Kiwi's model), so that the
        first final of a call does not wait for them; the server does this on a background thread at start."""
        self.classify_many(["fine", "좋아요"], None)

    # ---------------------------------------------------------------------------------------------- scoring
    def classify(self, text: str, language: str | None) -> Sentiment | None:
        """The sentiment of ``text``; None when the text is empty or only punctuation, or ``language`` (an ISO
        639-1 code, a region suffix like ``en-US`` is ignored) is not supported. ``language`` None: guessed
        (Hangul present → ``ko``, else ``en``)."""
        return self.classify_many([text], language)[0]

    def classify_many(self, texts: Sequence[str], language: str | None) -> list[Sentiment | None]:
        """:meth:`classify` of each text (one language for all, or None to guess per text), in one batch."""
        out: list[Sentiment | None] = [None] * len(texts)
        lang = _normalise_language(language)
        groups: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not features.has_content(text):
                continue
            chosen = lang or guess_language(text)
            if chosen in self.languages:
                groups.setdefault(chosen, []).append(i)
        for chosen, idx in groups.items():
            batch = [texts[i] for i in idx]
            scored = self._english(batch) if chosen == "en" else self._korean(batch)
            for i, s in zip(idx, scored, strict=True):
                out[i] = s
        return out

    def _english(self, texts: list[str]) -> list[Sentiment]:
        model = self._model("en")
        x = features.english_matrix(texts)
        logits = np.asarray(x @ model.coef.T) + model.intercept
        logp = logits - _logsumexp(logits)
        bias = np.zeros(len(model.classes))
        bias[model.classes.index("neutral")] = float(self.meta["en"]["neutral_bias"])
        out = []
        for row, lp in zip(logp + bias, logp, strict=True):
            k = int(np.argmax(row))
            out.append(Sentiment(model.classes[k], round(float(math.exp(lp[k])), 3)))
        return out

    def _korean(self, texts: list[str]) -> list[Sentiment]:
        model = self._model("ko")
        x = features.korean_matrix(texts)
        z = np.asarray(x @ model.coef[0]).ravel() + float(model.intercept[0])
        band = float(self.meta["ko"]["neutral_band"])
        out = []
        for zi in z:
            p = 1.0 / (1.0 + math.exp(-zi)) if zi > -500 else 0.0
            if abs(p - 0.5) < band:
                out.append(Sentiment("neutral", round(1.0 - abs(p - 0.5) / band * 0.5, 3)))
            elif p >= 0.5:
                out.append(Sentiment("positive", round(p, 3)))
            else:
                out.append(Sentiment("negative", round(1.0 - p, 3)))
        return out

    def polarity(self, texts: Sequence[str], language: str) -> np.ndarray:
        """Korean: P(positive) per text, ``(len(texts),)`` float64, before the neutral band (for evaluation)."""
        if language != "ko":
            raise ValueError("polarity() is the Korean binary model's probability")
        model = self._model("ko")
        z = np.asarray(features.korean_matrix(list(texts)) @ model.coef[0]).ravel()
        return 1.0 / (1.0 + np.exp(-(z + float(model.intercept[0]))))

    def describe(self) -> dict:
        """Method names and versions per language, for an analysis result's ``models["sentiment"]``."""
        return {lang: {k: v for k, v in self.meta[lang].items() if k in ("method", "version", "data")}
                for lang in sorted(self.languages)}


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=1, keepdims=True)
    return m + np.log(np.exp(a - m).sum(axis=1, keepdims=True))
