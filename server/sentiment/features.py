"""Text → sparse feature rows, shared by the classifier (:mod:`server.sentiment.model`) and its training script
(``bench/train_sentiment.py``), so that both see exactly the same features.

Features are hashed (the "hashing trick", Weinberger et al., ICML 2009, "Feature hashing for large scale multitask
learning"; scikit-learn's :class:`~sklearn.feature_extraction.text.HashingVectorizer`, signed 32-bit MurmurHash3
with seed 0), so no vocabulary ships with the weights: a row is ``(1, n_features)`` float64, binary term presence,
L2-normalised.

- English: lower-cased word unigrams and bigrams (``w:``/``b:``, with ``!`` and ``?`` as words) and character
  2–5-grams inside word boundaries (``c:``, scikit-learn's ``char_wb`` scheme), plus 5 dense VADER columns
  (:func:`vader_columns`: compound, pos, neg, neu, "no lexicon word") appended after the hashed block.
- Korean: Kiwi morphemes ``form/tag`` (``m:``; kiwipiepy, Apache-2.0, https://github.com/bab2min/kiwipiepy) and
  morpheme bigrams (``mb:``), plus character 1–3-grams of the text with whitespace removed (``c:``; spacing in
  user-written and transcribed Korean is unreliable).

The Kiwi analyser loads in about 1.6–2 s: it is built once, lazily, under a lock (:func:`kiwi`), and tokenising
is serialised through the same lock.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")
_SPACE = re.compile(r"\s+")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_CONTENT = re.compile(r"\w", re.UNICODE)

EN_N_FEATURES = 2**18
KO_N_FEATURES = 2**19
VADER_COLUMNS = 5
VADER_SCALE = 1.0  # the dense VADER columns are appended as they are (each in −1..1)


def has_content(text: str) -> bool:
    """True when ``text`` has at least one letter or digit (not only whitespace and punctuation)."""
    return bool(_CONTENT.search(text))


def has_hangul(text: str) -> bool:
    """True when ``text`` contains a Hangul syllable or jamo."""
    return bool(_HANGUL.search(text))


# ---------------------------------------------------------------------------------------------------- English
def english_tokens(text: str) -> list[str]:
    """The hashed English features of one text: ``w:`` words, ``b:`` word bigrams, ``c:`` char 2–5-grams."""
    words = _WORD.findall(text.lower())
    out = [f"w:{w}" for w in words]
    out += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    for w in words:
        padded = f" {w} "
        for n in range(2, 6):
            out += [f"c:{padded[i:i + n]}" for i in range(max(len(padded) - n + 1, 1))]
    return out


_vader = None
_vader_lock = threading.Lock()


def vader():
    """VADER's analyser (Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social
    Media Text", ICWSM 2014; package ``vaderSentiment``, MIT, https://github.com/cjhutto/vaderSentiment),
    built once."""
    global _vader
    with _vader_lock:
        if _vader is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            _vader = SentimentIntensityAnalyzer()
        return _vader


def vader_columns(texts: Sequence[str]) -> np.ndarray:
    """``(len(texts), 5)`` float64: VADER compound (−1..1), pos, neg, neu (proportions 0..1) and 1.0 when no word
    of the text is in VADER's lexicon (compound exactly 0 and neu 1), times :data:`VADER_SCALE`."""
    analyser = vader()
    rows = np.zeros((len(texts), VADER_COLUMNS))
    for i, text in enumerate(texts):
        s = analyser.polarity_scores(text)
        rows[i] = (s["compound"], s["pos"], s["neg"], s["neu"], float(s["compound"] == 0.0 and s["neu"] == 1.0))
    return rows * VADER_SCALE


# ---------------------------------------------------------------------------------------------------- Korean
_kiwi = None
_kiwi_lock = threading.Lock()


def kiwi():
    """The Kiwi morphological analyser (default model of ``kiwipiepy-model``), built once under a lock."""
    global _kiwi
    with _kiwi_lock:
        if _kiwi is None:
            from kiwipiepy import Kiwi

            _kiwi = Kiwi(num_workers=1)
        return _kiwi


def korean_morphemes(texts: Sequence[str], analyser=None) -> list[list[str]]:
    """``form/tag`` morphemes of each text (Kiwi's best analysis), one list per text; ``analyser`` a ``Kiwi`` of the
    caller's (used without the lock), or None for the shared one of :func:`kiwi`."""
    if analyser is not None:
        return [[f"{t.form}/{t.tag}" for t in tokens] for tokens in analyser.tokenize(list(texts))]
    shared = kiwi()
    with _kiwi_lock:  # one tokenisation at a time: the analyser is shared by every thread
        return [[f"{t.form}/{t.tag}" for t in tokens] for tokens in shared.tokenize(list(texts))]


def korean_tokens(text: str, morphemes: Iterable[str]) -> list[str]:
    """The hashed Korean features of one text: ``m:`` morphemes, ``mb:`` morpheme bigrams, ``c:`` char 1–3-grams
    of the text without whitespace."""
    morphs = list(morphemes)
    out = [f"m:{m}" for m in morphs]
    out += [f"mb:{a} {b}" for a, b in itertools.pairwise(morphs)]
    chars = _SPACE.sub("", text)
    for n in (1, 2, 3):
        out += [f"c:{chars[i:i + n]}" for i in range(len(chars) - n + 1)]
    return out


# ---------------------------------------------------------------------------------------------------- hashing
def _identity(tokens):
    return tokens


def hasher(n_features: int):
    """A stateless HashingVectorizer over pre-tokenised inputs (lists of feature strings)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer=_identity, n_features=n_features, alternate_sign=False, binary=True,
                             norm="l2", dtype=np.float64)


def english_matrix(texts: Sequence[str], with_vader: bool = True):
    """``(len(texts), EN_N_FEATURES [+ 5])`` CSR matrix of English features."""
    import scipy.sparse as sp

    x = hasher(EN_N_FEATURES).transform([english_tokens(t) for t in texts])
    if not with_vader:
        return x.tocsr()
    return sp.hstack([x, sp.csr_matrix(vader_columns(texts))], format="csr")


def korean_matrix(texts: Sequence[str], morphemes: Sequence[Sequence[str]] | None = None):
    """``(len(texts), KO_N_FEATURES)`` CSR matrix of Korean features (``morphemes`` precomputed, or Kiwi now)."""
    if morphemes is None:
        morphemes = korean_morphemes(texts)
    return hasher(KO_N_FEATURES).transform([korean_tokens(t, m) for t, m in zip(texts, morphemes, strict=True)]).tocsr()
