"""The durable store (sessions, utterances, relabels, profile history) on a real SQLite file and a real PostgreSQL
server (tests/postgres_server.py): every test runs on both, and both must behave the same."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from postgres_server import create_database
from sqlalchemy import func, insert, select

from server.errors import ProfileConflict, ProfileNotFound, SessionNotFound, StoreError
from server.speaker.embedding import MODEL_ID, normalise
from server.store.database import MIGRATIONS, Database
from server.store.profiles import ProfileStore
from server.store.schema import enrollments, profiles, relabels, utterances
from server.store.sessions import PurgeResult, RelabelRecord, SessionRecord, SessionStore, UtteranceRecord

T0 = 1_767_225_600.123456  # a Unix time with microseconds: a 4-byte REAL would round it by minutes


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A fresh database: a SQLite file, or a new database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "callscribe.sqlite3")
    return create_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(url):
    d = Database(url, timeout_s=10)
    yield d
    d.close()


@pytest.fixture
def store(db):
    return SessionStore(db)


@pytest.fixture
def voices(db):
    return ProfileStore(db)


def vec(seed: int) -> np.ndarray:
    return normalise(np.random.default_rng(seed).standard_normal(192).astype(np.float32))


def utt(session_id, seq, *, room="r1", start=0.0, text="hello", speaker="Speaker 1", speaker_id="anon:1",
        kind="anonymous", words=None, created_at=T0, score=0.7, language="en") -> UtteranceRecord:
    return UtteranceRecord(session_id, room, seq, start, start + 1.5, speaker, speaker_id, kind, score, text,
                           language, words, created_at)


def relabel(seq, *, room="r1", session_id=None, from_id="anon:1", speaker="Alice", speaker_id="profile:1",
            kind="profile", reason="named", created_at=T0) -> RelabelRecord:
    return RelabelRecord(room, seq, session_id, from_id, speaker, speaker_id, kind, reason, created_at)


def count(db, table, *where) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


# -- voice profiles -----------------------------------------------------------------------------------------------
def test_profiles_crud_is_case_insensitive(voices):
    alice = voices.enroll("Alice", vec(1), 5.0, "a.wav")
    voices.enroll("  bob ", vec(2), 4.0, "b.wav")
    assert [p.name for p in voices.list()] == ["Alice", "bob"]
    assert voices.get("ALICE").id == alice.id and voices.get("Bob").name == "bob"
    assert np.allclose(voices.get("alice").embedding, vec(1), atol=1e-6)
    extended = voices.enroll("aLiCe", vec(3), 5.0, "c.wav")  # appends to Alice, keeps her spelling
    assert (extended.id, extended.name, extended.enrollments, extended.speech_s) == (alice.id, "Alice", 2, 10.0)
    with pytest.raises(ProfileConflict):
        voices.enroll("ALICE", vec(2), 3.0, "x", append=False)
    with pytest.raises(ProfileConflict):
        voices.rename("BOB", "alice")
    assert voices.rename("alice", "ALICE").name == "ALICE"  # a change of case alone is a rename
    assert voices.rename("alice", "Alicia").id == alice.id
    with pytest.raises(ProfileNotFound):
        voices.rename("Carol", "Dave")
    voices.delete("BOB")
    with pytest.raises(ProfileNotFound):
        voices.delete("bob")
    with pytest.raises(ProfileNotFound):
        voices.get("bob")
    assert [(p.name, p.enrollments) for p in voices.list()] == [("Alicia", 2)]


def test_names_fold_ascii_only_on_both_dialects(voices):
    """SQLite's NOCASE folds A-Z only; PostgreSQL gets the same rule (lower(name COLLATE "C"))."""
    voices.enroll("Éva", vec(1), 3.0, "a")
    voices.enroll("éva", vec(2), 3.0, "b")  # a different name: É is not an ASCII letter
    voices.enroll("ÉVA", vec(3), 3.0, "c")  # = "Éva" (only V, A fold)
    assert [(p.name, p.enrollments) for p in voices.list()] == [("Éva", 2), ("éva", 1)]
    assert voices.get("éVa").name == "éva"


