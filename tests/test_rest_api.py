"""The REST API on a real server (aiohttp on 127.0.0.1, real CAM++ and webrtcvad, SQLite): voice profiles
(create vs add, rename, delete), identify and batch identify, the voice map, export, one error shape.

Recordings: ``librispeech_test-other_10spk`` (one speaker per folder). Whisper is not loaded: no route here
transcribes.
"""

from __future__ import annotations

import json
import math

import aiohttp
import numpy as np
import pytest
import pytest_asyncio

from server.speaker.identify import CLOSE_PAIR_THRESHOLD

from conftest import served, tone, write_wav

pytestmark = [pytest.mark.speech, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, model_cache, speech):
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings

    rt = SpeechRuntime.from_settings(Settings(database=tmp_path_factory.mktemp("db") / "p.sqlite3",
                                              model_cache_dir=model_cache), load_asr=False)
    yield rt
    rt.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(runtime):
    from server.compose import create_app

    async with served(create_app(runtime)) as client:
        yield client


@pytest.fixture(scope="module")
def libri(speech):
    """speaker → its 10 utterances (FLAC paths)."""
    root = speech / "librispeech_test-other_10spk"
    return {d.name: sorted(d.glob("*.flac")) for d in sorted(root.iterdir()) if d.is_dir()}


def form(path_or_bytes, name: str | None = None, filename: str | None = None) -> aiohttp.FormData:
    data = aiohttp.FormData()
    if name is not None:
        data.add_field("name", name)
    raw = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    data.add_field("audio", raw, filename=filename or getattr(path_or_bytes, "name", "voice.wav"))
    return data


async def clear(http, url):
    async with http.get(f"{url}/api/profiles") as r:
        for p in (await r.json())["profiles"]:
            async with http.delete(f"{url}/api/profiles/{p['name']}") as d:
                assert d.status == 204


async def error_of(resp, status: int) -> dict:
    body = await resp.json()
    assert resp.status == status, body
    assert list(body) == ["error"] and sorted(body["error"]) == ["code", "message"], body
    return body["error"]


async def identify(http, url, path) -> dict:
    async with http.post(f"{url}/api/identify", data=form(path)) as r:
        body = await r.json()
        assert r.status == 200, body
        return body


async def test_profile_lifecycle_create_is_not_add(api, libri):
    """``POST /api/profiles`` creates only; more speech goes to ``POST /api/profiles/{name}/audio`` (issue: one
    upload under an existing name had silently turned all of Bob's lines into Alice)."""
    http, url = api
    await clear(http, url)
    alice, bob = libri["1688"], libri["2609"]
    async with http.post(f"{url}/api/profiles", data=form(alice[0], "Alice")) as r:
        created = await r.json()
        assert r.status == 201, created
        assert r.headers["Location"] == "/api/profiles/Alice"
    assert created["profile"]["name"] == "Alice" and created["profile"]["enrollments"] == 1
    assert created["speech_s"] >= 3 and created["similar_to"] is None
    before = await identify(http, url, alice[1])
    assert before["speaker"] == "Alice"

    # Bob's voice uploaded under Alice's name: refused, Alice unchanged
    async with http.post(f"{url}/api/profiles", data=form(bob[2], "alice")) as r:
        err = await error_of(r, 409)
    assert err["code"] == "name_taken" and "already exists" in err["message"]
    async with http.get(f"{url}/api/profiles/Alice") as r:
        assert (await r.json())["profile"] == created["profile"]
    assert (await identify(http, url, alice[1]))["score"] == before["score"]
    assert (await identify(http, url, bob[1]))["speaker"] == "unknown"

    # explicit add: a second enrollment of the same voice
    async with http.post(f"{url}/api/profiles/alice/audio", data=form(alice[6])) as r:
        added = await r.json()
        assert r.status == 200, added
    assert added["profile"]["name"] == "Alice" and added["profile"]["enrollments"] == 2
    assert added["profile"]["speech_s"] == pytest.approx(created["speech_s"] + added["speech_s"], abs=0.02)
    async with http.post(f"{url}/api/profiles/Nobody/audio", data=form(alice[3])) as r:
        assert (await error_of(r, 404))["code"] == "not_found"

    async with http.get(f"{url}/api/profiles/ALICE") as r:
        assert r.status == 200 and (await r.json())["profile"]["enrollments"] == 2
    async with http.get(f"{url}/api/profiles/Nobody") as r:
        assert (await error_of(r, 404))["code"] == "not_found"

    async with http.post(f"{url}/api/profiles", data=form(bob[2], "Bob")) as r:
        assert r.status == 201
    async with http.patch(f"{url}/api/profiles/Alice", json={"name": "Bob"}) as r:
        assert (await error_of(r, 409))["code"] == "conflict"
    async with http.patch(f"{url}/api/profiles/Alice", json={"nom": "X"}) as r:
        assert (await error_of(r, 400))["code"] == "bad_request"
    async with http.patch(f"{url}/api/profiles/Alice", json={"name": "unknown"}) as r:
        assert (await error_of(r, 400))["code"] == "profile_error"
    async with http.patch(f"{url}/api/profiles/Alice", json={"name": "Alicia"}) as r:
        assert r.status == 200 and (await r.json())["profile"]["name"] == "Alicia"
    assert (await identify(http, url, alice[1]))["speaker"] == "Alicia"  # the cache saw the rename
    async with http.get(f"{url}/api/profiles/Alicia") as r:  # the profile's history, oldest first
        history = (await r.json())["history"]
    assert [(h["action"], h["name"]) for h in history] == [("created", "Alice"), ("extended", "Alice"),
                                                           ("renamed", "Alicia")]
    assert history[2]["detail"] == {"from": "Alice", "to": "Alicia"} and history[0]["speech_s"] > 3
    async with http.delete(f"{url}/api/profiles/Alicia") as r:
        assert r.status == 204
    async with http.delete(f"{url}/api/profiles/Alicia") as r:
        assert (await error_of(r, 404))["code"] == "not_found"
    async with http.get(f"{url}/api/profiles") as r:
        assert [p["name"] for p in (await r.json())["profiles"]] == ["Bob"]


