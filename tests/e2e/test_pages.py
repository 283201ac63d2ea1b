"""The call page (static/index.html) and the room view (static/room.html) in a real Chromium, sealed on loopback.

The fake microphone plays one WAV from the moment the page calls getUserMedia, so the file's timeline is the
script of the test: silence while the call connects, Alice's enrollment speech (recorded live through the
page's "Record voice" button), a pause, then a six-sentence conversation Alice/Bob/Alice/Bob/Alice/Bob (Harvard
sentences 4–6 of both speakers). Bob is enrolled through the page's "enroll from a recording" upload.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from server.audio.ingest import load_audio

from conftest import wer, write_wav

pytestmark = pytest.mark.speech

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
SR = 16000
LEAD_S = 4.0  # silence while the call connects
ENROLL_CLICK_S = 3.3  # mic time at which the test presses "Record voice" (Alice starts speaking at LEAD_S)
ENROLL_SECONDS = 8  # the page's recording length (between 3 and 10 s)
CONVERSATION_AT_S = 13.5  # mic time of the first conversation sentence
GAP_S = 0.8
TAIL_S = 3.0


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def normalise(text: str) -> str:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()(text)


def word_recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words (normalised, with multiplicity) that the hypothesis contains."""
    ref, hyp = Counter(normalise(reference).split()), Counter(normalise(hypothesis).split())
    return sum((ref & hyp).values()) / max(1, sum(ref.values()))


def sounds_like(reference: str, hypothesis: str) -> bool:
    """Loose match for one bubble: ≥ 80 % of the reference words, or a character error rate ≤ 0.25 with the
    spaces removed (Whisper base hears "canned pears lack" as "can pair slack": right sounds, wrong words)."""
    import jiwer

    if word_recall(reference, hypothesis) >= 0.8:
        return True
    ref, hyp = normalise(reference).replace(" ", ""), normalise(hypothesis).replace(" ", "")
    return bool(hyp) and jiwer.cer(ref, hyp) <= 0.25


def bubbles(page) -> list[dict]:
    return page.eval_on_selector_all("#chat .msg.final", """els => els.map(e => ({
        speaker: e.dataset.speaker, text: e.querySelector('.bubble').textContent,
        time: e.querySelector('.time').textContent, classes: e.className}))""")


