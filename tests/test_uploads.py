"""Audio uploads over REST (enroll, add audio, identify): every bad upload gets a clear 4xx, nothing is stored and
no temporary file stays behind; long uploads are bounded in decoded length and in memory.

A real server on 127.0.0.1 (aiohttp, the app of ``server.compose.create_app``) over a real runtime: webrtcvad and
CAM++ from the wheels, SQLite on a temporary file. Whisper is not loaded (no route here transcribes).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from server.audio.ingest import iter_file, load_audio
from server.errors import AudioTooLong

from conftest import tone, write_wav

pytestmark = pytest.mark.asyncio(loop_scope="module")
MAX_BYTES = 200_000
MAX_S = 20.0


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, model_cache):
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings

    rt = SpeechRuntime.from_settings(Settings(database=tmp_path_factory.mktemp("db") / "p.sqlite3",
                                              model_cache_dir=model_cache), load_asr=False)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def spool(tmp_path_factory):
    """The uploads' temporary folders go here (the server runs in this process), so a leftover is visible."""
    folder = tmp_path_factory.mktemp("spool")
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    yield folder
    tempfile.tempdir = before


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(runtime, spool):
    from server.compose import create_app

    settings = runtime.settings.model_copy(update={"max_upload_bytes": MAX_BYTES, "max_upload_s": MAX_S})
    server = TestServer(create_app(runtime, settings), host="127.0.0.1", port=0)
    await server.start_server()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        yield http, f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture(scope="module")
def voice(speech) -> bytes:
    """15 s of one LibriSpeech speaker as Ogg/Opus bytes (well under MAX_BYTES)."""
    return opus_bytes(load_audio(speech / "librispeech_test-other_10spk/1688/1688-142285-0000.flac"))


def form(audio: bytes | None, name: str | None = None, filename: str = "voice.ogg",
         content_type: str | None = None) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    if name is not None:
        data.add_field("name", name)
    if audio is not None:
        data.add_field("audio", audio, filename=filename, content_type=content_type)
    return data


def opus_bytes(audio: np.ndarray, fmt: str = "ogg", seekable: bool = True) -> bytes:
    """Encode 16 kHz float32 as Opus (12 kbit/s); ``seekable=False`` writes WebM the way a browser's
    MediaRecorder does, without a duration in the header."""

    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, chunk: bytes) -> int:
            self.data += chunk
            return len(chunk)

    sink = Sink()
    target = sink if not seekable else tempfile.NamedTemporaryFile(suffix="." + fmt, delete=False).name
    with av.open(target, "w", format=fmt) as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        stream.bit_rate = 12000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for i in range(0, pcm.size, 16000):
            frame = av.AudioFrame.from_ndarray(pcm[None, i:i + 16000], format="s16", layout="mono")
            frame.sample_rate = 16000
            for r in resampler.resample(frame):
                for packet in stream.encode(r):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    if seekable:
        path = Path(target)
        data = path.read_bytes()
        path.unlink()
        return bytes(data)
    return bytes(sink.data)


async def names(http, url) -> list[str]:
    async with http.get(f"{url}/api/profiles") as r:
        assert r.status == 200
        return [p["name"] for p in (await r.json())["profiles"]]


async def expect_error(resp, status: int, code: str) -> str:
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


BAD_UPLOADS = [
    # (what, form kwargs, status, code, words the message must contain)
    ("empty file", {"audio": b""}, 400, "bad_audio", "empty"),
    ("not audio", {"audio": b"this is plain text, not a recording\n" * 40}, 400, "bad_audio", "not a readable"),
    ("declared as text", {"audio": b"RIFF....WAVE", "content_type": "text/plain"}, 415, "unsupported_media_type",
     "text/plain"),
    ("declared as an image", {"audio": b"\x89PNG\r\n", "content_type": "image/png"}, 415, "unsupported_media_type",
     "image/png"),
    ("no audio field", {"audio": None}, 400, "bad_request", "audio"),
    ("too large", {"audio": b"\0" * (MAX_BYTES + 1)}, 413, "too_large", "limited"),
]


