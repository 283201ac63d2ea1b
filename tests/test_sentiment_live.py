"""Live sentiment (issue 12): every final with text is followed by one ``sentiment`` update.

Plumbing with a fake classifier (fast): the update comes after its final and never delays it, exactly one per
final with text, none for empty finals, none when ``Settings.sentiment`` is off, none (and no crash) when the
classifier fails; file mode waits for the updates. Then the durable path on a real SQLite file (the update lands
on the stored utterance, the rebuilt backlog and the REST detail carry it) and one real recording through
``transcribe_file`` with the real :class:`server.sentiment.TextSentiment`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
from test_processor import EnergyVad, FakeRuntime, silence, speech_like

from server.asr.types import AsrResult
from server.compute.jobs import Priority, SentimentJob
from server.compute.runtime import UtteranceResult
from server.compute.workpool import WorkerPool
from server.export.formats import render, sentiment_counts
from server.rooms.durable import SessionRecorder
from server.rooms.history import SessionHistory
from server.rooms.memory import MemoryRoomHub
from server.settings import Settings
from server.speaker.clusters import AnonymousSpeakers
from server.store.database import Database
from server.store.sessions import SessionStore
from server.stream import events
from server.stream.processor import StreamProcessor


@dataclass(frozen=True)
class Mark:
    label: str
    score: float


class FakeSentiment:
    """``positive`` when the text has "good", ``negative`` with "bad", else ``neutral``; records each call."""

    languages = frozenset({"en", "ko"})

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay, self.fail = delay, fail
        self.calls: list[tuple[str, str | None, str]] = []

    def classify(self, text: str, language: str | None):
        self.calls.append((text, language, threading.current_thread().name))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("sentiment model exploded")
        if not text.strip() or language not in self.languages:
            return None
        if "good" in text:
            return Mark("positive", 0.91)
        if "bad" in text:
            return Mark("negative", 0.8)
        return Mark("neutral", 0.55)


class SentimentRuntime(FakeRuntime):
    """The fake runtime of test_processor with a sentiment classifier and scripted final texts."""

    def __init__(self, texts: list[str], sentiment: FakeSentiment | None, *, enabled: bool = True,
                 final_delay: float = 0.0) -> None:
        super().__init__(final_delay=final_delay)
        self.settings = Settings(partial_interval_s=1.0, min_enroll_speech_s=3.0, sentiment=enabled)
        self.texts = texts
        self.sentiment = sentiment
        self.kinds: list[str] = []

    def run(self, job):
        self.kinds.append(job.kind)
        if isinstance(job, SentimentJob):
            return self.sentiment.classify(job.text, job.language)
        return super().run(job)

    def finalize(self, job):
        i = self.n_final
        self.n_final += 1
        time.sleep(self.final_delay)
        emb = np.eye(192, dtype=np.float32)[0] if job.identify else None
        return UtteranceResult(AsrResult(self.texts[i], "en"), emb, profiles=self._profiles)


def stream(rt, n: int, *, block: bool = False) -> list[events.Event]:
    out: list[events.Event] = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), partials=False, block=block)
    for _ in range(n):
        for chunk in (speech_like(1.5), silence(1.0)):
            for i in range(0, chunk.size, 320):
                proc.push(chunk[i: i + 320])
    proc.close(timeout=10)
    rt.pool.close()
    return out


def test_sentiment_priority_is_after_finals_and_enrollments_before_partials():
    assert Priority.FINAL < Priority.ENROLL < Priority.SENTIMENT < Priority.PARTIAL
    assert not SentimentJob.optional and SentimentJob(text="hi", language="en").kind == "sentiment"


def test_each_final_with_text_is_followed_by_exactly_one_update():
    rt = SentimentRuntime(["a good day", "", "a bad day", "just words"], FakeSentiment())
    out = stream(rt, 4)
    finals = [(i, e) for i, e in enumerate(out) if e.type == "final"]
    updates = [(i, e) for i, e in enumerate(out) if e.type == "sentiment"]
    assert [f.text for _, f in finals] == ["a good day", "", "a bad day", "just words"]
    # two workers classify: updates of different utterances may come in either order (docs/protocol.md)
    assert sorted((u.utterance_id, u.turn, u.label, u.score) for _, u in updates) == [
        (0, 0, "positive", 0.91), (2, 0, "negative", 0.8), (3, 0, "neutral", 0.55)]
    at = {f.utterance_id: i for i, f in finals}
    assert all(i > at[u.utterance_id] for i, u in updates)  # every update after its final
    assert sorted(c[:2] for c in rt.sentiment.calls) == [("a bad day", "en"), ("a good day", "en"),
                                                         ("just words", "en")]
    assert all(c[2].startswith("model-") for c in rt.sentiment.calls)  # on the pool's workers
    assert rt.kinds.count("sentiment") == 3
    # what file mode returns: the finals with their sentiment attached
    marked = events.relabeled(out)
    assert [f.sentiment.label if f.sentiment else None for f in marked] == ["positive", None, "negative", "neutral"]
    assert events.EVENT_ADAPTER.validate_python(updates[0][1].model_dump(mode="json")) == updates[0][1]


def test_a_slow_classifier_never_delays_finals_and_close_waits_for_the_updates():
    rt = SentimentRuntime(["good one", "good two", "good three"], FakeSentiment(delay=0.4))
    out = stream(rt, 3, block=True)  # pushed faster than real time: every final is ready before any update
    kinds = [(e.type, getattr(e, "utterance_id", None)) for e in out if e.type in ("final", "sentiment")]
    assert kinds[0] == ("final", 0)
    assert kinds.index(("final", 1)) < kinds.index(("sentiment", 0))  # the next final did not wait
    assert sorted(kinds) == sorted([("final", i) for i in range(3)] + [("sentiment", i) for i in range(3)])


def test_no_updates_when_turned_off():
    rt = SentimentRuntime(["a good day", "a bad day"], FakeSentiment(), enabled=False)
    out = stream(rt, 2)
    assert [e.type for e in out].count("final") == 2 and not [e for e in out if e.type == "sentiment"]
    assert rt.sentiment.calls == [] and "sentiment" not in rt.kinds


def test_no_updates_without_a_classifier():
    rt = SentimentRuntime(["a good day"], None)
    out = stream(rt, 1)
    assert [e.type for e in out] == ["speech_started", "final"]


def test_a_failing_classifier_costs_the_update_not_the_stream(caplog):
    rt = SentimentRuntime(["a good day", "a bad day"], FakeSentiment(fail=True))
    out = stream(rt, 2)
    assert [e.type for e in out] == ["speech_started", "final", "speech_started", "final"]
    assert len(rt.sentiment.calls) == 2
    assert "sentiment failed" in caplog.text


def test_unsupported_language_gives_no_update():
    rt = SentimentRuntime(["bonne journée"], FakeSentiment())
    rt.sentiment.languages = frozenset({"ko"})
    out = stream(rt, 1)
    assert "sentiment" not in [e.type for e in out]


def test_a_closed_pool_costs_the_update_not_the_stream():
    rt = SentimentRuntime(["a good day"], FakeSentiment())
    out: list[events.Event] = []
    proc = StreamProcessor(rt, out.append, classifier=EnergyVad(), partials=False)
    pool = rt.pool

    def closing_sink(ev):  # the server shuts its pool down while a final is being delivered
        out.append(ev)
        if ev.type == "final":
            threading.Thread(target=pool.close).start()
            time.sleep(0.2)

    proc.sink = closing_sink
    for chunk in (speech_like(1.5), silence(1.0)):
        proc.push(chunk)
    proc.close(timeout=10)
    assert [e.type for e in out].count("final") == 1


def test_exports_render_finals_with_sentiment():
    f = events.Final(utterance_id=0, start=0.0, end=1.0, speaker="Ann", speaker_id="anon:1",
                     speaker_kind="anonymous", score=0.7, speaker_reason="cluster", text="good", language="en",
                     sentiment=events.SentimentMark(label="positive", score=0.9))
    plain = f.model_copy(update={"sentiment": None, "utterance_id": 1, "text": "meh"})
    assert '"sentiment": {\n        "label": "positive",\n        "score": 0.9\n      }' in render([f, plain], "json")
    for fmt in ("text", "srt", "vtt", "rttm"):
        assert "Ann" in render([f, plain], fmt)
    assert sentiment_counts([f, plain]) == {"positive": 1, "negative": 0, "neutral": 0, "scored": 1}


# -- durable: the update lands on the stored utterance ----------------------------------------------------------
def _final(i: int, text: str, turn: int = 0) -> events.Final:
    return events.Final(utterance_id=i, turn=turn, start=2.0 * i, end=2.0 * i + 1.5, speaker="Speaker 1",
                        speaker_id="anon:1", speaker_kind="anonymous", score=0.8, speaker_reason="cluster",
                        text=text, language="en")


def test_the_update_is_stored_and_the_rebuilt_backlog_carries_it(tmp_path):
    path = str(tmp_path / "callscribe.sqlite3")
    db = Database(path)
    store = SessionStore(db)
    hub = MemoryRoomHub(lambda room: AnonymousSpeakers(), lambda room: SessionRecorder(store, room))
    room = hub.get("standup")
    sent: list[dict] = []
    room.subscribe("viewer", sent.append, replay=False)
    room.join("call-1", "Ann", language="en")
    room.join("call-2", "Bo", language="en")
    room.publish(_final(0, "a good day"), "call-1", "Ann")
    room.publish(_final(0, "a bad day"), "call-2", "Bo")  # the same numbering in another call of the room
    room.publish(_final(1, "   "), "call-1", "Ann")
    room.publish(events.SentimentUpdate(utterance_id=0, label="negative", score=0.8), "call-2", "Bo")
    room.publish(events.SentimentUpdate(utterance_id=0, label="positive", score=0.91), "call-1", "Ann")
    room.publish(events.SentimentUpdate(utterance_id=7, label="neutral", score=0.5), "call-1", "Ann")  # no such
    assert [(m["type"], m["peer_id"]) for m in sent if m["type"] == "sentiment"] == [
        ("sentiment", "call-2"), ("sentiment", "call-1"), ("sentiment", "call-1")]
    assert sent[-1]["caller"] == "Ann" and room.recorder.failures == 0
    rows = store.utterances("call-1") + store.utterances("call-2")
    assert [(r.text, r.utterance_id, r.turn, r.sentiment_label, r.sentiment_score) for r in rows] == [
        ("a good day", 0, 0, "positive", 0.91), ("a bad day", 0, 0, "negative", 0.8)]
    # the live backlog has the marks too (a late viewer sees them)
    late: list[dict] = []
    room.subscribe("late", late.append)
    assert [m["sentiment"] for m in late if m["type"] == "final"] == [
        {"label": "positive", "score": 0.91}, {"label": "negative", "score": 0.8}]

    db.close()  # a restart: the backlog is rebuilt from the database
    db = Database(path)
    store = SessionStore(db)
    room = MemoryRoomHub(lambda room: AnonymousSpeakers(), lambda room: SessionRecorder(store, room)).get("standup")
    assert [(f.text, f.sentiment.label) for f in room.backlog] == [("a good day", "positive"),
                                                                   ("a bad day", "negative")]
    t = SessionHistory(store).transcript("call-1")
    assert [f.sentiment for f in t.finals] == [events.SentimentMark(label="positive", score=0.91)]
    assert store.set_sentiment("call-1", 5, 0, "neutral", 0.5) is False
    db.close()


def test_the_session_detail_carries_sentiment_and_counts(tmp_path):
    from signaling.sessions_api import session_detail

    db = Database(str(tmp_path / "callscribe.sqlite3"))
    store = SessionStore(db)
    recorder = SessionRecorder(store, "r")
    recorder.started("s", "Ann", "en")
    for i, text in enumerate(["a good day", "a bad day", "plain"]):
        recorder.final(_final(i, text), "s")
    recorder.sentiment(events.SentimentUpdate(utterance_id=0, label="positive", score=0.9), "s")
    recorder.sentiment(events.SentimentUpdate(utterance_id=1, label="negative", score=0.7), "s")
    body = session_detail(SessionHistory(store).transcript("s")).model_dump(mode="json")
    assert [u["sentiment"] for u in body["utterances"]] == [
        {"label": "positive", "score": 0.9}, {"label": "negative", "score": 0.7}, None]
    assert body["sentiment"] == {"positive": 1, "negative": 1, "neutral": 0, "scored": 2}
    assert body["speakers"][0]["sentiment"] == {"positive": 1, "negative": 1, "neutral": 0, "scored": 2}
    db.close()


# -- real: a recording through file mode with the real classifier ------------------------------------------------
def test_a_real_recording_gets_sentiment_on_its_finals(speech, model_cache, tmp_path):
    try:
        from server.sentiment import TextSentiment
    except ImportError as exc:
        pytest.skip(f"server.sentiment is not available yet: {exc}")
    from server.compute.runtime import SpeechRuntime
    from server.stream.filemode import transcribe_file

    clip = speech / "jfk.flac"  # "… ask not what your country can do for you …" (11 s, several finals)
    if not clip.is_file():
        pytest.skip(f"{clip} is absent")
    settings = Settings(model_cache_dir=model_cache, database=tmp_path / "p.sqlite3", split_speaker_turns=False,
                        sentiment=True)
    rt = SpeechRuntime.from_settings(settings)
    try:
        assert isinstance(rt.sentiment, TextSentiment)
        seen: list[events.Event] = []
        finals = transcribe_file(rt, clip, language="en", on_event=seen.append)
    finally:
        rt.close()
    spoken = [f for f in finals if f.text.strip()]
    assert spoken, "the recording gave no final with text"
    assert all(f.sentiment is not None and f.sentiment.label in ("positive", "negative", "neutral")
               and 0 <= f.sentiment.score <= 1 for f in spoken)
    kinds = [e.type for e in seen]
    assert kinds.count("sentiment") == len(spoken)
    assert kinds.index("final") < kinds.index("sentiment")


def test_workpool_runs_sentiment_before_partials_after_finals():
    order: list[str] = []
    gate = threading.Event()

    def execute(job):
        if job.kind == "hold":
            gate.wait(5)
        order.append(job.kind)

    pool = WorkerPool(execute, workers=1, max_queue=8)
    from server.compute.jobs import FinalJob

    class Hold(SentimentJob):
        @property
        def kind(self):
            return "hold"

    pool.submit(Hold(text="x", language="en"))
    time.sleep(0.05)
    pool.submit(SentimentJob(text="x", language="en"))
    pool.submit(FinalJob(audio=np.zeros(1, np.float32), identify=False, language=None, word_timestamps=False))
    gate.set()
    pool.close()
    assert order == ["hold", "final", "sentiment"]


def test_the_setting_and_the_serve_flag_turn_it_off(monkeypatch):
    from server.cli import _settings, build_parser

    parser = build_parser()
    assert Settings().sentiment is True
    assert _settings(parser.parse_args(["serve", "--no-sentiment"])).sentiment is False
    assert _settings(parser.parse_args(["transcribe", "x.wav", "--no-sentiment"])).sentiment is False
    monkeypatch.setenv("CALLSCRIBE_SENTIMENT", "false")
    assert _settings(parser.parse_args(["serve"])).sentiment is False
