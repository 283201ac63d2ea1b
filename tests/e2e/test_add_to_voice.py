"""Uploading a recording under a name that is already enrolled never adds to that voice silently: the Voices
card offers "Add to the voice X", refuses without it (nothing sent), and with it adds the recording to X's
profile (``POST /api/profiles/{name}/audio``) — a real server, a real upload of real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.audio.ingest import load_audio

from conftest import write_wav

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
pytestmark = pytest.mark.speech
NAME = "AddAnna"


@pytest.fixture
def forget_voice(server):
    yield
    status, _ = server.request("DELETE", f"/api/profiles/{NAME}")  # the session's server is shared
    assert status in (204, 404)


def test_an_existing_name_is_added_to_only_when_asked(server, launch, speech, tmp_path, forget_voice):
    clips = sorted((speech / "librispeech_test-other_10spk" / "1688").glob("*.flac"))
    first = write_wav(tmp_path / "first.wav", np.concatenate([load_audio(clips[i]) for i in (0, 1)]))
    more = write_wav(tmp_path / "more.wav", np.concatenate([load_audio(clips[i]) for i in (2, 3)]))
    page = launch().new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.wait_for_selector("#profiles")

    page.fill("#enroll-name", NAME)
    assert page.is_hidden("#enroll-add-row")  # a new name: nothing to choose
    page.set_input_files("#enroll-file", str(first))
    page.click("#enroll-upload")
    page.wait_for_selector(f"#profiles li[data-profile={NAME}]", timeout=60_000)

    page.fill("#enroll-name", NAME.lower())  # the same name, any case
    page.wait_for_selector("#enroll-add-row:visible")
    assert page.inner_text("#enroll-add-name") == NAME
    page.set_input_files("#enroll-file", str(more))
    page.click("#enroll-upload")
    page.wait_for_selector("#enroll-status[data-state=failed]")
    assert f"A voice named {NAME} is already enrolled" in page.inner_text("#enroll-status")
    status, body = server.request("GET", f"/api/profiles/{NAME}")
    assert status == 200 and body["profile"]["enrollments"] == 1  # nothing was sent

    page.check("#enroll-add")
    page.locator(".area-voices").screenshot(path=str(ARTIFACTS / "add-to-voice.png"), animations="disabled")
    page.click("#enroll-upload")
    page.wait_for_function("() => ['done', 'warn', 'failed'].includes(document.querySelector('#enroll-status')"
                           ".dataset.state) && !document.querySelector('#enroll-upload').disabled", timeout=60_000)
    assert page.get_attribute("#enroll-status", "data-state") in ("done", "warn"), page.inner_text("#enroll-status")
    status, body = server.request("GET", f"/api/profiles/{NAME}")
    assert status == 200 and body["profile"]["enrollments"] == 2
    assert [h["action"] for h in body["history"]] == ["created", "extended"]
    assert not errors, errors