@pytest.mark.parametrize("route", ["create", "add", "identify", "batch"])
@pytest.mark.parametrize("what,kwargs,status,code,words", BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
async def test_bad_uploads_are_clear_4xx_and_store_nothing(api, spool, voice, route, what, kwargs, status, code,
                                                          words):
    http, url = api
    if "Keeper" not in await names(http, url):
        async with http.post(f"{url}/api/profiles", data=form(voice, "Keeper")) as r:
            assert r.status == 201, await r.text()
    async with http.get(f"{url}/api/profiles/Keeper") as r:
        keeper = (await r.json())["profile"]
    path = {"create": "/api/profiles", "add": "/api/profiles/Keeper/audio", "identify": "/api/identify",
            "batch": "/api/identify/batch"}[route]
    body = form(name="Newcomer" if route == "create" else None, **kwargs)
    async with http.post(url + path, data=body) as r:
        if route == "batch" and code in ("bad_audio",):  # a batch answers per file
            assert r.status == 200
            item = (await r.json())["results"][0]
            assert item["result"] is None and item["error"]["code"] == code
            assert words in item["error"]["message"]
        else:
            message = await expect_error(r, status, code)
            assert words in message
            assert str(spool) not in message  # the server's temporary path is never shown
    assert sorted(await names(http, url)) == ["Keeper"]
    async with http.get(f"{url}/api/profiles/Keeper") as r:
        assert (await r.json())["profile"] == keeper  # no enrollment was added
    assert list(spool.iterdir()) == []


async def test_not_a_form_is_415(api):
    http, url = api
    for path in ("/api/profiles", "/api/profiles/Keeper/audio", "/api/identify", "/api/identify/batch"):
        async with http.post(url + path, json={"name": "x", "audio": "AAAA"}) as r:
            assert "multipart/form-data" in await expect_error(r, 415, "unsupported_media_type")
        async with http.post(url + path, data=b"\x00\x01", headers={"Content-Type": "audio/wav"}) as r:
            await expect_error(r, 415, "unsupported_media_type")


async def test_malformed_and_unexpected_form_fields(api, voice):
    http, url = api
    data = form(voice)
    data.add_field("colour", "blue")
    async with http.post(f"{url}/api/identify", data=data) as r:
        assert "colour" in await expect_error(r, 400, "bad_request")
    bogus = b"--xyz\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\nunterminated"
    async with http.post(f"{url}/api/identify", data=bogus,
                         headers={"Content-Type": "multipart/form-data; boundary=xyz"}) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] in ("bad_request", "bad_audio")
    data = form(voice, name="x" * 5000)
    async with http.post(f"{url}/api/profiles", data=data) as r:
        await expect_error(r, 400, "bad_request")


async def test_too_large_without_content_length_stops_mid_stream(api, spool):
    """A chunked upload (no Content-Length) is cut off as soon as it passes the limit."""
    http, url = api
    head = (b"--b0undary\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"big.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n")
    sent = 0

    async def body():
        nonlocal sent
        yield head
        for _ in range(200):  # up to 200 × 64 KiB = 12.5 MiB; the limit is 200 kB
            sent += 65536
            yield b"\0" * 65536
        yield b"\r\n--b0undary--\r\n"

    try:
        async with http.post(f"{url}/api/identify", data=body(),
                             headers={"Content-Type": "multipart/form-data; boundary=b0undary"}) as r:
            await expect_error(r, 413, "too_large")
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError):
        pass  # the server may close the connection while the client still sends: acceptable, it read no more
    assert sent < 200 * 65536
    await asyncio.sleep(0.2)
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("seekable", [True, False], ids=["ogg-with-duration", "webm-without-duration"])
async def test_too_long_is_413_and_stores_nothing(api, spool, voice, speech, seekable):
    """More than ``max_upload_s`` of audio: refused from the header when it says so, else once that much has been
    decoded (a browser's WebM recording has no duration in its header)."""
    http, url = api
    audio = np.concatenate([load_audio(speech / "librispeech_test-other_10spk/1688/1688-142285-0001.flac")] * 3)
    audio = np.concatenate([audio, tone(2 * MAX_S)])[: int((MAX_S + 15) * 16000)]
    data = opus_bytes(audio, "ogg" if seekable else "webm", seekable=seekable)
    assert len(data) < MAX_BYTES  # small: only its length in time is too much
    before = await names(http, url)
    for path, name in (("/api/profiles", "TooLong"), ("/api/identify", None), ("/api/profiles/Keeper/audio", None)):
        if path.endswith("/audio") and "Keeper" not in before:
            continue
        filename = "long.ogg" if seekable else "long.webm"
        async with http.post(url + path, data=form(data, name, filename=filename)) as r:
            message = await expect_error(r, 413, "too_long")
        assert filename in message and f"the limit is {MAX_S:.0f} s" in message
    assert await names(http, url) == before
    assert list(spool.iterdir()) == []
    # just under the limit is fine
    ok = opus_bytes(audio[: int((MAX_S - 2) * 16000)], "ogg" if seekable else "webm", seekable=seekable)
    async with http.post(f"{url}/api/identify", data=form(ok, filename="ok.webm")) as r:
        body = await r.json()
        assert r.status == 200, body
        assert MAX_S - 3 < body["audio_s"] <= MAX_S


