"""What the call page says when something goes wrong: microphone blocked, server busy, server unreachable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import write_wav

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"

pytestmark = pytest.mark.speech


def banner(page) -> str:
    page.wait_for_selector("#banner:not([hidden])", timeout=15_000)
    return page.inner_text("#banner")


def test_blocked_microphone_is_explained(server, launch):
    page = launch(deny_mic=True).new_page()
    page.goto(server.url + "/")
    page.click("#start")
    text = banner(page)
    assert "Microphone access was blocked" in text
    assert page.evaluate("window.callscribe.lastError") == "NotAllowedError"  # what getUserMedia threw
    assert page.get_attribute("#state", "data-state") == "idle"
    assert page.is_visible("#start") and not page.is_visible("#hangup")


def test_busy_then_unreachable_server_is_explained(busy_server, launch, tmp_path):
    wav = write_wav(tmp_path / "quiet.wav", np.zeros(16000 * 20, np.float32))
    browser = launch(fake_mic_wav=wav)
    first = browser.new_page()
    first.goto(busy_server.url + "/")
    first.click("#start")
    first.wait_for_selector("#state[data-state=live]", timeout=15_000)

    # the only slot is taken: 503 server_busy with Retry-After
    second = browser.new_context().new_page()
    second.goto(busy_server.url + "/")
    second.click("#start")
    text = banner(second)
    assert "The server is busy (1 call in progress)" in text and "try again in 5 s" in text
    assert second.get_attribute("#banner", "data-kind") == "warn"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    second.screenshot(path=str(ARTIFACTS / "error-busy.png"), animations="disabled")
    assert second.get_attribute("#state", "data-state") == "idle"

    # the server goes away: the page says it cannot reach it
    second.click("#banner .banner-close")
    busy_server.stop()
    second.click("#start")
    text = banner(second)
    assert "Cannot reach the callscribe server" in text
    assert second.evaluate("window.callscribe.lastError") == "ServerUnreachable"
    assert second.get_attribute("#state", "data-state") == "idle"
