"""Render a conversation (a list of :class:`server.events.Final`) as chat text, JSON, SRT or WebVTT.

SRT and WebVTT follow their usual definitions (SubRip ``HH:MM:SS,mmm``; W3C WebVTT ``HH:MM:SS.mmm`` with a
``WEBVTT`` header and ``<v Speaker>`` voice spans). Finals with empty text (noise the guards removed) are
left out of every format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal

from .events import Final

Format = Literal["text", "json", "srt", "vtt"]


def _spoken(finals: Iterable[Final]) -> list[Final]:
    return [f for f in finals if f.text.strip()]


def chat_line(f: Final) -> str:
    """``[00:03.2–00:05.9] Alice: text`` (minutes:seconds with tenths)."""

    def mmss(t: float) -> str:
        m, s = divmod(max(0.0, t), 60)
        return f"{int(m):02d}:{s:04.1f}"

    return f"[{mmss(f.start)}–{mmss(f.end)}] {f.speaker}: {f.text}"


def _clock(t: float, sep: str) -> str:
    ms = round(max(0.0, t) * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_text(finals: Iterable[Final]) -> str:
    return "\n".join(chat_line(f) for f in _spoken(finals)) + "\n"


def to_srt(finals: Iterable[Final]) -> str:
    blocks = [
        f"{i}\n{_clock(f.start, ',')} --> {_clock(f.end, ',')}\n{f.speaker}: {f.text}\n"
        for i, f in enumerate(_spoken(finals), 1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(finals: Iterable[Final]) -> str:
    cues = [
        f"{_clock(f.start, '.')} --> {_clock(f.end, '.')}\n<v {_vtt_escape(f.speaker)}>{_vtt_escape(f.text)}\n"
        for f in _spoken(finals)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_json(finals: Iterable[Final], **meta) -> str:
    """One object: ``{"utterances": [{start, end, speaker, speaker_id, score, text, language, …}], …meta}``."""
    utterances = [f.model_dump(mode="json", exclude={"type", "server_time"}) for f in _spoken(finals)]
    speakers: dict[str, float] = {}
    for u in utterances:
        speakers[u["speaker"]] = speakers.get(u["speaker"], 0.0) + u["end"] - u["start"]
    body = {**meta, "utterances": utterances,
            "speakers": [{"speaker": k, "speech_s": round(v, 2)} for k, v in speakers.items()]}
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def render(finals: list[Final], fmt: Format, **meta) -> str:
    """Render in ``fmt``; ``meta`` goes into the JSON object only."""
    if fmt == "text":
        return to_text(finals)
    if fmt == "json":
        return to_json(finals, **meta)
    if fmt == "srt":
        return to_srt(finals)
    if fmt == "vtt":
        return to_vtt(finals)
    raise ValueError(f"unknown format {fmt!r}")