def test_the_database_itself_keeps_names_unique_case_insensitively(db, voices):
    voices.enroll("alice", vec(1), 3.0, "a")
    with pytest.raises(StoreError), db.write() as conn:  # a writer that skips ProfileStore's own check
        conn.execute(insert(profiles).values(name="ALICE", model=MODEL_ID, created_at=T0, updated_at=T0))
    assert [p.name for p in voices.list()] == ["alice"]


def test_profile_history(voices):
    alice = voices.enroll("Alice", vec(1), 3.0, "a.wav")
    voices.enroll("alice", vec(2), 2.5, "stream")
    voices.rename("ALICE", "Alicia")
    voices.enroll("Bob", vec(3), 4.0, "b.wav")
    voices.delete("alicia")
    events = voices.history("Alicia")  # gone, found by a name it had
    assert [(e.profile_id, e.name, e.action, e.speech_s, e.detail) for e in events] == [
        (alice.id, "Alice", "created", 3.0, {"source": "a.wav"}),
        (alice.id, "Alice", "extended", 2.5, {"source": "stream"}),
        (alice.id, "Alicia", "renamed", None, {"from": "Alice", "to": "Alicia"}),
        (alice.id, "Alicia", "deleted", 5.5, {"enrollments": 2}),
    ]
    assert voices.history("alice") == events == voices.history(alice.id)
    assert all(abs(e.created_at - time.time()) < 60 for e in events)
    assert [e.action for e in voices.history("bob")] == ["created"]
    with pytest.raises(ProfileNotFound):
        voices.history("Carol")
    with pytest.raises(ProfileNotFound):
        voices.history(999)
    # failed writes record nothing
    with pytest.raises(ProfileConflict):
        voices.enroll("BOB", vec(4), 1.0, "x", append=False)
    with pytest.raises(ValueError):
        voices.enroll("Bob", np.zeros(3, np.float32), 1.0, "x")
    assert len(voices.history("Bob")) == 1


def test_profile_ids_are_never_reused(voices):
    """History links events by profile id, so a deleted profile's id must not come back (SQLite would reuse it)."""
    voices.enroll("Alice", vec(1), 3.0, "a")
    bob = voices.enroll("Bob", vec(2), 3.0, "b")
    voices.delete("Bob")
    carol = voices.enroll("Carol", vec(3), 3.0, "c")
    assert carol.id > bob.id
    assert [e.action for e in voices.history(carol.id)] == ["created"]
    assert [e.action for e in voices.history(bob.id)] == ["created", "deleted"]


def test_profile_writes_from_threads(voices):
    def work(i):
        voices.enroll(f"speaker {i % 4}", vec(i), 1.0, f"{i}.wav")
        return len(voices.list())

    with ThreadPoolExecutor(8) as pool:
        assert all(n >= 1 for n in pool.map(work, range(40)))
    assert sorted((p.name, p.enrollments) for p in voices.list()) == [(f"speaker {i}", 10) for i in range(4)]
    for i in range(4):
        assert [e.action for e in voices.history(f"speaker {i}")] == ["created"] + ["extended"] * 9


