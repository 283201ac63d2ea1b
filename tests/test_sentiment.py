"""Offline text sentiment (server.sentiment): the shipped weights on the dev sets, behaviour, the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from server.sentiment import Sentiment, TextSentiment

from conftest import ROOT

SENTIMENT_DATA = ROOT.parent / "shared" / "data" / "text" / "sentiment"


def dev_set(name: str) -> tuple[list[str], list[str]]:
    path = SENTIMENT_DATA / f"{name}_dev.tsv"
    if not path.is_file():
        pytest.skip(f"labelled sentiment dev sets not found at {SENTIMENT_DATA} (the shared data folder is absent)")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r["text"] for r in rows], [r["label"] for r in rows]


@pytest.fixture(scope="module")
def ts() -> TextSentiment:
    return TextSentiment()


def _macro_f1(y: list[str], p: list[str]) -> float:
    f1 = []
    for c in sorted(set(y)):
        tp = sum(a == c and b == c for a, b in zip(y, p, strict=True))
        fp = sum(a != c and b == c for a, b in zip(y, p, strict=True))
        fn = sum(a == c and b != c for a, b in zip(y, p, strict=True))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1))


def test_english_dev_macro_f1(ts):
    texts, labels = dev_set("en")
    pred = [s.label if s else "neutral" for s in ts.classify_many(texts, "en")]  # None: no letter or digit
    assert _macro_f1(labels, pred) >= 0.65


def test_korean_dev_accuracy(ts):
    texts, labels = dev_set("ko")
    p = ts.polarity(texts, "ko")
    band = ts.meta["ko"]["neutral_band"]
    polarity = np.where(p >= 0.5, "positive", "negative")
    assert np.mean(polarity == np.array(labels)) >= 0.85  # the positive/negative decision
    shipped = np.where(np.abs(p - 0.5) < band, "neutral", polarity)  # what classify() says (Kiwi runs once here)
    assert np.mean(shipped == np.array(labels)) >= 0.80  # neutral-band labels counted as wrong
    assert [s.label for s in ts.classify_many(texts[:40], "ko")] == list(shipped[:40])


def test_empty_and_unsupported(ts):
    for text in ("", "   ", "...", "?!", "\n"):
        assert ts.classify(text, "en") is None
        assert ts.classify(text, None) is None
    assert ts.classify("this is great", "fr") is None
    assert ts.classify("this is great", "xx") is None
    assert ts.languages == frozenset({"en", "ko"})


def test_labels_scores_and_language_guess(ts):
    good = ts.classify("I love this, it is wonderful and works perfectly!", None)
    bad = ts.classify("This is terrible, the worst thing I ever bought.", None)
    assert isinstance(good, Sentiment) and good.label == "positive" and 0.0 <= good.score <= 1.0
    assert bad.label == "negative" and bad.score == round(bad.score, 3)
    ko_good = ts.classify("정말 재밌고 감동적인 영화였어요 최고", None)
    ko_bad = ts.classify("진짜 최악이다 시간 아깝고 지루함", None)
    assert ko_good == ts.classify("정말 재밌고 감동적인 영화였어요 최고", "ko")
    assert ko_good.label == "positive" and ko_bad.label == "negative"
    assert ts.classify("정말 재밌고 감동적인 영화였어요 최고", "ko-KR") == ko_good
    assert ts.classify("I love it", "EN") == ts.classify("I love it", "en")


def test_speech_like_english_mostly_neutral(ts):
    texts = ["yeah I think that's fine", "okay", "the meeting is at three", "can you hear me",
             "I'll send you the file tomorrow", "so what do you want to do next"]
    labels = [s.label for s in ts.classify_many(texts, "en")]
    assert labels.count("neutral") >= 4, list(zip(texts, labels, strict=True))


def test_classify_many_equals_classify(ts):
    texts = ["great stuff", "", "awful", "the meeting is at three", "정말 좋아요", "최악", "...", "ok"]
    for language in (None, "en", "ko"):
        assert ts.classify_many(texts, language) == [ts.classify(t, language) for t in texts]


def test_thread_safety_smoke():
    fresh = TextSentiment()  # models not loaded yet: every thread races to load them
    texts = ["I love it", "정말 최고의 영화", "this is broken", "지루하고 별로", "okay"] * 4
    expected = TextSentiment().classify_many(texts, None)
    results, errors = {}, []

    def work(k: int) -> None:
        try:
            results[k] = [fresh.classify(t, None) for t in texts]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(r == expected for r in results.values()) and len(results) == 6


def test_describe_and_missing_weights(ts, tmp_path):
    d = ts.describe()
    assert set(d) == {"en", "ko"} and all("method" in v and "version" in v for v in d.values())
    from server.errors import ModelError

    with pytest.raises(ModelError):
        TextSentiment(tmp_path)


def test_weights_small_and_not_pickled():
    folder = ROOT / "server" / "sentiment"
    total = sum(p.stat().st_size for p in folder.glob("*.npz")) + (folder / "sentiment.json").stat().st_size
    assert total < 10e6
    for p in folder.glob("*.npz"):
        with np.load(p, allow_pickle=False) as z:
            assert {"coef", "intercept", "classes"} <= set(z.files)


def test_cli_sentiment():
    stdin = "I love this!\n\nthe meeting is at three\n정말 최악이에요\n...\n"
    proc = subprocess.run([sys.executable, "-m", "server.cli", "sentiment"], input=stdin, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 5
    assert out[0]["label"] == "positive" and 0 < out[0]["score"] <= 1
    assert out[1] == {"label": None, "score": None} and out[4] == {"label": None, "score": None}
    assert out[3]["label"] == "negative"
    from server.cli import build_parser

    assert build_parser().parse_args(["sentiment", "--language", "ko"]).language == "ko"
    with pytest.raises(SystemExit) as exc:  # usage error (argparse): exit status 2
        build_parser().parse_args(["sentiment", "--language", "fr"])
    assert exc.value.code == 2


def test_cli_missing_weights_is_a_user_error(tmp_path):
    code = ("import sys; from pathlib import Path; import server.sentiment.model as m; "
            "m.MODEL_DIR = Path(sys.argv[1]); from server.cli import main; sys.exit(main(['sentiment']))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], input="hi\n", capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 1 and proc.stderr.startswith("callscribe: error:"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_import_is_light():
    code = "import sys, server.sentiment; print(sorted(m for m in ('aiohttp', 'aiortc', 'signaling', 'torch', " \
           "'kiwipiepy', 'server.stream') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr

