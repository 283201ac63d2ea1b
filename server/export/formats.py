"""Render a conversation (a list of :class:`server.stream.events.Final`) as chat text, JSON, SRT, WebVTT or RTTM.

The one implementation of the export formats: ``callscribe transcribe`` writes them and the pages download
them from ``POST /api/export`` (:mod:`signaling.export_api`).

SRT and WebVTT follow their usual definitions (SubRip ``HH:MM:SS,mmm``; W3C WebVTT ``HH:MM:SS.mmm`` with a
``WEBVTT`` header and ``<v Speaker>`` voice spans). RTTM is NIST's Rich Transcription Time Marked format as
diarization tools read it (pyannote, dscore): one line per speaker turn,
``SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>``, times in seconds; fields are separated by
spaces, so spaces inside a file or speaker name become ``_``. Finals with empty text (noise the guards removed)
are left out of every format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Literal

from ..stream.events import Final

if TYPE_CHECKING:
    from pyannote.core import Annotation

Format = Literal["text", "json", "srt", "vtt", "rttm"]


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
    "rttm": FormatSpec("text/plain", "rttm"),
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
    "speakers": [...], …meta}``; ``extra[i]`` (e.g. a room's ``peer_id``/``caller``) is merged into the i-th
    final's utterance. ``speakers`` (:func:`speaker_totals`) has one entry per speaker in order of first
    appearance."""
    return _json(finals, extra, meta)


def speaker_totals(finals: Iterable[Final]) -> list[dict]:
    """Per-speaker totals of the finals with text, in order of first appearance.

    Each is ``{"speaker", "speaker_id", "speaker_kind", "talk_time_s", "turns", "words", "speech_s"}``:
    ``talk_time_s`` is the summed ``end - start`` of the speaker's finals in seconds (``speech_s``, its older
    name, the same value), ``turns`` their number, ``words`` their word count (word timings when present,
    else whitespace-separated words of the text). Speakers are told apart by ``speaker_id`` (all ``unknown``
    finals make one entry).
    """
    totals: dict[tuple, dict] = {}
    for f in _spoken(finals):
        key = (f.speaker_kind, f.speaker_id if f.speaker_id is not None else f.speaker)
        entry = totals.setdefault(key, {"speaker": f.speaker, "speaker_id": f.speaker_id,
                                        "speaker_kind": f.speaker_kind, "talk_time_s": 0.0, "turns": 0, "words": 0})
        entry["talk_time_s"] += f.end - f.start
        entry["turns"] += 1
        entry["words"] += len(f.words) if f.words else len(f.text.split())
    for entry in totals.values():
        entry["talk_time_s"] = entry["speech_s"] = round(entry["talk_time_s"], 2)
    return list(totals.values())


def sentiment_counts(finals: Iterable[Final]) -> dict[str, int]:
    """How many of the finals with text have each sentiment: ``{"positive", "negative", "neutral", "scored"}``
    (``scored``: those with a sentiment at all; shares are counts over ``scored``)."""
    counts = {"positive": 0, "negative": 0, "neutral": 0, "scored": 0}
    for f in _spoken(finals):
        if f.sentiment is not None:
            counts[f.sentiment.label] += 1
            counts["scored"] += 1
    return counts


def _json(finals: Sequence[Final], extra: Sequence[dict] | None, meta: Mapping[str, object]) -> str:
    utterances = [{**f.model_dump(mode="json", exclude={"type", "server_time"}), **x}
                  for f, x in _spoken_with(finals, extra)]
    body = {**meta, "utterances": utterances, "speakers": speaker_totals(finals)}
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def _rttm_field(text: str) -> str:
    return "_".join(str(text).split()) or "NA"


def to_rttm(finals: Iterable[Final], uri: str = "audio", annotation: Annotation | None = None) -> str:
    """NIST RTTM ``SPEAKER`` lines, one per speaker turn, sorted by start time.

    Args:
        finals: used when ``annotation`` is None: one line per final with text (``start``, ``end - start``,
            ``speaker``).
        uri: the file field (e.g. the recording's name without extension).
        annotation: a diarization (:class:`pyannote.core.Annotation`, overlap kept) to write instead of the
            finals: every track becomes a line, labelled with its label.
    """
    if annotation is not None:
        turns = [(s.start, s.end, str(label)) for s, _, label in annotation.itertracks(yield_label=True)]
    else:
        turns = [(f.start, f.end, f.speaker) for f in _spoken(finals)]
    name = _rttm_field(uri)
    lines = [f"SPEAKER {name} 1 {start:.3f} {max(0.0, end - start):.3f} <NA> <NA> {_rttm_field(label)} <NA> <NA>"
             for start, end, label in sorted(turns, key=lambda t: (t[0], t[1], t[2]))]
    return "".join(line + "\n" for line in lines)


def _rttm_uri(meta: Mapping[str, object] | None) -> str:
    meta = meta or {}
    if isinstance(meta.get("file"), str) and meta["file"]:
        return PurePath(str(meta["file"])).stem
    if isinstance(meta.get("room"), str) and meta["room"]:
        return str(meta["room"])
    return "audio"


def render(finals: list[Final], fmt: Format, meta: Mapping[str, object] | None = None, *,
           extra: Sequence[dict] | None = None, annotation: Annotation | None = None) -> str:
    """Render in ``fmt``; ``meta`` and ``extra`` (see :func:`to_json`) go into the JSON object only.

    RTTM's file field is ``meta["file"]``'s name without extension (else ``meta["room"]``, else ``audio``); with
    ``annotation`` (a diarization) RTTM is written from it instead of from the finals (:func:`to_rttm`); the
    other formats ignore it.

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
    if fmt == "rttm":
        return to_rttm(finals, _rttm_uri(meta), annotation)
    raise ValueError(f"unknown format {fmt!r}")
