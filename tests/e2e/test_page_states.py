"""The call page and the room view around the edges of a call, in a real Chromium against a real server: buttons
that wait for the server's `ready`, pending bubbles after a call ends, the room badge, the header's words, the
confirmation before audio goes to another origin, and naming an anonymous speaker (protocol 3 events are fed
into the page where this test must not depend on the server sending them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_wav

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
pytestmark = pytest.mark.speech

HOLD_READY = """(() => {
  // the data channel's messages wait until window.__release(): the page sits between the answer and `ready`
  window.__hold = true;
  const create = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (...args) {
    const dc = create.apply(this, args);
    const held = [];
    let handler = null;
    Object.defineProperty(dc, "onmessage", { get: () => handler, set: (f) => { handler = f; } });
    dc.addEventListener("message", (e) => { if (window.__hold) held.push(e); else if (handler) handler(e); });
    window.__release = () => { window.__hold = false; held.splice(0).forEach((e) => handler && handler(e)); };
    return dc;
  };
})();"""


def anon(uid, n, text, start, peer="p1", **extra):
    return {"type": "final", "utterance_id": uid, "turn": 0, "last_turn": True, "start": start, "end": start + 2,
            "speaker": f"Speaker {n}", "speaker_id": f"anon:{n}", "speaker_kind": "anonymous", "score": 0.62,
            "speaker_reason": "match", "text": text, "language": "en", "words": None, "end_reason": "silence",
            "server_time": 1.7e9, "peer_id": peer, **extra}


def unknown(uid, text, start, peer="p1"):
    return {**anon(uid, 0, text, start, peer), "speaker": "unknown", "speaker_id": None, "speaker_kind": "unknown",
            "score": None, "speaker_reason": "too_short"}


@pytest.fixture
def quiet_mic(tmp_path):
    return write_wav(tmp_path / "quiet.wav", np.zeros(16000 * 60, np.float32))


def start_call(page, url):
    page.goto(url)
    page.click("#start")
    page.wait_for_selector("#state[data-state=live]", timeout=20_000)


def feed(page, *events):
    page.evaluate("evs => evs.forEach(e => window.callscribe.chat.handle(e))", list(events))


def speakers(page):
    return page.eval_on_selector_all("#chat .msg.final", """els => els.map(e => ({speaker: e.dataset.speaker,
        id: e.dataset.speakerId, kind: e.dataset.speakerKind, classes: e.className,
        button: !!e.querySelector('button.name-edit')}))""")


def record_sends(page):
    """Keep the page's name_speaker messages (instead of sending them) in window.__sent."""
    page.evaluate("""() => { window.__sent = []; const dc = window.callscribe.dc; const send = dc.send.bind(dc);
        dc.send = (s) => { const m = JSON.parse(s); if (m.type === 'name_speaker') window.__sent.push(m); else send(s); };
    }""")


def test_buttons_wait_for_ready(server, launch, quiet_mic):
    page = launch(fake_mic_wav=quiet_mic).new_page()
    page.add_init_script(HOLD_READY)
    page.goto(server.url + "/")
    page.uncheck("#autostart")
    assert page.is_disabled("#transcribe") and page.is_disabled("#enroll-record")
    page.click("#start")
    page.wait_for_selector("#hangup:visible", timeout=20_000)  # the server answered the offer
    page.wait_for_function("() => window.callscribe.dc && window.callscribe.dc.readyState === 'open'",
                           timeout=20_000)
    page.wait_for_timeout(300)
    assert page.is_disabled("#transcribe") and page.is_disabled("#enroll-record")  # no `ready` yet
    page.evaluate("window.__release()")
    page.wait_for_selector("#transcribe:enabled", timeout=5_000)
    assert page.is_enabled("#enroll-record")
    page.click("#hangup")
    page.wait_for_selector("#state[data-state=ended]")
    assert page.is_disabled("#transcribe") and page.is_disabled("#enroll-record")


