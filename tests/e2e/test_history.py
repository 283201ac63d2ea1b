"""The history page (static/history.html) against a real server: a real call through the fake microphone, hung up,
then found in the history, read as the same chat bubbles, exported in every format through the server's transcript
route, reached from the room view, paged ("Older") and deleted after a confirmation."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest

from conftest import mic_wav, write_wav

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
SR = 16000
pytestmark = pytest.mark.speech


def bubbles(page) -> list[dict]:
    return page.eval_on_selector_all("#chat .msg.final", """els => els.map(e => ({
        speaker: e.dataset.speaker, text: e.querySelector('.bubble').textContent,
        side: e.classList.contains('side-left') ? 'left' : 'right'}))""")


def sentiments(page) -> list[str | None]:
    return page.eval_on_selector_all("#chat .msg.final", "els => els.map(e => e.dataset.sentiment || null)")


def download_text(page, selector: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


def item(room: str) -> str:
    return f"#sessions .session:has(.s-room:text-is('{room}'))"


def test_a_finished_call_is_in_the_history_reads_like_the_chat_exports_and_deletes(
        server, launch, viewer_context, speech, tmp_path):
    d = speech / "harvard_2spk"
    room = f"history-e2e-{uuid.uuid4().hex[:6]}"
    browser = launch(fake_mic_wav=mic_wav(tmp_path / "mic.wav", [d / "spk1_snt4.wav", d / "spk2_snt4.wav",
                                                              d / "spk1_snt5.wav"]))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.fill("#room", room)
    page.select_option("#language", "en")
    page.click("#start")
    page.wait_for_selector("#state[data-state=live]", timeout=20_000)
    page.wait_for_function("() => !document.querySelector('#chat .msg.pending') && "
                           "document.querySelectorAll('#chat .msg.final').length >= 3", timeout=90_000)
    # each final's sentiment update follows it: every bubble gets its mark, the stats line its counts
    page.wait_for_function("() => [...document.querySelectorAll('#chat .msg.final')].every(e => e.dataset.sentiment)",
                           timeout=30_000)
    assert page.is_visible(".sentiment-stats") and "positive: " in page.inner_text(".sentiment-stats")
    page.click("#hangup")  # DELETE of the answer's session_url
    page.wait_for_selector("#state[data-state=ended]")
    live = bubbles(page)  # the chat as the call left it (any relabel applied)
    live_marks = sentiments(page)

    # a second, silent call in the same room (its own fake microphone): the newest session, nothing said
    silent = launch(fake_mic_wav=write_wav(tmp_path / "silent.wav", np.zeros(20 * SR, np.float32)))
    quiet = silent.new_page()
    quiet.goto(f"{server.url}/?room={room}")
    quiet.click("#start")
    quiet.wait_for_selector("#state[data-state=live]", timeout=20_000)
    quiet.click("#hangup")
    quiet.wait_for_selector("#state[data-state=ended]")
    quiet.close()

    # the call page's header leads to the history; the call is listed with its room, length and speakers
    page.click("#history-link")
    page.wait_for_url("**/static/history.html")
    page.wait_for_selector(item(room))
    first = page.locator(item(room)).last  # newest first: the speech call is the older of the two
    session_id = first.get_attribute("data-session-id")
    status, detail = server.request("GET", f"/api/sessions/{session_id}")
    assert status == 200 and detail["session"]["room"] == room and detail["session"]["ended_at"] is not None
    assert [u["sentiment"]["label"] for u in detail["utterances"]] == live_marks  # stored with each final
    assert detail["sentiment"]["scored"] == len(live)
    assert re.search(r"\d+ (s|min)", first.inner_text()) and "in progress" not in first.inner_text()
    chips = first.locator(".chip").all_inner_texts()
    assert chips == list(dict.fromkeys(b["speaker"] for b in live)), (chips, live)

    # opened: the same bubbles as live (speaker labels, texts, sides), with the speakers' totals above
    first.click()
    page.wait_for_function("n => document.querySelectorAll('#chat .msg.final').length === n", arg=len(live))
    assert bubbles(page) == live
    assert sentiments(page) == live_marks and page.is_visible(".sentiment-stats")
    assert page.inner_text("#info-room") == room
    assert page.locator("#info-speakers li").count() == len({b["speaker"] for b in live})
    assert page.inner_text("#count") == f"{len(live)} messages"
    assert page.is_hidden("#listen")  # this server does not record audio
    assert f"#session={session_id}" in page.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "history.png"), animations="disabled")

    # exports come from GET /api/sessions/{id}/transcript, named by the server
    name, vtt = download_text(page, "#export [data-export=vtt]")
    assert name.endswith(".vtt") and room in name
    cues = re.findall(r"^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n<v ([^>]+)>(.+)$", vtt, re.M)
    assert [(s, t) for s, t in cues] == [(b["speaker"], b["text"]) for b in live]
    _, srt = download_text(page, "#export [data-export=srt]")
    assert srt.count(" --> ") == len(live)
    _, text = download_text(page, "#export [data-export=txt]")
    assert [re.sub(r"^\[[\d:.]+–[\d:.]+\] ", "", line) for line in text.splitlines()] == \
        [f"{b['speaker']}: {b['text']}" for b in live]
    _, body = download_text(page, "#export [data-export=json]")
    assert [(u["speaker"], u["text"]) for u in json.loads(body)["utterances"]] == \
        [(b["speaker"], b["text"]) for b in live]
    _, rttm = download_text(page, "#export [data-export=rttm]")
    assert [line.split()[7] for line in rttm.splitlines()] == [b["speaker"].replace(" ", "_") for b in live]

    # the silent call: listed as nobody speaking, opened as an empty transcript
    page.click(f"{item(room)} >> nth=0")
    page.wait_for_selector("#chat-empty:visible")
    assert page.inner_text("#chat-empty-title") == "Nothing was said"
    assert page.is_enabled("#export [data-export=vtt]")  # its (empty) files can still be taken

    # phone width: the list and the transcript take turns
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.is_hidden(".area-list")
    page.click("#back")
    page.wait_for_selector(item(room))
    page.locator(item(room)).last.click()
    page.wait_for_selector("#chat .msg.final")
    assert page.is_hidden(".area-list")
    page.screenshot(path=str(ARTIFACTS / "history-phone.png"), animations="disabled")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    # the room view links to this room's history; one session per page, "Older" for the rest
    viewer = viewer_context(browser, viewport={"width": 1280, "height": 900}).new_page()
    viewer.goto(f"{server.url}/room/{room}")
    assert viewer.get_attribute("#history-link", "href") == f"/static/history.html?room={room}"
    viewer.goto(f"{server.url}/static/history.html?room={room}&limit=1")
    viewer.wait_for_selector(item(room))
    assert viewer.locator("#sessions .session").count() == 1 and viewer.is_visible("#older")
    assert viewer.inner_text("#room-filter-name") == room and viewer.inner_text("#total") == "2 sessions"
    viewer.click("#older")
    viewer.wait_for_function("() => document.querySelectorAll('#sessions .session').length === 2")
    assert viewer.is_hidden("#older")
    assert viewer.locator("#sessions .session").last.get_attribute("data-session-id") == session_id

    # delete: asks first; "Keep it" keeps it, "Delete session" removes it from the list and the server
    page.click(f"#sessions .session[data-session-id='{session_id}']")
    page.wait_for_selector("#chat .msg.final")
    page.click("#delete")
    page.wait_for_selector("#confirm-delete[open]")
    assert room in page.inner_text("#confirm-delete")
    page.screenshot(path=str(ARTIFACTS / "history-delete.png"), animations="disabled")
    page.click("#confirm-delete [data-action=cancel]")
    page.wait_for_selector("#confirm-delete", state="hidden")
    assert server.request("GET", f"/api/sessions/{session_id}")[0] == 200
    page.click("#delete")
    page.click("#confirm-delete [data-action=delete]")
    page.wait_for_selector(f"#sessions .session[data-session-id='{session_id}']", state="detached")
    assert "Session deleted" in page.inner_text("#banner")
    assert page.is_visible("#chat-empty") and page.inner_text("#chat-empty-title") == "Pick a session"
    assert server.request("GET", f"/api/sessions/{session_id}")[0] == 404
    assert not errors, errors
