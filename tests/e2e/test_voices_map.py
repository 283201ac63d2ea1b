"""The Voices card's map against a real server (GET /api/profiles/map): a hint with fewer than two voices, one
labelled point per enrolled voice, and a plain-words warning for each pair that sounds like one voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.audio.ingest import load_audio

from conftest import write_wav

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
pytestmark = pytest.mark.speech
NAMES = ("MapAnna", "MapBen", "MapAnnabel")


@pytest.fixture
def forget_map_voices(server):
    yield
    for name in NAMES:  # the session's server is shared: leave no voices behind
        status, _ = server.request("DELETE", f"/api/profiles/{name}")
        assert status in (204, 404)


def voice(tmp_path: Path, speech: Path, speaker: str, files: tuple[int, ...], name: str) -> Path:
    d = speech / "librispeech_test-other_10spk" / speaker
    clips = sorted(d.glob("*.flac"))
    return write_wav(tmp_path / f"{name}.wav", np.concatenate([load_audio(clips[i]) for i in files]))


def enroll(page, name: str, wav: Path) -> None:
    page.fill("#enroll-name", name)
    page.set_input_files("#enroll-file", str(wav))
    page.click("#enroll-upload")
    page.wait_for_selector(f"#profiles li[data-profile={name}]", timeout=60_000)


def points(page) -> dict[str, dict]:
    return {p["name"]: p for p in page.eval_on_selector_all("#voice-map .vm-point", """els => els.map(g => {
        const c = g.querySelector('circle'), t = g.querySelector('text');
        return {name: g.dataset.name, label: t.textContent, x: +c.getAttribute('cx'), y: +c.getAttribute('cy')};
    })""")}


def test_voices_map_shows_each_enrolled_voice_and_warns_about_one_voice_twice(
        server, launch, speech, tmp_path, forget_map_voices):
    status, body = server.request("GET", "/api/profiles")
    assert status == 200
    before = {p["name"] for p in body["profiles"]}
    page = launch().new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.wait_for_selector("#voice-map-section:visible")
    if len(before) < 2:  # a fresh server: a hint instead of a map
        assert page.locator("#voice-map .vm-point").count() == 0
        assert "two or more voices" in page.inner_text("#voice-map") or "second voice" in page.inner_text("#voice-map")

    enroll(page, "MapAnna", voice(tmp_path, speech, "1688", (0, 1), "anna"))
    enroll(page, "MapBen", voice(tmp_path, speech, "1998", (0, 1), "ben"))
    page.wait_for_function("() => document.querySelectorAll('#voice-map .vm-point').length >= 2")
    shown = points(page)
    assert {"MapAnna", "MapBen"} <= set(shown) and len(shown) == len(before) + 2
    viewbox = [float(v) for v in page.get_attribute("#voice-map svg", "viewBox").split()]
    for p in shown.values():  # labelled, and scaled to fit inside the drawing
        assert p["label"] == p["name"]
        assert 0 <= p["x"] <= viewbox[2] and 0 <= p["y"] <= viewbox[3], p
    assert (shown["MapAnna"]["x"], shown["MapAnna"]["y"]) != (shown["MapBen"]["x"], shown["MapBen"]["y"])
    page.locator(".area-voices").screenshot(path=str(ARTIFACTS / "voices-map.png"), animations="disabled")

    # the same voice under a second name: one warning line per close pair the server reports
    enroll(page, "MapAnnabel", voice(tmp_path, speech, "1688", (2, 3), "annabel"))
    page.wait_for_selector("#voice-map .vm-point[data-name=MapAnnabel]")
    status, vmap = server.request("GET", "/api/profiles/map")
    assert status == 200
    expected = [f"{p['a']} and {p['b']} sound like one voice (similarity {p['similarity']:.2f}) — delete one or rename"
                for p in vmap["close_pairs"]]
    page.wait_for_function("n => document.querySelectorAll('#voice-map .voice-warning').length === n",
                           arg=len(expected))
    assert page.locator("#voice-map .voice-warning").all_inner_texts() == expected
    assert any({"MapAnna", "MapAnnabel"} == {p["a"], p["b"]} for p in vmap["close_pairs"]), vmap
    assert "close" in page.get_attribute("#voice-map .vm-point[data-name=MapAnnabel]", "class")
    page.locator(".area-voices").screenshot(path=str(ARTIFACTS / "voices-map-close.png"), animations="disabled")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#voice-map-section").screenshot(path=str(ARTIFACTS / "voices-map-phone.png"),
                                                  animations="disabled")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # deleting a voice redraws the map without it
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("#profiles li[data-profile=MapAnnabel] [data-action=delete]")
    page.click("#profiles li[data-profile=MapAnnabel] [data-action=delete]")
    page.wait_for_selector("#voice-map .vm-point[data-name=MapAnnabel]", state="detached")
    assert not errors, errors
