"""Naming an anonymous speaker end to end (protocol 3): a voice without a profile shows as "Speaker N"; naming it
on the call page relabels its bubbles there and in a room viewer, saves a voice profile from its speech, and the
next call recognises the voice by that name. Also the room view's badge across a real call's life (`room`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import mic_wav

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
SR = 16000
pytestmark = pytest.mark.speech


def finals(page) -> list[dict]:
    return page.eval_on_selector_all("#chat .msg.final", """els => els.map(e => ({speaker: e.dataset.speaker,
        id: e.dataset.speakerId, kind: e.dataset.speakerKind, classes: e.className}))""")


@pytest.fixture
def forget_dana(server):
    # the voice must have no profile yet: the session's server may hold those that earlier tests enrolled
    # (tests/e2e/test_pages.py enrolls this voice as Alice), which would name it at once
    status, body = server.request("GET", "/api/profiles")
    assert status == 200
    for profile in body["profiles"]:
        deleted, _ = server.request("DELETE", f"/api/profiles/{profile['name']}")
        assert deleted == 204
    yield
    # the server is shared by the whole session: a saved "Dana" (spk1's voice) would make later tests' live
    # enrollment of the same voice report a similar profile
    status, _ = server.request("DELETE", "/api/profiles/Dana")
    assert status in (204, 404)


def test_naming_an_anonymous_speaker_relabels_everywhere_and_is_recognised_next_call(
        server, launch, viewer_context, speech, tmp_path, forget_dana):
    d = speech / "harvard_2spk"
    first = mic_wav(tmp_path / "first.wav", [d / f"spk1_snt{n}.wav" for n in (4, 5, 6)])
    browser = launch(fake_mic_wav=first)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server.url + "/")
    page.fill("#room", "naming-e2e")
    page.select_option("#language", "en")
    viewer = viewer_context(browser, viewport={"width": 390, "height": 844}).new_page()
    viewer.goto(server.url + "/room/naming-e2e")
    viewer.wait_for_selector("#state[data-state=waiting]", timeout=20_000)  # the room event: no call yet
    page.click("#start")
    page.wait_for_selector("#state[data-state=live]", timeout=20_000)
    viewer.wait_for_selector("#state[data-state=live]", timeout=10_000)  # a call joined the room

    # three sentences of a voice without a profile: anonymous, one stable id, a name-like label
    page.wait_for_function("() => document.querySelectorAll('#chat .msg.final[data-speaker-kind=anonymous]')"
                           ".length >= 3", timeout=90_000)
    shown = [b for b in finals(page) if b["kind"] == "anonymous"]
    anon_id = shown[0]["id"]
    assert anon_id.startswith("anon:") and shown[0]["speaker"].startswith("Speaker ")
    assert {b["id"] for b in shown} == {anon_id}
    viewer.wait_for_function("n => document.querySelectorAll('#chat .msg.final[data-speaker-kind=anonymous]')"
                             ".length >= n", arg=len(shown), timeout=10_000)

    # name it on the call page, remembering the voice
    page.click(f"#chat .msg.final[data-speaker-id='{anon_id}'] >> nth=0 >> button.name-edit")
    page.fill(".name-editor input[type=text]", "Dana")
    assert page.is_checked(".name-editor input[type=checkbox]")
    page.press(".name-editor input[type=text]", "Enter")
    page.wait_for_selector(".name-editor", state="detached", timeout=20_000)
    for p in (page, viewer):  # every bubble of that voice, on the call page and in the room view
        p.wait_for_function("id => !document.querySelector(`#chat .msg.final[data-speaker-id='${id}']`)",
                            arg=anon_id, timeout=10_000)
        named = [b for b in finals(p) if b["speaker"] == "Dana"]
        assert len(named) >= len(shown) and {b["kind"] for b in named} == {"profile"}, finals(p)
    page.wait_for_selector("#profiles li[data-profile=Dana]", timeout=10_000)  # the Voices card reloaded
    status, body = server.request("GET", "/api/profiles")
    assert status == 200 and "Dana" in {p["name"] for p in body["profiles"]}
    page.screenshot(path=str(ARTIFACTS / "naming-e2e-call.png"), animations="disabled")
    viewer.screenshot(path=str(ARTIFACTS / "naming-e2e-room-phone.png"), animations="disabled")
    exported = page.evaluate("window.callscribe.chat.finals().map(f => f.speaker)")
    assert "Dana" in exported and not any(s.startswith("Speaker ") for s in exported)

    # the caller hangs up: the room view stops saying Live
    page.click("#hangup")
    viewer.wait_for_selector("#state[data-state=waiting]", timeout=15_000)
    assert viewer.inner_text("#state") == "Call ended"

    # the next call (other sentences, same voice) is recognised as Dana
    second = launch(fake_mic_wav=mic_wav(tmp_path / "second.wav", [d / f"spk1_snt{n}.wav" for n in (1, 2)]))
    again = second.new_page()
    again.goto(server.url + "/")
    again.select_option("#language", "en")
    again.click("#start")
    again.wait_for_function("() => document.querySelectorAll('#chat .msg.final').length >= 2", timeout=90_000)
    assert [b["speaker"] for b in finals(again)][:2] == ["Dana", "Dana"], finals(again)