def download_text(page, selector: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


def mic_time(page) -> float:
    return page.evaluate("(performance.now() - window.callscribe.micStartedAt) / 1000")


def wait_mic_time(page, seconds: float) -> None:
    page.wait_for_function("s => window.callscribe.micStartedAt != null && "
                           "performance.now() - window.callscribe.micStartedAt >= s * 1000",
                           arg=seconds, timeout=int(seconds * 1000) + 60_000, polling=50)


@pytest.fixture(scope="module")
def script(speech, manifest, tmp_path_factory):
    """The fake-mic WAV, Bob's enrollment file and the conversation's reference (speaker, text) in order."""
    d = speech / "harvard_2spk"
    texts = {Path(m["path"]).stem: m["text"] for m in manifest if m["path"].startswith("harvard_2spk/")}
    tmp = tmp_path_factory.mktemp("pages")

    alice_enroll = np.concatenate([load_audio(d / "spk1_snt1.wav"), silence(0.4), load_audio(d / "spk1_snt2.wav")])
    assert LEAD_S + len(alice_enroll) / SR < ENROLL_CLICK_S + ENROLL_SECONDS - 0.5  # inside the recording window
    parts = [silence(LEAD_S), alice_enroll]
    parts.append(silence(CONVERSATION_AT_S - sum(len(p) for p in parts) / SR))
    reference = []
    for n in (4, 5, 6):
        for spk, name in (("spk1", "Alice"), ("spk2", "Bob")):
            if reference:
                parts.append(silence(GAP_S))
            parts.append(load_audio(d / f"{spk}_snt{n}.wav"))
            reference.append((name, texts[f"{spk}_snt{n}"]))
    end_s = sum(len(p) for p in parts) / SR
    parts.append(silence(TAIL_S))
    mic = write_wav(tmp / "mic.wav", np.concatenate(parts))

    bob = np.concatenate([np.concatenate([load_audio(d / f"spk2_snt{n}.wav"), silence(0.3)]) for n in (1, 2, 3)])
    bob_wav = write_wav(tmp / "bob.wav", bob)
    return {"mic": mic, "bob": bob_wav, "reference": reference, "end_s": end_s}


def test_call_page_enrolls_two_voices_and_shows_the_conversation(server, launch, viewer_context, script):
    browser = launch(fake_mic_wav=script["mic"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    assert page.title().startswith("callscribe")
    page.wait_for_selector("#profiles li")

    # Bob: "enroll from a recording" (POST /api/profiles, multipart)
    page.fill("#enroll-name", "Bob")
    page.set_input_files("#enroll-file", str(script["bob"]))
    page.click("#enroll-upload")
    page.wait_for_selector("#enroll-status[data-state=done]", timeout=30_000)
    assert "Bob enrolled from bob.wav" in page.inner_text("#enroll-status")
    page.wait_for_selector("#profiles li[data-profile=Bob]")

    # probes: the pending (partial) bubbles and the input level meter, sampled while the call runs
    page.evaluate("""() => {
      window.__probe = {pending: new Set(), partialTexts: new Set(), maxLevel: 0};
      setInterval(() => {
        document.querySelectorAll('#chat .msg.pending').forEach(e => {
          window.__probe.pending.add(e.dataset.key);
          const t = e.querySelector('.text').textContent; if (t) window.__probe.partialTexts.add(t);
        });
        window.__probe.maxLevel = Math.max(window.__probe.maxLevel, (window.callscribe || {}).level || 0);
      }, 40);
    }""")

    # the call (the fake microphone starts playing now) and Alice's live enrollment
    page.select_option("#language", "en")
    page.fill("#enroll-name", "Alice")
    page.fill("#enroll-secs", str(ENROLL_SECONDS))
    assert page.inner_text("#enroll-secs-label") == f"{ENROLL_SECONDS} s"
    page.click("#start")
    page.wait_for_selector("#state[data-state=live]", timeout=15_000)
    assert mic_time(page) < ENROLL_CLICK_S, "the call took too long to connect for the scripted microphone"
    page.wait_for_selector("#transcribe[aria-pressed=true]")  # started automatically
    room = page.inner_text("#room-name")
    assert re.fullmatch(r"[\w.-]+", room)
    room_url = page.get_attribute("#room-link", "href")
    assert room_url == f"/room/{room}"

    # a first viewer joins before anyone speaks: it gets the conversation live
    live_viewer = viewer_context(browser, viewport={"width": 1280, "height": 800}).new_page()
    live_viewer.goto(server.url + room_url)
    live_viewer.wait_for_selector("#state[data-state=live]", timeout=15_000)
    assert live_viewer.inner_text("#room-name") == room

    wait_mic_time(page, ENROLL_CLICK_S)
    page.click("#enroll-record")
    page.wait_for_selector("#enroll-status[data-state=recording]")
    page.wait_for_selector("#enroll-status[data-state=done], #enroll-status[data-state=failed]",
                           timeout=(ENROLL_SECONDS + 20) * 1000)
    status = page.inner_text("#enroll-status")
    assert "Alice enrolled" in status, status
    page.wait_for_selector("#profiles li[data-profile=Alice]")
    assert mic_time(page) < CONVERSATION_AT_S, "enrollment ran into the conversation"
    # a viewer following over server-sent events (?via=sse: no WebRTC peer) joins before the conversation (not
    # earlier: opening it during the scripted enrollment delayed the enrollment in CI)
    sse_viewer = viewer_context(browser, viewport={"width": 1280, "height": 800}).new_page()
    sse_viewer.goto(server.url + room_url + "?via=sse")

    # the conversation: wait until the microphone is done and nothing is pending any more
    wait_mic_time(page, script["end_s"] + 1.0)
    page.wait_for_function("() => !document.querySelector('#chat .msg.pending') && "
                           "document.querySelectorAll('#chat .msg.final').length >= 6", timeout=30_000)
    shown = bubbles(page)
    reference = script["reference"]
    got = [(b["speaker"], b["text"]) for b in shown]
    assert len(got) == len(reference), got
    for (ref_speaker, ref_text), bubble in zip(reference, shown, strict=True):
        assert bubble["speaker"] == ref_speaker, (ref_speaker, ref_text, got)
        assert sounds_like(ref_text, bubble["text"]), (ref_text, bubble["text"])
        assert re.fullmatch(r"\d\d:\d\d", bubble["time"])
        side = "side-left" if ref_speaker == "Alice" else "side-right"  # first speaker left, second right
        assert side in bubble["classes"].split(), bubble
    assert "unknown" not in " ".join(b["classes"] for b in shown)
    assert wer([t for _, t in reference], [t for _, t in got]) <= 0.2  # the whole conversation
    probe = page.evaluate("({pending: window.__probe.pending.size, partials: [...window.__probe.partialTexts],"
                          " maxLevel: window.__probe.maxLevel})")
    assert probe["pending"] >= len(reference) // 2, probe  # speech_started/partial bubbles showed up
    assert probe["partials"], probe  # and some carried interim text
    assert probe["maxLevel"] > 25, probe  # the level meter moved with the speech
    assert page.inner_text("#count") == f"{len(reference)} messages"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "call-page.png"), animations="disabled")

    # the live viewer saw the same, and a viewer joining now gets it as backlog
    live_viewer.wait_for_function("n => document.querySelectorAll('#chat .msg.final').length >= n",
                                  arg=len(got), timeout=10_000)
    assert [(b["speaker"], b["text"]) for b in bubbles(live_viewer)] == got
    sse_viewer.wait_for_function("n => document.querySelectorAll('#chat .msg.final').length >= n",
                                 arg=len(got), timeout=10_000)
    assert [(b["speaker"], b["text"]) for b in bubbles(sse_viewer)] == got
    assert sse_viewer.evaluate("window.callscribe.pc === null && window.callscribe.streaming")
    assert sse_viewer.get_attribute("#route", "data-route") == "sse"
    assert sse_viewer.get_attribute("#state", "data-state") == "live"
    late_viewer = viewer_context(browser, viewport={"width": 390, "height": 844}).new_page()
    late_viewer.goto(server.url + room_url)
    late_viewer.wait_for_function("n => document.querySelectorAll('#chat .msg.final').length >= n",
                                  arg=len(got), timeout=15_000)
    assert [(b["speaker"], b["text"]) for b in bubbles(late_viewer)] == got
    assert late_viewer.get_attribute("#state", "data-state") == "live"
    live_viewer.screenshot(path=str(ARTIFACTS / "room-view.png"), animations="disabled")
    sse_viewer.screenshot(path=str(ARTIFACTS / "room-view-sse.png"), animations="disabled")
    late_viewer.screenshot(path=str(ARTIFACTS / "room-view-phone.png"), animations="disabled")

    # export: WebVTT (W3C cues with <v Speaker>) and the other formats, from the call page and the room view
    name, vtt = download_text(page, "#export [data-export=vtt]")
    assert name.endswith(".vtt") and room in name
    assert vtt.startswith("WEBVTT\n\n")
    cues = re.findall(r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n<v ([^>]+)>(.+)$", vtt, re.M)
    assert [(c[2], c[3]) for c in cues] == got
    assert all(a < b for a, b, _, _ in cues) and [c[0] for c in cues] == sorted(c[0] for c in cues)
    assert download_text(late_viewer, "#export [data-export=vtt]")[1] == vtt
    _, srt = download_text(page, "#export [data-export=srt]")
    assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\nAlice: ", srt)
    assert srt.count(" --> ") == len(got)
    _, text = download_text(page, "#export [data-export=txt]")
    assert [re.sub(r"^\[[\d:.]+–[\d:.]+\] ", "", line) for line in text.splitlines()] == \
        [f"{s}: {t}" for s, t in got]
    _, body = download_text(page, "#export [data-export=json]")
    data = json.loads(body)
    assert data["room"] == room and [(u["speaker"], u["text"]) for u in data["utterances"]] == got
    assert {s["speaker"] for s in data["speakers"]} == {"Alice", "Bob"}

    # phone-sized screenshots (390 × 844)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "call-page-phone.png"), animations="disabled")
    page.screenshot(path=str(ARTIFACTS / "call-page-phone-full.png"), full_page=True, animations="disabled")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways

    # Esc stops transcription; End call ends it
    page.keyboard.press("Escape")
    page.wait_for_selector("#transcribe[aria-pressed=false]")
    page.click("#hangup")
    page.wait_for_selector("#state[data-state=ended]")
    assert not errors, errors


_PROFILE_IDS: dict[str, int] = {}  # speaker name → profile row, so that distinct names get distinct ids


def _final(uid, speaker, text, start, end, peer="p1", turn=0, last_turn=True, **extra):
    """A ``final`` event of protocol 2 as a room delivers it; ``extra`` adds or overrides fields."""
    unknown = speaker == "unknown"
    speaker_id = None if unknown else f"profile:{_PROFILE_IDS.setdefault(speaker, len(_PROFILE_IDS) + 1)}"
    return {"type": "final", "utterance_id": uid, "turn": turn, "last_turn": last_turn, "start": start, "end": end,
            "speaker": speaker, "speaker_id": speaker_id, "speaker_kind": "unknown" if unknown else "profile",
            "score": 0.71, "speaker_reason": "match", "text": text, "language": "en", "words": None,
            "end_reason": "silence", "server_time": 1.7e9, "peer_id": peer, **extra}


def test_chat_bubbles_follow_partials_turns_and_scrolling(server, launch):
    """The shared chat module (static/js/chat.js), fed synthetic events on the call page."""
    page = launch().new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.url + "/")
    page.wait_for_function("() => window.callscribe && window.callscribe.chat")

    def feed(*events):
        page.evaluate("evs => evs.forEach(e => window.callscribe.chat.handle(e))", list(events))

    def order():
        return page.eval_on_selector_all("#chat .msg", """els => els.map(e =>
            (e.classList.contains('pending') ? 'pending:' : '') + (e.dataset.speaker || e.dataset.key) + ':' +
            e.querySelector('.bubble').textContent)""")

    assert page.is_visible("#chat-empty")
    # speech_started → pending bubble; partials update that same element in place
    feed({"type": "speech_started", "utterance_id": 0, "start": 1.0, "peer_id": "p1"})
    page.evaluate("document.querySelector('#chat .msg.pending').dataset.mark = 'first'")
    feed({"type": "partial", "utterance_id": 0, "start": 1.0, "end": 1.8, "text": "A thin", "peer_id": "p1"},
         {"type": "partial", "utterance_id": 0, "start": 1.0, "end": 2.4, "text": "A thin stripe", "peer_id": "p1"})
    assert page.eval_on_selector_all("#chat .msg.pending", "els => els.map(e => [e.dataset.mark, "
                                     "e.querySelector('.text').textContent])") == [["first", "A thin stripe"]]
    assert not page.is_visible("#chat-empty")
    # another caller starts talking; then caller 1's utterance settles as two turns (Alice, then Bob)
    feed({"type": "speech_started", "utterance_id": 0, "start": 2.0, "peer_id": "p2"})
    feed(_final(0, "Alice", "A thin stripe runs down the middle.", 1.0, 3.5, last_turn=False))
    assert order() == ["Alice:A thin stripe runs down the middle.", "pending:p2:0:"]  # replaced in place
    feed(_final(0, "Bob", "Mend the coat.", 3.6, 4.9, turn=1))
    assert order()[:2] == ["Alice:A thin stripe runs down the middle.", "Bob:Mend the coat."]
    # caller 2's utterance was noise: the final with empty text removes its pending bubble
    feed(_final(0, "unknown", "", 2.0, 2.3, peer="p2"))
    assert order() == ["Alice:A thin stripe runs down the middle.", "Bob:Mend the coat."]
    # unknown and further speakers; a repeated final (backlog after a reconnect) is not shown twice
    feed(_final(1, "unknown", "Who is this?", 65.2, 66.0), _final(2, "Carol", "Me.", 67.0, 67.5),
         _final(0, "Alice", "A thin stripe runs down the middle.", 1.0, 3.5, last_turn=False))
    shown = bubbles(page)
    assert [(b["speaker"], b["time"]) for b in shown] == [("Alice", "00:01"), ("Bob", "00:03"),
                                                          ("unknown", "01:05"), ("Carol", "01:07")]
    classes = [set(b["classes"].split()) for b in shown]
    assert {"side-left", "spk-0"} <= classes[0] and {"side-right", "spk-1"} <= classes[1]
    assert {"unknown", "spk-2"} <= classes[2] and {"side-right", "spk-3"} <= classes[3]
    style = page.eval_on_selector("#chat .msg.unknown .bubble", "e => { const s = getComputedStyle(e); "
                                  "return [s.fontStyle, s.borderTopStyle]; }")
    assert style == ["italic", "dashed"]
    # sides follow the stable speaker_id, not the label: Carol's profile renamed to Caroline keeps her side
    carol = _final(2, "Carol", "Me.", 67.0, 67.5)["speaker_id"]
    feed(_final(3, "Caroline", "Still me.", 68.0, 68.5, speaker_id=carol))
    renamed = page.eval_on_selector_all("#chat .msg.final", """els => els.slice(-2).map(e =>
        [e.dataset.speaker, e.dataset.speakerId, e.dataset.speakerKind, e.className])""")
    assert [r[:3] for r in renamed] == [["Carol", carol, "profile"], ["Caroline", carol, "profile"]]
    assert all({"side-right", "spk-3"} <= set(r[3].split()) for r in renamed), renamed
    assert page.eval_on_selector("#chat .msg.unknown", "e => [e.dataset.speakerId, e.dataset.speakerKind]") == \
        ["", "unknown"]

    # auto-scroll follows the newest bubble, pauses while the user reads older ones, resumes at the bottom
    at_bottom = "() => window.callscribe.chat.atBottom()"
    feed(*[_final(10 + i, "Alice" if i % 2 else "Bob", f"Line {i}.", 70 + i, 70.5 + i) for i in range(25)])
    assert page.evaluate(at_bottom)
    page.eval_on_selector("#chat", "e => e.scrollTop = 0")
    page.wait_for_function("() => !window.callscribe.chat.stick")
    feed(_final(50, "Bob", "While you scrolled up.", 100, 101))
    assert not page.evaluate(at_bottom)
    assert page.is_visible("#jump")
    page.click("#jump")
    assert page.evaluate(at_bottom) and not page.is_visible("#jump")
    feed(_final(51, "Alice", "Following again.", 102, 103))
    assert page.evaluate(at_bottom)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-rules.png"), animations="disabled")


def test_page_exports_match_the_server_formats(server, launch):
    """static/js/export.js gets text, SRT, WebVTT and JSON from POST /api/export: exactly server/export/formats.py."""
    from server.export import formats as transcript
    from server.stream.events import Final

    events = [_final(0, "Alice", "A thin stripe runs down the middle.", 1.24, 3.58),
              _final(1, "unknown", "", 4.0, 4.3),
              _final(2, "Bob <guest>", "Fish & chips > pasta", 3725.123, 3727.9, caller="Bob's phone"),
              _final(3, "정민", "안녕하세요, 반갑습니다.", 3790.01, 3792.46)]
    finals = [Final(**{k: v for k, v in e.items() if k in Final.model_fields}) for e in events]
    page = launch().new_page()
    page.goto(server.url + "/")
    out = page.evaluate("""async finals => { const m = await import('/static/js/export.js');
        return {txt: await m.render('txt', finals, {room: 'r1'}), srt: await m.render('srt', finals, {room: 'r1'}),
                vtt: await m.render('vtt', finals, {room: 'r1'}), json: await m.render('json', finals, {room: 'r1'})};
        }""", events)
    assert out["txt"] == transcript.to_text(finals)
    assert out["srt"] == transcript.to_srt(finals)
    assert out["vtt"] == transcript.to_vtt(finals)
    assert "\n<v Bob &lt;guest&gt;>Fish &amp; chips &gt; pasta\n" in out["vtt"]
    ours, theirs = json.loads(out["json"]), json.loads(transcript.to_json(finals, room="r1"))
    assert ours["room"] == "r1" and ours["speakers"] == theirs["speakers"]
    assert len(ours["utterances"]) == len(theirs["utterances"]) == 3
    for mine, ref in zip(ours["utterances"], theirs["utterances"], strict=True):
        assert {k: mine[k] for k in ref} == ref  # plus peer_id / caller for rooms with several callers


def test_a_failed_export_shows_a_banner_and_keeps_the_chat(server, launch):
    """The server refuses a final it cannot read (a protocol-1 final: integer speaker_id, no speaker_kind → 400)."""
    page = launch().new_page(viewport={"width": 1280, "height": 800})
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.goto(server.url + "/")
    page.wait_for_function("() => window.callscribe && window.callscribe.chat")
    assert page.is_disabled("#export [data-export=txt]")  # nothing to export yet
    old = {k: v for k, v in _final(0, "Alice", "From an old server.", 1.0, 2.0, speaker_id=1).items()
           if k != "speaker_kind"}
    page.evaluate("e => window.callscribe.chat.handle(e)", old)
    page.click("#export [data-export=txt]")
    page.wait_for_selector("#banner:not([hidden])")
    text = page.inner_text("#banner")
    assert "Could not export the conversation" in text and "finals[0]." in text and "HTTP 400" in text, text
    assert page.get_attribute("#banner", "data-kind") == "error"
    assert [b["text"] for b in bubbles(page)] == ["From an old server."]  # the chat is untouched
    assert page.is_enabled("#export [data-export=txt]") and not downloads
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export-error.png"), animations="disabled")


def test_profiles_upload_rename_and_delete_on_the_page(server, launch, speech, tmp_path):
    d = speech / "librispeech_test-other_10spk" / "1688"
    voice = write_wav(tmp_path / "carol.wav", np.concatenate(
        [load_audio(d / "1688-142285-0002.flac"), load_audio(d / "1688-142285-0003.flac")]))
    page = launch().new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("#profiles li")
    page.fill("#enroll-name", "Carol")
    page.set_input_files("#enroll-file", str(voice))
    page.click("#enroll-upload")
    page.wait_for_selector("#profiles li[data-profile=Carol]", timeout=30_000)
    assert page.get_attribute("#enroll-status", "data-state") == "done"
    assert "enrollment" in page.inner_text("#profiles li[data-profile=Carol]")

    page.click("#profiles li[data-profile=Carol] [data-action=rename]")
    page.fill("#profiles li[data-profile=Carol] input", "Caroline")
    page.press("#profiles li[data-profile=Carol] input", "Enter")
    page.wait_for_selector("#profiles li[data-profile=Caroline]")
    status, body = server.request("GET", "/api/profiles")
    names = {p["name"] for p in body["profiles"]}
    assert status == 200 and "Caroline" in names and "Carol" not in names

    page.click("#profiles li[data-profile=Caroline] [data-action=delete]")  # first click asks to confirm
    assert page.inner_text("#profiles li[data-profile=Caroline] [data-action=delete]") == "Confirm delete"
    page.click("#profiles li[data-profile=Caroline] [data-action=delete]")
    page.wait_for_selector("#profiles li[data-profile=Caroline]", state="detached")
    _, body = server.request("GET", "/api/profiles")
    assert "Caroline" not in {p["name"] for p in body["profiles"]}

    # a reserved name is refused before anything is sent
    page.fill("#enroll-name", "unknown")
    page.set_input_files("#enroll-file", str(voice))
    page.click("#enroll-upload")
    page.wait_for_selector("#banner:not([hidden])")
    assert "reserved" in page.inner_text("#banner")
