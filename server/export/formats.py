"""Render a conversation (a list of :class:`server.stream.events.Final`) as chat text, JSON, SRT or WebVTT.

The one implementation of the export formats: ``callscribe transcribe`` writes them and the pages download
them from ``POST /api/export`` (:mod:`signaling.export_api`).

SRT and WebVTT follow their usual definitions (SubRip ``HH:MM:SS,mmm``; W3C WebVTT ``HH:MM:SS.mmm`` with a
``WEBVTT`` header and ``<v Speaker>`` voice spans). Finals with empty text (noise the guards removed) are
left out of every format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..stream.events import Final

Format = Literal["text", "json", "srt", "vtt"]


@dataclass(frozen=True)
class FormatSpec:
    """How a format is served: its media type and file name extension."""

    mime: str
    extension: str


FORMATS: dict[str, FormatSpec] = {
    "text": FormatSpec("text/plain", "txt"),
    "json": FormatSpec("application/json", "json"),
    "srt": FormatSpec("application/x-subrip", "srt"),
    "vtt": FormatSpec("text/vtt", "vtt"),
}


def _spoken(finals: Iterable[Final]) -> list[Final]:
    return [f for f in finals if f.text.strip()]


def _spoken_with(finals: Sequence[Final], extra: Sequence[dict] | None) -> list[tuple[Final, dict]]:
    extra = extra if extra is not None else [{}] * len(finals)
    return [(f, x) for f, x in zip(finals, extra, strict=True) if f.text.strip()]


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


def to_json(finals: Sequence[Final], /, *, extra: Sequence[dict] | None = None, **meta) -> str:
    """One object: ``{"utterances": [{start, end, speaker, speaker_id, speaker_kind, score, text, language, …}],
    "speakers": [{speaker, speech_s}], …meta}``; ``extra[i]`` (e.g. a room's ``peer_id``/``caller``) is merged
    into the i-th final's utterance."""
    return _json(finals, extra, meta)


def _json(finals: Sequence[Final], extra: Sequence[dict] | None, meta: Mapping[str, object]) -> str:
    utterances = [{**f.model_dump(mode="json", exclude={"type", "server_time"}), **x}
                  for f, x in _spoken_with(finals, extra)]
    speakers: dict[str, float] = {}
    for u in utterances:
        speakers[u["speaker"]] = speakers.get(u["speaker"], 0.0) + u["end"] - u["start"]
    body = {**meta, "utterances": utterances,
            "speakers": [{"speaker": k, "speech_s": round(v, 2)} for k, v in speakers.items()]}
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def render(finals: list[Final], fmt: Format, meta: Mapping[str, object] | None = None, *,
           extra: Sequence[dict] | None = None) -> str:
    """Render in ``fmt``; ``meta`` and ``extra`` (see :func:`to_json`) go into the JSON object only.

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "text":
        return to_text(finals)
    if fmt == "json":
        return _json(finals, extra, meta or {})
    if fmt == "srt":
        return to_srt(finals)
    if fmt == "vtt":
        return to_vtt(finals)
    raise ValueError(f"unknown format {fmt!r}")