def test_pending_bubbles_go_when_the_call_ends(server, launch, viewer_context, quiet_mic):
    browser = launch(fake_mic_wav=quiet_mic)
    page = browser.new_page()
    start_call(page, server.url + "/")
    feed(page, {"type": "speech_started", "utterance_id": 7, "start": 3.0, "peer_id": "p1"},
         {"type": "partial", "utterance_id": 7, "start": 3.0, "end": 4.0, "text": "Half a", "peer_id": "p1"})
    assert page.locator("#chat .msg.pending").count() == 1
    page.click("#hangup")
    page.wait_for_selector("#state[data-state=ended]")
    assert page.locator("#chat .msg.pending").count() == 0
    assert page.is_visible("#chat-empty")

    # the room view: the connection drops (its data channel closes) → no "Speaking" bubble is left behind
    room = page.evaluate("window.callscribe.room")
    viewer = viewer_context(browser).new_page()
    viewer.goto(f"{server.url}/room/{room}")
    viewer.wait_for_function("() => window.callscribe.dc && window.callscribe.dc.readyState === 'open'",
                             timeout=20_000)
    feed(viewer, {"type": "speech_started", "utterance_id": 1, "start": 1.0, "peer_id": "p9"})
    assert viewer.locator("#chat .msg.pending").count() == 1
    viewer.evaluate("window.callscribe.dc.close()")
    viewer.wait_for_selector("#state[data-state=reconnecting]")
    assert viewer.locator("#chat .msg.pending").count() == 0


def test_room_view_says_live_only_while_a_call_is_in(server, launch, viewer_context):
    browser = launch()
    viewer = viewer_context(browser, viewport={"width": 1280, "height": 900}).new_page()
    viewer.goto(server.url + "/room/quiet-room")
    # the server's own `room` event follows `ready`; let it arrive first, so it cannot land between ours
    viewer.wait_for_function("() => window.callscribe.protocol != null && window.callscribe.callers != null",
                             timeout=20_000)

    def badge():
        return viewer.get_attribute("#state", "data-state"), viewer.inner_text("#state")

    def event(msg):
        viewer.evaluate("m => window.callscribe.onEvent(m)", msg)

    event({"type": "ready", "protocol": 3, "peer_id": "v1", "room": "quiet-room", "listen_only": True})
    assert badge() == ("connected", "Connected")  # connected, but the server has not said whether a call is in
    event({"type": "room", "room": "quiet-room", "callers": 0, "names": []})
    assert badge() == ("waiting", "Waiting for a caller")
    event({"type": "room", "room": "quiet-room", "callers": 2, "names": ["Alice's laptop", None]})
    assert badge() == ("live", "Live")
    assert viewer.inner_text("#callers") == "2 callers: Alice's laptop"
    viewer.screenshot(path=str(ARTIFACTS / "room-live-callers.png"), animations="disabled")
    event({"type": "room", "room": "quiet-room", "callers": 0, "names": []})
    assert badge() == ("waiting", "Call ended") and not viewer.is_visible("#callers")
    viewer.screenshot(path=str(ARTIFACTS / "room-call-ended.png"), animations="disabled")
    viewer.set_viewport_size({"width": 390, "height": 844})
    viewer.screenshot(path=str(ARTIFACTS / "room-call-ended-phone.png"), animations="disabled")
    # the connection drops: not live either, whatever the last room event said
    event({"type": "room", "room": "quiet-room", "callers": 1, "names": []})
    viewer.evaluate("window.callscribe.dc.close()")
    viewer.wait_for_selector("#state[data-state=reconnecting]")


def test_header_says_connected_in_plain_words(server, launch, quiet_mic):
    page = launch(fake_mic_wav=quiet_mic).new_page(viewport={"width": 1280, "height": 900})
    start_call(page, server.url + "/")
    page.wait_for_selector("#route:visible", timeout=10_000)
    assert page.inner_text("#route") == "Connected"
    assert "direct" not in page.inner_text(".topbar").lower()
    assert "ICE" in page.get_attribute("#route", "title")  # the detail stays in the tooltip
    page.screenshot(path=str(ARTIFACTS / "header-connected.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 60})
    page.click("#hangup")
    page.wait_for_selector("#route", state="hidden")


def test_another_server_origin_needs_a_yes_before_any_audio(server, launch, quiet_mic):
    browser = launch(fake_mic_wav=quiet_mic)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    other = "http://localhost:8765"
    page.goto(f"{server.url}/?server={other}/")
    page.click("#start")
    page.wait_for_selector("#confirm-server[open]")
    assert page.inner_text("#confirm-origin") == other
    assert page.evaluate("window.callscribe.micStartedAt") is None  # no microphone yet
    page.screenshot(path=str(ARTIFACTS / "confirm-server.png"), animations="disabled")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "confirm-server-phone.png"), animations="disabled")
    page.click("#confirm-server [data-action=cancel]")
    page.wait_for_selector("#confirm-server", state="hidden")
    page.wait_for_timeout(300)
    assert page.evaluate("window.callscribe.micStartedAt") is None
    assert not [u for u in requests if "/api/offer" in u or "/api/ice-servers" in u]
    assert page.get_attribute("#state", "data-state") == "idle"
    # yes → the page goes on towards that origin (here it cannot be reached: the page says so)
    page.click("#start")
    page.click("#confirm-server [data-action=send]")
    page.wait_for_selector("#banner:not([hidden])", timeout=15_000)
    assert page.evaluate("window.callscribe.micStartedAt") is not None
    assert any(u.startswith(other + "/api/") for u in requests)

    # the page's own origin spelled out in ?server= needs no question
    same = browser.new_page()
    start_call(same, f"{server.url}/?server={server.url}")
    assert not same.is_visible("#confirm-server")


