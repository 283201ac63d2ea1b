"""The ``callscribe`` command as a user runs it (subprocess, real models, real SQLite file)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from server.audio.ingest import load_audio

from conftest import write_wav


@pytest.fixture
def cli(tmp_path, model_cache):
    inherited = {k: v for k, v in os.environ.items() if k not in ("CALLSCRIBE_API_KEY", "CALLSCRIBE_TOKEN_SECRET")}
    env = {**inherited, "CALLSCRIBE_DATABASE": str(tmp_path / "profiles.sqlite3"),
           "CALLSCRIBE_MODEL_CACHE_DIR": str(model_cache)}

    def run(*args, timeout=300, extra_env=None):
        proc = subprocess.run([sys.executable, "-m", "server.cli", *map(str, args)], env={**env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=timeout)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    run.db = tmp_path / "profiles.sqlite3"
    return run


@pytest.mark.parametrize("content,message", [(None, "no such file"), (b"", "empty"),
                                             (b"<html>not audio</html>" * 40, "not a readable audio file")])
def test_transcribe_bad_input(cli, tmp_path, content, message):
    path = tmp_path / "input.wav"
    if content is not None:
        path.write_bytes(content)
    proc = cli("transcribe", path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("callscribe: error:") and message in proc.stderr


def test_usage_error_exit_code(cli):
    assert cli("transcribe").returncode == 2
    assert cli("transcribe", "x.wav", "--format", "docx").returncode == 2


@pytest.mark.speech
def test_transcribe_json(cli, speech):
    proc = cli("transcribe", speech / "jfk.flac", "--format", "json", "--words")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    utts = body["utterances"]
    assert len(utts) >= 2
    for u in utts:
        assert {"start", "end", "speaker", "text"} <= u.keys()
        assert 0 <= u["start"] < u["end"] <= 11.1 and u["speaker"] in ("Speaker 1", "unknown")
        assert u["words"] and u["start"] - 0.5 <= u["words"][0]["start"] <= u["words"][-1]["end"] <= u["end"] + 0.6
    assert "country" in " ".join(u["text"] for u in utts).lower()
    assert "Speaker 1" in {u["speaker"] for u in utts}  # one voice, nobody enrolled: one anonymous speaker


@pytest.mark.speech
def test_seed_flow_enroll_two_then_transcribe_chat(cli, speech, tmp_path):
    d = speech / "harvard_2spk"
    assert cli("enroll", "Alice", *[d / f"spk1_snt{i}.wav" for i in (1, 2, 3)]).returncode == 0
    assert cli("enroll", "Bob", *[d / f"spk2_snt{i}.wav" for i in (1, 2, 3)]).returncode == 0
    listing = cli("profiles", "list").stdout
    assert "Alice" in listing and "Bob" in listing
    gap = np.zeros(12000, np.float32)
    conv = write_wav(tmp_path / "c.wav", np.concatenate([load_audio(d / "spk1_snt4.wav"), gap,
                                                         load_audio(d / "spk2_snt4.wav"), gap]))
    proc = cli("transcribe", conv, "--language", "en")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[00:0") and "] Alice: " in lines[0]
    assert "] Bob: " in lines[1]
    srt = cli("transcribe", conv, "--format", "srt").stdout
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "Bob:" in srt
    vtt = cli("transcribe", conv, "--format", "vtt").stdout
    assert vtt.startswith("WEBVTT\n\n") and "<v Alice>" in vtt
    # rename, delete, errors on unknown names
    assert cli("profiles", "rename", "alice", "Alicia").returncode == 0
    bad = cli("profiles", "delete", "Carol")
    assert bad.returncode == 1 and "no voice profile named 'Carol'" in bad.stderr
    assert cli("profiles", "delete", "Bob").returncode == 0
    assert [r[0] for r in sqlite3.connect(cli.db).execute("SELECT name FROM profiles")] == ["Alicia"]


@pytest.mark.speech
def test_enroll_with_too_little_speech_stores_nothing(cli, speech):
    proc = cli("enroll", "Shorty", speech / "harvard_2spk" / "spk2_snt2.wav")
    assert proc.returncode == 1 and "too little speech" in proc.stderr
    assert "no voice profiles" in cli("profiles", "list").stdout


@pytest.mark.speech
def test_enroll_with_a_bad_file_stores_nothing(cli, speech, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"junk" * 100)
    proc = cli("enroll", "Alice", speech / "jfk.flac", bad)
    assert proc.returncode == 1 and "bad.wav" in proc.stderr
    assert "no voice profiles" in cli("profiles", "list").stdout


@pytest.mark.speech
def test_locked_database_is_a_clear_error(cli, speech):
    assert cli("profiles", "list").returncode == 0  # creates the database
    locker = sqlite3.connect(cli.db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        proc = cli("enroll", "Alice", speech / "jfk.flac")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert proc.returncode == 1 and "busy" in proc.stderr
    assert "no voice profiles" in cli("profiles", "list").stdout


def test_unusable_database_path(cli, tmp_path):
    (tmp_path / "dir.sqlite3").mkdir()
    proc = cli("profiles", "list", "--database", tmp_path / "dir.sqlite3")
    assert proc.returncode == 1 and "profile database" in proc.stderr


def test_reserved_name(cli, tmp_path):
    proc = cli("enroll", "unknown", tmp_path / "whatever.wav")
    assert proc.returncode == 1 and "reserved" in proc.stderr


def test_call_unreachable_server(cli, speech):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = cli("call", speech / "jfk.flac", "--server", f"http://127.0.0.1:{port}", "--ice-host", "127.0.0.1",
               timeout=120)
    assert proc.returncode == 1 and "cannot reach" in proc.stderr


def test_call_bad_enroll_argument(cli, speech):
    proc = cli("call", speech / "jfk.flac", "--server", "http://127.0.0.1:9", "--enroll", "Alice")
    assert proc.returncode == 1 and "NAME=AUDIO" in proc.stderr


# --- transcribe --diarize / --format rttm ---------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["--diarize", "--min-speakers", "3", "--max-speakers", "2"], "min_speakers (3) is larger than max_speakers (2)"),
    (["--diarize", "--num-speakers", "0"], "num_speakers must be a whole number ≥ 1"),
    (["--diarize", "--num-speakers", "4", "--max-speakers", "3"], "num_speakers (4) is above max_speakers (3)"),
    (["--num-speakers", "2"], "need --diarize"),
])
def test_diarize_bad_speaker_counts(cli, tmp_path, args, message):
    path = write_wav(tmp_path / "x.wav", np.zeros(16000, np.float32))
    proc = cli("transcribe", path, *args)
    assert proc.returncode == 1
    assert proc.stderr.startswith("callscribe: error:") and message in proc.stderr, proc.stderr


@pytest.mark.speech
def test_transcribe_diarize_rttm_and_json(cli, speech, tmp_path):
    from pyannote.database.util import load_rttm

    out = tmp_path / "sample.rttm"
    proc = cli("transcribe", speech / "pyannote_sample.wav", "--diarize", "--format", "rttm", "--language", "en",
               "-o", out)
    assert proc.returncode == 0, proc.stderr
    parsed = load_rttm(out)
    assert list(parsed) == ["pyannote_sample"]
    assert sorted(parsed["pyannote_sample"].labels()) == ["Speaker_1", "Speaker_2"]
    body = json.loads(cli("transcribe", speech / "pyannote_sample.wav", "--diarize", "--num-speakers", "2",
                          "--format", "json", "--language", "en").stdout)
    assert body["diarization"] == {"num_speakers": 2}
    assert {(s["speaker_kind"], s["speaker_id"]) for s in body["speakers"]} == {("anonymous", "anon:1"),
                                                                               ("anonymous", "anon:2")}
    assert sum(s["turns"] for s in body["speakers"]) == len(body["utterances"])


@pytest.mark.speech
def test_transcribe_rttm_without_diarize(cli, speech):
    proc = cli("transcribe", speech / "jfk.flac", "--format", "rttm")
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()]
    assert len(lines) >= 2 and all(len(f) == 10 and f[:3] == ["SPEAKER", "jfk", "1"] for f in lines)
    assert len({f[7] for f in lines}) == 1  # one speaker, whatever the streaming path calls an unenrolled voice
    assert all(float(f[3]) >= 0 and float(f[4]) > 0 for f in lines)


@pytest.mark.speech
def test_analyze_a_recording(cli, speech, tmp_path):
    out = tmp_path / "jfk.json"
    proc = cli("analyze", speech / "jfk.flac", "--language", "en", "-o", out)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(out.read_text())
    assert body["file"].endswith("jfk.flac") and body["duration_s"] == pytest.approx(11.0, abs=0.1)
    assert [s["speaker"] for s in body["speakers"]] == ["Speaker 1"] and body["real_time_factor"] > 0
    text = " ".join(s["text"] for s in body["segments"]).lower()
    assert "ask not what your country can do for you" in text
    words = [w for s in body["segments"] for w in s["words"]]
    assert all(w["features"]["level_dbfs"] < 0 for w in words) and sum(bool(w["features"]["f0_hz"]) for w in words) > 5
    assert all(s["sentiment"]["label"] in ("positive", "negative", "neutral") for s in body["segments"])
    bad = cli("analyze", speech / "jfk.flac", "--num-speakers", "0")
    assert bad.returncode == 1 and "--num-speakers" in bad.stderr and "Traceback" not in bad.stderr


# --- enroll refuses an existing name unless --add ---------------------------------------------------------------
@pytest.mark.speech
def test_enroll_an_existing_name_needs_add(cli, speech):
    d = speech / "harvard_2spk"
    assert cli("enroll", "Alice", d / "spk1_snt1.wav", d / "spk1_snt2.wav").returncode == 0
    again = cli("enroll", "alice", d / "spk1_snt3.wav", d / "spk1_snt4.wav")
    assert again.returncode == 1
    assert "'Alice' already exists" in again.stderr and "--add" in again.stderr
    assert [r[0] for r in sqlite3.connect(cli.db).execute("SELECT count(*) FROM enrollments")] == [1]
    added = cli("enroll", "alice", d / "spk1_snt3.wav", d / "spk1_snt4.wav", "--add")
    assert added.returncode == 0, added.stderr
    assert "profile now 2 enrollment(s)" in added.stdout
    assert cli("enroll", "Bob", d / "spk2_snt1.wav", d / "spk2_snt2.wav", "--add").returncode == 0  # new: fine


# --- callscribe token --------------------------------------------------------------------------------------------
def test_token_prints_a_token_and_an_invite_url(cli):
    from server.settings import Settings
    from signaling.auth import Authenticator

    key = "cli-test-operator-key-0123456789"
    proc = cli("token", "--room", "standup", "--role", "viewer", "--ttl", "120", "--server", "https://cs.example.org/",
               extra_env={"CALLSCRIBE_API_KEY": key})
    assert proc.returncode == 0, proc.stderr
    token, url = proc.stdout.split()
    assert url == f"https://cs.example.org/room/standup?token={token}"
    who = Authenticator(Settings(api_key=key)).verify(token)  # what the server, with the same key, accepts
    assert (who.kind, who.room, who.role) == ("room", "standup", "viewer")
    assert "viewer token for room 'standup', valid until" in proc.stderr
    speaker = cli("token", "--room", "standup", "--role", "speaker", extra_env={"CALLSCRIBE_API_KEY": key})
    assert speaker.stdout.split()[1].startswith("http://127.0.0.1:8080/?room=standup&token=")
    with pytest.raises(Exception, match="neither the API key"):
        Authenticator(Settings(api_key=key + "x")).verify(token)


@pytest.mark.parametrize("args,message", [
    (["--room", "r", "--role", "viewer"], "no API key"),
    (["--room", "two words", "--role", "viewer", "--api-key", "k" * 20], "room"),
    (["--room", "r", "--role", "viewer", "--ttl", "0", "--api-key", "k" * 20], "a token lives"),
])
def test_token_errors(cli, args, message):
    proc = cli("token", *args)
    assert proc.returncode == 1 and proc.stderr.startswith("callscribe: error:") and message in proc.stderr