def migrations_upto(tmp_path, last):
    dest = tmp_path / f"migrations_{last}"
    shutil.copytree(MIGRATIONS, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for script in (dest / "versions").glob("[0-9]*.py"):
        if script.name.split("_")[0] > last:
            script.unlink()
    return dest


def test_a_0001_database_migrates_to_head_keeping_its_profiles(url, tmp_path):
    old = Database(url, migrations=migrations_upto(tmp_path, "0001"))
    assert old.revision() == "0001"
    with old.write() as conn:  # as callscribe at 0001 wrote them (that code had no history to write)
        for pid, name in ((1, "Alice"), (2, "Bob")):
            conn.execute(insert(profiles).values(id=pid, name=name, model=MODEL_ID, created_at=T0, updated_at=T0))
            conn.execute(insert(enrollments).values(profile_id=pid, embedding=vec(pid).astype("<f4").tobytes(),
                                                    speech_s=3.0, source="a", created_at=T0))
    old.close()
    db = Database(url)
    try:
        assert db.revision() == "0003"
        voices = ProfileStore(db)
        assert [(p.id, p.name, p.enrollments, p.created_at) for p in voices.list()] == [
            (1, "Alice", 1, T0), (2, "Bob", 1, T0)]
        assert voices.history("Alice") == []  # enrolled before the history existed
        voices.rename("bob", "Robert")
        assert [e.action for e in voices.history(2)] == ["renamed"]
        sessions = SessionStore(db)
        sessions.start("s1", "r1", started_at=T0)
        assert sessions.get("s1").started_at == T0
    finally:
        db.close()
    again = Database(url)  # at head: opening changes nothing
    assert again.revision() == "0003" and len(ProfileStore(again).list()) == 2
    again.close()


# -- sessions -----------------------------------------------------------------------------------------------------
def test_start_update_end_get_list(store):
    store.start("a", "r1", caller="Ann", language="en", started_at=T0)
    store.start("b", "r2", started_at=T0 + 10)
    store.start("c", "r1", caller="Cid", started_at=T0 + 20)
    for seq in (1, 2, 3):
        store.add_utterance(utt("a", seq))
    store.add_utterance(utt("c", 4))
    a = store.get("a")
    assert a == SessionRecord("a", "r1", "Ann", "en", T0, None, None, None, 3)
    store.update("b", caller="Bea")
    store.end("a", "hangup", ended_at=T0 + 5)
    store.end("a", "idle", ended_at=T0 + 99)  # the first end wins
    store.set_audio("a", "/rec/a.flac")
    a = store.get("a")
    assert (a.ended_at, a.end_reason, a.audio_path, a.utterances) == (T0 + 5, "hangup", "/rec/a.flac", 3)
    store.end("b", "hangup")
    assert abs(store.get("b").ended_at - time.time()) < 60 and store.get("b").caller == "Bea"
    store.set_audio("a", None)
    assert store.get("a").audio_path is None

    page, total = store.list()
    assert ([s.id for s in page], total) == (["c", "b", "a"], 3)  # newest first
    assert [s.utterances for s in page] == [1, 0, 3]
    page, total = store.list(room="r1")
    assert ([s.id for s in page], total) == (["c", "a"], 2)
    page, total = store.list(limit=1, offset=1)
    assert ([s.id for s in page], total) == (["b"], 3)
    assert store.list(room="nowhere") == ([], 0)

    for call in (lambda: store.get("zz"), lambda: store.update("zz", caller="x"), lambda: store.end("zz", "x"),
                 lambda: store.set_audio("zz", "p"), lambda: store.delete("zz")):
        with pytest.raises(SessionNotFound):
            call()
    with pytest.raises(StoreError):  # ids are unique
        store.start("a", "r1")
    with pytest.raises(StoreError):  # an utterance needs its session (foreign keys are enforced)
        store.add_utterance(utt("zz", 9))
    with pytest.raises(StoreError):
        store.add_relabel(relabel(9, session_id="zz"))


def test_utterances_round_trip_exactly_and_by_seq(store):
    store.start("s", "r1", started_at=T0)
    words = [{"start": 0.25, "end": 0.5, "word": " 안녕", "probability": 0.875},
             {"start": 0.5, "end": 1.125, "word": " hi", "probability": np.float32(0.5)}]
    store.add_utterance(utt("s", 3, start=4.0, text="third"))
    store.add_utterance(utt("s", 1, start=0.25, text="안녕 hi", words=words, created_at=T0 + 0.5))
    store.add_utterance(utt("s", 2, start=np.float32(2.0), speaker="unknown", speaker_id=None, kind="unknown",
                            score=None, language=None, text="two"))
    got = store.utterances("s")
    assert [u.seq for u in got] == [1, 2, 3]
    assert got[0] == UtteranceRecord("s", "r1", 1, 0.25, 1.75, "Speaker 1", "anon:1", "anonymous", 0.7, "안녕 hi",
                                     "en", [{**words[0]}, {**words[1], "probability": 0.5}], T0 + 0.5)
    assert (got[1].speaker_id, got[1].score, got[1].language, got[1].words, got[1].start) == (None, None, None, None,
                                                                                              2.0)
    assert store.utterances("unknown-session") == []


def test_relabels_room_log_and_last_seq(store):
    """One room, two sessions, relabels between finals: the log replays them in exactly the published order."""
    store.start("s1", "r1", started_at=T0)
    store.start("s2", "r1", started_at=T0 + 1)
    store.start("o", "other", started_at=T0)
    published = [utt("s1", 1), utt("s2", 2), relabel(3, session_id="s1", from_id="anon:1"), utt("s1", 4),
                 relabel(5, from_id="anon:2", speaker="Speaker 1", speaker_id="anon:1", kind="anonymous",
                         reason="merged"),
                 utt("s2", 6), utt("s1", 7), relabel(8, session_id="s2")]
    for i, rec in enumerate(reversed(published)):  # stored out of order, e.g. from two threads
        (store.add_utterance if isinstance(rec, UtteranceRecord) else store.add_relabel)(rec)
        store.add_utterance(utt("o", 100 + i, room="other"))
    assert store.room_log("r1", 100) == published
    assert store.room_log("r1", 3) == published[3:]  # the last 3 finals (4, 6, 7) and the relabels after 4
    assert [r.seq for r in store.room_log("r1", 3)] == [4, 5, 6, 7, 8]
    assert [r.seq for r in store.room_log("r1", 1)] == [7, 8]
    assert store.room_log("r1", 0) == [] and store.room_log("nobody", 10) == []
    assert [r.seq for r in store.relabels("r1")] == [3, 5, 8]
    assert store.relabels("other") == []
    assert store.last_seq("r1") == 8  # a relabel is the room's latest
    assert store.last_seq("other") == 107 and store.last_seq("new room") == 0
    assert [u.seq for u in store.utterances("s2")] == [2, 6]


def test_delete_cascades_to_utterances_and_detaches_relabels(db, store):
    store.start("s1", "r1", started_at=T0)
    store.start("s2", "r1", started_at=T0)
    store.add_utterance(utt("s1", 1))
    store.add_utterance(utt("s2", 2))
    store.add_relabel(relabel(3, session_id="s1"))
    store.set_audio("s1", "/rec/s1.flac")
    assert store.delete("s1") == "/rec/s1.flac"
    assert count(db, utterances, utterances.c.session_id == "s1") == 0
    assert count(db, utterances) == 1
    assert store.relabels("r1") == [relabel(3, session_id=None)]  # the room keeps it
    assert store.delete("s2") is None
    with pytest.raises(SessionNotFound):
        store.delete("s1")
    assert store.list() == ([], 0) and count(db, utterances) == 0


def test_purge_retention(db, store):
    now = T0 + 100 * 86400
    for sid, started, ended, audio in (("old", T0, T0 + 60, "/rec/old.flac"), ("old-noaudio", T0 + 1, T0 + 60, None),
                                       ("running", T0 + 2, None, "/rec/running.flac"),
                                       ("mid", now - 20 * 86400, now - 20 * 86400 + 60, "/rec/mid.flac"),
                                       ("new", now - 3600, now - 3000, "/rec/new.flac")):
        store.start(sid, "r1", started_at=started)
        store.add_utterance(utt(sid, len(sid), created_at=started + 1))
        if ended is not None:
            store.end(sid, "hangup", ended_at=ended)
        if audio:
            store.set_audio(sid, audio)
    store.add_relabel(relabel(50, session_id="old", created_at=T0 + 5))  # orphaned by the purge: goes
    store.add_relabel(relabel(51, session_id=None, created_at=T0 + 6))  # already orphaned and old: goes
    store.add_relabel(relabel(52, session_id="running", created_at=T0 + 7))  # its session is alive: stays
    store.add_relabel(relabel(53, session_id=None, created_at=now - 10))  # recent: stays

    result = store.purge(sessions_before=now - 30 * 86400, audio_before=now - 7 * 86400)
    assert result == PurgeResult(2, ["/rec/old.flac", "/rec/mid.flac"])
    assert sorted(s.id for s in store.list()[0]) == ["mid", "new", "running"]
    assert store.get("mid").audio_path is None and store.get("mid").utterances == 1  # the transcript stays
    assert store.get("new").audio_path == "/rec/new.flac"
    assert store.get("running").audio_path == "/rec/running.flac"  # still recording
    assert [r.seq for r in store.relabels("r1")] == [52, 53]
    assert count(db, utterances) == 3
    assert store.purge(sessions_before=now - 30 * 86400, audio_before=now - 7 * 86400) == PurgeResult(0, [])
    assert store.purge() == PurgeResult(0, [])


def test_end_open_after_a_crash(store):
    store.start("talked", "r1", started_at=T0)
    store.add_utterance(utt("talked", 1, created_at=T0 + 30))
    store.add_utterance(utt("talked", 2, created_at=T0 + 45.5))
    store.start("silent", "r1", started_at=T0 + 10)
    store.start("done", "r1", started_at=T0)
    store.end("done", "hangup", ended_at=T0 + 20)
    assert store.end_open() == 2
    assert (store.get("talked").ended_at, store.get("talked").end_reason) == (T0 + 45.5, "server restart")
    assert (store.get("silent").ended_at, store.get("silent").end_reason) == (T0 + 10, "server restart")
    assert (store.get("done").ended_at, store.get("done").end_reason) == (T0 + 20, "hangup")
    assert store.end_open("again") == 0


def test_concurrent_writers_and_readers(db, store):
    """Calls writing at once from threads (as rooms do off the event loop) while readers page through."""
    rooms, per_call = 4, 25
    seqs = {f"room{r}": iter(range(1, 10_000)) for r in range(rooms)}
    lock = threading.Lock()

    def next_seq(room):
        with lock:
            return next(seqs[room])

    def call(i):
        room, sid = f"room{i % rooms}", f"call-{i}"
        store.start(sid, room, caller=f"caller {i}", started_at=T0 + i)
        for n in range(per_call):
            store.add_utterance(utt(sid, next_seq(room), room=room, text=f"{i}:{n}", created_at=T0 + i + n))
            if n % 10 == 9:
                store.add_relabel(relabel(next_seq(room), room=room, session_id=sid))
        store.end(sid, "hangup", ended_at=T0 + i + per_call)
        return i

    stop = threading.Event()
    seen: list[list[int]] = [[], []]
    failures = []

    def reader(totals):
        try:
            while not stop.is_set():
                page, total = store.list(limit=5)
                totals.append(total)
                assert len(page) <= 5 and all(s.utterances <= per_call for s in page)
        except (AssertionError, StoreError) as exc:  # reported by the test thread below
            failures.append(exc)

    readers = [threading.Thread(target=reader, args=(totals,)) for totals in seen]
    for t in readers:
        t.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            assert sorted(pool.map(call, range(16))) == list(range(16))
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=30)
    assert failures == []
    assert all(totals and totals == sorted(totals) for totals in seen)  # each reader: totals never go backwards
    page, total = store.list(limit=100)
    assert total == 16 and all(s.utterances == per_call and s.end_reason == "hangup" for s in page)
    for i in range(16):
        assert [u.text for u in store.utterances(f"call-{i}")] == [f"{i}:{n}" for n in range(per_call)]
    for r in range(rooms):
        log = store.room_log(f"room{r}", 10_000)
        assert [x.seq for x in log] == list(range(1, 4 * (per_call + 2) + 1))  # every seq once, in order
        assert store.last_seq(f"room{r}") == 4 * (per_call + 2)
    assert count(db, relabels) == 16 * 2