def test_naming_editor_relabels_and_esc_does_not_pause_the_call(server, launch, quiet_mic):
    page = launch(fake_mic_wav=quiet_mic).new_page(viewport={"width": 1280, "height": 900})
    start_call(page, server.url + "/")
    page.wait_for_selector("#transcribe[aria-pressed=true]")  # transcribing (auto-start)
    record_sends(page)
    feed(page, anon(0, 1, "Is this thing on?", 2.0), anon(1, 2, "Yes, loud and clear.", 5.0),
         unknown(2, "Mm.", 7.5), anon(3, 1, "Good, let us start.", 9.0))
    shown = speakers(page)
    assert [s["speaker"] for s in shown] == ["Speaker 1", "Speaker 2", "unknown", "Speaker 1"]
    assert [s["button"] for s in shown] == [True, True, False, True]  # only anonymous labels open the editor
    sides = [set(s["classes"].split()) for s in shown]
    assert {"side-left", "spk-0"} <= sides[0] and {"side-right", "spk-1"} <= sides[1] and sides[0] == sides[3]
    assert "unknown" in sides[2]
    assert page.eval_on_selector("#chat .msg.unknown .bubble", "e => getComputedStyle(e).borderTopStyle") == "dashed"

    # Esc in the editor closes it and leaves the call transcribing
    page.click("#chat .msg.final >> nth=0 >> button.name-edit")
    page.wait_for_selector(".name-editor input[type=text]:focus")
    assert page.is_checked(".name-editor input[type=checkbox]")  # "Remember this voice" is on by default
    page.screenshot(path=str(ARTIFACTS / "name-editor.png"), animations="disabled")
    page.keyboard.press("Escape")
    page.wait_for_selector(".name-editor", state="detached")
    page.wait_for_timeout(500)
    assert page.get_attribute("#transcribe", "aria-pressed") == "true"
    assert page.is_hidden("#banner")

    # Enter saves: name_speaker goes out; name_taken offers to extend the existing profile
    page.click("#chat .msg.final >> nth=3 >> button.name-edit")
    page.fill(".name-editor input[type=text]", "Alice")
    page.press(".name-editor input[type=text]", "Enter")
    page.wait_for_function("() => window.__sent.length === 1")
    assert page.evaluate("window.__sent[0]") == {"type": "name_speaker", "speaker_id": "anon:1", "name": "Alice",
                                                "save": True, "extend": False, "room": page.evaluate(
                                                    "window.callscribe.room")}
    feed(page, {"type": "error", "code": "name_taken", "message": "a voice profile named Alice exists"})
    page.wait_for_selector(".name-editor .name-note [data-action=extend]")
    page.screenshot(path=str(ARTIFACTS / "name-taken.png"), animations="disabled")
    page.click(".name-editor [data-action=extend]")
    page.wait_for_function("() => window.__sent.length === 2")
    assert page.evaluate("window.__sent[1]")["extend"] is True
    with page.expect_request(lambda r: r.url.endswith("/api/profiles") and r.method == "GET"):
        feed(page, {"type": "speaker_named", "speaker_id": "anon:1", "name": "Alice", "profile_id": 7})
    page.wait_for_selector(".name-editor", state="detached")

    # the relabel moves every bubble of anon:1; a merge of anon:2 into Alice takes Alice's slot
    feed(page, {"type": "speaker_relabeled", "from_id": "anon:1", "speaker_id": "profile:7", "speaker": "Alice",
                "speaker_kind": "profile", "reason": "named", "server_time": 1.7e9})
    shown = speakers(page)
    assert [(s["speaker"], s["id"], s["button"]) for s in shown] == [
        ("Alice", "profile:7", False), ("Speaker 2", "anon:2", True), ("unknown", "", False),
        ("Alice", "profile:7", False)]
    assert {"side-left", "spk-0"} <= set(shown[0]["classes"].split())
    feed(page, {"type": "speaker_relabeled", "from_id": "anon:2", "speaker_id": "profile:7", "speaker": "Alice",
                "speaker_kind": "profile", "reason": "merged", "server_time": 1.7e9},
         anon(4, 2, "A late one from the merged voice.", 12.0))  # in flight when the merge came
    shown = speakers(page)
    assert [s["speaker"] for s in shown] == ["Alice", "Alice", "unknown", "Alice", "Alice"]
    assert all({"side-left", "spk-0"} <= set(shown[i]["classes"].split()) for i in (0, 1, 3, 4)), shown
    exported = page.evaluate("window.callscribe.chat.finals().map(f => [f.speaker, f.speaker_id])")
    assert exported == [["Alice", "profile:7"]] * 2 + [["unknown", None]] + [["Alice", "profile:7"]] * 2

    # another error goes to the page's banner; the editor stays for another try
    feed(page, anon(5, 3, "Who am I?", 14.0))
    page.click("#chat .msg.final >> nth=5 >> button.name-edit")
    page.fill(".name-editor input[type=text]", "Bob")
    page.press(".name-editor input[type=text]", "Enter")
    page.wait_for_function("() => window.__sent.length === 3")
    feed(page, {"type": "error", "code": "invalid_name", "message": "name too long"})
    page.wait_for_selector("#banner:not([hidden])")
    assert "Could not name the speaker" in page.inner_text("#banner")
    assert page.is_enabled(".name-editor input[type=text]")
    # sentiment updates follow their finals: a dot on the bubble, running counts above the chat
    feed(page, {"type": "sentiment", "utterance_id": 0, "turn": 0, "label": "neutral", "score": 0.62, "peer_id": "p1"},
         {"type": "sentiment", "utterance_id": 1, "turn": 0, "label": "positive", "score": 0.88, "peer_id": "p1"},
         {"type": "sentiment", "utterance_id": 3, "turn": 0, "label": "positive", "score": 0.7, "peer_id": "p1"})
    assert page.eval_on_selector_all("#chat .msg.final", "els => els.map(e => e.dataset.sentiment || null)") == [
        "neutral", "positive", None, "positive", None, None]
    assert "positive: 2 (67 %) / negative: 0 (0 %)" in page.inner_text(".sentiment-stats")
    page.screenshot(path=str(ARTIFACTS / "naming-relabeled.png"), animations="disabled")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "naming-relabeled-phone.png"), animations="disabled")


