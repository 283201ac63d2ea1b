"""Durable sessions: finals and relabels are in the database before they are sent, a room's backlog comes back
after a restart, and ``kill -9`` of a real server mid-conversation loses nothing that was delivered.

The crash test runs ``callscribe serve`` as a real process on loopback, streams a real recording over WebRTC
(aiortc), kills the process with SIGKILL after several finals, restarts it on the same database (SQLite file,
then a real PostgreSQL server) and reads every delivered final back from ``GET /api/sessions/{id}``, from each
export format and from a room viewer's rebuilt backlog.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from postgres_server import create_database
from serve_process import start_serve

from server.errors import SessionNotFound
from server.rooms.durable import SessionRecorder, purge_expired
from server.rooms.history import SessionHistory
from server.rooms.memory import MemoryRoomHub
from server.settings import Settings
from server.speaker.clusters import AnonymousSpeakers
from server.speaker.identity import SpeakerIdentity
from server.store.database import Database
from server.store.sessions import SessionStore
from server.stream.events import Final, SpeakerRelabeled


def _final(i: int, text: str, speaker_id: str | None = "anon:1", label: str = "Speaker 1") -> Final:
    return Final(utterance_id=i, start=2.0 * i, end=2.0 * i + 1.5, speaker=label, speaker_id=speaker_id,
                 speaker_kind="anonymous" if speaker_id else "unknown", score=0.8, speaker_reason="cluster",
                 text=text, language="en")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "callscribe.sqlite3")
    return create_database(request.getfixturevalue("postgres_url"))


def _hub(store: SessionStore) -> MemoryRoomHub:
    return MemoryRoomHub(lambda room: AnonymousSpeakers(), lambda room: SessionRecorder(store, room))


def test_finals_are_stored_before_they_are_sent_and_the_backlog_survives_a_restart(database_url, tmp_path):
    db = Database(database_url)
    store = SessionStore(db)
    room = _hub(store).get("standup")
    seen_in_db: list[int] = []

    def subscriber(message: dict) -> None:  # at the moment a final is sent, it is already in the database
        if message["type"] == "final":
            seen_in_db.append(len(store.utterances("call-1")))

    room.subscribe("viewer", subscriber, replay=False)
    audio = tmp_path / "call-1.flac"
    audio.write_bytes(b"fLaC")
    room.join("call-1", "Ann", language="en", audio_path=str(audio))
    room.publish(_final(0, "hello there"), "call-1", "Ann")
    room.publish(_final(1, "   "), "call-1", "Ann")  # noise the guards emptied: not kept
    room.publish(_final(2, "second line"), "call-1", "Ann")
    room.publish(SpeakerRelabeled.of("anon:1", SpeakerIdentity("anonymous", "anon:1", "Dana"), "named"), "")
    room.publish(_final(3, "after the rename", "anon:2", "Speaker 2"), "call-1", "Ann")
    assert seen_in_db == [1, 1, 2, 3]

    # a restart: a new hub on the same database rebuilds the backlog and continues the speaker numbers
    db.close()
    db = Database(database_url)
    store = SessionStore(db)
    assert store.end_open("server restart") == 1
    room = _hub(store).get("standup")
    assert [type(e).__name__ for e in room.backlog] == ["Final", "Final", "SpeakerRelabeled", "Final"]
    assert [e.text for e in room.backlog if isinstance(e, Final)] == ["hello there", "second line", "after the rename"]
    assert room.speakers.first_number == 3
    replay: list[dict] = []
    room.subscribe("late", replay.append)
    assert [m["type"] for m in replay] == ["final", "final", "speaker_relabeled", "final", "room"]
    assert all(m.get("backlog") for m in replay[:-1])

    history = SessionHistory(store)
    t = history.transcript("call-1")
    assert t.session.end_reason == "server restart" and t.session.caller == "Ann"
    assert [(f.speaker, f.text) for f in t.finals] == [("Dana", "hello there"), ("Dana", "second line"),
                                                       ("Speaker 2", "after the rename")]
    page, total = history.page(room="standup")
    assert total == 1 and page[0].session.id == "call-1"
    history.delete("call-1")
    assert not audio.exists()
    with pytest.raises(SessionNotFound):
        history.transcript("call-1")
    db.close()


def test_a_new_room_reads_its_backlog_off_the_event_loop_once_for_concurrent_opens(tmp_path):
    """``MemoryRoomHub.open``: the backlog read (here held up, as by a slow database) runs in a worker thread, the
    event loop goes on meanwhile, and three offers for the same new room get one room, read once."""
    db = Database(str(tmp_path / "callscribe.sqlite3"))
    store = SessionStore(db)
    first = _hub(store).get("standup")
    first.join("call-1", "Ann")
    first.publish(_final(0, "hello there"), "call-1", "Ann")
    release, reads = threading.Event(), []

    class SlowRecorder(SessionRecorder):
        def backlog(self):
            reads.append(threading.current_thread())
            assert release.wait(10)
            return super().backlog()

    hub = MemoryRoomHub(lambda room: AnonymousSpeakers(), lambda room: SlowRecorder(store, room))

    async def main():
        opens = [asyncio.create_task(hub.open("standup")) for _ in range(3)]
        for _ in range(500):  # bounded: until the worker thread is reading
            if reads:
                break
            await asyncio.sleep(0.01)
        ticks = 0
        for _ in range(10):  # the loop runs while the backlog is being read
            await asyncio.sleep(0.01)
            ticks += 1
        pending = not any(t.done() for t in opens)
        release.set()
        return await asyncio.gather(*opens), ticks, pending

    rooms, ticks, pending = asyncio.run(main())
    assert ticks == 10 and pending
    assert len(reads) == 1 and reads[0] is not threading.main_thread()
    assert rooms[0] is rooms[1] is rooms[2] is hub.get("standup")
    assert [e.text for e in rooms[0].backlog] == ["hello there"]
    db.close()


def test_retention_deletes_old_sessions_and_old_audio(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    store = SessionStore(db)
    now = time.time()
    files = {}
    for sid, age_days in (("old", 40), ("middle", 10), ("new", 1)):
        files[sid] = tmp_path / f"{sid}.flac"
        files[sid].write_bytes(b"fLaC")
        store.start(sid, "r", started_at=now - age_days * 86_400)
        store.set_audio(sid, str(files[sid]))
        store.end(sid, "deleted by client", ended_at=now - age_days * 86_400 + 60)
    store.start("live", "r", started_at=now - 50 * 86_400)  # a call still going on is never purged
    settings = Settings(transcript_retention_days=30, audio_retention_days=7, database=tmp_path / "x.sqlite3")
    purged = purge_expired(store, settings, now)
    assert purged.sessions == 1
    assert not files["old"].exists() and not files["middle"].exists() and files["new"].exists()
    with pytest.raises(SessionNotFound):
        store.get("old")
    assert store.get("middle").audio_path is None and store.get("new").audio_path == str(files["new"])
    assert store.get("live").ended_at is None
    db.close()


@pytest.mark.parametrize("fmt", ["flac", "opus"])
def test_a_recording_survives_a_killed_process(fmt, tmp_path):
    """The recorder writes as audio arrives: a process killed mid-call leaves a file that decodes to nearly all
    of the audio written so far (the last I/O buffer at most is lost)."""
    from server.audio.recording import SUFFIX

    path = tmp_path / f"call{SUFFIX[fmt]}"
    code = (
        "import os, numpy as np\n"
        "from server.audio.recording import AudioRecorder\n"
        f"r = AudioRecorder({str(path)!r}, {fmt!r})\n"
        "t = np.arange(16000 * 12) / 16000\n"
        "x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2).astype(np.float32)\n"
        "for i in range(0, x.size, 320):\n"
        "    r.write(x[i:i + 320])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert done.returncode == -signal.SIGKILL
    from server.audio.ingest import load_audio

    audio = load_audio(path)
    assert audio.size / 16000 > 10.0  # of 12 s written
    assert 0.1 < float(np.abs(audio).max()) < 0.35


# -- the crash test: a real server process, killed with SIGKILL ---------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.status, resp.read()


async def _talk_then_kill(url: str, audio: np.ndarray, room: str, finals_wanted: int, proc) -> list[dict]:
    """Stream ``audio`` as a call; once ``finals_wanted`` finals have arrived, SIGKILL the server while the
    caller is still talking. Returns the finals delivered before the kill."""
    from signaling.client import CallSession

    call = CallSession(url, ice_servers=[], room=room, name="Crash Tester", speed=1.0)
    await call.connect()
    try:
        call.track.play(audio)
        deadline = time.monotonic() + 240
        while len([f for f in call.result.finals if f["text"].strip()]) < finals_wanted:
            assert time.monotonic() < deadline, "not enough finals from the server"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # mid-conversation: no shutdown handler runs
        delivered = [dict(f) for f in call.result.finals if f["text"].strip()]
        proc.wait(10)
        return delivered
    finally:
        await call.pc.close()  # the server is gone: nothing to hang up


async def _backlog(url: str, room: str) -> list[dict]:
    from signaling.client import CallSession

    async with CallSession(url, ice_servers=[], room=room, listen_only=True) as viewer:
        deadline = time.monotonic() + 20
        while not any(m.get("type") == "room" for m in viewer.result.messages):
            assert time.monotonic() < deadline, "the viewer got no room state"
            await asyncio.sleep(0.1)
        return [m for m in viewer.result.messages if m.get("type") == "final" and m.get("backlog")]


@pytest.mark.speech
def test_kill_9_mid_conversation_loses_no_delivered_final(database_url, tmp_path, model_cache, speech):
    from server.audio.ingest import load_audio

    audio = load_audio(speech / "pyannote_sample.wav")  # a real two-person conversation, about 30 s
    env = {**os.environ, "CALLSCRIBE_DATABASE": database_url, "CALLSCRIBE_MODEL_CACHE_DIR": str(model_cache),
           "CALLSCRIBE_LANGUAGE": "en", "CALLSCRIBE_RECORD_AUDIO": "true",
           "CALLSCRIBE_RECORDINGS_DIR": str(tmp_path / "recordings")}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_serve(env, port)
    try:
        delivered = asyncio.run(_talk_then_kill(url, audio, "crash-room", 3, proc))
    finally:
        proc.kill()
        proc.wait(10)
    assert len(delivered) >= 3 and proc.returncode == -signal.SIGKILL

    proc = start_serve(env, port)
    try:
        _, body = _get(port, "/api/sessions?room=crash-room")
        page = json.loads(body)
        assert page["total"] == 1
        session = page["sessions"][0]
        assert session["end_reason"] == "server restart" and session["caller"] == "Crash Tester"
        _, body = _get(port, f"/api/sessions/{session['id']}")
        stored = json.loads(body)["utterances"]
        key = lambda f: (round(f["start"], 2), round(f["end"], 2), f["text"])  # noqa: E731
        assert {key(f) for f in delivered} <= {key(f) for f in stored}
        for fmt in ("json", "srt", "vtt", "txt"):
            status, text = _get(port, f"/api/sessions/{session['id']}/transcript?format={fmt}")
            assert status == 200
            for f in delivered:
                assert f["text"].strip() in text.decode(), (fmt, f["text"])
        _, rttm = _get(port, f"/api/sessions/{session['id']}/transcript?format=rttm")
        assert len([line for line in rttm.decode().splitlines() if line.startswith("SPEAKER")]) >= len(delivered)
        backlog = asyncio.run(_backlog(url, "crash-room"))
        assert {key(f) for f in delivered} <= {key(f) for f in backlog}
        assert session["has_audio"]
        status, flac = _get(port, f"/api/sessions/{session['id']}/audio")
        assert status == 200 and flac[:4] == b"fLaC"
    finally:
        proc.terminate()
        proc.wait(30)