def test_sentiment_lands_on_the_utterance_it_names(store):
    """Live sentiment (issue 12): ``set_sentiment`` finds the final by the stream's numbering within its session."""
    store.start("s1", "r1")
    store.start("s2", "r1")
    store.add_utterance(UtteranceRecord("s1", "r1", 1, 0.0, 1.5, "Ann", "anon:1", "anonymous", 0.7, "a good day", "en",
                                        None, T0, utterance_id=0, turn=0))
    store.add_utterance(UtteranceRecord("s1", "r1", 2, 2.0, 3.5, "Bo", "anon:2", "anonymous", 0.7, "second turn", "en",
                                        None, T0, utterance_id=0, turn=1))
    store.add_utterance(UtteranceRecord("s2", "r1", 3, 0.0, 1.5, "Cy", "anon:3", "anonymous", 0.7, "other call", "en",
                                        None, T0, utterance_id=0, turn=0))
    assert store.set_sentiment("s1", 0, 1, "negative", 0.8125) is True
    assert store.set_sentiment("s1", 0, 0, "positive", 0.9) is True
    assert store.set_sentiment("s1", 9, 0, "neutral", 0.5) is False
    got = [(r.session_id, r.utterance_id, r.turn, r.sentiment_label, r.sentiment_score)
           for r in store.room_log("r1", 10)]
    assert got == [("s1", 0, 0, "positive", 0.9), ("s1", 0, 1, "negative", 0.8125), ("s2", 0, 0, None, None)]