def test_room_view_names_speakers_too(server, launch, viewer_context):
    viewer = viewer_context(launch(), viewport={"width": 390, "height": 844}).new_page()
    viewer.goto(server.url + "/room/naming-room")
    viewer.wait_for_function("() => window.callscribe.dc && window.callscribe.dc.readyState === 'open'",
                             timeout=20_000)
    record_sends(viewer)
    feed(viewer, anon(0, 1, "Hello from the room.", 1.0), anon(1, 2, "Hi there.", 3.0))
    viewer.click("#chat .msg.final >> nth=1 >> button.name-edit")
    viewer.fill(".name-editor input[type=text]", "Bea")
    viewer.uncheck(".name-editor input[type=checkbox]")
    viewer.click(".name-editor [data-action=save]")
    viewer.wait_for_function("() => window.__sent.length === 1")
    assert viewer.evaluate("window.__sent[0]") == {"type": "name_speaker", "speaker_id": "anon:2", "name": "Bea",
                                                  "save": False, "extend": False, "room": "naming-room"}
    feed(viewer, {"type": "speaker_relabeled", "from_id": "anon:2", "speaker_id": "anon:2", "speaker": "Bea",
                  "speaker_kind": "anonymous", "reason": "named", "server_time": 1.7e9})
    assert [(s["speaker"], s["id"]) for s in speakers(viewer)] == [("Speaker 1", "anon:1"), ("Bea", "anon:2")]
    assert {"side-right", "spk-1"} <= set(speakers(viewer)[1]["classes"].split())
    viewer.screenshot(path=str(ARTIFACTS / "room-named-phone.png"), animations="disabled")
    assert json.dumps(viewer.evaluate("window.callscribe.chat.finals()[1].speaker")) == '"Bea"'

    # sentiment: an update marks the bubble of its peer's final (not another caller's with the same numbers);
    # finals from the backlog come with theirs; the stats line counts per session and per speaker
    assert viewer.is_hidden(".sentiment-stats")  # nothing scored yet
    feed(viewer, {"type": "sentiment", "utterance_id": 1, "turn": 0, "label": "negative", "score": 0.7, "peer_id": "p2"},
         {"type": "sentiment", "utterance_id": 0, "turn": 0, "label": "positive", "score": 0.91, "peer_id": "p1"},
         {"type": "sentiment", "utterance_id": 1, "turn": 0, "label": "negative", "score": 0.74, "peer_id": "p1"},
         anon(2, 1, "Great, thanks for joining!", 5.0, peer=None, backlog=True,
              sentiment={"label": "positive", "score": 0.83}))
    marks = viewer.eval_on_selector_all("#chat .msg.final", """els => els.map(e => [e.dataset.sentiment || null,
        e.querySelector('.sentiment') && e.querySelector('.sentiment').title])""")
    assert marks == [["positive", "Sentiment: positive (confidence 91 %)"],
                     ["negative", "Sentiment: negative (confidence 74 %)"],
                     ["positive", "Sentiment: positive (confidence 83 %)"]]
    totals = viewer.eval_on_selector_all(".sentiment-stats li", "els => els.map(e => e.innerText.replace(/\\s+/g, ' '))")
    assert totals == ["Session positive: 2 (67 %) / negative: 1 (33 %)",
                      "Speaker 1 positive: 2 (100 %) / negative: 0 (0 %)",
                      "Bea positive: 0 (0 %) / negative: 1 (100 %)"]
    assert viewer.evaluate("window.callscribe.chat.finals().map(f => f.sentiment && f.sentiment.label)") == [
        "positive", "negative", "positive"]
    viewer.screenshot(path=str(ARTIFACTS / "room-sentiment-phone.png"), animations="disabled")
    viewer.set_viewport_size({"width": 1280, "height": 800})
    viewer.screenshot(path=str(ARTIFACTS / "room-sentiment.png"), animations="disabled")