async def test_identify_best_match_scores_and_unknown(api, libri, tmp_path):
    http, url = api
    await clear(http, url)
    silent = write_wav(tmp_path / "silence.wav", np.zeros(3 * 16000, np.float32))
    body = await identify(http, url, libri["1688"][1])
    assert (body["speaker"], body["reason"], body["scores"]) == ("unknown", "no_profiles", [])
    enrolled = {"1688": (0, 1), "2609": (2, 4), "3005": (0, 3)}  # (enroll, identify) utterances
    for spk, (e, _) in enrolled.items():
        async with http.post(f"{url}/api/profiles", data=form(libri[spk][e], f"spk{spk}")) as r:
            assert r.status == 201
    async with http.get(f"{url}/api/profiles") as r:
        listed = (await r.json())["profiles"]
    for spk, (_, i) in enrolled.items():
        body = await identify(http, url, libri[spk][i])
        assert body["speaker"] == f"spk{spk}" and body["speaker_kind"] == "profile" and body["reason"] == "match"
        assert body["score"] >= body["threshold"] == 0.55
        assert [s["score"] for s in body["scores"]] == sorted((s["score"] for s in body["scores"]), reverse=True)
        assert body["scores"][0] == {"name": f"spk{spk}", "profile_id": body["profile_id"], "score": body["score"]}
        assert len(body["scores"]) == 3 and body["speech_s"] > 1 and body["audio_s"] >= body["speech_s"]
    stranger = await identify(http, url, libri["533"][3])  # never enrolled
    assert stranger["speaker"] == "unknown" and stranger["reason"] == "below_threshold"
    assert stranger["profile_id"] is None and stranger["score"] < stranger["threshold"] and stranger["scores"]
    quiet = await identify(http, url, silent)
    assert (quiet["speaker"], quiet["reason"], quiet["score"], quiet["speech_s"]) == ("unknown", "too_short", None, 0)
    async with http.get(f"{url}/api/profiles") as r:
        assert (await r.json())["profiles"] == listed  # identifying stores nothing


async def test_identify_batch_answers_per_file(api, libri, tmp_path):
    http, url = api
    await clear(http, url)
    async with http.post(f"{url}/api/profiles", data=form(libri["367"][2], "Rita")) as r:
        assert r.status == 201
    data = aiohttp.FormData()
    data.add_field("audio", libri["367"][5].read_bytes(), filename="rita.flac")
    data.add_field("audio", b"definitely not audio" * 20, filename="junk.wav")
    data.add_field("audio", libri["1998"][2].read_bytes(), filename="other.flac")
    async with http.post(f"{url}/api/identify/batch", data=data) as r:
        body = await r.json()
        assert r.status == 200, body
    results = body["results"]
    assert [x["filename"] for x in results] == ["rita.flac", "junk.wav", "other.flac"]
    assert results[0]["result"]["speaker"] == "Rita" and results[0]["error"] is None
    assert results[1]["result"] is None and results[1]["error"]["code"] == "bad_audio"
    assert "junk.wav" in results[1]["error"]["message"]
    assert results[2]["result"]["speaker"] == "unknown"
    many = aiohttp.FormData()
    for i in range(17):
        many.add_field("audio", b"x", filename=f"{i}.wav")
    async with http.post(f"{url}/api/identify/batch", data=many) as r:
        assert "at most 16" in (await error_of(r, 400))["message"]
    two = aiohttp.FormData()
    for _ in range(2):
        two.add_field("audio", libri["367"][1].read_bytes(), filename="x.flac")
    async with http.post(f"{url}/api/identify", data=two) as r:  # the single route takes one file
        assert (await error_of(r, 400))["code"] == "bad_request"