def test_iter_file_never_decodes_past_the_limit(tmp_path):
    """The decode stops at ``max_s`` even when the header says nothing of the length."""
    path = tmp_path / "live.webm"
    path.write_bytes(opus_bytes(tone(30.0), "webm", seekable=False))
    got = 0
    with pytest.raises(AudioTooLong, match="the limit is 10 s"):
        for chunk in iter_file(path, max_s=10.0):
            got += chunk.size
    assert got <= 10 * 16000
    assert sum(c.size for c in iter_file(path, max_s=31.0)) == pytest.approx(30 * 16000, abs=2000)


def test_header_duration_refuses_before_decoding(tmp_path):
    path = write_wav(tmp_path / "long.wav", tone(12.0))
    chunks = iter_file(path, max_s=5.0)
    with pytest.raises(AudioTooLong, match="12 s of audio"):
        next(chunks)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.speech
async def test_ten_minutes_of_opus_is_bounded_in_memory(runtime, spool, speech):
    """The 0.9 MB / 10 min Opus upload of the issue: enroll and identify it; the server's resident memory must
    not grow with the length (before: +1.9 GB, CAM++ over all 533 s of speech at once)."""
    from server.compose import create_app

    parts, n = [], 0
    for f in sorted((speech / "librispeech_test-other_10spk").glob("*/*.flac")):
        parts.append(load_audio(f))
        n += parts[-1].size
        if n >= 600 * 16000:
            break
    data = opus_bytes(np.concatenate(parts)[: 600 * 16000])
    assert len(data) < 1.2e6
    server = TestServer(create_app(runtime), host="127.0.0.1", port=0)  # default limits: 20 MiB, 600 s
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    peak, stop = [0.0], [False]

    def sample():
        while not stop[0]:
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.02)

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
            async with http.post(f"{url}/api/identify", data=form(b"RIFF", filename="warm.wav")) as r:
                assert r.status == 400  # warm up the route
            thread = threading.Thread(target=sample, daemon=True)
            base = peak[0] = _rss_mb()
            thread.start()
            async with http.post(f"{url}/api/profiles", data=form(data, "LongTalker", "long.opus")) as r:
                body = await r.json()
                assert r.status == 201, body
            assert body["speech_s"] == pytest.approx(runtime.settings.max_enroll_s, abs=0.5)
            async with http.post(f"{url}/api/identify", data=form(data, filename="long.opus")) as r:
                result = await r.json()
                assert r.status == 200, result
            assert result["audio_s"] == pytest.approx(600, abs=1)
            assert result["speaker"] == "LongTalker"  # the same first minute of speech
            async with http.delete(f"{url}/api/profiles/LongTalker") as r:
                assert r.status == 204
    finally:
        stop[0] = True
        await server.close()
    grew = peak[0] - base
    print(f"\nRSS {base:.0f} MB → peak {peak[0]:.0f} MB (+{grew:.0f} MB) for enroll + identify of 10 min")
    assert grew < 400, f"+{grew:.0f} MB"
    assert list(spool.iterdir()) == []
