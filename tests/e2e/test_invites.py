"""Invite links against a real server with access control on (an API key): the pages take the token from their
address (and drop it from there), send it with every request and the offer, mint viewer links from the call page's
Invite control, and say in plain words when a link is expired or garbage."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
import numpy as np
import pytest

from server.audio.ingest import load_audio

from conftest import write_wav

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
SR = 16000
pytestmark = pytest.mark.speech


def mint(server, room: str, role: str, credential: str | None = None) -> dict:
    status, body = server.request("POST", "/api/tokens", {"room": room, "role": role},
                                  token=credential or server.api_key)
    assert status == 200, body
    return body


def expired_token(server, room: str) -> str:
    """A token of this server (right signature and claims) that expired a minute ago."""
    now = int(time.time())
    return jwt.encode({"iss": "callscribe", "room": room, "role": "viewer", "iat": now - 3600, "exp": now - 60,
                       "jti": uuid.uuid4().hex}, server.token_secret, algorithm="HS256")


def banner(page) -> str:
    page.wait_for_selector("#banner:not([hidden])", timeout=20_000)
    return page.inner_text("#banner")


def watch_api(page) -> list[dict]:
    """Every request the page makes to /api/ or /whip, with its Authorization header and body."""
    seen: list[dict] = []
    page.on("request", lambda r: seen.append({"url": r.url, "method": r.method, "auth": r.headers.get("authorization"),
                                              "body": r.post_data}) if "/api/" in r.url else None)
    return seen


def test_a_speaker_link_calls_invites_a_viewer_and_reads_its_rooms_history(auth_server, launch, viewer_context,
                                                                           speech, tmp_path):
    room = f"invite-{uuid.uuid4().hex[:6]}"
    speaker = mint(auth_server, room, "speaker")
    clip = load_audio(speech / "harvard_2spk" / "spk1_snt4.wav")
    wav = write_wav(tmp_path / "mic.wav", np.concatenate([np.zeros(4 * SR, np.float32), clip,
                                                          np.zeros(30 * SR, np.float32)]))
    browser = launch(fake_mic_wav=wav)
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  permissions=["microphone", "clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests = watch_api(page)

    # the invite link: the token leaves the address bar, stays for the tab, and goes with every request
    page.goto(auth_server.url + speaker["url"])
    page.wait_for_selector("#profiles li")
    assert "token" not in page.url and page.url.endswith(f"/?room={room}")
    assert page.evaluate("sessionStorage.getItem('callscribe.token@' + location.origin)") == speaker["token"]
    assert page.input_value("#room") == room
    assert page.is_visible("#invite [data-invite=viewer]")  # access control is on: the Invite control shows
    page.select_option("#language", "en")
    page.click("#start")
    page.wait_for_selector("#state[data-state=live]", timeout=20_000)
    page.wait_for_selector("#chat .msg.final", timeout=60_000)
    offer = next(r for r in requests if r["url"].endswith("/api/offer"))
    assert f'"token":"{speaker["token"]}"' in offer["body"].replace(" ", "")
    assert requests and all(r["auth"] == f"Bearer {speaker['token']}" for r in requests), requests

    # the Invite control mints a viewer link, copies it and shows it
    page.click("#invite [data-invite=viewer]")
    page.wait_for_selector("#invite-result:not([hidden])")
    link = page.input_value("#invite-link")
    assert link.startswith(f"{auth_server.url}/room/{room}?token=")
    page.wait_for_selector("#invite-status[data-state=done]")
    assert "Copied" in page.inner_text("#invite-status") and "valid until" in page.inner_text("#invite-status")
    assert page.evaluate("navigator.clipboard.readText()") == link
    page.screenshot(path=str(ARTIFACTS / "invite-call.png"), animations="disabled")

    # the viewer link opens the room view: live, with what was said so far
    viewer = viewer_context(browser, viewport={"width": 1280, "height": 900}).new_page()
    viewer.goto(link)
    viewer.wait_for_selector("#state[data-state=live]", timeout=20_000)
    viewer.wait_for_selector("#chat .msg.final", timeout=10_000)
    assert "token" not in viewer.url
    if viewer.locator("#chat .msg.final.anonymous").count():  # a viewer link may not name speakers: plain labels
        assert viewer.locator("#chat button.name-edit").count() == 0
        assert page.locator("#chat button.name-edit").count() > 0  # the speaker may
    said = page.eval_on_selector_all("#chat .msg.final .bubble", "els => els.map(e => e.textContent)")
    assert viewer.eval_on_selector_all("#chat .msg.final .bubble", "els => els.map(e => e.textContent)")[:1] == said[:1]
    viewer.screenshot(path=str(ARTIFACTS / "invite-room-view.png"), animations="disabled")

    # hanging up deletes the answer's session_url (not the admin-only /api/peers/{id})
    with page.expect_response(lambda r: r.request.method == "DELETE") as hung:
        page.click("#hangup")
    assert "/api/calls/" in hung.value.url and hung.value.status == 204
    page.wait_for_selector("#state[data-state=ended]")

    # the speaker's tab reads its room's history (the token is kept across pages) and plays the recording
    page.click("#history-link")
    page.wait_for_selector("#sessions .session")
    assert set(page.locator("#sessions .s-room").all_inner_texts()) == {room}
    page.click("#sessions .session >> nth=0")
    page.wait_for_selector("#chat .msg.final")
    page.wait_for_selector("#listen:visible")
    page.click("#listen")
    page.wait_for_selector("#player:visible")
    page.wait_for_function("() => document.querySelector('#player').duration > 1", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "invite-history-recording.png"), animations="disabled")

    # the viewer's tab: the room's history too, read-only
    viewer.click("#history-link")
    viewer.wait_for_selector("#sessions .session")
    viewer.click("#sessions .session >> nth=0")
    viewer.wait_for_selector("#chat .msg.final")
    assert viewer.is_hidden("#delete")
    assert not errors, errors


def test_expired_and_garbage_links_are_explained_in_plain_words(auth_server, launch, viewer_context, tmp_path):
    room = f"invite-{uuid.uuid4().hex[:6]}"
    browser = launch(fake_mic_wav=write_wav(tmp_path / "quiet.wav", np.zeros(10 * SR, np.float32)))

    viewer = viewer_context(browser, viewport={"width": 1280, "height": 900}).new_page()
    viewer.goto(f"{auth_server.url}/room/{room}?token={expired_token(auth_server, room)}")
    assert "This invite link has expired — ask for a new one." in banner(viewer)
    viewer.wait_for_selector("#state[data-state=ended]")
    assert viewer.inner_text("#state") == "No access" and "token" not in viewer.url
    viewer.screenshot(path=str(ARTIFACTS / "invite-expired.png"), animations="disabled")
    viewer.wait_for_timeout(2500)
    assert viewer.inner_text("#state") == "No access"  # it does not keep retrying

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{auth_server.url}/?token=not-a-token")
    text = banner(page)  # the page's first request is refused: it says so at once
    assert "did not accept this invite link" in text and "ask for a new one" in text, text
    page.click("#banner .banner-close")
    page.click("#start")
    assert "ask for a new one" in banner(page)
    assert page.get_attribute("#state", "data-state") == "idle"
    page.screenshot(path=str(ARTIFACTS / "invite-garbage.png"), animations="disabled")

    # a viewer link cannot call with a microphone
    call = browser.new_page()
    call.goto(auth_server.url + f"/?room={room}&token=" + mint(auth_server, room, "viewer")["token"])
    call.click("#start")
    assert "not talk in it — ask for a speaker link" in banner(call)


def test_without_a_link_the_page_asks_for_access_and_the_key_mints_links(auth_server, launch, viewer_context):
    room = f"invite-{uuid.uuid4().hex[:6]}"
    browser = launch()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(auth_server.url + "/")
    page.wait_for_selector("#access-form:visible")  # the server answered 401
    assert page.inner_text("#invite-title") == "Access"
    assert "invite link" in page.inner_text("#profiles")
    page.screenshot(path=str(ARTIFACTS / "invite-access.png"), animations="disabled")
    page.fill("#access-key", auth_server.api_key)
    page.click("#access-form [type=submit]")
    page.wait_for_selector("#invite [data-invite=viewer]:visible")
    page.wait_for_selector("#profiles li:not(.profiles-empty), #profiles .profiles-empty:text('No voices')")
    page.fill("#room", room)
    page.click("#invite [data-invite=viewer]")  # no clipboard permission here: the link is shown to copy
    page.wait_for_selector("#invite-result:not([hidden])")
    link = page.input_value("#invite-link")
    assert link.startswith(f"{auth_server.url}/room/{room}?token=")
    viewer = viewer_context(browser).new_page()
    viewer.goto(link)
    viewer.wait_for_selector("#state[data-state=waiting]", timeout=20_000)  # connected; nobody is calling