async def test_voice_map_points_and_close_pairs(api, libri, runtime):
    http, url = api
    await clear(http, url)
    async with http.get(f"{url}/api/profiles/map") as r:
        assert await r.json() == {"points": [], "close_pairs": [], "threshold": CLOSE_PAIR_THRESHOLD}
    # the same speaker twice (from different utterances) and two others
    similar = {}
    for name, path in (("Ann", libri["1688"][0]), ("Ann again", libri["1688"][6]), ("Ben", libri["2033"][0]),
                       ("Cy", libri["3331"][0])):
        async with http.post(f"{url}/api/profiles", data=form(path, name)) as r:
            body = await r.json()
            assert r.status == 201, body
        similar[name] = body["similar_to"]
    assert similar == {"Ann": None, "Ann again": "Ann", "Ben": None, "Cy": None}
    async with http.get(f"{url}/api/profiles/map") as r:
        m = await r.json()
        assert r.status == 200
    assert sorted(p["name"] for p in m["points"]) == ["Ann", "Ann again", "Ben", "Cy"]
    assert [(p["a"], p["b"]) for p in m["close_pairs"]] == [("Ann", "Ann again")]
    assert m["close_pairs"][0]["similarity"] >= m["threshold"]
    # the plane keeps the geometry: the same voice lies closest, and distances follow the cosines
    profiles = {p.name: p.embedding for p in runtime.profiles()}
    xy = {p["name"]: np.array([p["x"], p["y"]]) for p in m["points"]}
    dist = {(a, b): float(np.linalg.norm(xy[a] - xy[b])) for a in xy for b in xy if a < b}
    assert min(dist, key=dist.get) == ("Ann", "Ann again")
    for (a, b), d in dist.items():
        true = math.sqrt(max(0.0, 2 - 2 * float(profiles[a] @ profiles[b])))
        assert d <= true + 1e-3  # a projection never stretches distances


async def test_speakers_and_unknown_routes_answer_the_one_error_shape(api):
    http, url = api
    async with http.get(f"{url}/api/rooms/nowhere/speakers") as r:
        assert (await error_of(r, 404))["code"] == "not_found"
    async with http.post(f"{url}/api/rooms/nowhere/speakers/anon:1/name", json={"name": "X"}) as r:
        assert (await error_of(r, 404))["code"] == "not_found"
    async with http.post(f"{url}/api/rooms/nowhere/speakers/anon:1/name", json={"name": "X", "colour": 1}) as r:
        assert "colour" in (await error_of(r, 400))["message"]
    async with http.get(f"{url}/api/nothing-here") as r:
        assert (await error_of(r, 404))["code"] == "not_found"
    async with http.put(f"{url}/api/profiles") as r:
        assert (await error_of(r, 405))["code"] == "method_not_allowed"


def _final(i: int, text: str, **extra) -> dict:
    return {"type": "final", "utterance_id": i, "start": 2.0 * i, "end": 2.0 * i + 1.5, "speaker": "Ann",
            "speaker_id": "profile:1", "speaker_kind": "profile", "score": 0.8, "speaker_reason": "match",
            "text": text, "language": "en", **extra}


async def test_export_renders_and_validates_with_the_models(api):
    http, url = api
    finals = [_final(0, "Hello there.", peer_id="p1", caller="Ann's phone", backlog=True), _final(1, "Bye.")]
    async with http.post(f"{url}/api/export?format=vtt", json={"finals": finals, "meta": {"room": "daily"}}) as r:
        assert r.status == 200 and r.content_type == "text/vtt"
        assert r.headers["Content-Disposition"] == 'attachment; filename="callscribe-daily.vtt"'
        assert "Hello there." in await r.text()
    async with http.post(f"{url}/api/export?format=json", json={"finals": finals}) as r:
        exported = json.loads(await r.text())
    assert exported["utterances"][0]["caller"] == "Ann's phone"
    async with http.post(f"{url}/api/export?format=doc", json={"finals": finals}) as r:
        assert (await error_of(r, 400))["message"].startswith("format: ")
    async with http.post(f"{url}/api/export?format=text", json={"finals": [_final(0, "x", start="soon")]}) as r:
        assert "finals[0].start" in (await error_of(r, 400))["message"]
    async with http.post(f"{url}/api/export?format=text", data=b"{nope", headers={"Content-Type": "application/json"}) \
            as r:
        assert "not JSON" in (await error_of(r, 400))["message"]
    # a long meeting: well over aiohttp's 64 KiB default body limit, under the route's 8 MiB
    long = [_final(i, "word " * 40) for i in range(600)]
    async with http.post(f"{url}/api/export?format=srt", json={"finals": long}) as r:
        assert r.status == 200 and (await r.text()).count(" --> ") == 600
    async with http.post(f"{url}/api/export?format=srt", data=b" " * (9 * 2**20),
                         headers={"Content-Type": "application/json"}) as r:
        assert (await error_of(r, 413))["code"] == "too_large"


async def test_enrolling_needs_speech(api, tmp_path):
    http, url = api
    short = write_wav(tmp_path / "short.wav", tone(1.0))  # a tone: no speech for the VAD
    async with http.post(f"{url}/api/profiles", data=form(short, "Toni")) as r:
        err = await error_of(r, 400)
    assert err["code"] == "profile_error" and "too little speech" in err["message"]
    async with http.get(f"{url}/api/profiles/Toni") as r:
        assert r.status == 404