def test_voices_card_shows_every_profile_without_an_inner_scrollbar(server, launch):
    profiles = [{"id": i + 1, "name": name, "speech_s": 6.5 + i, "enrollments": 1 + i % 2, "created_at": 1.7e9,
                 "updated_at": 1.7e9} for i, name in enumerate(["Alice", "Bob", "Carol", "Dmitri"])]
    page = launch().new_page(viewport={"width": 1280, "height": 900})
    page.route("**/api/profiles", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({"profiles": profiles})))
    page.goto(server.url + "/")
    page.wait_for_selector("#profiles li[data-profile=Dmitri]")
    inner = page.eval_on_selector(".area-voices", "e => [e.scrollHeight, e.clientHeight, getComputedStyle(e).overflowY]")
    assert inner[0] <= inner[1] + 1, inner  # nothing hidden inside the card
    # the first two profiles are on screen without scrolling the page; the rest a page scroll away, never cut
    for name in ("Alice", "Bob"):
        box = page.locator(f"#profiles li[data-profile={name}]").bounding_box()
        assert box["y"] + box["height"] <= 900, (name, box)
    page.screenshot(path=str(ARTIFACTS / "voices-desktop.png"), animations="disabled")
    page.screenshot(path=str(ARTIFACTS / "voices-desktop-full.png"), full_page=True, animations="disabled")
    chat = page.locator(".area-chat").bounding_box()
    page.mouse.wheel(0, 600)
    page.wait_for_timeout(200)
    assert page.locator(".area-chat").bounding_box()["height"] == pytest.approx(chat["height"], abs=2)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "voices-phone-full.png"), full_page=True, animations="disabled")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
